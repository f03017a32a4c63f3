"""Certificate rotation under load between meshed pods (issue 11), end to end.

Topology: test_mtls's (pods `client` and `server`, both with sidecars, `server` running the
backend; Service web 10.98.0.10 with an HTTP port and the echo port), with weft-control
issuing one-minute certificates (`--certificate-lifetime 1m`): each sidecar renews about
every 42 s.

What is checked: for two minutes of steady load (HTTP/1 on a kept-alive connection, HTTP/1
with a new connection per request, and a new TCP connection per echo, all over mesh TLS
between the sidecars), every request and echo succeeds while both sidecars renew at least
twice; and a new mesh TLS connection after a renewal is served with the renewed
certificate at once.
"""

import datetime
import json
import os
import shutil
import ssl
import subprocess
import sys
import tempfile
import time

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from control_fixtures import ca_template  # noqa: E402,F401
from mesh_fixtures import APP_PORT, PodSpec, ServiceSpec, run_mesh, watch_mesh_test  # noqa: E402
from test_mtls import TCP_PORT, MTLSMesh, issue_identity  # noqa: E402

NS_PREFIX = "wr-"
SUBNET = "10.236.0"
LOAD_SECONDS = 120


def _pod(name, host, app, sa=None):
    return PodSpec(name, "demo", host, app, sa=sa, subnet=SUBNET, ns_prefix=NS_PREFIX)


CLIENT = _pod("client", 1, "client")
SERVER = _pod("server", 10, "web", sa="web")
WEB = ServiceSpec("web", "demo", "10.98.0.10", ["server"],
                  ports=(("http", 80, APP_PORT), ("redis", TCP_PORT, TCP_PORT)))


class RotationMesh(MTLSMesh):
    ns_prefix = NS_PREFIX
    node_ip = SUBNET + ".254"
    pods = [CLIENT, SERVER]
    backends = [SERVER]
    clients = (CLIENT, SERVER)
    control_extra = ("--certificate-lifetime", "1m")

    def render(self, routes=(), services=None, outbound_policy="ALLOW_ANY", extra=""):
        return super().render(routes=routes, services=services or [WEB], outbound_policy=outbound_policy,
                              extra=extra)


@pytest.fixture(scope="module")
def rotation_mesh(ca_template):  # noqa: F811 - ca_template is the fixture
    yield from run_mesh(RotationMesh(ca_template))


@pytest.fixture
def mesh(rotation_mesh, request):
    yield from watch_mesh_test(rotation_mesh, request)


LOAD = r'''
import http.client, json, socket, sys, threading, time
host, http_port, echo_port, seconds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
deadline = time.monotonic() + seconds
MAX = 30000  # each worker stops at this many, whatever the time
results = {"keepalive": [0, []], "fresh": [0, []], "echo": [0, []]}

def keepalive():
    conn = http.client.HTTPConnection(host, http_port, timeout=10)
    n = 0
    while time.monotonic() < deadline and n < MAX:
        n += 1
        try:
            conn.request("GET", "/rotate/keepalive/%d" % n)
            r = conn.getresponse()
            body = r.read()
            if r.status != 200:
                results["keepalive"][1].append("%d: status %d %r" % (n, r.status, body[:200]))
        except Exception as e:
            results["keepalive"][1].append("%d: %r" % (n, e))
            conn.close()
            conn = http.client.HTTPConnection(host, http_port, timeout=10)
        results["keepalive"][0] = n
        time.sleep(0.01)

def fresh():
    n = 0
    while time.monotonic() < deadline and n < MAX:
        n += 1
        try:
            conn = http.client.HTTPConnection(host, http_port, timeout=10)
            conn.request("GET", "/rotate/fresh/%d" % n, headers={"Connection": "close"})
            r = conn.getresponse()
            r.read()
            conn.close()
            if r.status != 200:
                results["fresh"][1].append("%d: status %d" % (n, r.status))
        except Exception as e:
            results["fresh"][1].append("%d: %r" % (n, e))
        results["fresh"][0] = n
        time.sleep(0.05)

def echo():
    n = 0
    while time.monotonic() < deadline and n < MAX:
        n += 1
        payload = b"echo-%d\n" % n
        try:
            s = socket.create_connection((host, echo_port), timeout=10)
            s.sendall(payload)
            s.shutdown(socket.SHUT_WR)
            got = b""
            while True:
                d = s.recv(4096)
                if not d:
                    break
                got += d
            s.close()
            if got != payload:
                results["echo"][1].append("%d: got %r" % (n, got))
        except Exception as e:
            results["echo"][1].append("%d: %r" % (n, e))
        results["echo"][0] = n
        time.sleep(0.1)

threads = [threading.Thread(target=f) for f in (keepalive, fresh, echo)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print(json.dumps({k: {"sent": v[0], "failed": v[1][:20], "failures": len(v[1])} for k, v in results.items()}))
'''


