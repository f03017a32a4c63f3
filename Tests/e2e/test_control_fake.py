"""weft-proxy against a scripted fake control plane (Python, TLS 1.3, the protocol of
docs/protocol.md): the real weft-control validates everything, so only a fake can push
what the proxy must refuse.

The fake's certificate comes from `weftctl ca issue` and the proxy's from
`weftctl ca sign`, both with the test's CA.
"""

import calendar
import json
import os
import socket
import ssl
import struct
import sys
import time

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from control_fixtures import (  # noqa: E402,F401 - fixtures are used by name
    CLIENT_ID, WEFTCTL, ca_template, cenv, eventually, free_port, run,
)

MESH = {"trustDomain": "cluster.local", "mtls": "PERMISSIVE",
        "retryBudget": {"ratio": 0.2, "minRetriesPerSecond": 10, "windowMs": 10000},
        "traceSampling": 1.0, "outboundPolicy": "ALLOW_ANY"}
WEB = {"key": "demo/web", "clusterIPs": ["10.96.0.10"], "hosts": ["web.demo.svc.cluster.local"],
       "ports": [{"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP", "appProtocol": "http"}]}


def route(path, path_type="PathPrefix"):
    return {"service": "demo/web", "routes": [{
        "name": "demo/web", "port": 80,
        "rules": [{"matches": [{"pathType": path_type, "path": path}],
                   "backends": [{"service": "demo/web", "port": 80, "weight": 1}]}]}]}


def endpoints(*addresses):
    return {"service": "demo/web", "endpoints": [
        {"address": a, "ports": [{"name": "http", "port": 8080}], "ready": True, "serving": True,
         "terminating": False} for a in addresses]}


def rfc3339(openssl_date):
    t = calendar.timegm(time.strptime(openssl_date.strip(), "%b %d %H:%M:%S %Y %Z"))
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


class FakeControlPlane:
    """Listens with a certificate for (namespace, service account) issued by the test CA."""

    def __init__(self, cenv, namespace="weft-system", sa="weft-control"):
        self.cenv = cenv
        self.dir = os.path.join(cenv.dir, "fake-%s-%s" % (namespace, sa))
        run([WEFTCTL, "ca", "issue", "--ca", cenv.ca, "--namespace", namespace, "--service-account", sa,
             "--out", self.dir])
        cert = os.path.join(self.dir, "cert.pem")
        with open(cert) as f:
            chain = f.read()
        if chain.count("BEGIN CERTIFICATE") < 2:  # serve leaf + intermediate
            with open(os.path.join(cenv.ca, "intermediate.crt")) as f:
                chain += f.read()
            cert = os.path.join(self.dir, "chain.pem")
            with open(cert, "w") as f:
                f.write(chain)
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.minimum_version = ssl.TLSVersion.TLSv1_3
        self.ctx.load_cert_chain(cert, os.path.join(self.dir, "key.pem"))
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(8)
        self.port = self.listener.getsockname()[1]
        self.conns = []

    def accept(self, timeout=20.0, proxy=None):
        """The next proxy connection, TLS handshake done.

        With `proxy`, a proxy that exits while we wait fails at once, with its log.
        """
        deadline = time.monotonic() + timeout
        while True:
            if proxy is not None:
                proxy.alive()
            rem = deadline - time.monotonic()
            if rem <= 0:
                raise TimeoutError("no connection from the proxy in %.0f s" % timeout)
            self.listener.settimeout(min(rem, 0.5))
            try:
                raw, _ = self.listener.accept()
                break
            except TimeoutError:
                continue
        raw.settimeout(10)
        conn = FakeConn(self.ctx.wrap_socket(raw, server_side=True), self)
        self.conns.append(conn)
        return conn

    def close(self):
        for c in self.conns:
            c.close()
        self.listener.close()


