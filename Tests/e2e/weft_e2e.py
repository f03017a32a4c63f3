"""Helpers shared by the Weft end-to-end tests (imported by conftest and tests).

Nothing in here starts processes that outlive a call except through the
Topology in conftest.py.  All network traffic goes to loopback or to the test
namespaces' own addresses (10.211.0.0/24, fd00:211::/64).
"""

import ctypes
import json
import math
import os
import re
import shlex
import socket
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
PYTHON = sys.executable

# ---------------------------------------------------------------- addresses --
POD_A_V4, POD_B_V4 = "10.211.0.1", "10.211.0.2"
POD_A_V6, POD_B_V6 = "fd00:211::1", "fd00:211::2"

# ------------------------------------------------------------------- ports --
ADMIN_PORT = 15000
OUTBOUND_PORT = 15001
INBOUND_PORT = 15006
PROXY_UID = PROXY_GID = 2102

NGINX_PORT = 80          # nginx, HTTP/1.1, static files
H2_PORT = 8080           # nginx, h2c prior knowledge
H2_GOAWAY_PORT = 8082    # nginx, h2c, GOAWAY after every 25 requests on a connection
PYHTTP_PORT = 8000       # python http: /echo /headers /upload /download
GRPC_PORT = 50051
ECHO_PORT = 7000         # opaque TCP echo
BANNER_PORT = 6379       # server-speaks-first (in the proxy's default opaque list)
WS_PORT = 8765
RESET_PORT = 7001        # reads the request, then RST
BLACKHOLE_PORT = 7002    # reads, never answers
BAD_H2_PORT = 7004       # h2c server whose response head is not valid HTTP/2
REFUSING_H2_PORT = 7005  # h2c server that refuses the first request on each connection
CLOSED_PORT = 7003       # nothing listens (HTTP)
CLOSED_OPAQUE_PORT = 11211  # nothing listens; in the default opaque list

NO_PROXY = os.environ.get("WEFT_E2E_NO_PROXY", "") not in ("", "0", "false", "no")

# Lines for the "weft e2e report" section at the end of the run (conftest prints them).
REPORT = []


def report_line(text):
    """Adds a line to the end-of-run summary (and prints it for -s / -rP)."""
    print(text)
    REPORT.append(text)


def _requires_proxy():
    import pytest
    return pytest.mark.skipif(NO_PROXY, reason="proxy-specific (WEFT_E2E_NO_PROXY=1)")


requires_proxy = _requires_proxy()

CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


class Deadline:
    """A point in time; every loop in the suite is bounded by one."""

    def __init__(self, seconds):
        self.seconds = seconds
        self.end = time.monotonic() + seconds

    def remaining(self, floor=0.0):
        return max(floor, self.end - time.monotonic())

    @property
    def expired(self):
        return time.monotonic() >= self.end


def eventually(fn, timeout=5.0, interval=0.1, max_tries=1000):
    """Calls fn() until it stops raising AssertionError (bounded by time and count)."""
    deadline = Deadline(timeout)
    last = None
    for _ in range(max_tries):
        try:
            return fn()
        except AssertionError as e:
            last = e
        if deadline.expired:
            break
        time.sleep(interval)
    raise last


# ----------------------------------------------------------- netns sockets --

def ns_socket(ns, family=socket.AF_INET, type=socket.SOCK_STREAM, uncaptured=False):
    """Creates a socket inside network namespace `ns` (named, /run/netns/<ns>).

    A throwaway thread joins the namespace (setns is per thread), creates the
    socket and exits; the socket stays bound to that namespace for its life,
    so the caller can use it from any thread.

    uncaptured: the thread takes the proxy's UID/GID as its file-system ids
    first, so the socket is owned by 2102 and the pod's redirect rules let its
    traffic pass: a client in pod A that reaches pod B as a pod without a
    sidecar would (pod B's inbound capture still applies).
    """
    if ns is None:
        return socket.socket(family, type)
    box = {}

    def worker():
        try:
            fd = os.open("/run/netns/" + ns, os.O_RDONLY | os.O_CLOEXEC)
            try:
                if _libc.setns(fd, CLONE_NEWNET) != 0:
                    err = ctypes.get_errno()
                    raise OSError(err, "setns(%s): %s" % (ns, os.strerror(err)))
            finally:
                os.close(fd)
            if uncaptured:
                # Per thread in Linux: a socket takes its owner from the fsuid.
                _libc.setfsgid(PROXY_GID)
                _libc.setfsuid(PROXY_UID)
            box["sock"] = socket.socket(family, type)
        except BaseException as e:  # noqa: BLE001 - handed to the caller
            box["err"] = e

    t = threading.Thread(target=worker, name="setns-" + ns, daemon=True)
    t.start()
    t.join(10)
    if "err" in box:
        raise box["err"]
    if "sock" not in box:
        raise RuntimeError("could not create a socket in netns " + ns)
    return box["sock"]


