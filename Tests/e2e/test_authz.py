"""AuthorizationPolicy and STRICT mTLS, enforced by the server's sidecar (issue 11), end to end.

Topology (mesh_fixtures.Mesh with pods of its own; module fixture `authz_mesh`):
- pods `client` (demo, sa client) and `intruder` (demo, sa intruder), each with a sidecar:
  meshed callers with identities of their own;
- pod `server` (demo, sa web, label app=web) running the backend on :8080 (HTTP/1.1 and
  h2c) and a TCP echo on :7000, *and* a sidecar; its Pod declares a readiness probe
  (httpGet /healthz on 8080) and the sidecar container: a meshed Pod;
- pod `plain` (demo, sa plain): no sidecar, a caller without mesh TLS.
Service web 10.98.0.10:80 -> server:8080.

What is checked: a policy selecting the server gives 200 to the allowed identity, 403 with
the explanation (body and `weft-error`) to another meshed identity, over HTTP/1.1 and
HTTP/2, and to an unmeshed caller; requests denied never reach the app (its own counts);
DENY wins over ALLOW; a TCP connection no rule allows is closed; decisions are counted by
policy; STRICT refuses plaintext (HTTP 403 naming the reason, TCP closed) and still passes
the Pod's declared probe in plaintext.
"""

import json
import os
import socket
import subprocess
import sys
import textwrap

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from control_fixtures import ca_template, eventually, metric, weftctl  # noqa: E402,F401
from mesh_fixtures import (  # noqa: E402
    APP_PORT, ECHO_PORT, Mesh, PodSpec, ServiceSpec, mesh_config_yaml, meshed_pod_yaml, pod_yaml, run_mesh,
    service_yaml, watch_mesh_test,
)

NS_PREFIX = "wz-"
SUBNET = "10.235.0"
NODE_IP = SUBNET + ".254"


def _pod(name, host, app, sa=None):
    return PodSpec(name, "demo", host, app, sa=sa, subnet=SUBNET, ns_prefix=NS_PREFIX)


CLIENT = _pod("client", 1, "client")
INTRUDER = _pod("intruder", 2, "intruder")
SERVER = _pod("server", 10, "web", sa="web")
PLAIN = _pod("plain", 20, "plain")
MESHED = {"client", "intruder", "server"}
WEB = ServiceSpec("web", "demo", "10.98.0.10", ["server"],
                  ports=(("http", 80, APP_PORT), ("echo", ECHO_PORT, ECHO_PORT)))
CLIENT_ID = "spiffe://cluster.local/ns/demo/sa/client"
INTRUDER_ID = "spiffe://cluster.local/ns/demo/sa/intruder"

ALLOW_CLIENT = """
apiVersion: weft.dev/v1alpha1
kind: AuthorizationPolicy
metadata: {name: web-allow-client, namespace: demo}
spec:
  selector: {matchLabels: {app: web}}
  rules:
  - from: [{identities: [%s]}]
    to: [{methods: [GET], paths: [/api/*]}]
""" % CLIENT_ID

ALLOW_ALL = """
apiVersion: weft.dev/v1alpha1
kind: AuthorizationPolicy
metadata: {name: web-allow-all, namespace: demo}
spec:
  selector: {matchLabels: {app: web}}
  rules: [{}]
"""

DENY_INTRUDER = """
apiVersion: weft.dev/v1alpha1
kind: AuthorizationPolicy
metadata: {name: web-deny-intruder, namespace: demo}
spec:
  selector: {matchLabels: {app: web}}
  action: DENY
  rules:
  - from: [{identities: [%s]}]
""" % INTRUDER_ID

# Only mesh peers, on the echo port: a plaintext TCP caller matches no rule.
ALLOW_MESH_TCP = """
apiVersion: weft.dev/v1alpha1
kind: AuthorizationPolicy
metadata: {name: echo-mesh-only, namespace: demo}
spec:
  selector: {matchLabels: {app: web}}
  rules:
  - from: [{identities: ["*"]}]
"""


