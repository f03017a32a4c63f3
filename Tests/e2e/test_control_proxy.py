"""weft-proxy against a real weft-control: hello, identity, config, acks, deltas, rejected
config, the on-disk cache, and what weftctl and the metrics say about it.

The proxy runs as a plain process on loopback (no iptables needed for any of this); see
control_fixtures.py for the processes and helpers.
"""

import json
import os
import socket
import stat
import subprocess
import sys
import time

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from control_fixtures import (  # noqa: E402,F401 - fixtures are used by name
    CLIENT_ID, CONTROL_BIN, PROXY_BIN, ca_template, cenv, control, eventually, free_port, http_get, metric, out, proxy,
    rss_kib, run, split_pem, stop_process, tail, weftctl,
)

NEW_SERVICE = """
---
apiVersion: v1
kind: Service
metadata:
  name: api
  namespace: demo
spec:
  type: ClusterIP
  clusterIP: 10.96.0.20
  clusterIPs:
  - 10.96.0.20
  selector:
    app: api
  ports:
  - name: http
    port: 8081
    targetPort: 9090
    protocol: TCP
"""

SECOND_ENDPOINT = """- addresses:
  - 10.211.0.3
  conditions:
    ready: true
    serving: true
    terminating: false
  nodeName: node-1
---
apiVersion: v1
kind: Pod
metadata:
  name: web-0"""


def add_second_endpoint(cenv):
    text = cenv.read("services.yaml")
    anchor = "---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: web-0"
    assert anchor in text, "control-plane/config/services.yaml changed shape; update the test"
    cenv.write("services.yaml", text.replace(anchor, SECOND_ENDPOINT, 1))


# ------------------------------------------------------------------ 1 ------

def test_ready_only_after_identity_and_config(cenv):
    """/ready is 503 with a reason while there is no control plane, 200 once it answered."""
    push, http = free_port(), free_port()
    px = cenv.start_proxy(push)

    def not_ready():
        px.alive()
        code, body = px.ready()
        assert code == 503 and "identity" in body, (code, body)
    eventually(not_ready, timeout=10, what="proxy /ready 503 before the control plane")
    time.sleep(1.0)
    code, body = px.ready()
    assert code == 503, "ready without a control plane: %s %r" % (code, body)
    cfg = px.config()
    assert cfg["controlPlane"] is True and cfg["connected"] is False and cfg.get("identity") is None, cfg

    cp = cenv.start_control(push_port=push, http_port=http)
    px.wait_ready(timeout=25)  # the proxy's backoff is at most a few seconds by now
    cp.wait_acked()


def test_wrong_token_stays_unready(cenv, control):
    bad = os.path.join(cenv.dir, "bad-token")
    with open(bad, "w") as f:
        f.write("not-the-token\n")
    before = control.metric("weft_control_protocol_errors_total", code="unauthenticated") or 0
    px = cenv.start_proxy(control.push_port, token_file=bad, name="badtoken")

    def refused():
        px.alive()
        now = control.metric("weft_control_protocol_errors_total", code="unauthenticated") or 0
        assert now > before, "no unauthenticated error counted (%s -> %s)" % (before, now)
    eventually(refused, timeout=15, what="hello with a wrong token refused")
    code, body = px.ready()
    assert code == 503 and "identity" in body, (code, body)
    assert control.proxies() == [], control.proxies()
    assert control.metric("weft_control_certificates_issued_total") in (None, 0.0)