def _not_after(proxy):
    text = proxy.config()["identity"]["notAfter"]
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def _presented_not_after(mesh, certs):
    """A new mesh TLS connection (weft/1+tcp) from the client pod to the server's sidecar,
    with a certificate of this mesh: the notAfter of the certificate the server presents."""
    pfx = list(mesh.prefix("client"))
    chain = os.path.join(certs, "cert.pem")
    argv = pfx + ["setpriv", "--reuid=2102", "--regid=2102", "--clear-groups",
                  "openssl", "s_client", "-connect", "%s:%d" % (SERVER.ip, TCP_PORT), "-alpn", "weft/1+tcp",
                  "-tls1_3", "-cert", chain, "-cert_chain", chain, "-key", os.path.join(certs, "key.pem"),
                  "-CAfile", os.path.join(certs, "bundle.crt")]
    p = subprocess.run(argv, input=b"", capture_output=True, timeout=20)
    text = p.stdout.decode(errors="replace")
    begin = text.find("-----BEGIN CERTIFICATE-----")
    end = text.find("-----END CERTIFICATE-----")
    assert begin >= 0 and end > begin, "no server certificate from s_client:\n%s\n%s" % (
        text[-1500:], p.stderr.decode(errors="replace")[-800:])
    pem = text[begin:end + len("-----END CERTIFICATE-----")] + "\n"
    dates = subprocess.run(["openssl", "x509", "-noout", "-enddate"], input=pem.encode(), capture_output=True,
                           timeout=10).stdout.decode().strip()
    return ssl.cert_time_to_seconds(dates.split("=", 1)[1])


def test_renewals_under_steady_load_lose_nothing(mesh):
    mesh.apply()
    certs_dir = tempfile.mkdtemp(prefix="weft-rotation-")
    os.chmod(certs_dir, 0o755)
    try:
        certs = os.path.join(certs_dir, "id")
        issue_identity(mesh.env.ca, certs)

        seen = {"client": {_not_after(mesh.proxies["client"])}, "server": {_not_after(mesh.proxies["server"])}}
        argv = list(mesh.prefix("client")) + [sys.executable, "-c", LOAD, WEB.cluster_ip, "80", str(TCP_PORT),
                                               str(LOAD_SECONDS)]
        load = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        checked_fresh = False
        started = time.monotonic()
        while load.poll() is None and time.monotonic() - started < LOAD_SECONDS + 60:
            for name in seen:
                seen[name].add(_not_after(mesh.proxies[name]))
            if not checked_fresh and len(seen["server"]) >= 2:
                # Renewed: a new connection gets the new certificate at once.
                current = _not_after(mesh.proxies["server"])
                presented = _presented_not_after(mesh, certs)
                assert abs(presented - current) < 2, \
                    "after a renewal a new connection got a certificate valid until %s, the current one %s" % (
                        presented, current)
                checked_fresh = True
            time.sleep(1)
        out, err = load.communicate(timeout=60)
        summary = json.loads(out.decode())
        for kind, result in summary.items():
            assert result["failures"] == 0, "%s: %d of %d failed across renewals: %s\n%s" % (
                kind, result["failures"], result["sent"], result["failed"], err.decode()[-800:])
        assert summary["keepalive"]["sent"] > 2000 and summary["fresh"]["sent"] > 500 \
            and summary["echo"]["sent"] > 300, summary
        for name, values in seen.items():
            assert len(values) >= 3, "%s's sidecar renewed %d times in %d s, want >= 2" % (
                name, len(values) - 1, LOAD_SECONDS)
        assert checked_fresh, "the server never renewed during the load"
    finally:
        shutil.rmtree(certs_dir, ignore_errors=True)
