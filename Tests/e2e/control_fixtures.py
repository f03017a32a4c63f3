"""Fixtures and helpers for the control-plane end-to-end tests (test_control*.py).

Real processes: `weft-control` with a CA made by `weftctl ca init`, a token file and a
copy of control-plane/config; `weft-proxy run` as a plain process on loopback (no
iptables needed for control-plane behaviour); and a small Python client of the control
protocol (docs/protocol.md) that speaks TLS 1.3 to the push port.

Every process a fixture starts is killed in its finally; every wait is bounded; ports
are picked free per test; files live in a per-test temp dir.

Binaries: WEFT_PROXY_BIN (scripts/test.sh: .build/release/weft-proxy); weft-control and
weftctl beside it unless WEFT_CONTROL_BIN / WEFTCTL_BIN say otherwise.
"""

import base64
import json
import os
import re
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
PROXY_BIN = os.environ.get("WEFT_PROXY_BIN") or os.path.join(REPO, ".build", "debug", "weft-proxy")


def _beside_proxy(name, env):
    if os.environ.get(env):
        return os.environ[env]
    sibling = os.path.join(os.path.dirname(PROXY_BIN), name)
    if os.path.exists(sibling):
        return sibling
    return os.path.join(REPO, ".build", "debug", name)


CONTROL_BIN = _beside_proxy("weft-control", "WEFT_CONTROL_BIN")
WEFTCTL = _beside_proxy("weftctl", "WEFTCTL_BIN")
CONFIG_SRC = os.path.join(REPO, "control-plane", "config")
TOKEN = "weft-e2e-token-%d" % os.getpid()
CLIENT_ID = "spiffe://cluster.local/ns/demo/sa/client"
CONTROL_ID = "spiffe://cluster.local/ns/weft-system/sa/weft-control"

for _var in ("http_proxy", "https_proxy", "all_proxy", "no_proxy", "HTTP_PROXY", "HTTPS_PROXY",
             "ALL_PROXY", "NO_PROXY"):
    os.environ.pop(_var, None)


# ------------------------------------------------------------------ basics --

_handed_out = set()


def free_port():
    """A loopback port nobody listens on, never one this test session handed out before.

    The kernel may give the same ephemeral port to two bind-and-close calls in a row, so
    without the set a proxy could be started with two equal ports (and exit at once).
    """
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in _handed_out:
            _handed_out.add(port)
            return port
    raise AssertionError("no fresh loopback port in 100 tries")


def run(argv, timeout=30.0, check=True, input=None, **kw):
    p = subprocess.run(argv, capture_output=True, timeout=timeout, input=input, **kw)
    if check and p.returncode != 0:
        raise AssertionError("%s exited %d:\nstdout: %s\nstderr: %s" % (
            " ".join(map(str, argv)), p.returncode, p.stdout.decode(errors="replace"),
            p.stderr.decode(errors="replace")))
    return p


def out(p):
    return (p.stdout or b"").decode(errors="replace") + (p.stderr or b"").decode(errors="replace")


def eventually(fn, timeout=10.0, interval=0.1, what="condition"):
    """Calls fn() until it returns without AssertionError; bounded by `timeout`."""
    end = time.monotonic() + timeout
    last = None
    while True:
        try:
            return fn()
        except AssertionError as e:
            last = e
        except OSError as e:  # e.g. connection refused while a process starts
            last = AssertionError("%s: %r" % (what, e))
        if time.monotonic() >= end:
            raise AssertionError("%s not reached in %.0fs: %s" % (what, timeout, last))
        time.sleep(interval)