def ns_connect(ns, host, port, timeout=5.0, uncaptured=False):
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = ns_socket(ns, family, uncaptured=uncaptured)
    s.settimeout(timeout)
    try:
        s.connect((host, port))
    except BaseException:
        s.close()
        raise
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def wait_for_port(ns, host, port, timeout=15.0, proc=None, what=""):
    """Polls until a TCP connect to host:port inside ns succeeds."""
    deadline = Deadline(timeout)
    last = None
    for _ in range(int(timeout / 0.05) + 2):
        if proc is not None and proc.poll() is not None:
            raise RuntimeError("%s exited with %s before listening on %s:%d"
                               % (what or "process", proc.returncode, host, port))
        try:
            s = ns_connect(ns, host, port, timeout=min(1.0, deadline.remaining(0.05)))
            s.close()
            return
        except OSError as e:
            last = e
        if deadline.expired:
            break
        time.sleep(0.05)
    raise TimeoutError("%s not listening on %s:%d in %s after %.0fs: %r"
                       % (what or "port", host, port, ns, timeout, last))


def recv_until_closed(sock, timeout=5.0, limit=1 << 24):
    """Reads until EOF, reset or deadline.

    Returns (data, how) where how is "eof", "reset" or "timeout".
    """
    deadline = Deadline(timeout)
    chunks, n = [], 0
    while n < limit:
        rem = deadline.remaining()
        if rem <= 0:
            return b"".join(chunks), "timeout"
        sock.settimeout(rem)
        try:
            data = sock.recv(65536)
        except socket.timeout:
            return b"".join(chunks), "timeout"
        except (ConnectionResetError, ConnectionAbortedError, BrokenPipeError):
            return b"".join(chunks), "reset"
        if not data:
            return b"".join(chunks), "eof"
        chunks.append(data)
        n += len(data)
    return b"".join(chunks), "limit"


def send_ignoring_reset(sock, data):
    """sendall that tolerates the peer having closed/reset already."""
    try:
        sock.sendall(data)
        return True
    except (ConnectionResetError, BrokenPipeError, ConnectionAbortedError):
        return False


# -------------------------------------------------- raw HTTP/1.1 responses --

class HTTPResponse:
    def __init__(self, version, status, reason, headers, body):
        self.version, self.status, self.reason = version, status, reason
        self.headers = headers  # list of (name, value)
        self.body = body

    def header(self, name, default=None):
        name = name.lower()
        for k, v in self.headers:
            if k.lower() == name:
                return v
        return default

    def __repr__(self):
        return "<HTTPResponse %s %s %r, %d body bytes>" % (
            self.status, self.reason, self.headers, len(self.body))


class RawReader:
    """Minimal buffered HTTP/1.1 response reader over a socket with a deadline."""

    def __init__(self, sock, timeout=10.0):
        self.sock = sock
        self.buf = b""
        self.deadline = Deadline(timeout)

    def _fill(self):
        rem = self.deadline.remaining()
        if rem <= 0:
            raise TimeoutError("timed out reading HTTP response; have %r" % self.buf[:200])
        self.sock.settimeout(rem)
        data = self.sock.recv(65536)
        if not data:
            raise EOFError("connection closed; have %r" % self.buf[:200])
        self.buf += data

    def read_until(self, marker, limit=1 << 20):
        for _ in range(100000):
            i = self.buf.find(marker)
            if i >= 0:
                out, self.buf = self.buf[: i + len(marker)], self.buf[i + len(marker):]
                return out
            if len(self.buf) > limit:
                raise ValueError("no %r within %d bytes" % (marker, limit))
            self._fill()
        raise RuntimeError("read_until loop bound")

    def read_exact(self, n):
        for _ in range(1000000):
            if len(self.buf) >= n:
                out, self.buf = self.buf[:n], self.buf[n:]
                return out
            self._fill()
        raise RuntimeError("read_exact loop bound")

    def read_response(self, method="GET"):
        for _ in range(10):  # skip interim 1xx responses (except 101)
            head = self.read_until(b"\r\n\r\n").decode("latin-1")
            lines = head.split("\r\n")
            version, status, *reason = lines[0].split(" ", 2)
            status = int(status)
            headers = []
            for line in lines[1:]:
                if line:
                    k, _, v = line.partition(":")
                    headers.append((k.strip(), v.strip()))
            if 100 <= status < 200 and status != 101:
                continue
            break
        resp = HTTPResponse(version, status, reason[0] if reason else "", headers, b"")
        if method == "HEAD" or status in (101, 204, 304) or 100 <= status < 200:
            return resp
        te = (resp.header("transfer-encoding") or "").lower()
        if "chunked" in te:
            body = []
            for _ in range(1000000):
                size = int(self.read_until(b"\r\n").split(b";")[0].strip(), 16)
                if size == 0:
                    while self.read_until(b"\r\n") != b"\r\n":
                        pass
                    break
                body.append(self.read_exact(size))
                self.read_exact(2)
            resp.body = b"".join(body)
        elif resp.header("content-length") is not None:
            resp.body = self.read_exact(int(resp.header("content-length")))
        else:  # read until close
            chunks = [self.buf]
            self.buf = b""
            for _ in range(1000000):
                try:
                    self._fill()
                except EOFError:
                    break
                chunks.append(self.buf)
                self.buf = b""
            resp.body = b"".join(chunks)
        return resp


