"""1 GiB streamed upload and download through both sidecars, with bounded memory.

While the bytes flow, both proxies' VmRSS is sampled from /proc/<pid>/status;
at the end VmHWM (peak RSS since start) must stay below WEFT_E2E_RSS_LIMIT_MB
(default 64 MiB).  Marked `slow`; runs by default.
"""

import hashlib
import http.client
import json
import os
import threading
import time

import pytest

from servers import block_for_seed, stream_digest
from weft_e2e import POD_B_V4, PYHTTP_PORT, Deadline, report_line

LARGE = int(os.environ.get("WEFT_E2E_LARGE_BYTES", str(1 << 30)))
RSS_LIMIT_MB = float(os.environ.get("WEFT_E2E_RSS_LIMIT_MB", "64"))
TRANSFER_TIMEOUT = float(os.environ.get("WEFT_E2E_LARGE_TIMEOUT", "600"))
MiB = 1 << 20

pytestmark = [pytest.mark.slow, pytest.mark.timeout(int(TRANSFER_TIMEOUT) + 120)]


class PodHTTPConnection(http.client.HTTPConnection):
    """http.client over a socket created inside the pod's network namespace."""

    def __init__(self, pod, host, port, timeout):
        super().__init__(host, port, timeout=timeout)
        self._pod = pod

    def connect(self):
        self.sock = self._pod.connect(self.host, self.port, timeout=self.timeout)


class RSSSampler:
    """Samples both proxies' VmRSS every 200 ms until stopped (bounded by a deadline)."""

    def __init__(self, topo, deadline_s):
        self.topo = topo
        self.max_rss = {"a": 0, "b": 0}
        self.hwm = {"a": 0, "b": 0}
        self.samples = 0
        self._stop = threading.Event()
        self._deadline = Deadline(deadline_s)
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self):
        if self.topo.proxy_enabled:
            self._thread.start()
        return self

    def _sample(self):
        for k, pod in self.topo.pods.items():
            try:
                st = pod.proxy_status()
            except (OSError, ValueError):
                continue
            self.max_rss[k] = max(self.max_rss[k], st.get("VmRSS", 0))
            self.hwm[k] = max(self.hwm[k], st.get("VmHWM", 0))
        self.samples += 1

    def _run(self):
        while not self._stop.is_set() and not self._deadline.expired:
            self._sample()
            self._stop.wait(0.2)

    def __exit__(self, *exc):
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(5)
        if self.topo.proxy_enabled:
            self._sample()

    def check(self, what, seconds):
        mib_s = LARGE / MiB / max(seconds, 1e-6)
        line = "%s %d MiB in %.1fs (%.0f MiB/s)" % (what, LARGE // MiB, seconds, mib_s)
        if not self.topo.proxy_enabled:
            report_line(line + "; no proxy (WEFT_E2E_NO_PROXY=1), RSS not checked")
            return
        line += "; proxy peak RSS (VmHWM): pod A %.1f MiB, pod B %.1f MiB; max sampled VmRSS: A %.1f, B %.1f MiB " \
                "(%d samples, limit %.0f MiB)" % (
                    self.hwm["a"] / 1024, self.hwm["b"] / 1024, self.max_rss["a"] / 1024,
                    self.max_rss["b"] / 1024, self.samples, RSS_LIMIT_MB)
        report_line(line)
        for k in ("a", "b"):
            assert self.hwm[k] > 0, "could not read /proc status of the proxy in pod %s" % k.upper()
            assert self.hwm[k] < RSS_LIMIT_MB * 1024, \
                "weft-proxy in pod %s peaked at %.1f MiB RSS (limit %.0f MiB) during %s" % (
                    k.upper(), self.hwm[k] / 1024, RSS_LIMIT_MB, what)


def test_upload_1gib_streamed(topo, probe):
    seed = 11
    deadline = Deadline(TRANSFER_TIMEOUT)
    block = block_for_seed(seed)

    def body():
        sent = 0
        for _ in range(LARGE // len(block) + 2):
            if sent >= LARGE:
                return
            if deadline.expired:
                raise TimeoutError("upload did not finish within %ss" % TRANSFER_TIMEOUT)
            piece = block if LARGE - sent >= len(block) else block[: LARGE - sent]
            sent += len(piece)
            yield piece

    conn = PodHTTPConnection(topo.a, POD_B_V4, PYHTTP_PORT, timeout=60)
    with RSSSampler(topo, TRANSFER_TIMEOUT + 60) as rss:
        t0 = time.monotonic()
        try:
            conn.request("POST", "/upload", body=body(),
                         headers={"Content-Length": str(LARGE), "Content-Type": "application/octet-stream"})
            resp = conn.getresponse()
            status, data = resp.status, resp.read()
        finally:
            conn.close()
        elapsed = time.monotonic() - t0
    assert status == 200, data[:500]
    got = json.loads(data)
    assert got["bytes"] == LARGE
    assert got["sha256"] == stream_digest(seed, LARGE)
    rss.check("upload", elapsed)
    probe.expect("a", "weft_tcp_read_bytes_total", at_least=LARGE, direction="outbound", peer="src")
    probe.expect("a", "weft_tcp_write_bytes_total", at_least=LARGE, direction="outbound", peer="dst")
    probe.expect("b", "weft_tcp_read_bytes_total", at_least=LARGE, direction="inbound", peer="src")
    probe.expect("b", "weft_tcp_write_bytes_total", at_least=LARGE, direction="inbound", peer="dst")
    probe.expect("ab", "weft_requests_total", exactly=2, protocol="http1", status_class="2xx")


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_download_1gib_streamed(topo, probe, framing):
    seed = 22 if framing == "chunked" else 23
    deadline = Deadline(TRANSFER_TIMEOUT)
    conn = PodHTTPConnection(topo.a, POD_B_V4, PYHTTP_PORT, timeout=60)
    h, n = hashlib.sha256(), 0
    with RSSSampler(topo, TRANSFER_TIMEOUT + 60) as rss:
        t0 = time.monotonic()
        try:
            conn.request("GET", "/download?bytes=%d&seed=%d&chunked=%d" % (LARGE, seed, framing == "chunked"))
            resp = conn.getresponse()
            assert resp.status == 200
            if framing == "chunked":
                assert resp.getheader("Transfer-Encoding", "").lower() == "chunked" or \
                    resp.getheader("Content-Length") is None
            else:
                assert resp.getheader("Content-Length") == str(LARGE)
            for _ in range(LARGE // MiB + 10):
                chunk = resp.read(MiB)
                if not chunk:
                    break
                n += len(chunk)
                h.update(chunk)
                assert not deadline.expired, "download did not finish within %ss (%d bytes)" % (TRANSFER_TIMEOUT, n)
        finally:
            conn.close()
        elapsed = time.monotonic() - t0
    assert n == LARGE
    assert h.hexdigest() == stream_digest(seed, LARGE)
    rss.check("download (%s)" % framing, elapsed)
    probe.expect("b", "weft_tcp_read_bytes_total", at_least=LARGE, direction="inbound", peer="dst")
    probe.expect("b", "weft_tcp_write_bytes_total", at_least=LARGE, direction="inbound", peer="src")
    probe.expect("a", "weft_tcp_read_bytes_total", at_least=LARGE, direction="outbound", peer="dst")
    probe.expect("a", "weft_tcp_write_bytes_total", at_least=LARGE, direction="outbound", peer="src")