def http_get(url, timeout=3.0):
    """(status, body text); never raises for an HTTP status."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.read().decode(errors="replace")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(errors="replace")


def metric(text, name, **labels):
    """Sum of the samples of `name` whose labels include `labels` (None when absent)."""
    total, seen = 0.0, False
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = re.match(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)", line)
        if not m or m.group(1) != name:
            continue
        have = dict(re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"', m.group(2) or ""))
        if all(have.get(k) == v for k, v in labels.items()):
            total += float(m.group(3))
            seen = True
    return total if seen else None


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def write_atomic(path, text):
    """Writes a file the way an editor or a ConfigMap update does: temp file + rename."""
    tmp = os.path.join(os.path.dirname(path), ".%s.tmp" % os.path.basename(path))
    with open(tmp, "w") as f:
        f.write(text)
    os.rename(tmp, path)


def stop_process(p, grace=5.0):
    """SIGTERM then SIGKILL the process group of a Popen this module started."""
    if p is None or p.poll() is not None:
        return
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(p.pid, sig)
        except ProcessLookupError:
            return
        try:
            p.wait(wait)
            return
        except subprocess.TimeoutExpired:
            continue


def tail(path, limit=6000):
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        return "<%s>" % e
    text = data.decode(errors="replace")
    return text[-limit:]


def weftctl(*args, check=False, timeout=20.0, prefix=()):
    return run(list(prefix) + [WEFTCTL] + [str(a) for a in args], timeout=timeout, check=check)


# ----------------------------------------------------------------- PKI ------

def openssl_csr(directory, name, uri):
    """An ECDSA P-256 key and a CSR whose only identity is the URI SAN `uri`."""
    key, csr = os.path.join(directory, name + ".key"), os.path.join(directory, name + ".csr")
    run(["openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
         "-keyout", key, "-out", csr, "-subj", "/", "-addext", "subjectAltName=URI:" + uri])
    with open(csr) as f:
        return key, f.read()


def sign_with(key_path, data):
    """Base64 of the DER ECDSA-Sig-Value (P-256, SHA-256) by `key_path` over `data`."""
    p = run(["openssl", "dgst", "-sha256", "-sign", key_path], input=data)
    return base64.b64encode(p.stdout).decode()


def split_pem(text):
    return re.findall(r"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----\n?", text, re.S)


# ------------------------------------------------------------ environment --

E2E_PODS = """\
apiVersion: v1
kind: Pod
metadata: {name: client-1, namespace: demo, labels: {app: client}}
spec: {serviceAccountName: client}
status: {podIP: 10.211.0.9}
---
apiVersion: v1
kind: Pod
metadata: {name: web-7d4b9c-x2x, namespace: demo, labels: {app: web}}
spec: {serviceAccountName: web}
status: {podIP: 10.211.0.9}
"""


class ControlEnv:
    """A temp dir with a CA, a token file and a config folder; the processes started on it."""

    def __init__(self, base):
        self.dir = base
        self.ca = os.path.join(base, "ca")
        self.bundle = os.path.join(self.ca, "bundle.crt")
        self.config = os.path.join(base, "config")
        self.token_file = os.path.join(base, "token")
        self.procs = []  # Popen, every one killed at teardown
        self.control = None

    def setup(self, ca_template):
        shutil.copytree(ca_template, self.ca)
        shutil.copytree(CONFIG_SRC, self.config)
        # With the shared token, only pods in the config are issued an identity: the
        # pods the tests play besides the demo's client-0 and web-0.
        with open(os.path.join(self.config, "e2e-pods.yaml"), "w") as f:
            f.write(E2E_PODS)
        with open(self.token_file, "w") as f:
            f.write(TOKEN + "\n")
        for root, dirs, files in os.walk(self.dir):
            for d in dirs:
                os.chmod(os.path.join(root, d), 0o755)
            for name in files:
                if not name.endswith(".key"):
                    os.chmod(os.path.join(root, name), 0o644)
        os.chmod(self.dir, 0o755)

    def popen(self, argv, log, prefix=()):
        f = open(log, "ab")
        try:
            p = subprocess.Popen(list(prefix) + list(argv), stdin=subprocess.DEVNULL, stdout=f,
                                 stderr=subprocess.STDOUT, start_new_session=True, close_fds=True)
        finally:
            f.close()
        self.procs.append(p)
        return p

    def teardown(self):
        for p in reversed(self.procs):
            try:
                stop_process(p, grace=2.0)
            except Exception:  # noqa: BLE001 - keep tearing down
                pass

    # -- processes --
    def start_control(self, push_port=None, http_port=None, prefix=(), wait=True, extra=(), host="127.0.0.1"):
        cp = ControlPlane(self, push_port or free_port(), http_port or free_port(), prefix=prefix, host=host)
        cp.start(wait=wait, extra=extra)
        self.control = cp
        return cp

    def start_proxy(self, control_port, pod="client-0", sa="client", cache_dir=None, token_file=None,
                    prefix=(), extra=(), name=None, ports=None, control_host="127.0.0.1", pod_ip="10.211.0.1"):
        px = Proxy(self, control_port, pod=pod, sa=sa, cache_dir=cache_dir, token_file=token_file,
                   prefix=prefix, name=name, ports=ports, control_host=control_host, pod_ip=pod_ip)
        px.start(extra=extra)
        return px

    # -- config folder --
    def path(self, name):
        return os.path.join(self.config, name)

    def read(self, name):
        with open(self.path(name)) as f:
            return f.read()

    def write(self, name, text):
        write_atomic(self.path(name), text)


class ControlPlane:
    def __init__(self, env, push_port, http_port, prefix=(), host="127.0.0.1"):
        self.env, self.push_port, self.http_port, self.prefix = env, push_port, http_port, tuple(prefix)
        # The OTLP span intake too gets a free port: control planes of one run share 127.0.0.1.
        self.otlp_port = free_port()
        self.host = host  # --host: the push port's address (the HTTP port's too, unless --http-host)
        self.log = os.path.join(env.dir, "control-%d.log" % push_port)
        self.proc = None

    @property
    def http(self):
        return "127.0.0.1:%d" % self.http_port

    def start(self, wait=True, extra=()):
        argv = [CONTROL_BIN, "--config", self.env.config, "--ca", self.env.ca, "--token-file",
                self.env.token_file, "--host", self.host, "--push-port", str(self.push_port),
                "--http-port", str(self.http_port), "--debounce", "50ms"]
        if "--otlp-port" not in extra:
            argv += ["--otlp-port", str(self.otlp_port)]
        argv += list(extra)
        self.proc = self.env.popen(argv, self.log, prefix=self.prefix)
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self, timeout=20.0):
        def ready():
            assert self.proc.poll() is None, "weft-control exited %s:\n%s" % (self.proc.returncode, tail(self.log))
            code, body = self.get("/ready")
            assert code == 200, "weft-control /ready: %s %s" % (code, body)
        eventually(ready, timeout=timeout, what="weft-control ready")

    def get(self, path, timeout=3.0):
        if self.prefix:  # inside a namespace: curl there
            p = run(list(self.prefix) + ["curl", "-s", "--max-time", str(int(timeout)), "-w", "\n%{http_code}",
                                         "http://127.0.0.1:%d%s" % (self.http_port, path)],
                    timeout=timeout + 5, check=False)
            body, _, code = p.stdout.decode(errors="replace").rpartition("\n")
            return (int(code) if code.isdigit() else 0), body
        return http_get("http://127.0.0.1:%d%s" % (self.http_port, path), timeout=timeout)

    def metrics(self):
        code, body = self.get("/metrics")
        assert code == 200, "weft-control /metrics: %s" % code
        return body

    def metric(self, name, **labels):
        return metric(self.metrics(), name, **labels)

    def proxies(self):
        code, body = self.get("/api/v1/proxies")
        assert code == 200, body
        return json.loads(body)

    def status(self):
        code, body = self.get("/api/v1/status")
        assert code == 200, body
        return json.loads(body)

    def generation(self):
        return self.status()["config"]["generation"]

    def check(self, *args):
        return weftctl("check", "--control-plane", self.http, *args, prefix=self.prefix)

    def wait_acked(self, pod="client-0", generation=None, timeout=10.0):
        """Waits until `weftctl check` passes with `pod` connected and acked; returns its status."""
        def acked():
            gen = self.generation() if generation is None else generation
            mine = [p for p in self.proxies() if p["pod"] == pod]
            assert len(mine) == 1, "proxy %s not connected: %s" % (pod, self.proxies())
            s = mine[0]
            assert s["ackedGeneration"] >= gen and s["ackedVersion"] == s["version"], s
            c = self.check()
            # Config and proxies must pass; handshake failures a test provoked on purpose
            # (the per-proxy identity checks) do not make a proxy less acked.
            failed = [line for line in out(c).splitlines()
                      if line.startswith("✘") and not line.startswith(("✘ mesh TLS:", "✘ certificates:"))]
            assert c.returncode == 0 or (c.returncode == 1 and not failed), "weftctl check failed:\n%s" % out(c)
            return s
        return eventually(acked, timeout=timeout, what="proxy %s acked" % pod)

    def kill(self, sig=signal.SIGKILL):
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)
            self.proc.wait(10)

    def logs(self):
        return tail(self.log)


class Proxy:
    def __init__(self, env, control_port, pod="client-0", sa="client", cache_dir=None, token_file=None,
                 prefix=(), name=None, ports=None, control_host="127.0.0.1", pod_ip="10.211.0.1"):
        self.env, self.control_port, self.pod, self.sa = env, control_port, pod, sa
        self.control_host, self.pod_ip = control_host, pod_ip
        self.binary = PROXY_BIN  # a copy may stand in (e.g. one that UID 2102 can execute)
        self.cache_dir = cache_dir or os.path.join(env.dir, "cache-" + (name or pod))
        self.token_file = token_file or env.token_file
        self.prefix = tuple(prefix)
        self.admin_port, self.outbound_port, self.inbound_port = ports or (free_port(), free_port(), free_port())
        self.log = os.path.join(env.dir, "proxy-%s.log" % (name or pod))
        self.proc = None

    def start(self, extra=()):
        argv = [self.binary, "run", "--control-plane", "%s:%d" % (self.control_host, self.control_port),
                "--token-file", self.token_file, "--trust-bundle", self.env.bundle, "--cache-dir", self.cache_dir,
                "--pod-name", self.pod, "--pod-namespace", "demo", "--service-account", self.sa,
                "--pod-ip", self.pod_ip, "--admin-host", "127.0.0.1", "--admin-port", str(self.admin_port),
                "--outbound-port", str(self.outbound_port), "--inbound-port", str(self.inbound_port),
                "--no-ipv6"] + list(extra)
        self.proc = self.env.popen(argv, self.log, prefix=self.prefix)
        return self

    def stop(self):
        stop_process(self.proc)

    def get(self, path, timeout=3.0):
        if self.prefix:
            p = run(list(self.prefix) + ["curl", "-s", "--max-time", str(int(timeout)), "-w", "\n%{http_code}",
                                         "http://127.0.0.1:%d%s" % (self.admin_port, path)],
                    timeout=timeout + 5, check=False)
            body, _, code = p.stdout.decode(errors="replace").rpartition("\n")
            return (int(code) if code.isdigit() else 0), body
        return http_get("http://127.0.0.1:%d%s" % (self.admin_port, path), timeout=timeout)

    def alive(self):
        assert self.proc.poll() is None, "weft-proxy exited %s:\n%s" % (self.proc.returncode, tail(self.log))

    def ready(self):
        return self.get("/ready")

    def wait_ready(self, timeout=20.0):
        def check():
            self.alive()
            code, body = self.ready()
            assert code == 200, "proxy /ready: %s %r" % (code, body)
        eventually(check, timeout=timeout, what="proxy %s ready" % self.pod)

    def config(self):
        code, body = self.get("/config")
        assert code == 200, "proxy /config: %s %s" % (code, body)
        return json.loads(body)

    def metrics(self):
        code, body = self.get("/metrics")
        assert code == 200
        return body


# ------------------------------------------------------- protocol client ----

class ProtocolClient:
    """A control-protocol client over TLS 1.3 that trusts only the mesh bundle."""

    def __init__(self, port, bundle, host="127.0.0.1", timeout=10.0):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_3
        ctx.check_hostname = False  # the server is named by its SPIFFE ID, not a DNS name
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.load_verify_locations(bundle)
        raw = socket.create_connection((host, port), timeout=timeout)
        self.sock = ctx.wrap_socket(raw)
        self.sock.settimeout(timeout)
        self.buf = b""
        self.closed = False

    def peer_der(self):
        return self.sock.getpeercert(binary_form=True)

    def send_raw(self, data):
        self.sock.sendall(data)

    def send(self, msg):
        body = json.dumps(msg).encode()
        self.sock.sendall(struct.pack(">I", len(body)) + body)

    def _fill(self, deadline):
        rem = deadline - time.monotonic()
        if rem <= 0:
            raise TimeoutError("no frame in time; buffered %r" % self.buf[:200])
        self.sock.settimeout(rem)
        try:
            data = self.sock.recv(65536)
        except (ConnectionResetError, BrokenPipeError, ssl.SSLError):
            data = b""
        if not data:
            self.closed = True
            raise EOFError("connection closed; buffered %r" % self.buf[:200])
        self.buf += data

    def recv(self, timeout=10.0):
        """The next frame as a dict; EOFError when the server closed, TimeoutError when none came."""
        deadline = time.monotonic() + timeout
        while len(self.buf) < 4:
            self._fill(deadline)
        (n,) = struct.unpack(">I", self.buf[:4])
        while len(self.buf) < 4 + n:
            self._fill(deadline)
        body, self.buf = self.buf[4:4 + n], self.buf[4 + n:]
        return json.loads(body)

    def recv_type(self, kind, timeout=10.0, answer_pings=True):
        """Skips pings/pongs (answering pings) until a frame of `kind`."""
        deadline = time.monotonic() + timeout
        while True:
            m = self.recv(timeout=max(0.01, deadline - time.monotonic()))
            if m.get("type") == kind:
                return m
            if m.get("type") == "ping" and answer_pings:
                self.send({"type": "pong", "id": m["id"]})
                continue
            if m.get("type") in ("ping", "pong"):
                continue
            raise AssertionError("expected %s, got %r" % (kind, m))

    def expect_closed(self, timeout=5.0):
        """True when the server closes the connection (EOF or reset) within `timeout`."""
        deadline = time.monotonic() + timeout
        try:
            while True:
                self._fill(deadline)
        except EOFError:
            return True
        except (TimeoutError, socket.timeout):
            return False

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def hello(csr, pod="client-0", sa="client", token=TOKEN, protocol=1, **extra):
    m = {"type": "hello", "protocol": protocol, "proxyVersion": "e2e-python",
         "node": {"pod": pod, "namespace": "demo", "serviceAccount": sa, "ip": "10.211.0.9", "labels": {}},
         "token": token, "csr": csr}
    m.update(extra)
    return m


# ---------------------------------------------------------------- fixtures --

@pytest.fixture(scope="session")
def ca_template():
    """One CA for the session (copied into each test's dir): `weftctl ca init --out`."""
    for b in (PROXY_BIN, CONTROL_BIN, WEFTCTL):
        if not os.access(b, os.X_OK):
            pytest.fail("binary missing: %s (scripts/build-release.sh, or WEFT_PROXY_BIN / WEFT_CONTROL_BIN / "
                        "WEFTCTL_BIN)" % b, pytrace=False)
    d = tempfile.mkdtemp(prefix="weft-e2e-ca-")
    try:
        ca = os.path.join(d, "ca")
        run([WEFTCTL, "ca", "init", "--out", ca])
        for name in ("bundle.crt", "intermediate.crt", "intermediate.key"):
            assert os.path.exists(os.path.join(ca, name)), "weftctl ca init did not write %s" % name
        yield ca
    finally:
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def cenv(ca_template, request):
    """A fresh ControlEnv (CA copy, token, config folder); kills its processes at teardown."""
    base = tempfile.mkdtemp(prefix="weft-e2e-control-")
    env = ControlEnv(base)
    failed = True
    try:
        env.setup(ca_template)
        yield env
        failed = getattr(request.node, "_control_failed", False)
    finally:
        env.teardown()
        if failed or os.environ.get("WEFT_E2E_KEEP"):
            for name in sorted(os.listdir(base)):
                if name.endswith(".log"):
                    print("===== %s =====\n%s" % (name, tail(os.path.join(base, name), 4000)))
            print("control e2e files kept in %s" % base)
        else:
            shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def control(cenv, request):
    """weft-control on `cenv`; a test's `@pytest.mark.control_args(...)` adds flags."""
    marker = request.node.get_closest_marker("control_args")
    return cenv.start_control(extra=marker.args if marker else ())


@pytest.fixture
def proxy(cenv, control):
    """A well-behaved weft-proxy connected to `control`, ready and acked."""
    px = cenv.start_proxy(control.push_port)
    px.wait_ready()
    px.session = control.wait_acked()["session"]  # still_serving() checks it never changes
    return px