def test_hello_identity_config_ack(cenv, control, proxy):
    cfg = proxy.config()
    assert cfg["connected"] is True, cfg
    assert cfg["identity"]["spiffeId"] == CLIENT_ID, cfg["identity"]
    assert cfg["version"] >= 1 and cfg["generation"] >= 1, cfg
    services = cfg["config"]["services"]
    assert "demo/web" in services, sorted(services)
    assert services["demo/web"]["clusterIPs"] == ["10.96.0.10"], services["demo/web"]
    assert cfg["config"]["mesh"]["trustDomain"] == "cluster.local"

    status = control.proxies()
    assert len(status) == 1, status
    s = status[0]
    assert (s["pod"], s["namespace"], s["serviceAccount"], s["identity"]) == ("client-0", "demo", "client", CLIENT_ID)
    assert s["ackedVersion"] == s["version"] == cfg["version"], (s, cfg["version"])

    c = control.check()
    text = out(c)
    assert c.returncode == 0, text
    assert "1 proxies connected, all acked generation %d" % control.generation() in text, text

    j = control.check("-o", "json")
    assert j.returncode == 0, out(j)
    report = json.loads(j.stdout)
    assert report["healthy"] is True and report["reachable"] is True, report
    assert report["status"]["proxies"]["connected"] == 1 and report["status"]["proxies"]["upToDate"] == 1, report

    t = weftctl("config", "demo/client-0", "--control-plane", control.http)
    text = out(t)
    assert t.returncode == 0, text
    assert "proxy demo/client-0" in text and CLIENT_ID in text and "demo/web" in text, text
    assert "mesh: trust domain cluster.local" in text, text
    # the pod name alone works when it is unambiguous
    assert weftctl("config", "client-0", "--control-plane", control.http).returncode == 0
    j = weftctl("config", "demo/client-0", "--control-plane", control.http, "-o", "json")
    assert j.returncode == 0, out(j)
    answer = json.loads(j.stdout)
    assert answer["status"]["identity"] == CLIENT_ID
    assert any(sv["key"] == "demo/web" for sv in answer["config"]["snapshot"]["services"]), answer["config"]
    missing = weftctl("config", "demo/nobody-0", "--control-plane", control.http)
    assert missing.returncode == 1 and "no connected proxy" in out(missing), out(missing)

    text = control.metrics()
    assert metric(text, "weft_control_proxies_connected") == 1, text
    assert metric(text, "weft_control_certificates_issued_total") >= 1, text
    assert metric(text, "weft_control_acks_total") >= 1, text
    assert metric(text, "weft_control_config_generation") == control.generation(), text
    prom = run(["promtool", "check", "metrics"], input=text.encode(), check=False)
    assert prom.returncode == 0, "promtool check metrics:\n%s" % out(prom)


# ------------------------------------------------------------------ 2 ------

def test_cache_files_hold_a_verifiable_identity(cenv, control, proxy):
    ident_path = os.path.join(proxy.cache_dir, "identity.json")
    conf_path = os.path.join(proxy.cache_dir, "config.json")
    for path in (ident_path, conf_path):
        mode = stat.S_IMODE(os.stat(path).st_mode)
        assert mode == 0o600, "%s has mode %o, want 600" % (path, mode)
    with open(ident_path) as f:
        ident = json.load(f)
    with open(conf_path) as f:
        conf = json.load(f)
    assert ident["spiffeId"] == CLIENT_ID, ident.keys()
    assert conf["version"] == proxy.config()["version"] and "demo/web" in conf["services"], conf.keys()

    certs = split_pem(ident["chainPEM"])
    assert len(certs) >= 2, "chain should be leaf + intermediate, got %d certs" % len(certs)
    leaf, inter = os.path.join(cenv.dir, "leaf.pem"), os.path.join(cenv.dir, "inter.pem")
    with open(leaf, "w") as f:
        f.write(certs[0])
    with open(inter, "w") as f:
        f.write("".join(certs[1:]))
    v = run(["openssl", "verify", "-CAfile", cenv.bundle, "-untrusted", inter, leaf], check=False)
    assert v.returncode == 0 and b": OK" in v.stdout, out(v)
    san = run(["openssl", "x509", "-in", leaf, "-noout", "-ext", "subjectAltName"])
    assert "URI:" + CLIENT_ID in out(san), out(san)
    # The cached key is the leaf's key.
    key = os.path.join(cenv.dir, "leaf.key")
    with open(key, "w") as f:
        f.write(ident["keyPEM"])
    os.chmod(key, 0o600)
    pub_key = run(["openssl", "pkey", "-in", key, "-pubout"]).stdout
    pub_cert = run(["openssl", "x509", "-in", leaf, "-noout", "-pubkey"]).stdout
    assert pub_key == pub_cert, "identity.json keyPEM does not match the leaf certificate"


