"""The control plane's OTLP/HTTP span intake, trace API and `weftctl trace` (issue 12),
against real peers.

An app instrumented with the OpenTelemetry Python SDK exports spans to weft-control's
:4318 (here a free port) with the SDK's own OTLP/HTTP protobuf exporter; the trace API on
the HTTP port then serves them back as OTLP JSON (hex ids, integer enums) and lists the
trace. OTLP JSON, posted as the spec writes it, joins the same trace. Bad input (wrong
content type, malformed bodies, an oversized body) gets a clear 4xx, and the intake keeps
serving.
"""

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from control_fixtures import CONTROL_BIN, PROXY_BIN, ca_template, cenv, control, eventually, free_port, http_get, metric, weftctl  # noqa: E402,F401

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_SPAN = "00f067aa0ba902b7"

# Runs in its own process: the SDK's BatchSpanProcessor and exporter, as an app would use them.
SDK_APP = r'''
import sys, time
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

endpoint, traceparent = sys.argv[1], sys.argv[2]
provider = TracerProvider(resource=Resource.create({"service.name": "checkout", "k8s.pod.name": "checkout-0"}))
provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint, timeout=5)))
tracer = provider.get_tracer("test_trace_intake")
ctx = TraceContextTextMapPropagator().extract({"traceparent": traceparent})
with tracer.start_as_current_span("charge card", context=ctx, kind=trace.SpanKind.SERVER) as span:
    span.set_attribute("http.request.method", "POST")
    with tracer.start_as_current_span("db query") as child:
        time.sleep(0.03)
ok = provider.force_flush(10_000)
provider.shutdown()
print("flushed" if ok else "flush failed")
'''


def _sdk_available():
    try:
        import opentelemetry.exporter.otlp.proto.http  # noqa: F401
        import opentelemetry.sdk  # noqa: F401
        return True
    except ImportError:
        return False


def post(port, body, content_type="application/x-protobuf", headers=None, path="/v1/traces", method="POST"):
    request = urllib.request.Request("http://127.0.0.1:%d%s" % (port, path), data=body, method=method)
    if content_type:
        request.add_header("Content-Type", content_type)
    for k, v in (headers or {}).items():
        request.add_header(k, v)
    try:
        with urllib.request.urlopen(request, timeout=5) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def post_declaring(port, length):
    """Declares a `length`-byte body, sends 64 KB of it and reads the answer: an oversized
    export is refused from its Content-Length, before its body is read."""
    import socket
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\n"
                  b"Content-Length: %d\r\n\r\n" % length)
        try:
            s.sendall(b"x" * 65536)
        except OSError:
            pass  # already answered and closed
        data = b""
        while b"\r\n\r\n" not in data or len(data.split(b"\r\n\r\n", 1)[1]) < 10:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


