"""HTTP/2 cleartext (prior knowledge) and gRPC through both sidecars."""

import json
import os
import re
import struct
import time

from weft_e2e import (
    BAD_H2_PORT, REFUSING_H2_PORT, BLACKHOLE_PORT, CLOSED_PORT, GRPC_PORT, H2_GOAWAY_PORT, H2_PORT, HERE, POD_B_V4, PYTHON, RESET_PORT, requires_proxy,
)

H2 = "http://%s:%d" % (POD_B_V4, H2_PORT)
WWW_INDEX = b"<html><body>weft e2e pod B</body></html>\n"


def test_h2c_prior_knowledge_get(topo, probe):
    r = topo.a.curl("--http2-prior-knowledge", "-o", "-", "-w", "\n%{http_code} %{http_version}",
                    H2 + "/index.html")
    assert r.returncode == 0, r.stderr
    body, tail = r.stdout.rsplit(b"\n", 1)
    assert tail == b"200 2"
    assert body == WWW_INDEX
    probe.expect("a", "weft_connections_total", exactly=1, direction="outbound", protocol="http2")
    probe.expect("a", "weft_requests_total", exactly=1, direction="outbound", protocol="http2", status_class="2xx")
    probe.expect("b", "weft_requests_total", exactly=1, direction="inbound", protocol="http2", status_class="2xx")
    probe.expect("a", "weft_request_duration_seconds_count", exactly=1, direction="outbound", protocol="http2")


def test_h2c_404(topo, probe):
    r = topo.a.curl("--http2-prior-knowledge", "-o", "/dev/null", "-w", "%{http_code} %{http_version}",
                    H2 + "/nope")
    assert r.returncode == 0, r.stderr
    assert r.stdout == b"404 2"
    probe.expect("a", "weft_requests_total", exactly=1, direction="outbound", protocol="http2", status_class="4xx")
    probe.expect("b", "weft_requests_total", exactly=1, direction="inbound", protocol="http2", status_class="4xx")


def test_h2c_parallel_connections_curl(topo, probe):
    # curl 7.88 cannot reuse a prior-knowledge h2c connection (it fails with
    # "Error in the HTTP2 framing layer" even without a proxy), so --parallel-immediate
    # gives each transfer its own connection; multiplexing is covered by h2load below.
    n = 10
    args = ["--http2-prior-knowledge", "--parallel", "--parallel-immediate", "--parallel-max", str(n),
            "-w", "%{http_code} %{http_version} %{size_download} %{num_connects}\n"]
    for _ in range(n):
        args += ["-o", "/dev/null", H2 + "/big.bin"]
    r = topo.a.curl(*args, timeout=60)
    assert r.returncode == 0, r.stderr[-2000:]
    lines = [x for x in r.stdout.decode().split("\n") if x]
    assert lines == ["200 2 %d 1" % (8 << 20)] * n
    probe.expect("a", "weft_connections_total", exactly=n, direction="outbound", protocol="http2")
    probe.expect("a", "weft_requests_total", exactly=n, direction="outbound", protocol="http2", status_class="2xx")
    probe.expect("b", "weft_requests_total", exactly=n, direction="inbound", protocol="http2", status_class="2xx")
    probe.expect("b", "weft_tcp_read_bytes_total", at_least=n * (8 << 20), direction="inbound", peer="dst")
    probe.expect("a", "weft_tcp_write_bytes_total", at_least=n * (8 << 20), direction="outbound", peer="src")


def test_h2load_multiplexed(topo, probe):
    # 100 requests, one connection, up to 10 concurrent streams on it.
    r = topo.a.run(["h2load", "-n", "100", "-c", "1", "-m", "10", "-T", "20", "-N", "20",
                    H2 + "/index.html"], timeout=60, check=False)
    out = r.stdout.decode(errors="replace")
    m = re.search(r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, "
                  r"(\d+) failed, (\d+) errored, (\d+) timeout", out)
    assert m, "unexpected h2load output:\n%s\n%s" % (out, r.stderr.decode(errors="replace"))
    total, started, done, succeeded, failed, errored, timeout = map(int, m.groups())
    assert (succeeded, failed, errored, timeout) == (100, 0, 0, 0), out
    assert re.search(r"status codes: 100 2xx", out), out
    probe.expect("a", "weft_connections_total", exactly=1, direction="outbound", protocol="http2")
    probe.expect("a", "weft_requests_total", exactly=100, direction="outbound", protocol="http2", status_class="2xx")
    probe.expect("b", "weft_requests_total", exactly=100, direction="inbound", protocol="http2", status_class="2xx")