@pytest.mark.slow
@pytest.mark.control_args("--certificate-lifetime", "1m")
def test_proxy_renews_at_seventy_percent_on_the_same_session(cenv, control, proxy):
    """A one-minute certificate is renewed by the proxy itself about 42 s after it arrived,
    on the same connection (a renew with proof of the current key, not a reconnect), and
    the cache holds the new certificate."""
    first = proxy.config()["identity"]
    issued0 = control.metric("weft_control_certificates_issued_total")
    t0 = time.monotonic()

    def renewed():
        assert (control.metric("weft_control_certificates_renewed_total") or 0) >= 1
        assert proxy.config()["identity"]["notAfter"] != first["notAfter"], proxy.config()["identity"]
    eventually(renewed, timeout=60, interval=0.5, what="the proxy's own renewal")
    elapsed = time.monotonic() - t0
    # 70% of the minute left when it arrived (~42 s); not at once, not at expiry.
    assert 30 < elapsed < 55, "renewed after %.1f s" % elapsed
    assert control.metric("weft_control_certificates_issued_total") == issued0 + 1
    s = control.wait_acked()
    assert s["session"] == proxy.session, "the proxy reconnected instead of renewing: %s" % s
    with open(os.path.join(proxy.cache_dir, "identity.json")) as f:
        cached = json.load(f)
    assert cached["notAfter"] == proxy.config()["identity"]["notAfter"], cached["notAfter"]
    assert proxy.ready()[0] == 200


# ------------------------------------------------------------------ 3 ------

def test_config_change_is_pushed_as_an_acked_delta(cenv, control, proxy):
    gen0 = control.generation()
    v0 = proxy.config()["version"]
    deltas0 = control.metric("weft_control_push_latency_seconds_count", kind="delta") or 0
    configs0 = control.metric("weft_control_push_latency_seconds_count", kind="config") or 0
    cenv.write("services.yaml", cenv.read("services.yaml") + NEW_SERVICE)

    def pushed():
        cfg = proxy.config()
        assert "demo/api" in cfg["config"]["services"], sorted(cfg["config"]["services"])
        return cfg
    cfg = eventually(pushed, timeout=10, what="new Service in the proxy's /config")
    assert cfg["generation"] > gen0 and cfg["version"] == v0 + 1, (gen0, v0, cfg["generation"], cfg["version"])
    assert cfg["config"]["services"]["demo/api"]["ports"][0]["targetPort"] == 9090
    s = control.wait_acked(generation=gen0 + 1)
    assert s["ackedGeneration"] == control.generation() == cfg["generation"], s

    def delta_counted():
        d = control.metric("weft_control_push_latency_seconds_count", kind="delta") or 0
        assert d == deltas0 + 1, "delta pushes acked %s -> %s" % (deltas0, d)
    eventually(delta_counted, timeout=5, what="delta push latency counted")
    assert (control.metric("weft_control_push_latency_seconds_count", kind="config") or 0) == configs0, \
        "a whole config was pushed for a one-Service change"


def test_change_invisible_to_proxy_keeps_it_up_to_date(cenv, control, proxy):
    """An endpoint added to a Service the proxy has not subscribed to changes nothing it holds:
    no push, and `weftctl check` still counts it as acked on the new generation."""
    gen0 = control.generation()
    v0 = proxy.config()["version"]
    add_second_endpoint(cenv)
    eventually(lambda: _assert(control.generation() == gen0 + 1, control.status()["config"]),
               timeout=10, what="generation after an EndpointSlice change")
    time.sleep(0.5)  # debounce + a push that must not come
    assert proxy.config()["version"] == v0, "the proxy got a push for a service it does not hold"
    control.wait_acked(generation=gen0 + 1, timeout=5)