def test_an_sdk_instrumented_apps_spans_are_served_back_as_otlp_json(control):
    if not _sdk_available():
        pytest.fail("the OpenTelemetry Python SDK is missing (pip: opentelemetry-sdk "
                    "opentelemetry-exporter-otlp-proto-http); see Tests/e2e/REQUIREMENTS.md")
    endpoint = "http://127.0.0.1:%d/v1/traces" % control.otlp_port
    out = subprocess.run([sys.executable, "-c", SDK_APP, endpoint, "00-%s-%s-01" % (TRACE_ID, PARENT_SPAN)],
                         capture_output=True, timeout=60)
    assert out.stdout.decode().strip() == "flushed", out

    status, body = control.get("/api/v1/traces/%s" % TRACE_ID)
    assert status == 200, body
    data = json.loads(body)
    spans = [s for rs in data["resourceSpans"] for ss in rs["scopeSpans"] for s in ss["spans"]]
    by_name = {s["name"]: s for s in spans}
    assert set(by_name) == {"charge card", "db query"}, spans
    charge = by_name["charge card"]
    assert charge["traceId"] == TRACE_ID, "ids in hex, as OTLP JSON has them"
    assert charge["parentSpanId"] == PARENT_SPAN, "the caller's span, from traceparent"
    assert charge["kind"] == 2, "SERVER, as an integer"
    assert by_name["db query"]["parentSpanId"] == charge["spanId"]
    db = by_name["db query"]
    assert int(db["endTimeUnixNano"]) - int(db["startTimeUnixNano"]) >= 30_000_000
    resource = {a["key"]: a["value"]["stringValue"] for a in data["resourceSpans"][0]["resource"]["attributes"]
                if "stringValue" in a["value"]}
    assert resource["service.name"] == "checkout", resource

    # OTLP JSON, as the spec writes it, joins the same trace (as the caller's span).
    doc = {"resourceSpans": [{"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "web"}}]},
                              "scopeSpans": [{"spans": [{
                                  "traceId": TRACE_ID.upper(), "spanId": PARENT_SPAN, "name": "GET /checkout",
                                  "kind": 3, "startTimeUnixNano": str(int(charge["startTimeUnixNano"]) - 2_000_000),
                                  "endTimeUnixNano": str(int(charge["endTimeUnixNano"]) + 2_000_000),
                                  "status": {"code": 2}}]}]}]}
    status, answer = post(control.otlp_port, json.dumps(doc).encode(), "application/json")
    assert status == 200 and json.loads(answer) == {}, (status, answer)
    status, body = control.get("/api/v1/traces?service=web")
    assert status == 200, body
    summaries = json.loads(body)
    assert [s["traceId"] for s in summaries] == [TRACE_ID], summaries
    summary = summaries[0]
    assert summary["spanCount"] == 3 and summary["error"] is True, summary
    assert summary["rootName"] == "GET /checkout" and summary["rootService"] == "web", summary
    assert set(summary["services"]) == {"checkout", "web"}, summary
    # weftctl trace: the waterfall, one line per span, and a span's time split (here as a
    # sidecar would record it: microseconds) as parts with their share of the trace.
    split = {"resourceSpans": [{"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "web"}}]},
                                "scopeSpans": [{"spans": [{
                                    "traceId": TRACE_ID, "spanId": "1111111111111111", "parentSpanId": PARENT_SPAN,
                                    "name": "POST /charge", "kind": 2,
                                    "startTimeUnixNano": str(int(charge["startTimeUnixNano"]) - 1_000_000),
                                    "endTimeUnixNano": str(int(charge["endTimeUnixNano"]) + 1_000_000),
                                    "attributes": [{"key": "weft.duration.proxy", "value": {"intValue": "200"}},
                                                   {"key": "weft.duration.upstream", "value": {"intValue": "31000"}}],
                                }]}]}]}
    assert post(control.otlp_port, json.dumps(split).encode(), "application/json")[0] == 200
    cp = "127.0.0.1:%d" % control.http_port
    out = weftctl("trace", TRACE_ID, "--control-plane", cp)
    text = out.stdout.decode()
    assert out.returncode == 0, (text, out.stderr)
    assert text.startswith("trace %s · 4 spans · 2 services" % TRACE_ID), text
    assert "web  GET /checkout (CLIENT)" in text and "checkout  charge card (SERVER)" in text, text
    assert "db query" in text and "█" in text, text
    assert "· proxy" in text and "0.20 ms" in text and "· app" in text and "31.00 ms" in text, text
    last = weftctl("trace", "--last", "--control-plane", cp)
    assert last.returncode == 0 and TRACE_ID in last.stdout.decode(), last
    raw = weftctl("trace", TRACE_ID, "-o", "json", "--control-plane", cp)
    assert raw.returncode == 0 and json.loads(raw.stdout)["resourceSpans"], raw
    missing = weftctl("trace", "f" * 32, "--control-plane", cp)
    assert missing.returncode != 0 and "no trace" in missing.stderr.decode(), missing
    assert weftctl("trace", "--slowest", "--service", "nobody", "--control-plane", cp).returncode != 0

    status, body = control.get("/api/v1/traces?service=nobody")
    assert status == 200 and json.loads(body) == []
    status, metrics = control.get("/metrics")
    assert metric(metrics, "weft_control_spans_received_total") == 4, metrics