def test_h2_upstream_goaway_retries_unprocessed_streams(topo, probe):
    """nginx sends GOAWAY after every 25 requests on a connection; streams above its
    last-stream-id were never processed (RFC 9113 §6.8). The sidecar sends those again on
    a new connection, so none of 1,000 multiplexed requests fails."""
    r = topo.a.run(["h2load", "-n", "1000", "-c", "2", "-m", "20", "-T", "20", "-N", "20",
                    "http://%s:%d/" % (POD_B_V4, H2_GOAWAY_PORT)], timeout=60, check=False)
    out = r.stdout.decode(errors="replace")
    assert re.search(r"requests: 1000 total, 1000 started, 1000 done, 1000 succeeded, 0 failed", out), out
    assert re.search(r"status codes: 1000 2xx", out), out
    probe.expect("b", "weft_requests_total", exactly=1000, direction="inbound", protocol="http2", status_class="2xx")
    probe.expect("ab", "weft_requests_total", exactly=0, protocol="http2", status_class="5xx")


def _h2_frame(ftype, flags, stream, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) + struct.pack(">I", stream) + payload


@requires_proxy
def test_h2_client_that_never_returns_window_stalls_the_upstream(topo, probe):
    """A raw h2c client asks for the 8 MiB big.bin and never sends WINDOW_UPDATE: it can
    receive its initial 64 KiB window and no more. Flow control must carry that back
    hop by hop, so neither sidecar reads the file from its upstream (it would have to
    buffer it)."""
    authority = ("%s:%d" % (POD_B_V4, H2_PORT)).encode()
    # HPACK: :method GET, :scheme http (static 2, 6); :path and :authority as literals
    # with indexed names (static 4, 1), without indexing.
    block = b"\x82\x86" + b"\x04" + bytes([8]) + b"/big.bin" + b"\x01" + bytes([len(authority)]) + authority
    s = topo.a.connect(POD_B_V4, H2_PORT)
    received = 0
    try:
        s.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + _h2_frame(4, 0, 0) + _h2_frame(1, 0x5, 1, block))
        s.settimeout(0.5)
        buf, deadline = b"", time.monotonic() + 3.0
        while time.monotonic() < deadline:
            try:
                data = s.recv(65536)
            except OSError:
                continue
            if not data:
                break
            buf += data
            while len(buf) >= 9 and len(buf) >= 9 + int.from_bytes(buf[:3], "big"):
                length, ftype, flags = int.from_bytes(buf[:3], "big"), buf[3], buf[4]
                if ftype == 0:
                    received += length
                elif ftype == 4 and not flags & 1:
                    s.sendall(_h2_frame(4, 1, 0))  # SETTINGS ACK
                buf = buf[9 + length:]
        assert 0 < received <= 65535, received
        # What each sidecar read from its upstream for this request: about two windows
        # (the client's, and the one it gives its upstream), not the 8 MiB file.
        read_a = probe.delta("a", "weft_tcp_read_bytes_total", direction="outbound", peer="dst")
        read_b = probe.delta("b", "weft_tcp_read_bytes_total", direction="inbound", peer="dst")
        print("client got %d bytes; pod A read %d, pod B read %d from upstream" % (received, read_a, read_b))
        assert read_a <= 512 << 10, read_a
        assert read_b <= 1 << 20, read_b
    finally:
        s.close()
    # The client left mid-response: both sidecars count it as 499.
    probe.expect("ab", "weft_requests_total", exactly=2, protocol="http2", status_class="4xx")


