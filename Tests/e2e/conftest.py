"""Weft end-to-end test topology.

Two network namespaces ("pod A" client side, "pod B" server side) joined by
a veth pair.  In each, `weft-proxy init` installs the traffic capture and
`weft-proxy run` runs as UID/GID 2102.  Pod B hosts the real peers (nginx,
Python HTTP/gRPC/WebSocket/TCP servers).  Tests run clients in pod A against
10.211.0.2 / fd00:211::2, so every byte crosses pod A's outbound sidecar and
pod B's inbound sidecar.

Environment:
  WEFT_PROXY_BIN        proxy binary (default <repo>/.build/debug/weft-proxy)
  WEFT_E2E_NO_PROXY=1   harness check: no init/run, peers talk over the veth
                        directly, proxy-specific assertions are skipped
  WEFT_E2E_INIT_ARGS    extra args appended to `weft-proxy init` (default: none)
  WEFT_E2E_PROXY_ARGS   extra args appended to `weft-proxy run`
  WEFT_E2E_KEEP=1       keep the temp dir (logs, configs) after the run
  WEFT_E2E_RSS_LIMIT_MB peak RSS bound for the 1 GiB test (default 64)
  WEFT_E2E_LARGE_BYTES  size of the large transfers (default 1 GiB)

Needs root (netns, veth, iptables).  See README.md.
"""

import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from weft_e2e import (  # noqa: E402
    ADMIN_PORT, BAD_H2_PORT, REFUSING_H2_PORT, H2_GOAWAY_PORT, BANNER_PORT, BLACKHOLE_PORT, ECHO_PORT, GRPC_PORT, H2_PORT, HERE,
    NGINX_PORT, NO_PROXY, POD_A_V4, POD_A_V6, POD_B_V4, POD_B_V6, PROXY_GID,
    PROXY_UID, PYHTTP_PORT, PYTHON, RESET_PORT, WS_PORT, Deadline, Metrics,
    REPORT, eventually, fmt_labels, http_request, netns_cmd, ns_connect, ns_socket,
    run, wait_for_port,
)

REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
PROXY_BIN = os.environ.get("WEFT_PROXY_BIN") or os.path.join(REPO, ".build", "debug", "weft-proxy")
PROXY_RUN_ARGS = ["run", "--admin-port", str(ADMIN_PORT), "--connect-timeout", "1s",
                  "--response-timeout", "3s", "--request-head-timeout", "3s"]
NS_PREFIX = "weft-e2e-"
DEFAULT_TEST_TIMEOUT = 180

# Filled while the session runs; read by the reporting hooks.
_STATE = {"topo": None, "failed": False}

# Proxy environment hygiene: no client below may go through an HTTP proxy.
for _var in ("http_proxy", "https_proxy", "all_proxy", "no_proxy", "grpc_proxy",
             "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"):
    os.environ.pop(_var, None)


# ====================================================================== pods ==

class Pod:
    def __init__(self, key, ns, ip4, ip6, tmp):
        self.key, self.ns, self.ip4, self.ip6 = key, ns, ip4, ip6
        self.proxy = None
        self.proxy_log = os.path.join(tmp, "proxy-%s.log" % key)

    def __repr__(self):
        return "<pod %s netns=%s>" % (self.key.upper(), self.ns)

    # -- processes -------------------------------------------------------------
    def cmd(self, argv):
        return netns_cmd(self.ns, argv)

    def run(self, argv, timeout=30.0, check=True, input=None):
        return run(self.cmd(argv), timeout=timeout, check=check, input=input)

    def curl(self, *args, timeout=20.0):
        """curl inside the pod; returns CompletedProcess (bytes), never raises on exit code."""
        argv = ["curl", "-sS", "--noproxy", "*", "--connect-timeout", "5",
                "--max-time", str(max(1, int(timeout) - 2))] + list(args)
        return self.run(argv, timeout=timeout, check=False)

    # -- sockets -----------------------------------------------------------------
    def socket(self, family=None, type=None):
        import socket as _s
        return ns_socket(self.ns, family or _s.AF_INET, type or _s.SOCK_STREAM)

    def connect(self, host, port, timeout=5.0, uncaptured=False):
        """A TCP connection from this pod; uncaptured: as a pod without a sidecar."""
        return ns_connect(self.ns, host, port, timeout, uncaptured=uncaptured)

    # -- proxy -----------------------------------------------------------------
    def admin(self, path, timeout=5.0):
        return http_request(self.ns, "127.0.0.1", ADMIN_PORT, "GET", path, timeout=timeout)

    def metrics_text(self):
        r = self.admin("/metrics")
        assert r.status == 200, "GET /metrics in pod %s: %r" % (self.key.upper(), r)
        return r.body.decode("utf-8")

    def metrics(self):
        return Metrics(self.metrics_text())

    def proxy_status(self):
        """VmRSS / VmHWM of the proxy in KiB, from /proc/<pid>/status."""
        out = {}
        with open("/proc/%d/status" % self.proxy.pid) as f:
            for line in f:
                k, _, v = line.partition(":")
                if k in ("VmRSS", "VmHWM", "VmSize", "Threads"):
                    out[k] = int(v.split()[0])
        return out

    def proxy_alive(self):
        return self.proxy is not None and self.proxy.poll() is None