def test_bad_input_on_the_intake_gets_clear_errors_and_nothing_else_breaks(control):
    port = control.otlp_port
    cases = [
        (post(port, b"{}", "text/plain"), 415, "application/x-protobuf or application/json"),
        (post(port, b"\x0a\xff\xff", "application/x-protobuf"), 400, "OTLP"),
        (post(port, b"{\"resourceSpans\": 7}", "application/json"), 400, "OTLP"),
        (post(port, b"{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{\"traceId\":\"zz!\"}]}]}]}", "application/json"),
         400, ""),
        (post(port, b"{}", "application/json", headers={"Content-Encoding": "gzip"}), 415, "uncompressed"),
        (post(port, b"", "application/json", path="/v1/metrics"), 404, "/v1/traces"),
        (post_declaring(port, 5 << 20), 413, "limit"),
    ]
    for (status, body), want, text in cases:
        assert status == want, (status, body[:200])
        assert text.encode() in body, body[:200]
    status, body = http_get("http://127.0.0.1:%d/v1/traces" % port)
    assert status == 405, body
    # Still serving, and nothing of the refused exports was kept.
    assert post(port, b"", "application/x-protobuf") == (200, b"")
    status, body = control.get("/api/v1/traces")
    assert status == 200 and json.loads(body) == [], body
    status, body = control.get("/api/v1/traces/%s" % TRACE_ID)
    assert status == 404 and "no trace" in body, body
    assert control.get("/api/v1/traces/xyz")[0] == 400
    assert control.get("/api/v1/traces?minDuration=soon")[0] == 400


def post_from(source, port, body=b""):
    """A protobuf export from the local address `source` (any 127.x works on loopback):
    (status, Retry-After, body)."""
    import http.client
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5, source_address=(source, 0))
    try:
        conn.request("POST", "/v1/traces", body=body, headers={"Content-Type": "application/x-protobuf"})
        r = conn.getresponse()
        return r.status, r.getheader("retry-after"), r.read()
    finally:
        conn.close()


@pytest.mark.control_args("--otlp-rate-limit", "5")
def test_a_flood_from_one_client_is_answered_429_and_the_others_are_served(control):
    port = control.otlp_port
    # 127.0.0.1 floods: its burst (10) passes, then 429 with Retry-After, before any body is read.
    answers = [post_from("127.0.0.1", port) for _ in range(60)]
    ok = [a for a in answers if a[0] == 200]
    limited = [a for a in answers if a[0] == 429]
    assert len(ok) + len(limited) == 60, [a[0] for a in answers]
    assert 10 <= len(ok) <= 15, "burst of 10 and 5 a second: %d admitted" % len(ok)
    status, retry_after, body = limited[0]
    assert retry_after == "1" and b"at most 5 a second per client address" in body, (retry_after, body)
    # Another client address is served meanwhile, and its spans are kept.
    trace = "5" * 32
    export = json.dumps({"resourceSpans": [{"resource": {"attributes": [
        {"key": "service.name", "value": {"stringValue": "other"}}]}, "scopeSpans": [{"spans": [{
            "traceId": trace, "spanId": "6" * 16, "name": "calm", "kind": 2,
            "startTimeUnixNano": "1000", "endTimeUnixNano": "2000"}]}]}]}).encode()
    import http.client
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5, source_address=("127.0.0.2", 0))
    conn.request("POST", "/v1/traces", body=export, headers={"Content-Type": "application/json"})
    assert conn.getresponse().status == 200
    conn.close()
    assert control.get("/api/v1/traces/" + trace)[0] == 200
    assert (metric(control.metrics(), "weft_control_otlp_exports_limited_total") or 0) >= len(limited)
    # The flooder is served again once its bucket refills.
    time.sleep(1.2)
    assert post_from("127.0.0.1", port)[0] == 200


def check(condition):
    """For `eventually`, which retries on AssertionError."""
    assert condition


class Collector:
    """A stand-in OTLP/HTTP collector on loopback: keeps each POST's content type and body."""

    def __init__(self, port, tls=None, keep_alive=False):
        """`tls`: (certificate file, key file): the collector speaks https (Python's ssl,
        that is OpenSSL). `keep_alive`: it answers HTTP/1.1 and keeps connections (as
        collectors do); else HTTP/1.0, closing each."""
        import http.server
        import ssl
        import threading
        received = self.received = []
        peers = self.peers = []  # each POST's client port

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1" if keep_alive else "HTTP/1.0"

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                received.append((self.path, self.headers.get("content-type"), body))
                peers.append(self.client_address[1])
                self.send_response(200)
                self.send_header("content-type", "application/x-protobuf")
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *a):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
        if tls:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*tls)
            self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


