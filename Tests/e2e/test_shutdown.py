"""Connection lifecycle: graceful drain (SIGTERM and POST /shutdown), and the close of idle
keep-alive clients.

Self-contained (the shared two-pod topology must keep its proxies): one network
namespace of its own with a veth pair inside it, the redirect rules and one sidecar. A
Python server on the dummy address answers slowly, so a request is in flight when the
drain starts.
"""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import urllib.request

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
PROXY_BIN = os.environ.get("WEFT_PROXY_BIN") or os.path.join(REPO, ".build", "debug", "weft-proxy")
ADDR = "10.217.0.1"
SLOW_PORT = 8090

SLOW_SERVER = textwrap.dedent("""
    import http.server, sys, time
    class H(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        def do_GET(self):
            delay = float(self.path.strip("/") or 0)
            if delay < 0:
                time.sleep(3600)  # never answers
            time.sleep(delay)
            body = b"slow ok\\n"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        def log_message(self, *a): pass
    http.server.ThreadingHTTPServer((sys.argv[1], int(sys.argv[2])), H).serve_forever()
""")


def sh(*args, check=True, **kw):
    return subprocess.run(args, check=check, capture_output=True, timeout=30, **kw)


@pytest.fixture
def pod():
    if os.environ.get("WEFT_E2E_NO_PROXY") == "1":
        pytest.skip("no proxy (WEFT_E2E_NO_PROXY=1)")
    assert os.path.exists(PROXY_BIN), "weft-proxy binary missing: %s (build it first)" % PROXY_BIN
    ns = "weft-drain-%d" % os.getpid()
    procs = []
    sh("ip", "netns", "add", ns)
    try:
        sh("ip", "-n", ns, "link", "set", "lo", "up")
        # A veth pair with both ends inside: a non-loopback address, so the outbound
        # capture applies (the dummy driver is not always available).
        sh("ip", "-n", ns, "link", "add", "d0", "type", "veth", "peer", "name", "d1")
        sh("ip", "-n", ns, "addr", "add", ADDR + "/24", "dev", "d0")
        sh("ip", "-n", ns, "link", "set", "d0", "up")
        sh("ip", "-n", ns, "link", "set", "d1", "up")
        sh("ip", "netns", "exec", ns, PROXY_BIN, "init")
        server = subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, "-c", SLOW_SERVER, ADDR, str(SLOW_PORT)])
        procs.append(server)
        for _ in range(100):  # at most 10 s for the server to listen
            ss = subprocess.run(["ip", "netns", "exec", ns, "ss", "-Hltn", "sport = :%d" % SLOW_PORT],
                                capture_output=True, timeout=10)
            if ss.stdout.strip():
                break
            assert server.poll() is None, "slow server exited"
            time.sleep(0.1)
        else:
            raise AssertionError("slow server never listened")
        yield ns, procs
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait(timeout=5)
        subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=30)