# ================================================================== topology ==

class Topology:
    def __init__(self):
        self.suffix = str(os.getpid())
        self.proxy_enabled = not NO_PROXY
        self.tmp = tempfile.mkdtemp(prefix="weft-e2e-")
        os.chmod(self.tmp, 0o755)
        self.a = Pod("a", NS_PREFIX + "a-" + self.suffix, POD_A_V4, POD_A_V6, self.tmp)
        self.b = Pod("b", NS_PREFIX + "b-" + self.suffix, POD_B_V4, POD_B_V6, self.tmp)
        self.pods = {"a": self.a, "b": self.b}
        self.procs = []  # (name, Popen, logpath)
        self.proxy_bin = PROXY_BIN
        self.created_ns = []

    # -- helpers -----------------------------------------------------------------
    def log_paths(self):
        paths = [p.proxy_log for p in self.pods.values() if os.path.exists(p.proxy_log)]
        paths += [lp for _, _, lp in self.procs if lp not in paths]
        nginx_err = os.path.join(self.tmp, "nginx", "error.log")
        if os.path.exists(nginx_err):
            paths.append(nginx_err)
        return paths

    def start(self, name, argv, log, env=None, cwd=None):
        logf = open(log, "ab")
        try:
            p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=logf, stderr=subprocess.STDOUT,
                                 start_new_session=True, env=env, close_fds=True, cwd=cwd)
        finally:
            logf.close()
        self.procs.append((name, p, log))
        return p

    @staticmethod
    def stop(p, grace=5.0):
        if p.poll() is not None:
            return
        for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(p.pid, sig)  # the group of a process this suite started
            except ProcessLookupError:
                return
            try:
                p.wait(wait)
                return
            except subprocess.TimeoutExpired:
                continue

    def proc_log(self, p, limit=20000):
        try:
            with open(p, "rb") as f:
                data = f.read()
        except OSError as e:
            return "<unreadable: %s>" % e
        text = data.decode("utf-8", "replace")
        return text if len(text) <= limit else "...[cut]...\n" + text[-limit:]

    def dump_logs(self):
        return "\n".join("===== %s =====\n%s" % (p, self.proc_log(p)) for p in self.log_paths())

    # -- setup -------------------------------------------------------------------
    def setup(self):
        if os.geteuid() != 0:
            raise RuntimeError("the e2e suite needs root (network namespaces, veth, iptables)")
        for tool in ("ip", "iptables", "setpriv", "nginx", "curl"):
            if shutil.which(tool) is None:
                raise RuntimeError("required tool %r not found on PATH (see Tests/e2e/REQUIREMENTS.md)" % tool)
        if self.proxy_enabled:
            self._check_proxy_bin()
        self._cleanup_stale()
        self._make_network()
        self._start_servers()
        if self.proxy_enabled:
            for pod in (self.a, self.b):
                self._init_proxy(pod)
            for pod in (self.a, self.b):
                self._run_proxy(pod)
            for pod in (self.a, self.b):
                self._wait_ready(pod)

    def _check_proxy_bin(self):
        if not (os.path.isfile(self.proxy_bin) and os.access(self.proxy_bin, os.X_OK)):
            raise RuntimeError(
                "weft-proxy binary not found or not executable at %s.\n"
                "Build it first (swift build --product weft-proxy) or point WEFT_PROXY_BIN at it.\n"
                "To check only the test harness without a proxy, set WEFT_E2E_NO_PROXY=1."
                % self.proxy_bin)
        probe = subprocess.run(["setpriv", "--reuid=%d" % PROXY_UID, "--regid=%d" % PROXY_GID,
                                "--clear-groups", "test", "-x", self.proxy_bin], timeout=10)
        if probe.returncode != 0:
            # Not reachable for UID 2102 (e.g. a 0700 home directory): use a copy.
            bindir = os.path.join(self.tmp, "bin")
            os.makedirs(bindir, mode=0o755, exist_ok=True)
            copy = os.path.join(bindir, "weft-proxy")
            shutil.copy2(self.proxy_bin, copy)
            os.chmod(copy, 0o755)
            self.proxy_bin = copy

    def _cleanup_stale(self):
        """Deletes namespaces left by earlier runs of this suite whose pytest is gone."""
        out = run(["ip", "netns", "list"], check=False).stdout.decode()
        for line in out.splitlines():
            name = line.split()[0] if line.split() else ""
            m = re.fullmatch(re.escape(NS_PREFIX) + r"[ab]-(\d+)", name)
            if not m:
                continue
            pid = int(m.group(1))
            alive = pid != os.getpid()
            if alive:
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    alive = False
                except PermissionError:
                    pass
            if not alive:
                # Leftovers of a killed run: its peers and proxies still sit in there.
                pids = run(["ip", "netns", "pids", name], check=False).stdout.decode().split()
                for p in pids:
                    try:
                        os.kill(int(p), signal.SIGKILL)
                    except (ValueError, ProcessLookupError):
                        pass
                run(["ip", "netns", "del", name], check=False)

    def _make_network(self):
        va, vb = "wea" + self.suffix, "web" + self.suffix
        steps = []
        for pod in (self.a, self.b):
            steps.append(["ip", "netns", "add", pod.ns])
        for pod in (self.a, self.b):
            self.created_ns.append(pod.ns)
        steps += [
            ["ip", "link", "add", va, "type", "veth", "peer", "name", vb],
            ["ip", "link", "set", va, "netns", self.a.ns],
            ["ip", "link", "set", vb, "netns", self.b.ns],
        ]
        for pod, dev in ((self.a, va), (self.b, vb)):
            steps += [
                ["ip", "-n", pod.ns, "link", "set", dev, "name", "eth0"],
                ["ip", "-n", pod.ns, "link", "set", "lo", "up"],
                ["ip", "-n", pod.ns, "addr", "add", pod.ip4 + "/24", "dev", "eth0"],
                ["ip", "-n", pod.ns, "addr", "add", pod.ip6 + "/64", "dev", "eth0", "nodad"],
                ["ip", "-n", pod.ns, "link", "set", "eth0", "up"],
            ]
        for argv in steps:
            run(argv, timeout=15)

    def _start_servers(self):
        b = self.b
        env = dict(os.environ, PYTHONUNBUFFERED="1", PYTHONDONTWRITEBYTECODE="1")
        servers = [("http", PYHTTP_PORT), ("grpc", GRPC_PORT), ("echo", ECHO_PORT),
                   ("banner", BANNER_PORT), ("ws", WS_PORT), ("reset", RESET_PORT),
                   ("blackhole", BLACKHOLE_PORT), ("badh2", BAD_H2_PORT),
                   ("refusingh2", REFUSING_H2_PORT)]
        started = []
        for kind, port in servers:
            log = os.path.join(self.tmp, "server-%s-%d.log" % (kind, port))
            p = self.start("server-" + kind, b.cmd([PYTHON, os.path.join(HERE, "servers.py"), kind, str(port)]),
                           log, env=env)
            started.append((kind, port, p))
        nginx_dir = self._write_nginx()
        p = self.start("nginx", b.cmd(["nginx", "-e", "stderr", "-p", nginx_dir + "/",
                                       "-c", os.path.join(nginx_dir, "nginx.conf")]),
                       os.path.join(self.tmp, "nginx.log"))
        started += [("nginx", NGINX_PORT, p), ("nginx-h2", H2_PORT, p)]
        try:
            for kind, port, p in started:
                wait_for_port(b.ns, "127.0.0.1", port, timeout=20, proc=p, what=kind)
            wait_for_port(b.ns, "::1", NGINX_PORT, timeout=5, what="nginx v6")
        except Exception as e:
            raise RuntimeError("test servers did not come up: %s\n%s" % (e, self.dump_logs())) from None

    def _write_nginx(self):
        d = os.path.join(self.tmp, "nginx")
        www = os.path.join(d, "www")
        os.makedirs(www)
        for sub in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
            os.makedirs(os.path.join(d, "tmp", sub))
        with open(os.path.join(www, "index.html"), "w") as f:
            f.write("<html><body>weft e2e pod B</body></html>\n")
        for name in ("a", "b", "c"):
            with open(os.path.join(www, name + ".txt"), "w") as f:
                f.write(("this is %s.txt\n" % name) * (10 + ord(name) - ord("a")))
        with open(os.path.join(www, "big.bin"), "wb") as f:
            f.write(os.urandom(8 << 20))
        conf = """
daemon off;
master_process on;
worker_processes 1;
user root root;
pid {d}/nginx.pid;
error_log {d}/error.log info;
events {{ worker_connections 1024; }}
http {{
    access_log {d}/access.log;
    client_body_temp_path {d}/tmp/body;
    proxy_temp_path {d}/tmp/proxy;
    fastcgi_temp_path {d}/tmp/fastcgi;
    uwsgi_temp_path {d}/tmp/uwsgi;
    scgi_temp_path {d}/tmp/scgi;
    types {{ text/html html; text/plain txt; application/octet-stream bin; }}
    default_type application/octet-stream;
    keepalive_requests 10000;
    keepalive_timeout 75s;
    client_header_timeout 10s;
    server {{
        listen 80 default_server;
        listen [::]:80 default_server;
        root {www};
        location = /hello {{ default_type text/plain; return 200 "hello from pod B\\n"; }}
    }}
    server {{
        listen 8080 http2 default_server;
        listen [::]:8080 http2 default_server;
        root {www};
        location = /hello {{ default_type text/plain; return 200 "hello over h2\\n"; }}
    }}
    server {{
        # GOAWAY after every 25 requests on a connection.
        listen {goaway} http2;
        keepalive_requests 25;
        location / {{ default_type text/plain; return 200 "hello\\n"; }}
    }}
}}
""".format(d=d, www=www, goaway=H2_GOAWAY_PORT)
        with open(os.path.join(d, "nginx.conf"), "w") as f:
            f.write(conf)
        for root, dirs, files in os.walk(d):
            for x in dirs:
                os.chmod(os.path.join(root, x), 0o755)
        return d

    def _init_proxy(self, pod):
        extra = shlex.split(os.environ.get("WEFT_E2E_INIT_ARGS", ""))
        p = pod.run([self.proxy_bin, "init"] + extra, timeout=60, check=False)
        rules = pod.run(["iptables-save"], check=False).stdout.decode(errors="replace")
        rules6 = pod.run(["ip6tables-save"], check=False).stdout.decode(errors="replace")
        with open(pod.proxy_log, "ab") as f:
            f.write(b"### weft-proxy init (exit %d)\n" % p.returncode + p.stdout + p.stderr)
            f.write(("### iptables-save\n%s### ip6tables-save\n%s### weft-proxy run\n"
                     % (rules, rules6)).encode())
        if p.returncode != 0:
            raise RuntimeError("weft-proxy init failed in pod %s (exit %d):\n%s"
                               % (pod.key.upper(), p.returncode, self.proc_log(pod.proxy_log)))

    def _run_proxy(self, pod):
        extra = shlex.split(os.environ.get("WEFT_E2E_PROXY_ARGS", ""))
        argv = pod.cmd(["setpriv", "--reuid=%d" % PROXY_UID, "--regid=%d" % PROXY_GID,
                        "--clear-groups", self.proxy_bin] + PROXY_RUN_ARGS + extra)
        pod.proxy = self.start("proxy-" + pod.key, argv, pod.proxy_log, cwd="/")

    def _wait_ready(self, pod):
        deadline = Deadline(30)
        last = None
        for _ in range(300):
            if pod.proxy.poll() is not None:
                raise RuntimeError("weft-proxy in pod %s exited with %s during startup:\n%s"
                                   % (pod.key.upper(), pod.proxy.returncode, self.proc_log(pod.proxy_log)))
            try:
                r = pod.admin("/ready", timeout=2)
                if r.status == 200:
                    return
                last = r
            except (OSError, EOFError, TimeoutError, ValueError) as e:
                last = e
            if deadline.expired:
                break
            time.sleep(0.1)
        raise RuntimeError("weft-proxy in pod %s not ready after 30s (last: %r):\n%s"
                           % (pod.key.upper(), last, self.proc_log(pod.proxy_log)))

    # -- teardown ----------------------------------------------------------------
    def teardown(self):
        for name, p, _ in reversed(self.procs):
            try:
                self.stop(p)
            except Exception as e:  # keep tearing down
                print("teardown: stopping %s: %r" % (name, e), file=sys.stderr)
        for ns in self.created_ns:
            run(["ip", "netns", "del", ns], check=False)
        self.created_ns = []
        keep = os.environ.get("WEFT_E2E_KEEP") or _STATE["failed"]
        if keep:
            REPORT.append("e2e logs and configs kept in %s" % self.tmp)
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)

    # -- checks used by tests ------------------------------------------------------
    def check_alive(self):
        if not self.proxy_enabled:
            return
        for pod in (self.a, self.b):
            if not pod.proxy_alive():
                pytest.fail("weft-proxy in pod %s is not running (exit %s); log:\n%s"
                            % (pod.key.upper(), pod.proxy.returncode, self.proc_log(pod.proxy_log)),
                            pytrace=False)

    def assert_serving(self):
        """A normal request from pod A to nginx in pod B (through both sidecars) works."""
        r = self.a.curl("-o", "-", "-w", "\n%{http_code}", "http://%s:%d/hello" % (POD_B_V4, NGINX_PORT),
                        timeout=15)
        out = r.stdout.decode(errors="replace")
        assert r.returncode == 0 and out.endswith("\n200") and "hello from pod B" in out, \
            "follow-up request through the sidecars failed: exit %d, out %r, err %r" % (
                r.returncode, out, r.stderr.decode(errors="replace"))
        self.check_alive()

    def probe(self):
        return Probe(self)