def _assert(cond, detail):
    assert cond, detail


# ------------------------------------------------------------------ 4 ------

BAD_WEIGHT = "      weight: -1\n"


def test_invalid_config_rejected_last_good_stays(cenv, control, proxy):
    good = cenv.read("routes.yaml")
    assert "      weight: 1\n" in good
    gen0 = control.generation()
    v0 = proxy.config()["version"]
    rejected0 = control.metric("weft_control_config_rejected_total") or 0
    cenv.write("routes.yaml", good.replace("      weight: 1\n", BAD_WEIGHT, 1))

    def rejected():
        c = control.check()
        assert c.returncode == 1, out(c)
        return out(c)
    text = eventually(rejected, timeout=10, what="weftctl check reporting the rejection")
    assert "routes.yaml" in text and "document" in text and "spec.rules[0].backendRefs[0].weight" in text, text
    assert "generation %d" % gen0 in text, text
    j = control.check("-o", "json")
    assert j.returncode == 1 and json.loads(j.stdout)["healthy"] is False, out(j)
    assert (control.metric("weft_control_config_rejected_total") or 0) >= rejected0 + 1
    assert control.generation() == gen0
    time.sleep(0.3)
    cfg = proxy.config()
    assert (cfg["generation"], cfg["version"]) == (gen0, v0), cfg
    code, _ = proxy.ready()
    assert code == 200

    cenv.write("routes.yaml", good)
    control.wait_acked(timeout=10)  # includes `weftctl check` exit 0
    assert control.status()["config"]["state"] != "rejected"


# ------------------------------------------------------------------ 8 ------

def test_restart_during_outage_comes_up_from_cache(cenv, control, proxy):
    cfg0 = proxy.config()
    proxy.stop()
    control.kill()
    px = cenv.start_proxy(control.push_port, cache_dir=proxy.cache_dir, name="client-0-again")
    started = time.monotonic()
    px.wait_ready(timeout=10)
    assert time.monotonic() - started < 5, "ready from cache took %.1fs" % (time.monotonic() - started)
    cfg = px.config()
    assert cfg["connected"] is False, cfg
    assert cfg["identity"]["spiffeId"] == CLIENT_ID and cfg["identity"]["notAfter"] == cfg0["identity"]["notAfter"]
    assert (cfg["version"], cfg["generation"]) == (cfg0["version"], cfg0["generation"]), cfg
    assert "demo/web" in cfg["config"]["services"]
    px.stop()

    for name in os.listdir(proxy.cache_dir):
        os.unlink(os.path.join(proxy.cache_dir, name))
    px = cenv.start_proxy(control.push_port, cache_dir=proxy.cache_dir, name="client-0-empty")

    def unready():
        px.alive()
        code, body = px.ready()
        assert code == 503 and "identity" in body, (code, body)
    eventually(unready, timeout=10, what="503 with an empty cache")
    time.sleep(2)
    assert px.ready()[0] == 503


# ------------------------------------------------------------ unprivileged --

UNPRIVILEGED = 2103


def test_unprivileged_control_plane_and_proxy(cenv):
    """Both run without root, as in a cluster (the proxy as UID 2102-like, weft-control as a
    nonroot user): no socket option that needs a capability may stand in the way."""
    for root, dirs, files in os.walk(cenv.ca):
        for name in dirs + files + [""]:
            os.chown(os.path.join(root, name), UNPRIVILEGED, UNPRIVILEGED)
    cache = os.path.join(cenv.dir, "cache-nonroot")
    os.makedirs(cache, mode=0o700)
    os.chown(cache, UNPRIVILEGED, UNPRIVILEGED)
    user = ("setpriv", "--reuid=%d" % UNPRIVILEGED, "--regid=%d" % UNPRIVILEGED, "--clear-groups")
    cp = cenv.start_control(prefix=user)
    px = cenv.start_proxy(cp.push_port, cache_dir=cache, prefix=user, name="nonroot")
    px.wait_ready(timeout=15)
    cp.wait_acked()
    assert px.config()["identity"]["spiffeId"] == CLIENT_ID


