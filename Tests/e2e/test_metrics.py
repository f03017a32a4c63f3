"""The proxies' /metrics exposition: promtool-clean, expected families, sane histograms.

test_parser_selftest and test_promtool_selftest need no proxy or topology: they
check the suite's own metrics parser and the promtool wiring.
"""

import math
import shutil
import subprocess

import pytest

from weft_e2e import NGINX_PORT, POD_B_V4, Metrics, requires_proxy

SAMPLE = """\
# HELP weft_requests_total Requests handled.
# TYPE weft_requests_total counter
weft_requests_total{direction="outbound",protocol="http1",status_class="2xx"} 3
weft_requests_total{direction="outbound",protocol="http1",status_class="4xx"} 1
weft_requests_total{direction="inbound",protocol="grpc",status_class="2xx"} 2
# HELP weft_connections_open Open connections.
# TYPE weft_connections_open gauge
weft_connections_open{direction="outbound"} 0
# HELP weft_request_duration_seconds Request duration.
# TYPE weft_request_duration_seconds histogram
weft_request_duration_seconds_bucket{direction="outbound",protocol="http1",le="0.005"} 1
weft_request_duration_seconds_bucket{direction="outbound",protocol="http1",le="0.1"} 3
weft_request_duration_seconds_bucket{direction="outbound",protocol="http1",le="+Inf"} 4
weft_request_duration_seconds_sum{direction="outbound",protocol="http1"} 0.25
weft_request_duration_seconds_count{direction="outbound",protocol="http1"} 4
# HELP weft_errors_total Errors.
# TYPE weft_errors_total counter
weft_errors_total{direction="inbound",error="bad_request",note="a \\"quoted\\", value"} 7
"""

FAMILIES = {
    "weft_connections_total": "counter",
    "weft_connections_open": "gauge",
    "weft_requests_total": "counter",
    "weft_request_duration_seconds": "histogram",
    "weft_tcp_read_bytes_total": "counter",
    "weft_tcp_write_bytes_total": "counter",
    "weft_errors_total": "counter",
}


def promtool_check(text):
    if shutil.which("promtool") is None:
        pytest.fail("promtool not installed (apt: prometheus); see Tests/e2e/REQUIREMENTS.md")
    p = subprocess.run(["promtool", "check", "metrics"], input=text.encode(), capture_output=True, timeout=30)
    return p.returncode, (p.stdout + p.stderr).decode(errors="replace")


def test_parser_selftest():
    m = Metrics(SAMPLE)
    assert m.sum("weft_requests_total") == 6
    assert m.sum("weft_requests_total", direction="outbound") == 4
    assert m.sum("weft_requests_total", direction="outbound", status_class="4xx") == 1
    assert m.sum("weft_requests_total", protocol="http2") == 0
    assert m.sum("weft_errors_total", note='a "quoted", value') == 7
    assert m.types["weft_request_duration_seconds"] == "histogram"
    b = m.histogram_buckets("weft_request_duration_seconds", direction="outbound")
    assert list(b) == [0.005, 0.1, math.inf] and b[math.inf] == 4


def test_promtool_selftest():
    rc, out = promtool_check(SAMPLE)
    assert rc == 0, out
    rc, out = promtool_check("weft_bad_metric{x=\"1\"} abc\n")
    assert rc != 0, "promtool accepted garbage: " + out


@requires_proxy
def test_metrics_exposition_is_valid(topo):
    # Some traffic first so that every family has series.
    r = topo.a.curl("-o", "/dev/null", "-w", "%{http_code}", "http://%s:%d/hello" % (POD_B_V4, NGINX_PORT))
    assert r.stdout == b"200"
    for pod in (topo.a, topo.b):
        text = pod.metrics_text()
        rc, out = promtool_check(text)
        assert rc == 0, "promtool check metrics failed for pod %s:\n%s\n--- exposition ---\n%s" % (
            pod.key.upper(), out, text[:5000])
        m = Metrics(text)
        for fam, typ in FAMILIES.items():
            if fam == "weft_errors_total" and not m.select(fam):
                continue  # may have no series yet in this pod
            assert m.types.get(fam) == typ, "pod %s: family %s should be TYPE %s, got %r" % (
                pod.key.upper(), fam, typ, m.types.get(fam))
        direction = "outbound" if pod is topo.a else "inbound"
        assert m.select("weft_requests_total", direction=direction), "pod %s has no %s requests" % (
            pod.key.upper(), direction)
        for fam in ("weft_connections_total", "weft_tcp_read_bytes_total", "weft_tcp_write_bytes_total"):
            for labels, value in m.select(fam):
                assert value >= 0 and labels.get("direction") in ("inbound", "outbound"), (fam, labels)
        for labels, _ in m.select("weft_connections_total"):
            assert labels.get("protocol") in ("http1", "http2", "tls", "opaque"), labels
        for labels, _ in m.select("weft_requests_total"):
            assert labels.get("protocol") in ("http1", "http2", "grpc"), labels
            assert labels.get("status_class") in ("1xx", "2xx", "3xx", "4xx", "5xx"), labels
        for labels, _ in m.select("weft_tcp_read_bytes_total") + m.select("weft_tcp_write_bytes_total"):
            assert labels.get("peer") in ("src", "dst"), labels
        for labels, _ in m.select("weft_errors_total"):
            assert labels.get("error") in ("connect_failed", "upstream_reset", "upstream_timeout",
                                           "bad_request", "request_timeout", "loop",
                                           # also named in docs/ARCHITECTURE.md
                                           "upstream_protocol", "no_original_destination", "accept_failed",
                                           # the mesh's answers (routing, issue 10)
                                           "no_route", "no_endpoints", "unresolved_backend",
                                           "discovery_timeout", "registry_only", "peer_identity", "tls_handshake",
                                           "authz_denied", "mtls_required"), labels


@requires_proxy
def test_duration_histogram_consistent(topo):
    for _ in range(3):
        topo.a.curl("-o", "/dev/null", "http://%s:%d/hello" % (POD_B_V4, NGINX_PORT))
    for pod, direction in ((topo.a, "outbound"), (topo.b, "inbound")):
        m = pod.metrics()
        series = {(l["direction"], l["protocol"]) for l, _ in m.select("weft_request_duration_seconds_count")}
        assert (direction, "http1") in series, "pod %s: no duration series for %s/http1" % (pod.key.upper(), direction)
        for d, proto in series:
            buckets = m.histogram_buckets("weft_request_duration_seconds", direction=d, protocol=proto)
            counts = list(buckets.values())
            assert counts == sorted(counts), "buckets not cumulative: %r" % buckets
            assert math.inf in buckets, "no +Inf bucket for %s/%s" % (d, proto)
            count = m.sum("weft_request_duration_seconds_count", direction=d, protocol=proto)
            assert buckets[math.inf] == count
            total = m.sum("weft_request_duration_seconds_sum", direction=d, protocol=proto)
            if count == 0:
                assert total == 0, "duration sum %s with no requests for %s/%s" % (total, d, proto)
            else:
                assert 0 < total < count * 60, "implausible duration sum %s for %s requests" % (total, count)


def test_admin_ready(topo):
    if not topo.proxy_enabled:
        pytest.skip("no proxy (WEFT_E2E_NO_PROXY=1)")
    for pod in (topo.a, topo.b):
        assert pod.admin("/ready").status == 200