# ==================================================================== probe ==

class Probe:
    """Metric deltas since the probe was created, on pod A's and/or pod B's proxy.

    In WEFT_E2E_NO_PROXY mode every assertion is skipped (returns None).
    """

    def __init__(self, topo):
        self.topo = topo
        self.enabled = topo.proxy_enabled
        self.before = {}
        if self.enabled:
            self.rebase()

    def rebase(self):
        if self.enabled:
            self.before = {k: pod.metrics() for k, pod in self.topo.pods.items()}

    def current(self, pods="ab"):
        return {k: self.topo.pods[k].metrics() for k in pods}

    def delta(self, pods, name, now=None, **labels):
        now = now or self.current(pods)
        return sum(now[k].sum(name, **labels) - self.before[k].sum(name, **labels) for k in pods)

    def expect(self, pods, name, at_least=None, exactly=None, at_most=None, timeout=5.0, **labels):
        """Waits (bounded) until delta(pods, name, labels) satisfies the bounds."""
        if not self.enabled:
            return None
        if at_least is None and exactly is None and at_most is None:
            at_least = 1

        def check():
            now = self.current(pods)
            d = self.delta(pods, name, now=now, **labels)
            ok = ((exactly is None or d == exactly) and (at_least is None or d >= at_least)
                  and (at_most is None or d <= at_most))
            if not ok:
                known = sorted({n for k in pods for n in now[k].names()})
                detail = "; ".join(
                    "pod %s: %s -> %s" % (k.upper(), self.before[k].sum(name, **labels), now[k].sum(name, **labels))
                    for k in pods)
                want = " ".join("%s %s" % (w, v) for w, v in
                                (("==", exactly), (">=", at_least), ("<=", at_most)) if v is not None)
                raise AssertionError(
                    "metric %s%s on pod(s) %s grew by %s, want %s (%s).\nmetric names exposed: %s"
                    % (name, fmt_labels(labels), pods.upper(), d, want, detail, ", ".join(known)))
            return d

        return eventually(check, timeout=timeout, interval=0.1)