def test_check_says_when_the_control_plane_is_unreachable():
    """Nothing listens on the port: exit 1, the reason in text, and valid JSON with -o json."""
    address = "127.0.0.1:%d" % free_port()
    t = weftctl("check", "--control-plane", address)
    assert t.returncode == 1 and out(t).startswith("✘ ") and address.split(":")[1] in out(t), out(t)
    j = weftctl("check", "--control-plane", address, "-o", "json")
    assert j.returncode == 1, out(j)
    report = json.loads(j.stdout)
    assert report["reachable"] is False and report["healthy"] is False and report["error"], report
    bad = weftctl("check", "--control-plane", "no-port-here")
    assert bad.returncode != 0 and "--control-plane" in out(bad) and "host:port" in out(bad), out(bad)


def test_pod_identity_from_the_downward_api_environment(cenv, control):
    """No pod flags: POD_NAME, POD_NAMESPACE, POD_SERVICE_ACCOUNT, POD_IP and POD_LABELS_FILE
    (the Downward API's labels file, `key="value"` lines) name the pod, and its labels
    choose the policies it is sent. Without POD_NAME, the error names the flag and the
    variable."""
    labels = os.path.join(cenv.dir, "labels")
    with open(labels, "w") as f:
        f.write('app="web"\npod-template-hash="7d4b9c"')  # the kubelet writes no final newline
    admin = free_port()
    env = dict(os.environ, POD_NAME="web-7d4b9c-x2x", POD_NAMESPACE="demo", POD_SERVICE_ACCOUNT="web",
               POD_IP="10.211.0.9", POD_LABELS_FILE=labels)
    base = [PROXY_BIN, "run", "--control-plane", "127.0.0.1:%d" % control.push_port, "--token-file",
            cenv.token_file, "--trust-bundle", cenv.bundle, "--cache-dir", os.path.join(cenv.dir, "cache-env"),
            "--admin-host", "127.0.0.1", "--admin-port", str(admin), "--outbound-port", str(free_port()),
            "--inbound-port", str(free_port()), "--no-ipv6"]
    log = open(os.path.join(cenv.dir, "proxy-env.log"), "ab")
    p = subprocess.Popen(base, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                         start_new_session=True)
    cenv.procs.append(p)
    try:
        s = control.wait_acked(pod="web-7d4b9c-x2x", timeout=20)
        assert (s["namespace"], s["serviceAccount"], s["ip"]) == ("demo", "web", "10.211.0.9"), s
        assert s["identity"] == "spiffe://cluster.local/ns/demo/sa/web", s

        def policies():
            code, body = http_get("http://127.0.0.1:%d/config" % admin)
            assert code == 200, (code, body)
            cfg = json.loads(body)
            assert "demo/web-allow-client" in cfg["config"]["policies"], cfg["config"]["policies"]
        eventually(policies, timeout=10, what="the app=web policy sent to a pod labelled app=web")
    finally:
        stop_process(p)
        log.close()

    env.pop("POD_NAME")
    bad = subprocess.run(base, env=env, capture_output=True, timeout=20)
    text = (bad.stdout + bad.stderr).decode(errors="replace")
    assert bad.returncode != 0 and "--pod-name" in text and "$POD_NAME" in text, text


@pytest.mark.parametrize("flag,value,says", [
    ("--slow-consumer-grace", "0s", "--slow-consumer-grace: 0s is not a positive duration"),
    ("--slow-consumer-grace", "soon", "--slow-consumer-grace: soon is not a positive duration"),
    ("--certificate-lifetime", "30s", "--certificate-lifetime: 30s is not a duration of at least 1m"),
    ("--api-access", "everyone", "--api-access must be loopback or any, not everyone"),
])
def test_control_plane_bad_flag_values_name_the_flag(cenv, flag, value, says):
    """Refused before anything starts: exit 64 (usage), the flag and the value named."""
    p = run([CONTROL_BIN, "--config", cenv.config, "--ca", cenv.ca, "--token-file", cenv.token_file,
             "--host", "127.0.0.1", "--push-port", str(free_port()), "--http-port", str(free_port()), flag, value],
            check=False, timeout=20)
    assert p.returncode == 64 and says in out(p), out(p)