def http_request(ns, host, port, method="GET", path="/", headers=(), body=b"", timeout=10.0):
    """One HTTP/1.1 request with Connection: close over a socket made inside ns."""
    s = ns_connect(ns, host, port, timeout=timeout)
    try:
        hostport = ("[%s]" % host if ":" in host else host) + ":%d" % port
        lines = ["%s %s HTTP/1.1" % (method, path), "Host: " + hostport, "Connection: close"]
        if body:
            lines.append("Content-Length: %d" % len(body))
        lines += ["%s: %s" % kv for kv in headers]
        s.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
        return RawReader(s, timeout).read_response(method)
    finally:
        s.close()


# ------------------------------------------------------------ subprocesses --

def netns_cmd(ns, argv):
    return ["ip", "netns", "exec", ns] + list(argv)


def run(argv, timeout=30.0, check=True, input=None, env=None):
    """subprocess.run with a timeout, capturing text output."""
    try:
        p = subprocess.run(argv, input=input, capture_output=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired as e:
        raise AssertionError("command timed out after %ss: %s\nstdout: %s\nstderr: %s" % (
            timeout, shlex.join(argv), _txt(e.stdout), _txt(e.stderr))) from None
    if check and p.returncode != 0:
        raise AssertionError("command failed (exit %d): %s\nstdout: %s\nstderr: %s" % (
            p.returncode, shlex.join(argv), _txt(p.stdout), _txt(p.stderr)))
    return p


def _txt(b):
    if b is None:
        return ""
    if isinstance(b, bytes):
        b = b.decode("utf-8", "replace")
    return b[-4000:]


# --------------------------------------------------------- metrics parsing --

_SAMPLE = re.compile(
    r'^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)'
    r'(?:\{(?P<labels>.*)\})?'
    r'\s+(?P<value>\S+)(?:\s+(?P<ts>-?\d+))?\s*$')
_LABEL = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*,?')


def _unescape(v):
    return v.replace("\\\\", "\0").replace('\\"', '"').replace("\\n", "\n").replace("\0", "\\")


def _parse_value(s):
    if s in ("+Inf", "Inf"):
        return math.inf
    if s == "-Inf":
        return -math.inf
    if s == "NaN":
        return math.nan
    return float(s)


class Metrics:
    """Parsed Prometheus text exposition."""

    def __init__(self, text):
        self.text = text
        self.samples = []   # (name, {labels}, value)
        self.types = {}     # family -> type
        self.helps = {}
        for lineno, line in enumerate(text.splitlines(), 1):
            line = line.strip()
            if not line:
                continue
            if line.startswith("#"):
                parts = line.split(None, 3)
                if len(parts) >= 3 and parts[1] == "TYPE":
                    self.types[parts[2]] = parts[3].strip() if len(parts) > 3 else ""
                elif len(parts) >= 3 and parts[1] == "HELP":
                    self.helps[parts[2]] = parts[3] if len(parts) > 3 else ""
                continue
            m = _SAMPLE.match(line)
            if not m:
                raise ValueError("bad metrics line %d: %r" % (lineno, line))
            labels = {}
            raw = m.group("labels") or ""
            pos = 0
            while pos < len(raw):
                lm = _LABEL.match(raw, pos)
                if not lm:
                    raise ValueError("bad labels on line %d: %r" % (lineno, line))
                labels[lm.group(1)] = _unescape(lm.group(2))
                pos = lm.end()
            self.samples.append((m.group("name"), labels, _parse_value(m.group("value"))))

    def select(self, name, **labels):
        return [(l, v) for n, l, v in self.samples
                if n == name and all(l.get(k) == str(val) for k, val in labels.items())]

    def sum(self, name, **labels):
        """Sum of `name` over all series whose labels include `labels`."""
        return sum(v for _, v in self.select(name, **labels))

    def names(self):
        return sorted({n for n, _, _ in self.samples})

    def histogram_buckets(self, name, **labels):
        """{le: cumulative count} of one histogram, summed over the matching series."""
        out = {}
        for l, v in self.select(name + "_bucket", **labels):
            le = _parse_value(l["le"])
            out[le] = out.get(le, 0) + v
        return dict(sorted(out.items()))


def fmt_labels(labels):
    return "{%s}" % ",".join('%s="%s"' % kv for kv in sorted(labels.items()))


def json_loads(b):
    return json.loads(b.decode() if isinstance(b, bytes) else b)