FORWARD_PORT = free_port()


@pytest.fixture(scope="module")
def collector():
    c = Collector(FORWARD_PORT)
    yield c
    c.close()


@pytest.mark.control_args("--otlp-forward", "http://127.0.0.1:%d/otlp/v1/traces" % FORWARD_PORT)
def test_exports_are_forwarded_to_an_external_collector_as_protobuf(collector, control):
    FORWARD = collector
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
    trace = "7" * 32
    export = json.dumps({"resourceSpans": [{"resource": {"attributes": [
        {"key": "service.name", "value": {"stringValue": "fwd"}}]}, "scopeSpans": [{"spans": [{
            "traceId": trace, "spanId": "8" * 16, "name": "forwarded", "kind": 3,
            "startTimeUnixNano": "1000", "endTimeUnixNano": "5000"}]}]}]}).encode()
    assert post(control.otlp_port, export, "application/json")[0] == 200
    eventually(lambda: check(len(FORWARD.received) >= 1), timeout=10, what="the collector got the export")
    path, content_type, body = FORWARD.received[-1]
    assert path == "/otlp/v1/traces" and content_type == "application/x-protobuf", (path, content_type)
    request = ExportTraceServiceRequest()
    request.ParseFromString(body)
    span = request.resource_spans[0].scope_spans[0].spans[0]
    assert (span.name, span.trace_id.hex(), span.kind) == ("forwarded", trace, 3)
    assert request.resource_spans[0].resource.attributes[0].value.string_value == "fwd"
    # A protobuf export is passed on as it came.
    before = len(FORWARD.received)
    assert post(control.otlp_port, body, "application/x-protobuf")[0] == 200
    eventually(lambda: check(len(FORWARD.received) > before), timeout=10, what="the second export")
    assert FORWARD.received[-1][2] == body
    eventually(lambda: check((metric(control.metrics(), "weft_control_otlp_forwarded_spans_total") or 0) >= 2),
               timeout=10, what="forwarded spans counted")


@pytest.mark.control_args("--otlp-forward", "http://127.0.0.1:1/v1/traces")
def test_an_absent_collector_drops_and_counts_and_the_intake_keeps_serving(control):
    trace = "9" * 32
    export = json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [{
        "traceId": trace, "spanId": "a" * 16, "name": "kept", "kind": 2,
        "startTimeUnixNano": "1", "endTimeUnixNano": "2"}]}]}]}).encode()
    for _ in range(3):
        assert post(control.otlp_port, export, "application/json")[0] == 200
    assert control.get("/api/v1/traces/" + trace)[0] == 200
    eventually(lambda: check(
        (metric(control.metrics(), "weft_control_otlp_forward_dropped_spans_total") or 0) >= 3),
        timeout=15, what="dropped spans counted")


def test_a_bad_forward_url_is_refused_at_start_up(cenv):
    p = subprocess.run([CONTROL_BIN, "--otlp-forward", "ftp://collector:4318", "--config", cenv.config, "--ca", cenv.ca,
        "--token-file", cenv.token_file], capture_output=True, timeout=30)
    assert p.returncode != 0
    assert b"--otlp-forward: ftp://collector:4318 is not http://host[:port][/path] or https://" in p.stderr, p.stderr


def make_collector_certificates(directory, names="IP:127.0.0.1,DNS:collector.test"):
    """With openssl: a CA, and a collector certificate it signs for `names` (subject
    alternative names). Returns (ca.pem, collector.pem, collector.key)."""
    def openssl(*args):
        subprocess.run(["openssl", *args], cwd=directory, check=True, capture_output=True, timeout=30)
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "ca.key",
            "-out", "ca.pem", "-days", "2", "-subj", "/CN=weft-test-collector-ca",
            "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign")
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "collector.key",
            "-out", "collector.csr", "-subj", "/CN=collector.test")
    with open(os.path.join(directory, "san.ext"), "w") as f:
        f.write("subjectAltName=%s\nextendedKeyUsage=serverAuth\n" % names)
    openssl("x509", "-req", "-in", "collector.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
            "-out", "collector.pem", "-days", "2", "-extfile", "san.ext")
    return tuple(os.path.join(directory, n) for n in ("ca.pem", "collector.pem", "collector.key"))


