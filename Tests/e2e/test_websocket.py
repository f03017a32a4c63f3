"""WebSocket (HTTP/1.1 Upgrade, then framed bytes) through both sidecars."""

import os

from websockets.sync.client import connect

from weft_e2e import POD_B_V4, POD_B_V6, WS_PORT


def ws_connect(topo, host):
    sock = topo.a.connect(host, WS_PORT, timeout=10)
    hostport = "[%s]" % host if ":" in host else host
    return connect("ws://%s:%d/echo" % (hostport, WS_PORT), sock=sock, proxy=None,
                   open_timeout=10, close_timeout=5, compression=None, max_size=8 << 20)


def exchange(ws):
    texts = ["hello", "wëft ✓", "x" * 70_000]
    blobs = [b"\x00\x01\x02", os.urandom(1 << 20), b""]
    for t in texts:
        ws.send(t)
        got = ws.recv(timeout=10)
        assert isinstance(got, str) and got == t
    for b in blobs:
        ws.send(b)
        got = ws.recv(timeout=10)
        assert isinstance(got, bytes) and got == b
    # several in flight before reading
    for i in range(10):
        ws.send("burst %d" % i)
    assert [ws.recv(timeout=10) for _ in range(10)] == ["burst %d" % i for i in range(10)]
    return sum(len(t.encode()) for t in texts) + sum(len(b) for b in blobs)


def test_websocket_echo(topo, probe):
    with ws_connect(topo, POD_B_V4) as ws:
        n = exchange(ws)
        assert ws.ping().wait(10), "no pong"
        ws.close()
    assert ws.close_code == 1000
    probe.expect("a", "weft_connections_total", exactly=1, direction="outbound", protocol="http1")
    # The 101 Switching Protocols answer is counted as one 1xx request.
    probe.expect("a", "weft_requests_total", exactly=1, direction="outbound", protocol="http1", status_class="1xx")
    probe.expect("b", "weft_requests_total", exactly=1, direction="inbound", protocol="http1", status_class="1xx")
    probe.expect("a", "weft_tcp_read_bytes_total", at_least=n, direction="outbound", peer="src")
    probe.expect("b", "weft_tcp_read_bytes_total", at_least=n, direction="inbound", peer="dst")


def test_websocket_echo_ipv6(topo):
    with ws_connect(topo, POD_B_V6) as ws:
        exchange(ws)
