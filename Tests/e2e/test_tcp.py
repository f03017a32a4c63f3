"""Opaque TCP through both sidecars: echo with half-close, server-speaks-first."""

import os
import socket
import threading
import time

from weft_e2e import BANNER_PORT, ECHO_PORT, POD_B_V4, POD_B_V6, Deadline, eventually, recv_until_closed

BANNER = b"+OK weft\r\n"


def echo_roundtrip(sock, payload, timeout=30.0):
    """Sends payload from a thread while reading, then half-closes; returns (echoed, how)."""
    err = []

    def writer():
        try:
            view = memoryview(payload)
            for off in range(0, len(payload), 64 * 1024):
                sock.sendall(view[off:off + 64 * 1024])
            sock.shutdown(socket.SHUT_WR)  # half-close: no more data from us
        except OSError as e:
            err.append(e)

    t = threading.Thread(target=writer, daemon=True)
    t.start()
    data, how = recv_until_closed(sock, timeout=timeout, limit=len(payload) + 1)
    t.join(timeout)
    assert not err, "sending failed: %r" % err
    return data, how


def test_opaque_echo_half_close(topo, probe):
    payload = os.urandom(1 << 20)
    s = topo.a.connect(POD_B_V4, ECHO_PORT, timeout=10)
    try:
        data, how = echo_roundtrip(s, payload)
        assert len(data) == len(payload), "got %d of %d bytes (%s)" % (len(data), len(payload), how)
        assert data == payload
        # After our FIN the server finishes echoing, then sends its own FIN.
        assert how == "eof", "expected a clean EOF after the echo, got %s" % how
    finally:
        s.close()
    n = len(payload)
    probe.expect("a", "weft_connections_total", exactly=1, direction="outbound", protocol="opaque")
    probe.expect("b", "weft_connections_total", exactly=1, direction="inbound", protocol="opaque")
    for pod, d in (("a", "outbound"), ("b", "inbound")):
        for metric in ("weft_tcp_read_bytes_total", "weft_tcp_write_bytes_total"):
            for peer in ("src", "dst"):
                probe.expect(pod, metric, at_least=n, direction=d, peer=peer)
    probe.expect("ab", "weft_requests_total", exactly=0)


def test_opaque_echo_half_close_slow_reader(topo):
    # The client reads slowly, so when the echo server's FIN reaches the sidecars they
    # still hold echoed bytes for the client: those must all arrive before the EOF.
    payload = os.urandom(2 << 20)
    s = topo.a.connect(POD_B_V4, ECHO_PORT, timeout=10)
    err = []

    def writer():
        try:
            s.sendall(payload)
            s.shutdown(socket.SHUT_WR)
        except OSError as e:
            err.append(e)

    t = threading.Thread(target=writer, daemon=True)
    t.start()
    received = bytearray()
    deadline = time.monotonic() + 30
    try:
        s.settimeout(10)
        while time.monotonic() < deadline:
            chunk = s.recv(16 * 1024)
            if not chunk:
                break
            received += chunk
            time.sleep(0.002)
    finally:
        t.join(10)
        s.close()
    assert not err, err
    assert len(received) == len(payload), "got %d of %d bytes" % (len(received), len(payload))
    assert bytes(received) == payload


def test_opaque_echo_ipv6(topo, probe):
    payload = os.urandom(256 * 1024)
    s = topo.a.connect(POD_B_V6, ECHO_PORT, timeout=10)
    try:
        data, how = echo_roundtrip(s, payload)
        assert data == payload and how == "eof"
    finally:
        s.close()
    probe.expect("a", "weft_tcp_read_bytes_total", at_least=len(payload), direction="outbound", peer="src")
    probe.expect("b", "weft_tcp_read_bytes_total", at_least=len(payload), direction="inbound", peer="dst")


def test_opaque_small_exchanges(topo):
    """Interactive ping-pong: small writes must not be held back by detection/buffering."""
    s = topo.a.connect(POD_B_V4, ECHO_PORT, timeout=10)
    try:
        for i in range(20):
            msg = b"ping %d\n" % i
            s.sendall(msg)
            got = b""
            deadline = Deadline(5)
            for _ in range(100):
                s.settimeout(deadline.remaining(0.01))
                chunk = s.recv(len(msg) - len(got))
                assert chunk, "EOF in ping-pong"
                got += chunk
                if len(got) == len(msg):
                    break
            assert got == msg
    finally:
        s.close()


def test_connections_open_gauge(topo):
    """The open-connections gauge counts a held connection and drops when it closes.

    Compared with the value after the close (not before the test), so that
    connections of earlier tests that close meanwhile cannot disturb it."""
    s = topo.a.connect(POD_B_V4, ECHO_PORT, timeout=10)
    try:
        s.sendall(b"hold\n")
        s.settimeout(5)
        assert s.recv(16) == b"hold\n"
        if topo.proxy_enabled:
            during = {"a": topo.a.metrics().sum("weft_connections_open", direction="outbound"),
                      "b": topo.b.metrics().sum("weft_connections_open", direction="inbound")}
            assert during["a"] >= 1 and during["b"] >= 1, during
    finally:
        s.close()
    if not topo.proxy_enabled:
        return

    def dropped():
        after = {"a": topo.a.metrics().sum("weft_connections_open", direction="outbound"),
                 "b": topo.b.metrics().sum("weft_connections_open", direction="inbound")}
        for k in "ab":
            assert during[k] - after[k] >= 1, "pod %s: open connections %s while held, %s after close" % (
                k.upper(), during[k], after[k])

    eventually(dropped, timeout=5)


def test_server_speaks_first(topo, probe):
    t0 = time.monotonic()
    s = topo.a.connect(POD_B_V4, BANNER_PORT, timeout=5)
    try:
        s.settimeout(2.0)
        got = b""
        deadline = Deadline(2.0)
        for _ in range(50):
            if len(got) >= len(BANNER) or deadline.expired:
                break
            s.settimeout(deadline.remaining(0.01))
            try:
                chunk = s.recv(64)
            except socket.timeout:
                break
            if not chunk:
                break
            got += chunk
        elapsed = time.monotonic() - t0
        print("banner after %.3fs" % elapsed)
        assert got == BANNER, "banner not received within 2s without sending (got %r after %.2fs)" % (got, elapsed)
        assert elapsed < 2.0
        # then it is an echo
        s.sendall(b"PING\r\n")
        s.settimeout(5)
        assert s.recv(64) == b"PING\r\n"
    finally:
        s.close()
    probe.expect("a", "weft_connections_total", exactly=1, direction="outbound", protocol="opaque")
    probe.expect("b", "weft_connections_total", exactly=1, direction="inbound", protocol="opaque")
    probe.expect("a", "weft_tcp_write_bytes_total", at_least=len(BANNER), direction="outbound", peer="src")
