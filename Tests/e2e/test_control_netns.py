"""A sidecar with the redirect rules, connected to weft-control, keeps serving traffic
while the control plane is killed, and reconnects (with its subscriptions) when it is back.

Self-contained like test_shutdown.py: one network namespace of its own with a veth pair
inside it (a non-loopback address, so the outbound capture applies), `weft-proxy init`,
a Python HTTP server, the proxy as UID 2102 and weft-control on 127.0.0.1 inside the same
namespace (loopback is never redirected, nor is anything UID 2102 sends).
"""

import os
import sys
import textwrap
import time

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from control_fixtures import (  # noqa: E402,F401 - fixtures are used by name
    CLIENT_ID, PROXY_BIN, ca_template, cenv, eventually, metric, out, run, stop_process, tail,
)

ADDR = "10.219.0.1"
APP_PORT = 8080
CLUSTER_IP = "10.96.0.10"  # demo/web in control-plane/config/services.yaml
PUSH_PORT, HTTP_PORT = 25012, 25014  # inside the namespace: no clash possible

SERVER = textwrap.dedent("""
    import http.server, sys
    class H(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        def do_GET(self):
            body = b"app ok\\n"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        def log_message(self, *a): pass
    http.server.ThreadingHTTPServer(("0.0.0.0", int(sys.argv[1])), H).serve_forever()
""")


def sh(*args, check=True):
    return run(list(args), check=check, timeout=30)


@pytest.fixture
def netns(cenv):
    if os.environ.get("WEFT_E2E_NO_PROXY") == "1":
        pytest.skip("no proxy (WEFT_E2E_NO_PROXY=1)")
    ns = "weft-ctl-%d" % os.getpid()
    sh("ip", "netns", "del", ns, check=False)
    sh("ip", "netns", "add", ns)
    try:
        sh("ip", "-n", ns, "link", "set", "lo", "up")
        sh("ip", "-n", ns, "link", "add", "d0", "type", "veth", "peer", "name", "d1")
        sh("ip", "-n", ns, "addr", "add", ADDR + "/24", "dev", "d0")
        sh("ip", "-n", ns, "link", "set", "d0", "up")
        sh("ip", "-n", ns, "link", "set", "d1", "up")
        sh("ip", "-n", ns, "route", "add", "10.96.0.0/16", "dev", "d0")  # Service ClusterIPs
        prefix = ("ip", "netns", "exec", ns)
        sh(*prefix, PROXY_BIN, "init")
        server = cenv.popen([sys.executable, "-c", SERVER, str(APP_PORT)], os.path.join(cenv.dir, "app.log"),
                            prefix=prefix)

        def listening():
            assert server.poll() is None, tail(os.path.join(cenv.dir, "app.log"))
            ss = sh(*prefix, "ss", "-Hltn", "sport = :%d" % APP_PORT)
            assert ss.stdout.strip(), "app not listening"
        eventually(listening, timeout=10, what="app server listening")
        yield ns, prefix
    finally:
        cenv.teardown()  # everything in the namespace, before it goes
        sh("ip", "netns", "del", ns, check=False)


def curl(prefix, url, timeout=8):
    p = run(list(prefix) + ["curl", "-s", "--noproxy", "*", "--max-time", str(timeout), "-w", "\n%{http_code}", url],
            timeout=timeout + 5, check=False)
    return p.stdout.decode(errors="replace")


def outbound_requests(proxy):
    return metric(proxy.metrics(), "weft_requests_total", direction="outbound") or 0