@pytest.fixture
def https_collector(cenv, request):
    # A test's `collector_names` marker names the certificate's subject alternative names.
    marker = request.node.get_closest_marker("collector_names")
    ca, certificate, key = make_collector_certificates(cenv.dir, *(marker.args if marker else ()))
    c = Collector(free_port(), tls=(certificate, key), keep_alive=True)
    c.ca = ca
    yield c
    c.close()


def one_span_export(trace, name):
    return json.dumps({"resourceSpans": [{"resource": {"attributes": [
        {"key": "service.name", "value": {"stringValue": "fwd"}}]}, "scopeSpans": [{"spans": [{
            "traceId": trace, "spanId": "8" * 16, "name": name, "kind": 3,
            "startTimeUnixNano": "1000", "endTimeUnixNano": "5000"}]}]}]}).encode()


def test_exports_are_forwarded_over_https_to_a_collector_its_ca_signs(cenv, https_collector):
    control = cenv.start_control(extra=[
        "--otlp-forward", "https://127.0.0.1:%d/v1/traces" % https_collector.port,
        "--otlp-forward-ca", https_collector.ca])
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
    trace = "6" * 32
    assert post(control.otlp_port, one_span_export(trace, "over tls"), "application/json")[0] == 200
    eventually(lambda: check(len(https_collector.received) >= 1), timeout=10, what="the https collector got it")
    path, content_type, body = https_collector.received[-1]
    request = ExportTraceServiceRequest()
    request.ParseFromString(body)
    span = request.resource_spans[0].scope_spans[0].spans[0]
    assert (path, content_type, span.name, span.trace_id.hex()) == (
        "/v1/traces", "application/x-protobuf", "over tls", trace)
    for _ in range(3):  # and again, on the kept-alive TLS connection
        assert post(control.otlp_port, one_span_export(trace, "over tls"), "application/json")[0] == 200
    eventually(lambda: check(len(https_collector.received) >= 4), timeout=10, what="every export")
    eventually(lambda: check((metric(control.metrics(), "weft_control_otlp_forwarded_spans_total") or 0) >= 4),
               timeout=10, what="every forwarded span counted")
    assert (metric(control.metrics(), "weft_control_otlp_forward_dropped_spans_total") or 0) == 0
    assert len(set(https_collector.peers)) == 1, "one TLS connection for every export: %s" % https_collector.peers


@pytest.mark.collector_names("DNS:localhost")
def test_an_https_collector_named_by_dns_is_checked_by_that_name(cenv, https_collector):
    # Reached as localhost (SNI and the name check), its certificate naming only that.
    control = cenv.start_control(extra=[
        "--otlp-forward", "https://localhost:%d/v1/traces" % https_collector.port,
        "--otlp-forward-ca", https_collector.ca])
    assert post(control.otlp_port, one_span_export("4" * 32, "by name"), "application/json")[0] == 200
    eventually(lambda: check(len(https_collector.received) >= 1), timeout=10, what="the collector got it")


def test_an_untrusted_https_collector_gets_nothing_and_the_failure_is_logged(cenv, https_collector):
    # The system's roots do not hold the test CA.
    check_refused_collector(cenv, https_collector, [], "CERTIFICATE_VERIFY_FAILED")


@pytest.mark.collector_names("DNS:collector.test")
def test_an_https_collector_with_another_name_gets_nothing_and_the_failure_is_logged(cenv, https_collector):
    # Trusted, but its certificate names collector.test, not the address it is reached at.
    check_refused_collector(cenv, https_collector, ["--otlp-forward-ca", https_collector.ca], "failedToValidateHostname")


def check_refused_collector(cenv, https_collector, extra, reason):
    control = cenv.start_control(
        extra=["--otlp-forward", "https://127.0.0.1:%d/v1/traces" % https_collector.port] + extra)
    trace = "5" * 32
    for _ in range(3):
        assert post(control.otlp_port, one_span_export(trace, "kept here"), "application/json")[0] == 200
    eventually(lambda: check(
        (metric(control.metrics(), "weft_control_otlp_forward_dropped_spans_total") or 0) >= 3),
        timeout=15, what="dropped spans counted")
    assert https_collector.received == []
    # The intake kept the spans all the same.
    assert control.get("/api/v1/traces/" + trace)[0] == 200
    with open(control.log) as f:
        log = f.read()
    assert "--otlp-forward: an export to https://" in log, log
    assert log.count("an export to https://") == 1, "a failure is logged once until one succeeds"
    warning = [line for line in log.splitlines() if "an export to https://" in line][0]
    # swift-log's metadata comes first: reason=... [WeftControl] message
    assert reason in warning.partition("reason=")[2].partition(" [WeftControl]")[0], warning