def start_proxy(ns, procs, *extra):
    proxy = subprocess.Popen(
        ["ip", "netns", "exec", ns, "setpriv", "--reuid=2102", "--regid=2102", "--clear-groups",
         PROXY_BIN, "run", "--log-level", "info", *extra],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    procs.append(proxy)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if admin(ns, "/ready")[0] == 200:
            return proxy
        assert proxy.poll() is None, proxy.stdout.read().decode(errors="replace")
        time.sleep(0.1)
    raise AssertionError("proxy never became ready")


def admin(ns, path, method="GET"):
    r = subprocess.run(["ip", "netns", "exec", ns, "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
                        "-X", method, "--max-time", "3", "http://127.0.0.1:15000" + path],
                       capture_output=True, timeout=10)
    code = r.stdout.decode().strip()
    return (int(code) if code.isdigit() else 0), r


def curl_async(ns, path):
    return subprocess.Popen(["ip", "netns", "exec", ns, "curl", "-s", "--max-time", "20", "-w", "\n%{http_code}",
                             "http://%s:%d%s" % (ADDR, SLOW_PORT, path)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def wait_for_open_connection(ns, deadline_s=10):
    """Waits until the sidecar holds an outbound connection (the request is in flight)."""
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        r = subprocess.run(["ip", "netns", "exec", ns, "curl", "-s", "--max-time", "3",
                            "http://127.0.0.1:15000/metrics"], capture_output=True, timeout=10)
        for line in r.stdout.decode().splitlines():
            if line.startswith('weft_connections_open{direction="outbound"}') and float(line.split()[-1]) >= 1:
                return
        time.sleep(0.05)
    raise AssertionError("the request never reached the sidecar")


def wait_for_port_down(ns, deadline_s=5):
    """True once a new connection through the capture is refused or reset."""
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        r = subprocess.run(["ip", "netns", "exec", ns, "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
                            "--max-time", "2", "http://%s:%d/0" % (ADDR, SLOW_PORT)], capture_output=True, timeout=10)
        if r.stdout.decode().strip() == "000":
            return True
        time.sleep(0.1)
    return False


@pytest.mark.parametrize("trigger", ["sigterm", "post-shutdown"])
def test_drain_finishes_in_flight_request(pod, trigger):
    ns, procs = pod
    proxy = start_proxy(ns, procs, "--drain-timeout", "10s")
    inflight = curl_async(ns, "/2")  # answered after 2 s
    wait_for_open_connection(ns)
    started = time.monotonic()
    if trigger == "sigterm":
        proxy.send_signal(signal.SIGTERM)  # ip netns exec passes it on (exec)
    else:
        code, _ = admin(ns, "/shutdown", method="POST")
        assert code == 200
    # Readiness turns false while draining, and no new connection is taken.
    code, _ = admin(ns, "/ready")
    assert code in (503, 0), "ready answered %d while draining" % code
    assert wait_for_port_down(ns), "capture port still accepting during the drain"
    out, _ = inflight.communicate(timeout=20)
    assert out.decode().endswith("\n200"), "in-flight request not completed: %r" % out
    rc = proxy.wait(timeout=15)
    assert rc == 0, "proxy exit code %d: %s" % (rc, proxy.stdout.read().decode(errors="replace"))
    assert time.monotonic() - started < 8
    log = proxy.stdout.read().decode(errors="replace")
    assert "Cannot schedule" not in log, log


def test_drain_is_bounded(pod):
    ns, procs = pod
    proxy = start_proxy(ns, procs, "--drain-timeout", "1s")
    stuck = curl_async(ns, "/-1")  # the server never answers
    wait_for_open_connection(ns)
    started = time.monotonic()
    proxy.send_signal(signal.SIGTERM)
    rc = proxy.wait(timeout=10)
    elapsed = time.monotonic() - started
    assert rc == 0
    assert 0.8 <= elapsed < 4, "drain took %.1fs with --drain-timeout 1s" % elapsed
    out, _ = stuck.communicate(timeout=25)
    assert not out.decode().endswith("\n200")


IDLE_CLIENT = textwrap.dedent("""
    import json, socket, sys, threading, time
    addr, port = sys.argv[1], int(sys.argv[2])

    def request(s, path):
        s.sendall(("GET %s HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n" % path).encode())
        data = b""
        while not data.endswith(b"slow ok\\n"):
            chunk = s.recv(4096)
            if not chunk:
                return None
            data += chunk
        return data.split(b"\\r\\n", 1)[0].decode()

    idle, busy, slow = (socket.create_connection((addr, port), timeout=15) for _ in range(3))
    t0 = time.monotonic()
    out = {"idle_first": request(idle, "/0"), "busy_first": request(busy, "/0")}
    slow_result = {}
    def slow_request():  # in flight for 5 s: longer than two idle periods
        slow_result["status"] = request(slow, "/5")
        slow_result["at"] = time.monotonic() - t0
    th = threading.Thread(target=slow_request)
    th.start()
    idle.settimeout(0.2)
    out["idle_closed_at"] = None
    busy_ok = 0
    while time.monotonic() - t0 < 8:
        if request(busy, "/0") == "HTTP/1.1 200 OK":
            busy_ok += 1
        try:
            if out["idle_closed_at"] is None and idle.recv(1) == b"":
                out["idle_closed_at"] = time.monotonic() - t0
        except socket.timeout:
            pass
        except ConnectionResetError:
            out["idle_closed_at"] = time.monotonic() - t0
        time.sleep(0.8)
    th.join(10)
    out.update(busy_ok=busy_ok, slow=slow_result)
    print(json.dumps(out))
""")


def test_idle_keepalive_client_is_closed_busy_and_in_flight_are_not(pod):
    """--client-idle-timeout 2s: a keep-alive client that sends nothing more is closed after
    two to four seconds; one that keeps sending requests, and one whose request is still in
    flight (5 s), are not."""
    ns, procs = pod
    start_proxy(ns, procs, "--client-idle-timeout", "2s")
    r = subprocess.run(["ip", "netns", "exec", ns, sys.executable, "-c", IDLE_CLIENT, ADDR, str(SLOW_PORT)],
                       capture_output=True, timeout=40)
    assert r.returncode == 0, r.stderr.decode(errors="replace")
    out = json.loads(r.stdout)
    assert out["idle_first"] == out["busy_first"] == "HTTP/1.1 200 OK", out
    assert out["idle_closed_at"] is not None, "the idle connection was never closed: %s" % out
    assert 1.9 <= out["idle_closed_at"] <= 5.0, out
    assert out["busy_ok"] >= 6, "the busy connection stopped being served: %s" % out
    assert out["slow"].get("status") == "HTTP/1.1 200 OK" and out["slow"]["at"] >= 5.0, out


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_out_of_file_descriptors_backs_off(pod):
    """A sidecar out of file descriptors spun at 99% CPU on accept4 → EMFILE (~1,200
    failures a second) and logged nothing. Now it waits 200 ms between attempts, counts
    the failures, logs once per 10 s, and serves again once descriptors are free."""
    from weft_e2e import ns_connect
    ns, procs = pod
    proxy = subprocess.Popen(
        ["ip", "netns", "exec", ns, "prlimit", "--nofile=64:64", "setpriv", "--reuid=2102", "--regid=2102",
         "--clear-groups", PROXY_BIN, "run", "--log-level", "info"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    procs.append(proxy)
    deadline = time.monotonic() + 15
    while admin(ns, "/ready")[0] != 200:
        assert proxy.poll() is None and time.monotonic() < deadline, "proxy never became ready"
        time.sleep(0.1)
    clients = []
    try:
        for _ in range(80):  # each takes two of the proxy's descriptors (client, upstream)
            clients.append(ns_connect(ns, ADDR, SLOW_PORT))
        time.sleep(1.0)
        before = cpu_seconds(proxy.pid)
        time.sleep(3.0)
        used = cpu_seconds(proxy.pid) - before
        assert used < 0.6, "the proxy used %.2f s of CPU in 3 s while out of descriptors" % used
    finally:
        for s in clients:
            s.close()
    # Descriptors free again: it serves, and the failures were counted.
    deadline = time.monotonic() + 10
    while True:
        r = subprocess.run(["ip", "netns", "exec", ns, "curl", "-s", "--max-time", "3",
                            "http://127.0.0.1:15000/metrics"], capture_output=True, timeout=10)
        text = r.stdout.decode()
        if 'error="accept_failed"' in text:
            break
        assert time.monotonic() < deadline, "accept failures not counted:\n" + text[-2000:]
        time.sleep(0.2)
    failures = sum(float(line.split()[-1]) for line in text.splitlines()
                   if line.startswith("weft_errors_total") and 'error="accept_failed"' in line)
    assert 1 <= failures <= 40, "accept failures counted: %s (at most ~5 a second while backing off)" % failures
    out, _ = curl_async(ns, "/0").communicate(timeout=20)
    assert out.decode().endswith("\n200"), out
    proxy.send_signal(signal.SIGTERM)
    log = proxy.communicate(timeout=20)[0].decode(errors="replace")
    lines = [line for line in log.splitlines() if "accept failed" in line]
    assert 1 <= len(lines) <= 2, "want one log line per 10 s, got %d:\n%s" % (len(lines), "\n".join(lines[:5]))


BANNER_PORT = 8091
BANNER_SERVER = textwrap.dedent("""
    import socket, sys, threading, time
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((sys.argv[1], int(sys.argv[2]))); s.listen(64)
    held = []
    while True:
        c, _ = s.accept(); c.sendall(b"220 banner\\r\\n"); held.append(c)
""")


def test_silent_connections_and_idle_splices_are_bounded(pod):
    """2,000 connections that never sent a byte became 2,000 upstream connections after the
    detection timeout, and opaque splices had no idle timeout. Now a silent pair must
    move a byte within one more detection timeout, and any splice idle for
    --opaque-idle-timeout is reset; a server that speaks first still works."""
    from weft_e2e import ns_connect, recv_until_closed
    ns, procs = pod
    server = subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, "-c", BANNER_SERVER, ADDR, str(BANNER_PORT)])
    procs.append(server)
    start_proxy(ns, procs, "--detect-timeout", "1s", "--opaque-idle-timeout", "3s")
    time.sleep(0.5)
    # Silent client, client-first server (the slow HTTP server): reset about 2 s in.
    silent = ns_connect(ns, ADDR, SLOW_PORT)
    # Silent client, server that speaks first: the banner arrives once detection gives up.
    talker = ns_connect(ns, ADDR, BANNER_PORT)
    try:
        started = time.monotonic()
        data, how = recv_until_closed(silent, timeout=8)
        took = time.monotonic() - started
        assert how in ("eof", "reset") and 1.5 <= took <= 5, "silent connection: %s after %.1f s" % (how, took)
        talker.settimeout(5)
        assert talker.recv(64) == b"220 banner\r\n"
        banner_at = time.monotonic()
        # Past the silent check, it stays open; then idle for 3 to 6 s: reset.
        data, how = recv_until_closed(talker, timeout=12)
        idle = time.monotonic() - banner_at
        assert how in ("eof", "reset") and 2.5 <= idle <= 8, "idle splice: %s after %.1f s" % (how, idle)
    finally:
        silent.close()
        talker.close()