@pytest.mark.parametrize("flag", ["--client-idle-timeout", "--opaque-idle-timeout"])
def test_proxy_bad_idle_timeout_names_the_flag(flag):
    p = run([PROXY_BIN, "run", flag, "forever"], check=False, timeout=20)
    assert p.returncode == 64 and flag in out(p) and "forever" in out(p), out(p)


@pytest.mark.parametrize("taken", ["inbound", "admin"])
def test_port_in_use_with_a_control_plane_exits_naming_the_port(cenv, control, taken):
    """A listener that cannot bind ends the proxy at once, with the address and the flag.

    With a control plane configured this used to hang for ever: the server stopped the
    event loops it shared with the control client, which then waited on them.
    """
    ports = (free_port(), free_port(), free_port())  # admin, outbound, inbound
    port = ports[2] if taken == "inbound" else ports[0]
    flag = "--inbound-port" if taken == "inbound" else "--admin-port"
    holder = socket.socket()
    holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    holder.bind(("127.0.0.1" if taken == "admin" else "0.0.0.0", port))
    holder.listen()
    try:
        px = cenv.start_proxy(control.push_port, ports=ports)
        try:
            code = px.proc.wait(15)
        except subprocess.TimeoutExpired:
            pytest.fail("weft-proxy still running 15 s after failing to bind %s:\n%s" % (flag, tail(px.log)))
        log = tail(px.log)
        assert code == 1, (code, log)
        assert "cannot listen on" in log and ":%d" % port in log and flag in log, log
        assert "Address already in use" in log, log
    finally:
        holder.close()


def test_control_plane_that_never_handshakes_is_given_up_after_10s(cenv):
    """A peer that accepts the connection and never answers the TLS ClientHello: the proxy
    closes that connection after the 10 s handshake timeout and connects again."""
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    listener.settimeout(15)
    conns = []
    try:
        px = cenv.start_proxy(listener.getsockname()[1])
        first, _ = listener.accept()
        conns.append(first)
        accepted = time.monotonic()
        first.settimeout(25)
        hello = first.recv(4096)
        assert hello[:1] == b"\x16", "expected a TLS handshake record, got %r" % hello[:16]
        while first.recv(4096):  # until the proxy closes it
            pass
        waited = time.monotonic() - accepted
        assert 8.0 <= waited <= 15.0, "closed after %.1f s, not after the 10 s handshake timeout" % waited
        second, _ = listener.accept()  # reconnects (backoff well under 15 s)
        conns.append(second)
        px.alive()
        code, body = px.ready()
        assert code == 503, (code, body)
    finally:
        for c in conns:
            c.close()
        listener.close()


def test_idle_sidecar_lets_go_of_start_up_pages(cenv, control):
    """Issue 3's idle-memory goal as deployed: a weft-proxy holding its identity and config
    from weft-control, 3 s after /ready, is resident in at most 12 MB, because it unmaps
    the code only start-up ran; with --no-release-startup-pages it keeps that code. The
    two run one after the other, as the same pod."""
    rss = {}
    for mode, extra in (("kept", ["--no-release-startup-pages"]), ("released", [])):
        px = cenv.start_proxy(control.push_port, name="rss-" + mode, extra=extra)
        try:
            px.wait_ready()
            time.sleep(3)
            px.alive()
            rss[mode] = rss_kib(px.proc.pid)
        finally:
            px.stop()
    assert rss["released"] <= 12 * 1024, rss
    assert rss["released"] < rss["kept"] - 2048, "start-up pages not let go: %s KiB" % rss