def test_h2_load_cut_short_leaves_the_shared_upstream_usable(topo, probe):
    """h2load stops mid-flight: its 32 connections close with ~320 streams open, and the
    sidecars cancel the upstream streams on their one shared upstream connection. A new
    client afterwards must still be answered (a cancellation burst once left that
    connection in a state where no new stream was ever answered)."""
    for _ in range(2):
        r = topo.a.run(["h2load", "-c", "32", "-m", "10", "-D", "2", H2 + "/hello"], timeout=30, check=False)
        out = r.stdout.decode(errors="replace")
        m = re.search(r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded", out)
        assert m and int(m.group(4)) > 100, out
        rc, status, _, body, elapsed = h2_curl(topo.a, H2 + "/index.html", timeout=10)
        assert (rc, status, body) == (0, 200, WWW_INDEX), (rc, status, body)
        assert elapsed < 5.0, elapsed


# ------------------------------------------------ HTTP/2 upstream failures --
# The client speaks h2c to pod B; pod B's sidecar relays it to 127.0.0.1:<port>, where
# the server fails. The answer the client gets is the sidecar's own, over HTTP/2.

def h2_curl(pod, url, timeout=20):
    """curl --http2-prior-knowledge; returns (exit code, status, {header: value}, body, seconds)."""
    t0 = time.monotonic()
    r = pod.curl("--http2-prior-knowledge", "-sS", "-D", "-", "-o", "-", url, timeout=timeout)
    elapsed = time.monotonic() - t0
    head, _, body = r.stdout.partition(b"\r\n\r\n")
    status, headers = None, {}
    for line in head.decode("latin-1").split("\r\n"):
        if line.startswith("HTTP/"):
            assert line.startswith("HTTP/2 "), line
            status = int(line.split()[1])
        elif ":" in line:
            k, _, v = line.partition(":")
            headers[k.strip().lower()] = v.strip()
    return r.returncode, status, headers, body, elapsed


@requires_proxy
def test_h2_upstream_not_listening_is_502(topo, probe):
    rc, status, headers, body, _ = h2_curl(topo.a, "http://%s:%d/x" % (POD_B_V4, CLOSED_PORT))
    assert rc == 0 and status == 502, (rc, status, headers, body)
    assert headers.get("weft-error") == "connect-failed", headers
    # Pod B's sidecar delivers to the pod IP at the original port, not to loopback.
    assert b"connect to %s:%d failed" % (POD_B_V4.encode(), CLOSED_PORT) in body, body
    probe.expect("b", "weft_errors_total", exactly=1, direction="inbound", error="connect_failed")
    probe.expect("ab", "weft_requests_total", exactly=2, protocol="http2", status_class="5xx")


@requires_proxy
def test_h2_upstream_reset_is_502(topo, probe):
    rc, status, headers, body, _ = h2_curl(topo.a, "http://%s:%d/x" % (POD_B_V4, RESET_PORT))
    assert rc == 0 and status == 502, (rc, status, headers, body)
    assert headers.get("weft-error") == "upstream-reset", headers
    probe.expect("b", "weft_errors_total", at_least=1, direction="inbound", error="upstream_reset")
    probe.expect("ab", "weft_requests_total", exactly=2, protocol="http2", status_class="5xx")


@requires_proxy
def test_h2_upstream_never_answers_is_504(topo, probe):
    rc, status, headers, body, elapsed = h2_curl(topo.a, "http://%s:%d/x" % (POD_B_V4, BLACKHOLE_PORT))
    print("504 after %.2fs" % elapsed)
    assert rc == 0 and status == 504, (rc, status, headers, body)
    assert headers.get("weft-error") == "upstream-timeout", headers
    assert 2.5 <= elapsed <= 8.0, "504 after %.2fs; response-timeout is 3s" % elapsed
    probe.expect("ab", "weft_errors_total", at_least=1, error="upstream_timeout")
    # The healthy h2 path still works right after.
    rc, status, _, body, _ = h2_curl(topo.a, H2 + "/index.html")
    assert (rc, status, body) == (0, 200, WWW_INDEX)


@requires_proxy
def test_h2_refused_stream_is_sent_again(topo, probe):
    """The server refuses the first request on its connection with REFUSED_STREAM (not
    processed, RFC 9113 §8.7); pod B's sidecar sends it again and the client gets the
    answer, not an error."""
    rc, status, headers, body, _ = h2_curl(topo.a, "http://%s:%d/x" % (POD_B_V4, REFUSING_H2_PORT))
    assert (rc, status, body) == (0, 200, b"refused once\n"), (rc, status, headers, body)
    probe.expect("b", "weft_requests_total", exactly=1, direction="inbound", protocol="http2", status_class="2xx")
    probe.expect("ab", "weft_requests_total", exactly=0, protocol="http2", status_class="5xx")


@requires_proxy
def test_h2_invalid_upstream_response_head_is_502(topo, probe):
    """The server's response head carries `connection: close`, which HTTP/2 forbids: the
    client gets a 502 naming the upstream, never the bad head, and the proxy serves on."""
    rc, status, headers, body, _ = h2_curl(topo.a, "http://%s:%d/x" % (POD_B_V4, BAD_H2_PORT))
    assert rc == 0 and status == 502, (rc, status, headers, body)
    assert "connection" not in headers, headers
    assert headers.get("weft-error") == "upstream-protocol", headers
    assert b"upstream %s:%d" % (POD_B_V4.encode(), BAD_H2_PORT) in body, body
    probe.expect("b", "weft_errors_total", exactly=1, direction="inbound", error="upstream_protocol")
    rc, status, _, body, _ = h2_curl(topo.a, H2 + "/index.html")
    assert (rc, status, body) == (0, 200, WWW_INDEX)


# ------------------------------------------------------------------- gRPC --

def grpc_call(topo, scenario, target=None):
    target = target or "%s:%d" % (POD_B_V4, GRPC_PORT)
    r = topo.a.run([PYTHON, os.path.join(HERE, "grpc_client.py"), target, scenario], timeout=40, check=False)
    assert r.returncode == 0, "grpc client %s failed (exit %d):\n%s\n%s" % (
        scenario, r.returncode, r.stdout.decode(errors="replace"), r.stderr.decode(errors="replace"))
    return json.loads(r.stdout.decode().strip().splitlines()[-1])


def md(pairs):
    return {k: v for k, v in pairs}


def test_grpc_unary(topo, probe):
    res = grpc_call(topo, "unary")
    assert res["code"] == "OK"
    assert res["response"] == "hello weft"
    initial = md(res["initial"])
    assert initial.get("x-weft-initial") == "hello"
    assert initial.get("x-weft-echo") == "ping"  # request metadata reached the server
    trailing = md(res["trailing"])
    assert trailing.get("x-weft-trailer") == "unary-ok"
    assert trailing.get("x-weft-trailer-bin") == "0001feff"  # binary trailer intact
    probe.expect("a", "weft_connections_total", at_least=1, direction="outbound", protocol="http2")
    probe.expect("a", "weft_requests_total", at_least=1, direction="outbound", protocol="grpc")
    probe.expect("b", "weft_requests_total", at_least=1, direction="inbound", protocol="grpc")


def test_grpc_unary_large_message(topo, probe):
    res = grpc_call(topo, "unary_large")
    assert res["code"] == "OK"
    assert res["equal"] is True and res["size"] == 3 << 20
    probe.expect("a", "weft_tcp_read_bytes_total", at_least=3 << 20, direction="outbound", peer="src")
    probe.expect("b", "weft_tcp_read_bytes_total", at_least=3 << 20, direction="inbound", peer="dst")


def test_grpc_server_streaming(topo, probe):
    res = grpc_call(topo, "server_stream")
    assert res["code"] == "OK"
    assert res["messages"] == ["msg-%d" % i for i in range(100)]
    assert md(res["trailing"]).get("x-weft-count") == "100"
    probe.expect("a", "weft_requests_total", exactly=1, direction="outbound", protocol="grpc")
    probe.expect("b", "weft_requests_total", exactly=1, direction="inbound", protocol="grpc")


def test_grpc_client_streaming(topo):
    res = grpc_call(topo, "client_stream")
    assert res["code"] == "OK"
    assert res["response"] == "50 %d" % sum(range(1, 51))


def test_grpc_bidi_streaming(topo, probe):
    res = grpc_call(topo, "bidi")
    assert res["code"] == "OK"
    assert res["messages"] == ["echo:m%d" % i for i in range(20)]
    probe.expect("a", "weft_requests_total", exactly=1, direction="outbound", protocol="grpc")


def test_grpc_error_status_and_trailers(topo, probe):
    res = grpc_call(topo, "fail")
    assert res["code"] == "FAILED_PRECONDITION"
    assert res["details"] == "weft says no: please"
    trailing = md(res["trailing"])
    assert trailing.get("x-weft-detail") == "failed-on-purpose"
    assert trailing.get("x-weft-detail-bin") == b"\x00\xffweft".hex()
    # gRPC errors travel in trailers of an HTTP 200 response; counted as grpc requests.
    probe.expect("a", "weft_requests_total", exactly=1, direction="outbound", protocol="grpc")
    probe.expect("b", "weft_requests_total", exactly=1, direction="inbound", protocol="grpc")


def test_grpc_cancelled_call_is_counted_as_499(topo, probe):
    """A call the client cancels before its response is still a request in the metrics:
    status 499 (nginx's "client closed request"), on both sidecars."""
    res = grpc_call(topo, "cancel_client_stream")
    assert res["cancelled"] is True and res["code"] == "CANCELLED", res
    probe.expect("a", "weft_requests_total", exactly=1, direction="outbound", protocol="grpc", status_class="4xx")
    probe.expect("b", "weft_requests_total", exactly=1, direction="inbound", protocol="grpc", status_class="4xx")
    probe.expect("ab", "weft_requests_total", exactly=0, protocol="grpc", status_class="2xx")


def test_grpc_unimplemented(topo):
    res = grpc_call(topo, "unimplemented")
    assert res["code"] == "UNIMPLEMENTED"