def authz_pod_yaml(p):
    """A Pod; a meshed one lists the sidecar container; the server declares a probe."""
    if p.name not in MESHED:
        return pod_yaml(p)
    if p.name == "server":
        return meshed_pod_yaml(p, app="{name: app, readinessProbe: {httpGet: {path: /healthz, port: http}}, ports: [{name: http, containerPort: %d}]}" % APP_PORT)
    return meshed_pod_yaml(p)


class AuthzMesh(Mesh):
    ns_prefix = NS_PREFIX
    node_ip = NODE_IP
    pods = [CLIENT, INTRUDER, SERVER, PLAIN]
    backends = [SERVER]
    clients = (CLIENT, INTRUDER, SERVER)
    mtls_mode = "PERMISSIVE"

    def render(self, routes=(), services=None, outbound_policy="ALLOW_ANY", extra=""):
        docs = [mesh_config_yaml(outbound_policy).replace("mode: PERMISSIVE", "mode: " + self.mtls_mode)]
        docs += [authz_pod_yaml(p) for p in self.pods]
        docs += [service_yaml(WEB, self.pods)]
        docs += [textwrap.dedent(r).strip("\n") + "\n" for r in routes if r and r.strip()]
        return "# written by Tests/e2e/test_authz.py\n" + "---\n".join(docs)


@pytest.fixture(scope="module")
def authz_mesh(ca_template):  # noqa: F811 - ca_template is the fixture
    yield from run_mesh(AuthzMesh(ca_template))


@pytest.fixture
def mesh(authz_mesh, request):
    authz_mesh.mtls_mode = "PERMISSIVE"
    yield from watch_mesh_test(authz_mesh, request)


class Answer:
    def __init__(self, status, headers, body):
        self.status, self.headers, self.body = status, headers, body

    def __repr__(self):
        return "<%s %s %r>" % (self.status, self.headers.get("weft-error", ""), self.body[:300])