class FakeConn:
    def __init__(self, sock, fake):
        self.sock, self.fake, self.buf = sock, fake, b""
        self.nonce = 0

    def send(self, msg):
        body = json.dumps(msg).encode()
        self.sock.sendall(struct.pack(">I", len(body)) + body)

    def _fill(self, deadline):
        rem = deadline - time.monotonic()
        if rem <= 0:
            raise TimeoutError("no frame from the proxy; buffered %r" % self.buf[:200])
        self.sock.settimeout(rem)
        try:
            data = self.sock.recv(65536)
        except (ConnectionResetError, ssl.SSLError, BrokenPipeError):
            data = b""
        if not data:
            raise EOFError("the proxy closed the connection; buffered %r" % self.buf[:200])
        self.buf += data

    def recv(self, timeout=10.0, skip_pings=True):
        deadline = time.monotonic() + timeout
        while True:
            while len(self.buf) < 4:
                self._fill(deadline)
            (n,) = struct.unpack(">I", self.buf[:4])
            while len(self.buf) < 4 + n:
                self._fill(deadline)
            body, self.buf = self.buf[4:4 + n], self.buf[4 + n:]
            m = json.loads(body)
            if skip_pings and m.get("type") == "ping":
                self.send({"type": "pong", "id": m["id"]})
                continue
            if skip_pings and m.get("type") == "pong":
                continue
            return m

    def next_nonce(self):
        self.nonce += 1
        return "n%d" % self.nonce

    def identity_for(self, hello_msg):
        """Signs the hello's CSR with `weftctl ca sign` and sends the identity."""
        d = self.fake.cenv.dir
        csr, chain = os.path.join(d, "proxy.csr"), os.path.join(d, "proxy-chain.pem")
        with open(csr, "w") as f:
            f.write(hello_msg["csr"])
        run([WEFTCTL, "ca", "sign", "--ca", self.fake.cenv.ca, "--csr", csr, "--namespace", "demo",
             "--service-account", "client", "--out", chain])
        with open(chain) as f:
            chain_pem = f.read()
        with open(self.fake.cenv.bundle) as f:
            bundle = f.read()
        dates = run(["openssl", "x509", "-in", chain, "-noout", "-startdate", "-enddate"]).stdout.decode()
        fields = dict(line.split("=", 1) for line in dates.splitlines() if "=" in line)
        self.send({"type": "identity", "spiffeId": CLIENT_ID, "chain": chain_pem, "trustBundle": bundle,
                   "notBefore": rfc3339(fields["notBefore"]), "notAfter": rfc3339(fields["notAfter"]),
                   "session": "fake-session-1"})

    def config(self, version, snapshot, generation=1):
        nonce = self.next_nonce()
        self.send({"type": "config", "version": version, "nonce": nonce, "generation": generation,
                   "snapshot": snapshot})
        return nonce

    def delta(self, version, base, upserts, removals=None, generation=1):
        nonce = self.next_nonce()
        self.send({"type": "delta", "version": version, "base": base, "nonce": nonce, "generation": generation,
                   "upserts": upserts, "removals": removals or {}})
        return nonce

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


@pytest.fixture
def fake(cenv):
    f = FakeControlPlane(cenv)
    try:
        yield f
    finally:
        f.close()


def answer(conn, nonce, version, kind):
    m = conn.recv()
    assert m["type"] == kind and m["version"] == version and m["nonce"] == nonce, \
        "expected %s of version %d, got %r" % (kind, version, m)
    return m