# ================================================================== fixtures ==

@pytest.fixture(scope="session")
def topo():
    t = Topology()
    _STATE["topo"] = t
    failure = None
    # A SIGTERM (e.g. a CI time limit) unwinds like Ctrl-C, so teardown still runs.
    previous = signal.getsignal(signal.SIGTERM)

    def on_sigterm(signum, frame):
        raise KeyboardInterrupt("SIGTERM")

    signal.signal(signal.SIGTERM, on_sigterm)
    try:
        t.setup()
    except Exception as e:  # noqa: BLE001 - reported below with the logs
        failure = "e2e topology setup failed: %s\n%s" % (e, t.dump_logs())
    except BaseException:
        t.teardown()
        _STATE["topo"] = None
        signal.signal(signal.SIGTERM, previous)
        raise
    if failure is not None:
        t.teardown()
        _STATE["topo"] = None
        signal.signal(signal.SIGTERM, previous)
        pytest.fail(failure, pytrace=False)
    try:
        yield t
    finally:
        t.teardown()
        _STATE["topo"] = None
        signal.signal(signal.SIGTERM, previous)


@pytest.fixture
def probe(topo):
    return topo.probe()


@pytest.fixture
def pod_a(topo):
    return topo.a


@pytest.fixture
def pod_b(topo):
    return topo.b


