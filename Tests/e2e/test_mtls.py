"""Mesh TLS between sidecars (issue 11, the HTTP/1 part), end to end.

Topology (mesh_fixtures.Mesh with pods of its own; module fixture `mtls_mesh`):
- pod `client` (demo, sa client) with its sidecar, as in mesh_fixtures;
- pod `server` (demo, sa web) running the backend server on :8080 *and* a sidecar (its
  `weft-proxy init` captures inbound traffic to :15006), listed in the config with a
  container named `weft-proxy`: a meshed Pod, so its endpoint is reached over mesh TLS;
- pod `plain` (demo, sa plain) running the backend server without a sidecar and without
  that container: reached in plaintext.
Services: web 10.98.0.10 -> server, plain 10.98.0.20 -> plain.

What is checked: a request through the ClusterIP of a meshed Service travels as TLS
records on the server pod's wire (tcpdump on its interface), none of its request line,
headers or body in clear, and the app answers; the server's sidecar knew the caller;
opaque TCP (the echo, on the opaque port 6379) likewise, offering weft/1+tcp, half-close included;
plaintext to an unmeshed pod stays plaintext; `openssl s_client` offering the mesh ALPN
reaches the inbound side only with a certificate of this mesh (`weftctl ca issue`), and is
refused without one or with one of another CA, counted as tls_handshake; a client offering
weft/1+h2 (Python's ssl and h2) gets HTTP/2 relayed to the app.
"""

import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from control_fixtures import ca_template, eventually, metric, weftctl  # noqa: E402,F401
from mesh_fixtures import (  # noqa: E402
    APP_PORT, BACKEND_SERVER, H2C_PORT, Mesh, PodSpec, ServiceSpec, mesh_config_yaml, meshed_pod_yaml, pod_yaml, run_mesh,
    service_yaml, watch_mesh_test,
)

NS_PREFIX = "wt-"
# The backends' TCP echo listens here: an opaque port (MeshDefaults.opaquePorts), so neither
# sidecar detects a protocol; the server's still finds the mesh TLS ClientHello.
TCP_PORT = 6379
SUBNET = "10.233.0"
NODE_IP = SUBNET + ".254"


def _pod(name, host, app, sa=None):
    return PodSpec(name, "demo", host, app, sa=sa, subnet=SUBNET, ns_prefix=NS_PREFIX)


CLIENT = _pod("client", 1, "client")
SERVER = _pod("server", 10, "web", sa="web")
PLAIN = _pod("plain", 20, "plain")
MESHED = {"client", "server"}
SERVICES = [
    ServiceSpec("web", "demo", "10.98.0.10", ["server"], ports=(("http", 80, APP_PORT), ("redis", TCP_PORT, TCP_PORT))),
    ServiceSpec("plain", "demo", "10.98.0.20", ["plain"]),
]
SECRET = "x-secret-token-5d1e"


def mtls_pod_yaml(p):
    """A Pod; a meshed one lists the sidecar container (what injection adds)."""
    return meshed_pod_yaml(p) if p.name in MESHED else pod_yaml(p)


class MTLSMesh(Mesh):
    ns_prefix = NS_PREFIX
    node_ip = NODE_IP
    pods = [CLIENT, SERVER, PLAIN]
    backends = [SERVER, PLAIN]
    clients = (CLIENT, SERVER)
    # MeshConfig mtls.http1Transport (None: the default), set by a test for its duration.
    http1_transport = None

    def backend_argv(self, p):
        return [sys.executable, "-c", BACKEND_SERVER, p.name, "%d,%d" % (APP_PORT, H2C_PORT), str(TCP_PORT)]

    def backend_ports(self, p):
        return (APP_PORT, H2C_PORT, TCP_PORT)

    def render(self, routes=(), services=None, outbound_policy="ALLOW_ANY", extra=""):
        docs = [mesh_config_yaml(outbound_policy, http1_transport=self.http1_transport)]
        docs += [mtls_pod_yaml(p) for p in self.pods]
        docs += [service_yaml(s, self.pods) for s in (services or SERVICES)]
        docs += [textwrap.dedent(r).strip("\n") + "\n" for r in routes if r and r.strip()]
        return "# written by Tests/e2e/test_mtls.py\n" + "---\n".join(docs)