def test_nack_keeps_last_good_config(cenv, fake):
    px = cenv.start_proxy(fake.port)
    conn = fake.accept(proxy=px)
    h = conn.recv()
    assert h["type"] == "hello" and h["protocol"] == 1, h
    assert h["node"] == {"pod": "client-0", "namespace": "demo", "serviceAccount": "client", "ip": "10.211.0.1",
                         "labels": {}}, h["node"]
    assert "BEGIN CERTIFICATE REQUEST" in h["csr"] and h["token"] == open(cenv.token_file).read().strip()
    conn.identity_for(h)
    good = {"mesh": MESH, "services": [WEB], "routes": [route("/", "PathPrefix")],
            "endpoints": [endpoints("10.211.0.2")]}
    n = conn.config(1, good, generation=7)
    answer(conn, n, 1, "ack")
    px.wait_ready(timeout=5)
    cfg = px.config()
    assert (cfg["version"], cfg["generation"]) == (1, 7) and cfg["identity"]["spiffeId"] == CLIENT_ID, cfg
    old = cfg["config"]

    # A regular expression Swift's Regex cannot compile.
    n = conn.delta(2, 1, {"routes": [route("(", "RegularExpression")]}, generation=8)
    m = answer(conn, n, 2, "nack")
    assert "regular expression" in m["error"] and "rules[0].matches[0].path" in m["error"], m
    # An endpoint that is not an IP address.
    n = conn.delta(3, 1, {"endpoints": [endpoints("10.211.0.2", "web-1.example")]}, generation=9)
    m = answer(conn, n, 3, "nack")
    assert "not an IP address" in m["error"] and "web-1.example" in m["error"], m
    cfg = px.config()
    assert (cfg["version"], cfg["generation"]) == (1, 7) and cfg["config"] == old, cfg
    assert px.ready()[0] == 200

    # A delta for a version the proxy is not at.
    n = conn.delta(4, 3, {"endpoints": [endpoints("10.211.0.3")]}, generation=10)
    m = answer(conn, n, 4, "nack")
    assert m["error"].startswith("base mismatch"), m
    assert px.config()["config"] == old

    # A good delta on the right base still applies after the nacks.
    n = conn.delta(5, 1, {"endpoints": [endpoints("10.211.0.2", "10.211.0.4")]}, generation=11)
    answer(conn, n, 5, "ack")
    cfg = px.config()
    assert cfg["version"] == 5 and \
        [e["address"] for e in cfg["config"]["endpoints"]["demo/web"]["endpoints"]] == ["10.211.0.2", "10.211.0.4"]

    # A whole config replaces everything.
    n = conn.config(6, {"mesh": MESH, "services": [WEB], "routes": [route("/v2", "Exact")]}, generation=12)
    answer(conn, n, 6, "ack")
    cfg = px.config()
    assert (cfg["version"], cfg["generation"]) == (6, 12), cfg
    assert cfg["config"]["routes"]["demo/web"]["routes"][0]["rules"][0]["matches"][0]["path"] == "/v2"
    assert cfg["config"]["endpoints"] == {}, cfg["config"]["endpoints"]
    with open(os.path.join(px.cache_dir, "config.json")) as f:
        assert json.load(f)["version"] == 6

    # A config without mesh settings is refused too, and version 6 stays.
    n = conn.config(7, {"services": [WEB]}, generation=13)
    m = answer(conn, n, 7, "nack")
    assert "mesh" in m["error"], m
    assert px.config()["version"] == 6


def test_proxy_refuses_control_plane_with_another_identity(cenv):
    impostor = FakeControlPlane(cenv, namespace="demo", sa="web")
    try:
        px = cenv.start_proxy(impostor.port)
        for attempt in range(2):  # the first connection and the retry after backoff
            conn = impostor.accept(timeout=15, proxy=px)
            with pytest.raises(EOFError):
                m = conn.recv(timeout=5)
                pytest.fail("the proxy sent %r to a server with the wrong identity" % m)
            conn.close()
        px.alive()
        code, body = px.ready()
        assert code == 503 and "identity" in body, (code, body)
        assert b"presented spiffe://cluster.local/ns/demo/sa/web" in open(px.log, "rb").read()
    finally:
        impostor.close()


def test_proxy_pings_every_15s_and_gives_up_after_45s_of_silence(cenv, fake):
    """docs/protocol.md §11 from the proxy's side, against a control plane that goes
    silent after the config: the proxy pings 15 s after its last ping (the first 15 s
    after connecting), and 45 s after the last frame it received it closes the
    connection and connects again."""
    px = cenv.start_proxy(fake.port)
    conn = fake.accept(proxy=px)
    connected = time.monotonic()
    conn.identity_for(conn.recv())
    n = conn.config(1, {"mesh": MESH, "services": [WEB]}, generation=1)
    answer(conn, n, 1, "ack")
    last_from_us = time.monotonic()  # the config: nothing is sent to the proxy after it
    pings = []
    with pytest.raises(EOFError):
        while True:
            m = conn.recv(timeout=60, skip_pings=False)
            assert m["type"] == "ping", "the proxy sent %r to a silent control plane" % m
            pings.append(time.monotonic())
    closed = time.monotonic()
    at = [round(t - connected, 1) for t in pings]
    # At 15, 30 and (the idle timeout falls at the same moment) perhaps 45 s.
    assert len(pings) in (2, 3), "pings at %s s" % at
    assert 14.0 <= pings[0] - connected <= 16.5, "pings at %s s" % at
    assert all(14.0 <= b - a <= 16.5 for a, b in zip(pings, pings[1:])), "pings at %s s" % at
    assert 44.0 <= closed - last_from_us <= 47.5, "closed %.1f s after the last frame" % (closed - last_from_us)
    conn.close()
    again = fake.accept(timeout=15, proxy=px)  # reconnects after its backoff
    assert again.recv()["type"] == "hello"
    assert b"nothing from the control plane for 45 s" in open(px.log, "rb").read()