def call(mesh, pod, url, http2=False, method="GET"):
    """curl from `pod`'s namespace (captured by its sidecar, if it has one)."""
    argv = list(mesh.prefix(pod)) + ["curl", "--noproxy", "*", "-s", "-S", "-i", "--max-time", "10",
                                     "--http2-prior-knowledge" if http2 else "--http1.1", "-X", method, url]
    p = subprocess.run(argv, capture_output=True, timeout=30)
    text = p.stdout.decode(errors="replace")
    assert p.returncode == 0, "curl %s from %s: exit %d %s" % (url, pod, p.returncode, p.stderr.decode()[-500:])
    head, _, body = text.replace("\r\n", "\n").partition("\n\n")
    lines = head.split("\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    return Answer(status, headers, body)


def app_counts(mesh):
    """The server app's own request counts by target, read from inside its pod (not captured)."""
    p = subprocess.run(list(mesh.prefix("server")) + ["curl", "-s", "http://127.0.0.1:%d/counts" % APP_PORT],
                       capture_output=True, timeout=15)
    return json.loads(p.stdout)["counts"]


def server_metric(mesh, name, **labels):
    return metric(mesh.proxies["server"].metrics(), name, **labels) or 0


def test_policy_allows_the_client_and_explains_every_denial(mesh):
    mesh.apply([ALLOW_CLIENT])
    web = "http://%s" % WEB.cluster_ip
    ok = call(mesh, "client", web + "/api/ok")
    assert ok.status == 200 and ok.headers.get("x-pod") == "server", ok

    denied = call(mesh, "intruder", web + "/api/by-intruder")
    assert denied.status == 403, denied
    want = "pod selected by demo/web-allow-client; no rule allows %s to GET /api/by-intruder on port %d" % (
        INTRUDER_ID, APP_PORT)
    assert want in denied.body, denied.body
    assert "rules[0] allows only %s" % CLIENT_ID in denied.body, "the explanation says who is allowed: %s" % denied.body
    assert denied.headers.get("weft-error", "").startswith("authz-denied; " + want), denied.headers

    h2 = call(mesh, "intruder", web + "/api/by-intruder-h2", http2=True)
    assert h2.status == 403 and "no rule allows %s" % INTRUDER_ID in h2.body, "HTTP/2: %r" % h2
    assert h2.headers.get("weft-error", "").startswith("authz-denied; "), h2.headers

    wrong_method = call(mesh, "client", web + "/api/by-client-post", method="POST")
    assert wrong_method.status == 403, wrong_method
    assert "matches the caller but allows only GET /api/*" in wrong_method.body, wrong_method.body

    plain = call(mesh, "plain", "http://%s:%d/api/by-plain" % (SERVER.ip, APP_PORT))
    assert plain.status == 403, plain
    assert "an unauthenticated caller (%s, no mesh TLS)" % PLAIN.ip in plain.body, plain.body

    counts = app_counts(mesh)
    assert counts.get("/api/ok") == 1, counts
    for token in ("/api/by-intruder", "/api/by-intruder-h2", "/api/by-client-post", "/api/by-plain"):
        assert token not in counts, "a denied request reached the app: %s in %s" % (token, counts)

    def counted():
        allowed = server_metric(mesh, "weft_authz_decisions_total", policy="demo/web-allow-client",
                                decision="allow", reason="rule")
        refused = server_metric(mesh, "weft_authz_decisions_total", policy="demo/web-allow-client",
                                decision="deny", reason="no_rule")
        assert allowed >= 1 and refused >= 4, "allowed %s, denied %s" % (allowed, refused)
        assert server_metric(mesh, "weft_errors_total", direction="inbound", error="authz_denied") >= 4
    eventually(counted, timeout=5, what="decisions counted by policy")


def test_deny_wins_over_allow(mesh):
    mesh.apply([ALLOW_ALL, DENY_INTRUDER])
    web = "http://%s" % WEB.cluster_ip
    assert call(mesh, "client", web + "/x").status == 200
    denied = call(mesh, "intruder", web + "/admin")
    assert denied.status == 403, denied
    assert "denied by demo/web-deny-intruder rules[0] (DENY)" in denied.body, denied.body
    assert call(mesh, "plain", "http://%s:%d/y" % (SERVER.ip, APP_PORT)).status == 200, "ALLOW {} admits anyone"


def _echo(mesh, pod, payload=b"ping-weft\n", host=SERVER.ip):
    """Connects from `pod` to the echo port at `host`; returns what came back before close."""
    code = ("import socket,sys\n"
            "s=socket.create_connection((%r,%d),timeout=8)\n"
            "s.sendall(%r)\n"
            "got=b''\n"
            "try:\n"
            "    while len(got)<%d:\n"
            "        d=s.recv(100)\n"
            "        if not d: break\n"
            "        got+=d\n"
            "except (ConnectionResetError, socket.timeout) as e:\n"
            "    print('error', type(e).__name__)\n"
            "print('got', got)\n") % (host, ECHO_PORT, payload, len(payload))
    p = subprocess.run(list(mesh.prefix(pod)) + [sys.executable, "-c", code], capture_output=True, timeout=30)
    return p.stdout.decode(errors="replace") + p.stderr.decode(errors="replace")[-300:]


def test_a_tcp_connection_no_rule_allows_is_closed(mesh):
    mesh.apply([ALLOW_MESH_TCP])
    refused0 = server_metric(mesh, "weft_errors_total", direction="inbound", error="authz_denied")
    text = _echo(mesh, "plain")
    assert "got b''" in text, "a plaintext TCP caller no rule allows was served: %s" % text
    meshed = _echo(mesh, "client", host=WEB.cluster_ip)
    assert "got b'ping-weft\\n'" in meshed, "a mesh peer over weft/1+tcp is allowed: %s" % meshed

    def counted():
        assert server_metric(mesh, "weft_errors_total", direction="inbound", error="authz_denied") > refused0
    eventually(counted, timeout=5, what="the refused TCP connection counted")
    mesh.apply([])
    assert "got b'ping-weft\\n'" in _echo(mesh, "plain"), "without the policy the echo answers"


def test_strict_refuses_plaintext_but_passes_the_declared_probe(mesh):
    mesh.mtls_mode = "STRICT"
    mesh.apply([])
    base = "http://%s:%d" % (SERVER.ip, APP_PORT)
    refused = call(mesh, "plain", base + "/strict-plain")
    assert refused.status == 403, refused
    assert "mTLS is STRICT: an unauthenticated caller (%s, no mesh TLS) is refused" % PLAIN.ip in refused.body, \
        refused.body
    assert refused.headers.get("weft-error", "").startswith("mtls-required; "), refused.headers
    probe = call(mesh, "plain", base + "/healthz")
    assert probe.status == 200, "the declared readiness probe passes in plaintext: %r" % probe
    assert call(mesh, "client", "http://%s/strict-meshed" % WEB.cluster_ip).status == 200, "mesh TLS passes"
    assert "got b''" in _echo(mesh, "plain"), "plaintext TCP under STRICT is closed"
    counts = app_counts(mesh)
    assert "/strict-plain" not in counts and counts.get("/healthz", 0) >= 1, counts
    assert server_metric(mesh, "weft_authz_decisions_total", decision="allow", reason="probe") >= 1
    assert server_metric(mesh, "weft_authz_decisions_total", decision="deny", reason="mtls_strict") >= 2


def _authz(mesh, *args):
    t = weftctl("authz", "demo/server", *args, "--control-plane", mesh.control.http, prefix=mesh.node_prefix)
    return t.returncode, t.stdout.decode(errors="replace") + t.stderr.decode(errors="replace")


def test_weftctl_authz_answers_as_the_sidecar_decides(mesh):
    mesh.apply([ALLOW_CLIENT])
    code, text = _authz(mesh, "--from", "demo/client", "--port", APP_PORT, "--method", "GET", "--path", "/api/v")
    assert code == 0, text
    assert text.startswith("ALLOW  %s" % CLIENT_ID) and "allowed by demo/web-allow-client rules[0]" in text, text
    code, text = _authz(mesh, "--from", INTRUDER_ID, "--port", APP_PORT, "--method", "GET", "--path", "/api/v")
    assert code == 3, text
    assert "DENY" in text and "no rule allows %s to GET /api/v on port %d" % (INTRUDER_ID, APP_PORT) in text, text
    code, text = _authz(mesh, "--from", "demo/client", "--port", ECHO_PORT, "-o", "json")
    assert code == 3, text
    verdict = json.loads(text)
    assert verdict["allowed"] is False and verdict["reason"] == "no_rule" and verdict.get("method") is None, verdict
    # What the tool said is what the sidecar does.
    assert call(mesh, "intruder", "http://%s/api/v" % WEB.cluster_ip).status == 403
    code, text = _authz(mesh, "--from", "plaintext", "--port", APP_PORT, "--method", "GET", "--path", "/healthz")
    assert code == 0 and "kubelet probe" in text, text
    code, text = _authz(mesh, "--from", "nobody", "--port", APP_PORT)
    assert code != 0 and "--from" in text, text


KEEPALIVE = r"""
import http.client, sys, time
host, flag = sys.argv[1], sys.argv[2]
conn = http.client.HTTPConnection(host, 80, timeout=10)
conn.request("GET", "/before")
r = conn.getresponse(); r.read()
print("before", r.status, flush=True)
# The test applies a DENY policy, then creates the flag file.
for _ in range(300):
    try:
        open(flag).close()
        break
    except OSError:
        time.sleep(0.1)
conn.request("GET", "/after")
r = conn.getresponse()
body = r.read().decode(errors="replace")
print("after", r.status, r.getheader("weft-error") or "", body.strip(), flush=True)
"""


def test_a_policy_change_applies_to_the_next_request_of_an_open_connection(mesh, tmp_path):
    """A kept-alive HTTP/1 connection admitted with no policy: once a DENY policy for its
    caller arrives, its next request is denied (the gate re-admits on a new snapshot)."""
    mesh.apply([])
    flag = str(tmp_path / "applied")
    os.chmod(str(tmp_path), 0o755)
    proc = subprocess.Popen(list(mesh.prefix("intruder")) + [sys.executable, "-c", KEEPALIVE, WEB.cluster_ip, flag],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        first = proc.stdout.readline().decode()
        assert first.startswith("before 200"), first + proc.stderr.read().decode()[-500:]
        mesh.apply([DENY_INTRUDER])
        open(flag, "w").close()
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    text = out.decode()
    assert text.startswith("after 403 authz-denied; denied by demo/web-deny-intruder rules[0] (DENY)"), \
        text + err.decode()[-500:]
    assert "/after" not in app_counts(mesh), "the denied request reached the app"