@pytest.fixture(autouse=True)
def _weft_guard(request):
    """Records log offsets for failure reports; checks the proxies survived the test."""
    if "topo" not in request.fixturenames:
        yield
        return
    t = request.getfixturevalue("topo")
    t.check_alive()
    offsets = {}
    for p in t.log_paths():
        try:
            offsets[p] = os.path.getsize(p)
        except OSError:
            pass
    request.node._weft_log_offsets = offsets
    yield
    t.check_alive()


# ===================================================================== hooks ==

def pytest_configure(config):
    config.addinivalue_line("markers", "slow: long-running test (runs by default; deselect with -m 'not slow')")
    config.addinivalue_line("markers", "control_args(*flags): extra weft-control flags for the `control` fixture")
    config.addinivalue_line("markers", "collector_names(sans): the test https collector certificate's subject alternative names")
    if not config.pluginmanager.hasplugin("timeout"):
        config.addinivalue_line("markers", "timeout(seconds): per-test time limit (pytest-timeout)")


def pytest_collection_modifyitems(config, items):
    if not config.pluginmanager.hasplugin("timeout"):
        return
    for item in items:
        if item.get_closest_marker("timeout") is None and item.fspath.dirname == HERE:
            item.add_marker(pytest.mark.timeout(DEFAULT_TEST_TIMEOUT))