def test_a_bad_forward_ca_is_refused_at_start_up(cenv):
    missing = os.path.join(cenv.dir, "no-such-ca.pem")
    p = subprocess.run([CONTROL_BIN, "--otlp-forward", "https://collector.test", "--otlp-forward-ca", missing,
        "--config", cenv.config, "--ca", cenv.ca, "--token-file", cenv.token_file], capture_output=True, timeout=30)
    assert p.returncode != 0
    assert ("--otlp-forward-ca %s: cannot read PEM certificates" % missing).encode() in p.stderr, p.stderr
    p = subprocess.run([CONTROL_BIN, "--otlp-forward", "http://collector.test", "--otlp-forward-ca", missing,
        "--config", cenv.config, "--ca", cenv.ca, "--token-file", cenv.token_file], capture_output=True, timeout=30)
    assert p.returncode != 0
    assert b"--otlp-forward-ca is for an https:// --otlp-forward" in p.stderr, p.stderr


@pytest.mark.parametrize("value", ["-1", "lots"])
def test_a_bad_rate_limit_is_refused_at_start_up(cenv, value):
    p = subprocess.run([CONTROL_BIN, "--otlp-rate-limit=" + value, "--config", cenv.config, "--ca", cenv.ca,
        "--token-file", cenv.token_file], capture_output=True, timeout=30)
    assert p.returncode != 0
    assert b"--otlp-rate-limit" in p.stderr and value.encode() in p.stderr, p.stderr


@pytest.mark.parametrize("value", ["collector", "collector:port", "localhost:99999"])
def test_a_bad_trace_intake_is_refused_at_start_up(value):
    p = subprocess.run([PROXY_BIN, "run", "--trace-intake", value], capture_output=True, timeout=30)
    assert p.returncode != 0
    assert ("--trace-intake: %s is not host:port or off" % value).encode() in p.stderr, p.stderr


@pytest.mark.control_args("--trace-memory", "4MB")
def test_the_store_stays_within_its_bound_under_a_flood_of_spans(control):
    from control_fixtures import rss_kib
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
    rss0 = rss_kib(control.proc.pid)
    # 100 exports of 200 traces of one span each, 8 attributes a span: about 10 MB of spans.
    sent = 0
    for e in range(100):
        request = ExportTraceServiceRequest()
        rs = request.resource_spans.add()
        attr = rs.resource.attributes.add()
        attr.key, attr.value.string_value = "service.name", "flood"
        ss = rs.scope_spans.add()
        for t in range(200):
            span = ss.spans.add()
            span.trace_id = (e * 1000 + t + 1).to_bytes(16, "big")
            span.span_id = (t + 1).to_bytes(8, "big")
            span.name = "GET /flood/%d" % t
            span.kind = 2
            span.start_time_unix_nano, span.end_time_unix_nano = 1_000_000 * t, 1_000_000 * t + 5_000
            for k in range(8):
                a = span.attributes.add()
                a.key, a.value.string_value = "attr.%d" % k, "value-%d-%d" % (k, t)
        status, _ = post(control.otlp_port, request.SerializeToString())
        assert status == 200
        sent += 200
    text = control.metrics()
    assert metric(text, "weft_control_spans_received_total") == sent
    assert metric(text, "weft_control_trace_store_bytes") <= 4_000_000, "the bound holds"
    assert metric(text, "weft_control_traces_evicted") > 0, "the oldest were evicted"
    # The newest trace is kept, the oldest is gone.
    assert control.get("/api/v1/traces/%032x" % (99 * 1000 + 200))[0] == 200
    assert control.get("/api/v1/traces/%032x" % 1)[0] == 404
    grown = rss_kib(control.proc.pid) - rss0
    assert grown < 40_000, "RSS grew %d KiB for a 4 MB store" % grown