def test_control_plane_killed_and_restarted_while_serving(cenv, netns):
    ns, prefix = netns
    cache = os.path.join(cenv.dir, "cache-netns")
    os.makedirs(cache, mode=0o700)
    os.chown(cache, 2102, 2102)
    cp = cenv.start_control(push_port=PUSH_PORT, http_port=HTTP_PORT, prefix=prefix)
    px = cenv.start_proxy(PUSH_PORT, cache_dir=cache, name="netns",
                          prefix=prefix + ("setpriv", "--reuid=2102", "--regid=2102", "--clear-groups"),
                          ports=(15000, 15001, 15006))
    px.wait_ready(timeout=20)
    cp.wait_acked()

    def served():
        before = outbound_requests(px)
        text = curl(prefix, "http://%s:%d/" % (ADDR, APP_PORT))
        assert text.endswith("\n200") and "app ok" in text, text
        after = outbound_requests(px)
        assert after >= before + 1, "the proxy did not count the request (%s -> %s)" % (before, after)
    served()

    # Traffic to a Service ClusterIP subscribes the proxy to it: demo/web's endpoints arrive.
    curl(prefix, "http://%s/" % CLUSTER_IP, timeout=3)  # nothing answers there; the capture is what counts

    def subscribed():
        cfg = px.config()
        assert cfg["subscriptions"] == ["demo/web"], cfg["subscriptions"]
        eps = cfg["config"]["endpoints"].get("demo/web")
        assert eps and [e["address"] for e in eps["endpoints"]] == ["10.211.0.2"], cfg["config"]["endpoints"]
        assert eps["endpoints"][0]["identity"] == "spiffe://cluster.local/ns/demo/sa/web"
        return cfg
    cfg = eventually(subscribed, timeout=10, what="demo/web subscribed")
    status = cp.wait_acked()
    assert status["subscriptions"] == ["demo/web"], status

    # An endpoint added to demo/web's EndpointSlice reaches the proxy as a delta.
    deltas0 = metric(cp.metrics(), "weft_control_push_latency_seconds_count", kind="delta") or 0
    gen0 = cp.generation()
    text = cenv.read("services.yaml")
    anchor = "---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: web-0"
    cenv.write("services.yaml", text.replace(anchor, "- addresses:\n  - 10.211.0.3\n  conditions:\n"
                                             "    ready: true\n" + anchor, 1))

    def two_endpoints():
        c = px.config()
        assert [e["address"] for e in c["config"]["endpoints"]["demo/web"]["endpoints"]] == \
            ["10.211.0.2", "10.211.0.3"], c["config"]["endpoints"]
        return c
    cfg2 = eventually(two_endpoints, timeout=10, what="second endpoint pushed")
    assert cfg2["version"] == cfg["version"] + 1 and cfg2["generation"] == gen0 + 1, (cfg["version"], cfg2)
    cp.wait_acked(generation=gen0 + 1)
    assert metric(cp.metrics(), "weft_control_push_latency_seconds_count", kind="delta") == deltas0 + 1

    # The control plane dies: traffic, readiness and config stay.
    cp.kill()
    served()
    assert px.ready()[0] == 200
    time.sleep(1)
    after_kill = px.config()
    assert after_kill["connected"] is False, after_kill
    assert after_kill["config"] == cfg2["config"] and after_kill["identity"] == cfg2["identity"]
    served()

    # It comes back (same CA, same folder): the proxy reconnects with its subscription.
    cp2 = cenv.start_control(push_port=PUSH_PORT, http_port=HTTP_PORT, prefix=prefix)

    def reconnected():
        assert px.config()["connected"] is True
        mine = cp2.proxies()
        assert len(mine) == 1 and mine[0]["subscriptions"] == ["demo/web"], mine
    eventually(reconnected, timeout=40, interval=0.5, what="proxy reconnected")
    s = cp2.wait_acked()
    assert s["version"] == 1, "a new connection starts at version 1 with a full config: %s" % s
    c = cp2.check()
    assert c.returncode == 0 and "1 proxies connected, all acked" in out(c), out(c)
    final = px.config()
    assert [e["address"] for e in final["config"]["endpoints"]["demo/web"]["endpoints"]] == \
        ["10.211.0.2", "10.211.0.3"], final["config"]["endpoints"]
    served()
    px.alive()


def test_api_answers_only_loopback_unless_opened(cenv, netns):
    """`/api/v1/proxies` (every proxy's pod, identity, address) was readable from any pod.
    By default `/api/` answers only loopback (weftctl in the pod, kubectl port-forward);
    `/metrics` and the probes answer everyone; `--api-access any` opens the API."""
    ns, prefix = netns
    as_app = prefix + ("setpriv", "--reuid=2102", "--regid=2102", "--clear-groups")  # not captured
    cp = cenv.start_control(push_port=PUSH_PORT, http_port=HTTP_PORT, prefix=prefix,
                            extra=("--http-host", "0.0.0.0"))
    remote = "http://%s:%d" % (ADDR, HTTP_PORT)
    text = curl(as_app, remote + "/api/v1/proxies")
    assert text.endswith("\n403") and "port-forward" in text, text
    assert curl(as_app, remote + "/api/v1/status").endswith("\n403")
    assert curl(as_app, remote + "/metrics").endswith("\n200")
    assert curl(as_app, remote + "/ready").endswith("\n200")
    assert curl(as_app, "http://127.0.0.1:%d/api/v1/proxies" % HTTP_PORT).endswith("\n200")
    cp.kill()
    cenv.start_control(push_port=PUSH_PORT + 1, http_port=HTTP_PORT + 1, prefix=prefix,
                       extra=("--http-host", "0.0.0.0", "--api-access", "any"))
    assert curl(as_app, "http://%s:%d/api/v1/proxies" % (ADDR, HTTP_PORT + 1)).endswith("\n200")


def test_idle_subscription_is_dropped_and_comes_back_on_use(cenv, netns):
    """A destination the proxy has not sent traffic to for --subscription-idle-timeout is
    unsubscribed: the control plane stops tracking it for this proxy and removes its routes
    and endpoints from the proxy's config; the next request subscribes again."""
    ns, prefix = netns
    cp = cenv.start_control(push_port=PUSH_PORT, http_port=HTTP_PORT, prefix=prefix)
    px = cenv.start_proxy(PUSH_PORT, name="idle",
                          prefix=prefix + ("setpriv", "--reuid=2102", "--regid=2102", "--clear-groups"),
                          ports=(15000, 15001, 15006), extra=("--subscription-idle-timeout", "2s"))
    px.wait_ready(timeout=20)
    cp.wait_acked()
    curl(prefix, "http://%s/" % CLUSTER_IP, timeout=3)

    def subscribed():
        cfg = px.config()
        assert cfg["subscriptions"] == ["demo/web"] and "demo/web" in cfg["config"]["endpoints"], cfg
    eventually(subscribed, timeout=10, what="demo/web subscribed")

    def dropped():
        cfg = px.config()
        assert cfg["subscriptions"] == [], cfg["subscriptions"]
        assert "demo/web" not in cfg["config"]["endpoints"], sorted(cfg["config"]["endpoints"])
        mine = [p for p in cp.proxies() if p["pod"] == "client-0"]
        assert mine and mine[0]["subscriptions"] == [], mine
    # Idle after 2 s, checked every second (a tenth of the timeout, at least 1 s).
    eventually(dropped, timeout=10, what="demo/web unsubscribed after 2 s without traffic")
    curl(prefix, "http://%s/" % CLUSTER_IP, timeout=3)
    eventually(subscribed, timeout=10, what="demo/web subscribed again by the next request")
    px.alive()