@pytest.fixture(scope="module")
def mtls_mesh(ca_template):  # noqa: F811 - ca_template is the fixture
    yield from run_mesh(MTLSMesh(ca_template))


@pytest.fixture
def mesh(mtls_mesh, request):
    yield from watch_mesh_test(mtls_mesh, request)


def capture(mesh, pod, action, port=APP_PORT):
    """Runs `action()` while tcpdump records `pod`'s eth0 (TCP to or from `port`); returns
    (action's result, the captured bytes)."""
    if shutil.which("tcpdump") is None:
        pytest.fail("tcpdump not installed (apt: tcpdump); see Tests/e2e/REQUIREMENTS.md")
    out = tempfile.NamedTemporaryFile(suffix=".pcap", delete=False)
    out.close()
    proc = subprocess.Popen(list(mesh.prefix(pod)) + ["tcpdump", "-i", "eth0", "--immediate-mode", "-U", "-s", "0", "-w", out.name,
                                                      "tcp port %d" % port],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        time.sleep(1.0)  # tcpdump attaches
        result = action()
        time.sleep(0.5)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
    with open(out.name, "rb") as f:
        data = f.read()
    os.unlink(out.name)
    capture.log = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    return result, data


def inbound(mesh, pod, name, **labels):
    return metric(mesh.proxies[pod].metrics(), name, direction="inbound", **labels) or 0


def test_http1_between_meshed_pods_is_mesh_tls_on_the_wire(mesh):
    mesh.apply()
    tls0 = inbound(mesh, "server", "weft_connections_total", protocol="tls")

    def call():
        return mesh.curl({"url": "http://%s/private/%s" % (SERVICES[0].cluster_ip, SECRET), "method": "POST",
                          "headers": [("X-Secret", SECRET)], "data": "body-" + SECRET})[0]
    reply, wire = capture(mesh, "server", call)
    assert reply.status == 200 and reply.pod == "server", "through the ClusterIP of web: %s" % reply.short()
    assert reply.json["path"] == "/private/" + SECRET, reply.json
    assert len(wire) > 200, "tcpdump captured nothing on the server pod (%d bytes): %s" % (len(wire), capture.log)
    assert SECRET.encode() not in wire, "the request line, a header or the body crossed the wire in clear"
    assert b"\x16\x03" in wire and b"\x17\x03\x03" in wire, "no TLS handshake or application data records"
    assert b"weft/1+http1.1" in wire, "the ClientHello offers the mesh ALPN"

    def counted():
        grew = inbound(mesh, "server", "weft_connections_total", protocol="tls") - tls0
        assert grew >= 1, "the server's sidecar counted %s inbound TLS connections" % grew
    eventually(counted, timeout=5, what="inbound mesh TLS counted")


def test_http1_multiplexed_over_http2_between_sidecars(mesh):
    """MeshConfig `mtls.http1Transport: HTTP2` (Linkerd's way): HTTP/1 requests from the
    client pod, concurrent ones included, share ONE mesh TLS connection offering
    weft/1+http1.1+h2, a stream each; the server's sidecar hands each to the app as
    HTTP/1.1 with its fields and its body (sized, chunked, and larger than a stream's
    flow-control window); nothing crosses in clear; a DENY policy still answers 403 with
    its explanation, per stream."""
    mesh.http1_transport = "HTTP2"
    try:
        mesh.apply()
        tls0 = inbound(mesh, "server", "weft_connections_total", protocol="tls")
        url = "http://%s" % SERVICES[0].cluster_ip
        big = "b" * 100_000  # > 65,535: the stream waits for WINDOW_UPDATEs

        def call():
            return mesh.curl(
                {"url": url + "/private/" + SECRET, "method": "POST", "headers": [("X-Secret", SECRET)],
                 "data": "body-" + SECRET},
                {"url": url + "/chunked", "method": "PUT", "headers": [("Transfer-Encoding", "chunked")],
                 "data": "chunked-" + SECRET},
                {"url": url + "/big", "method": "POST", "data": big},
                url + "/counts")
        replies, wire = capture(mesh, "server", call)
        assert [r.status for r in replies] == [200] * 4, [r.short() for r in replies]
        assert all(r.pod == "server" for r in replies), [r.short() for r in replies]
        assert replies[0].json["method"] == "POST" and replies[0].json["path"] == "/private/" + SECRET
        assert replies[0].json["headers"].get("x-secret") == SECRET, replies[0].json["headers"]
        last = replies[3].json["last"]
        assert last["/private/" + SECRET]["body"] == "body-" + SECRET, last
        assert last["/chunked"]["body"] == "chunked-" + SECRET, last
        assert last["/big"]["length"] == len(big), last["/big"]
        assert SECRET.encode() not in wire, "a request line, header or body crossed the wire in clear"
        assert b"weft/1+http1.1+h2" in wire, "the ClientHello offers HTTP/1 over HTTP/2"

        # A 30 KB head (cookies) fits the HTTP/2 header list (and one HEADERS frame).
        cookie = "c=" + "x" * 30_000
        reply = mesh.curl({"url": url + "/cookies", "headers": [("Cookie", cookie)]})[0]
        assert reply.status == 200 and reply.json["headers"].get("cookie") == cookie, reply.short()

        # Six at once, each 400 ms at the app: served side by side on streams of the one connection.
        script = ("for i in 1 2 3 4 5 6; do curl -s -o /dev/null -w '%%{http_code}\\n' --max-time 10 "
                  "%s/delay/400 & done; wait" % url)
        started = time.monotonic()
        out = subprocess.run(list(mesh.prefix("client")) + ["sh", "-c", script], capture_output=True, timeout=30)
        elapsed = time.monotonic() - started
        assert out.stdout.decode().split() == ["200"] * 6, out
        assert elapsed < 2.0, "six 400 ms requests took %.2f s: not concurrent" % elapsed

        # Under load: 4,000 requests on 8 keep-alive client connections, all answered.
        out = subprocess.run(list(mesh.prefix("client")) + ["h2load", "--h1", "-n", "4000", "-c", "8", "-m", "1",
                                                            url + "/"], capture_output=True, timeout=60)
        text = out.stdout.decode()
        assert "4000 succeeded" in text, text[-1500:]

        def one_connection():
            grew = inbound(mesh, "server", "weft_connections_total", protocol="tls") - tls0
            assert grew == 1, "the server's sidecar counted %s new mesh TLS connections for 4,011 HTTP/1.1 requests" % grew
        eventually(one_connection, timeout=5, what="one mesh TLS connection")

        # An HTTP/1.0 client takes the pooled HTTP/1.1 path (no chunked framing to trip on).
        out = subprocess.run(list(mesh.prefix("client")) + ["curl", "-s", "--http1.0", "-o", "/dev/null", "-w",
                                                            "%{http_code}", url + "/old"],
                             capture_output=True, timeout=15)
        assert out.stdout.decode() == "200", out

        mesh.apply(routes=[DENY_PRIVATE])
        reply = mesh.curl(url + "/private/x")[0]
        assert reply.status == 403, reply.short()
        assert "demo/deny-private" in reply.headers.get("weft-error", ""), reply.headers
    finally:
        mesh.http1_transport = None
        mesh.apply()


DENY_PRIVATE = """
apiVersion: weft.dev/v1alpha1
kind: AuthorizationPolicy
metadata: {name: deny-private, namespace: demo}
spec:
  selector: {matchLabels: {app: web}}
  action: DENY
  rules:
  - to: [{paths: ["/private/*"]}]
"""


def test_http2_between_meshed_pods_is_mesh_tls_on_the_wire(mesh):
    """An h2c client's request to the meshed Service goes out over mesh TLS offering
    weft/1+h2 (one HTTP/2 connection per endpoint), is terminated by the server's sidecar
    and relayed to the app; nothing of it is in clear on the server pod's wire."""
    mesh.apply()

    def call():
        return mesh.curl({"url": "http://%s/h2/%s" % (SERVICES[0].cluster_ip, SECRET),
                          "headers": [("X-Secret", SECRET)]}, http2=True)[0]
    reply, wire = capture(mesh, "server", call)
    assert reply.status == 200 and reply.pod == "server", "h2c through the ClusterIP of web: %s" % reply.short()
    assert reply.json["path"] == "/h2/" + SECRET, reply.json
    assert len(wire) > 200, "tcpdump captured nothing on the server pod (%d bytes): %s" % (len(wire), capture.log)
    assert SECRET.encode() not in wire, "the HTTP/2 request crossed the wire in clear"
    assert b"PRI * HTTP/2.0" not in wire, "the h2c preface crossed the wire in clear"
    assert b"weft/1+h2" in wire, "the ClientHello offers the mesh ALPN for HTTP/2"


TCP_CLIENT = r"""
import socket, sys, time
host, port, payload = sys.argv[1], int(sys.argv[2]), sys.argv[3].encode()
s = socket.create_connection((host, port), timeout=10)
s.sendall(payload)
s.shutdown(socket.SHUT_WR)  # a half-close travels to the app through both sidecars
got = b""
started = time.monotonic()
while True:
    data = s.recv(65536)
    if not data:
        break
    got += data
print("echoed %r after %.2f s" % (got.decode(errors="replace"), time.monotonic() - started), flush=True)
"""


def test_opaque_tcp_between_meshed_pods_is_mesh_tls_on_the_wire(mesh):
    """TCP to a meshed Service port goes out as one mesh TLS connection offering
    weft/1+tcp, the server's sidecar splices it to the app, and the client's half-close
    reaches the app (the echo answers, then both ends close)."""
    mesh.apply()
    payload = "tcp-" + SECRET

    def call():
        argv = list(mesh.prefix("client")) + [sys.executable, "-c", TCP_CLIENT, SERVICES[0].cluster_ip,
                                               str(TCP_PORT), payload]
        return subprocess.run(argv, capture_output=True, timeout=30)
    p, wire = capture(mesh, "server", call, port=TCP_PORT)
    text = p.stdout.decode(errors="replace")
    assert p.returncode == 0 and "echoed %r" % payload in text, "TCP through the ClusterIP: %s %s" % (
        text, p.stderr.decode(errors="replace")[-800:])
    assert float(text.split(" after ")[1].split(" s")[0]) < 3.0, "the half-close was not passed on: %s" % text
    assert len(wire) > 200, "tcpdump captured nothing on the server pod (%d bytes): %s" % (len(wire), capture.log)
    assert SECRET.encode() not in wire, "opaque TCP crossed the wire in clear"
    assert b"weft/1+tcp" in wire, "the ClientHello offers the mesh ALPN for opaque TCP"
    assert b"\x17\x03\x03" in wire, "no TLS application data records"


def test_a_meshed_pods_own_address_is_mesh_tls_too(mesh):
    """A request to the server Pod's own IP (as to a headless Service's member), not through
    a Service: the control plane's workload index names the Pod's identity, so it travels
    over mesh TLS as well (the sidecar's own ports stay plaintext: ConfigApplierTests)."""
    mesh.apply()

    def call():
        return mesh.curl({"url": "http://%s:%d/direct/%s" % (SERVER.ip, APP_PORT, SECRET),
                          "headers": [("X-Secret", SECRET)]})[0]
    reply, wire = capture(mesh, "server", call)
    assert reply.status == 200 and reply.pod == "server", "to the Pod's IP: %s" % reply.short()
    assert len(wire) > 200, "tcpdump captured nothing on the server pod (%d bytes): %s" % (len(wire), capture.log)
    assert SECRET.encode() not in wire, "a request to a meshed Pod's own address crossed the wire in clear"
    # (The connection may be one the pool opened for the Service before: same endpoint, same identity.)
    assert b"\x17\x03\x03" in wire, "no TLS application data records"


def test_plaintext_to_an_unmeshed_pod_stays_plaintext(mesh):
    mesh.apply()

    def call():
        return mesh.curl({"url": "http://%s/open/%s" % (SERVICES[1].cluster_ip, SECRET)})[0]
    reply, wire = capture(mesh, "plain", call)
    assert reply.status == 200 and reply.pod == "plain", reply.short()
    assert ("/open/" + SECRET).encode() in wire, "a pod without a sidecar is reached in plaintext"


def issue_identity(ca, out, service_account="client"):
    """`weftctl ca issue` for demo/<service_account> into `out` (cert.pem: leaf and
    intermediate; key.pem; bundle.crt), readable by the proxy's UID."""
    issued = weftctl("ca", "issue", "--ca", ca, "--namespace", "demo", "--service-account", service_account,
                     "--out", out)
    assert issued.returncode == 0, issued.stderr.decode()
    for name in os.listdir(out):
        os.chmod(os.path.join(out, name), 0o644)
    return out


def _openssl(mesh, args, alpn="weft/1+http1.1"):
    argv = list(mesh.prefix("client")) + ["openssl", "s_client", "-connect", "%s:%d" % (SERVER.ip, APP_PORT),
                                          "-alpn", alpn, "-tls1_3", "-quiet", "-ign_eof"] + list(args)
    # The client pod's own sidecar would capture it: run as the proxy's UID, which is exempt.
    argv = argv[:len(mesh.prefix("client"))] + ["setpriv", "--reuid=2102", "--regid=2102", "--clear-groups"] + \
        argv[len(mesh.prefix("client")):]
    # -ign_eof: keep reading after stdin ends (the request is all of it) until the server
    # closes, as a client waiting for its answer does.
    request = b"GET /via-openssl HTTP/1.1\r\nHost: server\r\nConnection: close\r\n\r\n"
    p = subprocess.run(argv, input=request, capture_output=True, timeout=20)
    return p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")


def test_inbound_mesh_tls_needs_a_certificate_of_this_mesh(mesh, ca_template):  # noqa: F811
    mesh.apply()
    refused0 = inbound(mesh, "server", "weft_errors_total", error="tls_handshake")
    out, err = _openssl(mesh, [])
    assert "HTTP/1.1 200" not in out, "no client certificate, yet answered:\n%s" % out

    certs = tempfile.mkdtemp(prefix="weft-mtls-certs-")
    os.chmod(certs, 0o755)
    try:
        good = issue_identity(mesh.env.ca, os.path.join(certs, "good"))
        # cert.pem is the leaf and its intermediate; -cert sends only the first, -cert_chain the rest.
        chain = os.path.join(good, "cert.pem")
        out, err = _openssl(mesh, ["-cert", chain, "-cert_chain", chain, "-key", os.path.join(good, "key.pem"),
                                   "-CAfile", os.path.join(good, "bundle.crt")])
        assert "HTTP/1.1 200" in out and '"pod": "server"' in out, \
            "a certificate of this mesh, offering the mesh ALPN, reaches the app:\nstdout %s\nstderr %s" % (
                out[-800:], err[-800:])

        other_ca = os.path.join(certs, "other-ca")
        made = weftctl("ca", "init", "--out", other_ca)
        assert made.returncode == 0, made.stderr.decode()
        bad = os.path.join(certs, "bad")
        issue_identity(other_ca, bad)
        out, err = _openssl(mesh, ["-cert", os.path.join(bad, "cert.pem"), "-cert_chain", os.path.join(bad, "cert.pem"),
                                   "-key", os.path.join(bad, "key.pem")])
        assert "HTTP/1.1 200" not in out, "a certificate of another CA was accepted:\n%s" % out
    finally:
        shutil.rmtree(certs, ignore_errors=True)

    def counted():
        grew = inbound(mesh, "server", "weft_errors_total", error="tls_handshake") - refused0
        assert grew >= 2, "weft_errors_total{direction=inbound,error=tls_handshake} grew by %s, want >= 2" % grew
    eventually(counted, timeout=5, what="refused handshakes counted")


def _huge_chain(directory, intermediates=24, padding=6000):
    """A client certificate under `intermediates` CAs, each certificate carrying `padding`
    bytes of comment: a chain of over 100 KB (BoringSSL's default limit), to an unknown root."""
    def run_ssl(*args):
        subprocess.run(["openssl"] + list(args), check=True, capture_output=True, timeout=30)
    ext = os.path.join(directory, "ext.cnf")
    with open(ext, "w") as f:
        f.write("[ca]\nbasicConstraints=critical,CA:TRUE\nkeyUsage=keyCertSign\nnsComment=%s\n"
                "[leaf]\nbasicConstraints=CA:FALSE\nsubjectAltName=URI:spiffe://cluster.local/ns/demo/sa/client\n"
                "nsComment=%s\n" % ("x" * padding, "y" * padding))
    key = os.path.join(directory, "key.pem")
    run_ssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", key)
    prev = os.path.join(directory, "ca0.pem")
    run_ssl("req", "-x509", "-new", "-key", key, "-subj", "/CN=huge-root", "-days", "1", "-out", prev)
    chain = []
    for i in range(1, intermediates + 2):
        leaf = i == intermediates + 1
        csr, cert = os.path.join(directory, "c%d.csr" % i), os.path.join(directory, "ca%d.pem" % i)
        run_ssl("req", "-new", "-key", key, "-subj", "/CN=%s%d" % ("leaf" if leaf else "int", i), "-out", csr)
        run_ssl("x509", "-req", "-in", csr, "-CA", prev, "-CAkey", key, "-CAcreateserial", "-days", "1",
                "-extfile", ext, "-extensions", "leaf" if leaf else "ca", "-out", cert)
        chain.insert(0, cert)
        prev = cert
    bundle = os.path.join(directory, "chain.pem")
    with open(bundle, "w") as out:
        for cert in chain:
            out.write(open(cert).read())
    for name in os.listdir(directory):
        os.chmod(os.path.join(directory, name), 0o644)
    return chain[0], bundle, key


def test_a_huge_client_certificate_chain_closes_only_that_connection(mesh):
    """A ClientHello with the mesh ALPN, then a client chain of 25 certificates and over
    100 KB: refused (counted tls_handshake), and the sidecar keeps serving."""
    mesh.apply()
    refused0 = inbound(mesh, "server", "weft_errors_total", error="tls_handshake")
    certs = tempfile.mkdtemp(prefix="weft-mtls-huge-")
    os.chmod(certs, 0o755)
    try:
        leaf, chain, key = _huge_chain(certs)
        assert os.path.getsize(chain) > 100_000, os.path.getsize(chain)
        out, err = _openssl(mesh, ["-cert", leaf, "-cert_chain", chain, "-key", key])
        assert "HTTP/1.1 200" not in out, "a huge chain of an unknown root was accepted:\n%s" % out[-500:]
    finally:
        shutil.rmtree(certs, ignore_errors=True)
    reply = mesh.curl("http://%s/after-huge-chain" % SERVICES[0].cluster_ip)[0]
    assert reply.status == 200 and reply.pod == "server", "the mesh after a huge chain: %s" % reply.short()

    def counted():
        grew = inbound(mesh, "server", "weft_errors_total", error="tls_handshake") - refused0
        assert grew >= 1, "weft_errors_total{direction=inbound,error=tls_handshake} grew by %s" % grew
    eventually(counted, timeout=5, what="the huge chain counted")


def test_weftctl_check_names_a_proxy_whose_peers_fail_handshakes(mesh):
    """A caller without a certificate is refused by the server's sidecar; its next ping (within
    15 s) reports the failure, and `weftctl check` fails naming the proxy and the refusal,
    while the certificates check passes."""
    mesh.apply()
    _openssl(mesh, [])

    def reported():
        t = weftctl("check", "--control-plane", mesh.control.http, prefix=mesh.node_prefix)
        text = t.stdout.decode(errors="replace")
        assert t.returncode == 1, "check passed:\n%s" % text
        assert "proxies reported failed handshakes in the last 10 minutes" in text, text
        assert "demo/server: " in text and "inbound refused" in text and "refused a caller at" in text, text
        assert "✔ certificates: every proxy's is valid and renewed on time" in text, text
        return text
    eventually(reported, timeout=40, interval=1, what="the refused handshake reported by weftctl check")


H2_OVER_MESH_TLS = r'''
import socket, ssl, sys
import h2.config, h2.connection, h2.events
host, port, cert, key, bundle = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.minimum_version = ssl.TLSVersion.TLSv1_3
ctx.check_hostname = False
ctx.load_verify_locations(bundle)
ctx.load_cert_chain(cert, key)
ctx.set_alpn_protocols(["weft/1+h2"])
sock = ctx.wrap_socket(socket.create_connection((host, port), timeout=10))
print("alpn", sock.selected_alpn_protocol(), flush=True)
c = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
c.initiate_connection()
c.send_headers(1, [(":method", "GET"), (":path", "/over-mesh-tls-h2"), (":scheme", "https"),
                   (":authority", "server")], end_stream=True)
sock.sendall(c.data_to_send())
status, body = None, b""
while True:
    data = sock.recv(65536)
    if not data:
        break
    for ev in c.receive_data(data):
        if isinstance(ev, h2.events.ResponseReceived):
            status = dict(ev.headers).get(":status")
        elif isinstance(ev, h2.events.DataReceived):
            body += ev.data
            c.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
        elif isinstance(ev, h2.events.StreamEnded):
            print("status", status, body.decode(errors="replace"), flush=True)
            sys.exit(0)
    sock.sendall(c.data_to_send())
print("no response", status, flush=True)
sys.exit(1)
'''


def test_inbound_mesh_tls_carries_http2_to_the_app(mesh):
    """A client offering weft/1+h2 (Python's ssl and the h2 library), with a certificate of
    this mesh: the server's sidecar terminates mesh TLS and relays HTTP/2 to the app."""
    mesh.apply()
    certs = tempfile.mkdtemp(prefix="weft-mtls-h2-")
    os.chmod(certs, 0o755)
    try:
        out = os.path.join(certs, "id")
        issue_identity(mesh.env.ca, out)
        # From the pod without a sidecar: from the client pod, its sidecar would carry this
        # TLS inside its own mesh TLS to the server's app (the server is a meshed Pod).
        argv = list(mesh.prefix("plain")) + [sys.executable, "-c", H2_OVER_MESH_TLS, SERVER.ip, str(APP_PORT),
                                               os.path.join(out, "cert.pem"), os.path.join(out, "key.pem"),
                                               os.path.join(out, "bundle.crt")]
        p = subprocess.run(argv, capture_output=True, timeout=30)
        text = p.stdout.decode(errors="replace")
        assert p.returncode == 0, "h2 over mesh TLS:\n%s\n%s" % (text, p.stderr.decode(errors="replace")[-1500:])
        assert "alpn weft/1+h2" in text, text
        assert "status 200" in text and '"pod": "server"' in text and "/over-mesh-tls-h2" in text, text
    finally:
        shutil.rmtree(certs, ignore_errors=True)


BAD_MESH_TLS = r'''
import socket, ssl, sys, time
host, port, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3]
# A real ClientHello offering the mesh ALPN (Python's OpenSSL, in memory).
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
ctx.set_alpn_protocols(["weft/1+http1.1"])
incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
tls = ctx.wrap_bio(incoming, outgoing)
try:
    tls.do_handshake()
except ssl.SSLWantReadError:
    pass
hello = outgoing.read()
s = socket.create_connection((host, port), timeout=15)
s.sendall(hello)
if mode == "garbage":
    s.sendall(b"\x17\x03\x03\x00\x20" + b"\xab" * 32 + b"not tls at all " * 40)
started = time.monotonic()
try:
    while s.recv(65536):
        pass
    print("closed after %.1f s" % (time.monotonic() - started), flush=True)
except socket.timeout:
    print("still open after %.1f s" % (time.monotonic() - started), flush=True)
    sys.exit(1)
'''


@pytest.mark.parametrize("mode", ["half", "garbage"])
def test_a_half_or_broken_mesh_handshake_closes_only_that_connection(mesh, mode):
    """A ClientHello offering the mesh ALPN, then nothing (half) or garbage: the server's
    sidecar closes that connection (the half one at its request-head timeout, 3 s here),
    counts it as tls_handshake, and keeps serving the mesh."""
    mesh.apply()
    refused0 = inbound(mesh, "server", "weft_errors_total", error="tls_handshake")
    # From the pod without a sidecar (see test_inbound_mesh_tls_carries_http2_to_the_app).
    argv = list(mesh.prefix("plain")) + [sys.executable, "-c", BAD_MESH_TLS, SERVER.ip, str(APP_PORT), mode]
    p = subprocess.run(argv, capture_output=True, timeout=30)
    text = p.stdout.decode(errors="replace")
    assert p.returncode == 0 and "closed after" in text, "%s handshake: %s %s" % (
        mode, text, p.stderr.decode(errors="replace")[-800:])
    if mode == "half":
        after = float(text.split("closed after ")[1].split(" s")[0])
        assert 2.0 <= after <= 8.0, "a half handshake held its connection %.1f s (timeout 3 s)" % after
    reply = mesh.curl("http://%s/after-%s" % (SERVICES[0].cluster_ip, mode))[0]
    assert reply.status == 200 and reply.pod == "server", "the mesh after a %s handshake: %s" % (mode, reply.short())

    def counted():
        grew = inbound(mesh, "server", "weft_errors_total", error="tls_handshake") - refused0
        assert grew >= 1, "weft_errors_total{direction=inbound,error=tls_handshake} grew by %s" % grew
    eventually(counted, timeout=5, what="the broken handshake counted")