def pytest_report_header(config):
    mode = "NO-PROXY harness check (WEFT_E2E_NO_PROXY=1)" if NO_PROXY else "proxy %s%s" % (
        PROXY_BIN, "" if os.path.exists(PROXY_BIN) else " (MISSING)")
    return "weft e2e: " + mode


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if not rep.failed:
        return
    item._control_failed = True  # control_fixtures.cenv keeps its files and prints its logs
    _STATE["failed"] = True
    t = _STATE["topo"]
    if t is None:
        return
    offsets = getattr(item, "_weft_log_offsets", {})
    for path in t.log_paths():
        try:
            with open(path, "rb") as f:
                start = offsets.get(path, 0)
                f.seek(start)
                data = f.read()
        except OSError:
            continue
        is_proxy = os.path.basename(path).startswith("proxy-")
        if not data and not is_proxy:
            continue
        text = data.decode("utf-8", "replace")
        limit = 30000 if is_proxy else 3000
        if len(text) > limit:
            text = "...[cut]...\n" + text[-limit:]
        rep.sections.append(("log %s (from byte %d)" % (os.path.basename(path), start), text or "<empty>"))


def pytest_terminal_summary(terminalreporter):
    if REPORT:
        terminalreporter.section("weft e2e report")
        for line in REPORT:
            terminalreporter.write_line(line)
