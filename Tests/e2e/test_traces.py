"""Per-hop spans from the sidecars (issue 12), end to end in network namespaces.

Topology (mesh_fixtures.Mesh, module fixture `trace_mesh`):
- pod `client` (app client, sa client) with its sidecar;
- pod `server` (app web, sa web) running the backend on :8080 and a sidecar, listed with a
  `weft-proxy` container: a meshed Pod, reached over mesh TLS;
- pod `db` (app db, sa db), meshed likewise;
- Services web 10.98.0.10 -> server, db 10.98.0.20 -> db. weft-control's OTLP intake listens
  on a free port of the node address; the sidecars export there (`--trace-intake`).
The backends' `/call/<ip>/<path>` calls another Service *without* passing trace context on
(an app that does not propagate).

What is checked: a request with a known `traceparent` through both hops is served back by
the trace API with the client sidecar's CLIENT span (a child of the caller's span) and the
server sidecar's SERVER span (a child of the CLIENT span); the app receives a
`traceparent` whose parent is the SERVER span; each span's four parts add up to its
duration within 5%, the app's 30 ms delay is the SERVER span's upstream part, and the
CLIENT span covers at least 95% of what curl measured. B3 requests are recorded under
their B3 trace id; an app span exported with the OpenTelemetry Python SDK joins the trace;
`weftctl trace` shows both pods. When the app does not propagate context, its call while it
serves one request joins that request's trace, linked and marked `weft.link.inferred`; while
it serves two, nothing is inferred. With the intake stalled (weft-control stopped) the span
queue drops and counts while requests keep being served; with `tracing.sampling: 0` a
request without context records nothing and gets no context added.
"""

import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import time

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from control_fixtures import ca_template, eventually, metric, weftctl  # noqa: E402,F401
from mesh_fixtures import (  # noqa: E402
    APP_PORT, H2C_PORT, Mesh, PodSpec, ServiceSpec, mesh_config_yaml, meshed_pod_yaml, run_mesh, service_yaml,
    watch_mesh_test, BACKEND_SERVER,
)

NS_PREFIX = "wx-"
SUBNET = "10.237.0"
NODE_IP = SUBNET + ".254"
WEB_IP = "10.98.0.10"


def _pod(name, host, app, sa=None):
    return PodSpec(name, "demo", host, app, sa=sa, subnet=SUBNET, ns_prefix=NS_PREFIX)


CLIENT = _pod("client", 1, "client")
SERVER = _pod("server", 10, "web", sa="web")
DB = _pod("db", 20, "db", sa="db")
DB_IP = "10.98.0.20"
SERVICES = [ServiceSpec("web", "demo", WEB_IP, ["server"]), ServiceSpec("db", "demo", DB_IP, ["db"])]


class TraceMesh(Mesh):
    ns_prefix = NS_PREFIX
    node_ip = NODE_IP
    pods = [CLIENT, SERVER, DB]
    backends = [SERVER, DB]
    clients = (CLIENT, SERVER, DB)
    sampling = None  # MeshConfig tracing.sampling (None: the default, 1.0)

    def backend_argv(self, p):
        return [sys.executable, "-c", BACKEND_SERVER, p.name, "%d,%d" % (APP_PORT, H2C_PORT), "7000"]

    def backend_ports(self, p):
        return (APP_PORT, H2C_PORT)

    def render(self, routes=(), services=None, outbound_policy="ALLOW_ANY", extra=""):
        spec = "tracing: {sampling: %s}" % self.sampling if self.sampling is not None else ""
        docs = [mesh_config_yaml(outbound_policy, spec_extra=spec)]
        docs += [meshed_pod_yaml(p) for p in self.pods]
        docs += [service_yaml(s, self.pods) for s in (services or SERVICES)]
        docs += [textwrap.dedent(r).strip("\n") + "\n" for r in routes if r and r.strip()]
        return "# written by Tests/e2e/test_traces.py\n" + "---\n".join(docs)


@pytest.fixture(scope="module")
def trace_mesh(ca_template):  # noqa: F811 - ca_template is the fixture
    yield from run_mesh(TraceMesh(ca_template))


@pytest.fixture
def mesh(trace_mesh, request):
    trace_mesh.sampling = None
    yield from watch_mesh_test(trace_mesh, request)


def new_ids():
    return "%032x" % random.getrandbits(128), "%016x" % random.getrandbits(64)


def fetch_trace(mesh, trace_id, spans, timeout=15.0):
    """The trace from the API once it holds at least `spans` spans: {span id: (span, resource attrs)}."""
    def ready():
        code, body = mesh.control.get("/api/v1/traces/" + trace_id)
        assert code == 200, "trace %s: %s %s" % (trace_id, code, body[:300])
        found = {}
        for rs in json.loads(body)["resourceSpans"]:
            resource = attrs(rs.get("resource", {}))
            for ss in rs.get("scopeSpans", []):
                for s in ss.get("spans", []):
                    found[s["spanId"]] = (s, resource)
        assert len(found) >= spans, "%d spans of %d: %s" % (len(found), spans, sorted(
            (s["name"], r.get("service.name")) for s, r in found.values()))
        return found
    return eventually(ready, timeout=timeout, what="trace %s with %d spans" % (trace_id, spans))


def attrs(obj):
    out = {}
    for kv in obj.get("attributes", []):
        v = kv["value"]
        out[kv["key"]] = int(v["intValue"]) if "intValue" in v else v.get("stringValue", v.get("boolValue"))
    return out


def by_kind(found, kind, service):
    matches = [(s, r) for s, r in found.values() if s["kind"] == kind and r.get("service.name") == service]
    assert len(matches) == 1, "one kind-%d span of %s: %s" % (kind, service, matches)
    return matches[0]


def duration_us(span):
    return (int(span["endTimeUnixNano"]) - int(span["startTimeUnixNano"])) / 1000.0


def assert_split(span):
    a = attrs(span)
    parts = [a["weft.duration.%s" % p] for p in ("proxy", "connect", "tls", "upstream")]
    assert all(isinstance(p, int) and p >= 0 for p in parts), a
    total = duration_us(span)
    assert abs(sum(parts) - total) <= max(0.05 * total, 2), "parts %s sum %d, span %d us" % (parts, sum(parts), total)
    return a


def curl_timed(mesh, url, headers=(), http2=False):
    """curl in the client pod: (status, JSON body, time_total in µs)."""
    argv = list(mesh.prefix("client")) + ["curl", "-s", "--noproxy", "*",
                                            "--http2-prior-knowledge" if http2 else "--http1.1", "-o", "-", "-w",
                                            "\n%{http_code} %{time_total}", url]
    for k, v in headers:
        argv += ["-H", "%s: %s" % (k, v)]
    p = subprocess.run(argv, capture_output=True, timeout=20)
    body, _, tail = p.stdout.decode().rpartition("\n")
    status, total = tail.split()
    return int(status), json.loads(body) if body.strip().startswith("{") else body, float(total) * 1e6


def test_a_known_traceparent_through_two_meshed_hops(mesh):
    mesh.apply()
    curl_timed(mesh, "http://%s/warm" % WEB_IP)  # processes and connections warm
    trace_id, caller_span = new_ids()
    status, body, client_us = curl_timed(
        mesh, "http://%s/delay/30" % WEB_IP, [("traceparent", "00-%s-%s-01" % (trace_id, caller_span)),
                                              ("tracestate", "vendor=abc")])
    assert status == 200, body
    found = fetch_trace(mesh, trace_id, 2)
    client, client_res = by_kind(found, 3, "client")
    server, server_res = by_kind(found, 2, "web")

    # Parented: caller -> CLIENT (client pod) -> SERVER (server pod) -> the app's context.
    assert client["parentSpanId"] == caller_span
    assert server["parentSpanId"] == client["spanId"]
    got = body["headers"].get("traceparent")
    assert got == "00-%s-%s-01" % (trace_id, server["spanId"]), got
    assert body["headers"].get("tracestate") == "vendor=abc", "tracestate passes on"
    assert client.get("traceState") == "vendor=abc"

    # Resources and identities.
    assert client_res["k8s.pod.name"] == "client" and server_res["k8s.pod.name"] == "server"
    assert client_res["k8s.namespace.name"] == "demo"
    c, s = assert_split(client), assert_split(server)
    assert c["weft.source.identity"] == "spiffe://cluster.local/ns/demo/sa/client"
    assert c["weft.destination.identity"] == "spiffe://cluster.local/ns/demo/sa/web"
    assert s["weft.source.identity"] == "spiffe://cluster.local/ns/demo/sa/client", "the caller's verified identity"
    assert s["weft.destination.identity"] == "spiffe://cluster.local/ns/demo/sa/web"
    assert c["http.request.method"] == "GET" and c["url.path"] == "/delay/30"
    assert c["http.response.status_code"] == 200 and s["http.response.status_code"] == 200
    assert c["weft.endpoint"].startswith(SERVER.ip + ":"), c
    assert c["weft.backend"] == "demo/web:80", c

    # The app's 30 ms are the SERVER span's upstream part; the CLIENT span waits on it.
    assert 30_000 <= s["weft.duration.upstream"] <= duration_us(server), s
    assert c["weft.duration.upstream"] >= s["weft.duration.upstream"], (c, s)
    assert duration_us(client) >= duration_us(server)
    assert duration_us(client) >= 0.95 * client_us, "span %d us, curl %d us" % (duration_us(client), client_us)


def test_http2_through_two_meshed_hops(mesh):
    mesh.apply()
    curl_timed(mesh, "http://%s/warm" % WEB_IP, http2=True)  # processes and connections warm
    trace_id, caller_span = new_ids()
    status, body, client_us = curl_timed(
        mesh, "http://%s/delay/30?q=1" % WEB_IP, [("traceparent", "00-%s-%s-01" % (trace_id, caller_span))],
        http2=True)
    assert status == 200, body
    found = fetch_trace(mesh, trace_id, 2)
    client, _ = by_kind(found, 3, "client")
    server, _ = by_kind(found, 2, "web")
    assert client["parentSpanId"] == caller_span and server["parentSpanId"] == client["spanId"]
    assert body["headers"].get("traceparent") == "00-%s-%s-01" % (trace_id, server["spanId"]), body["headers"]
    c, s = assert_split(client), assert_split(server)
    assert c["network.protocol.version"] == "2" and s["network.protocol.version"] == "2"
    assert c["url.path"] == "/delay/30", "the path without its query"
    assert 30_000 <= s["weft.duration.upstream"] <= duration_us(server), s
    assert duration_us(client) >= 0.95 * client_us, "span %d us, curl %d us" % (duration_us(client), client_us)

    # To the meshed pod's own address, never called before: the stream waits for a new
    # mesh TLS connection, and its span counts that dial's TLS handshake.
    trace_id, caller_span = new_ids()
    status, body, _ = curl_timed(
        mesh, "http://%s:%d/fresh-h2" % (SERVER.ip, H2C_PORT), [("traceparent", "00-%s-%s-01" % (trace_id, caller_span))],
        http2=True)
    assert status == 200, body
    client, _ = by_kind(fetch_trace(mesh, trace_id, 2), 3, "client")
    c = assert_split(client)
    assert c["weft.duration.tls"] > 0, c


def test_b3_requests_are_recorded_under_their_b3_trace_id(mesh):
    mesh.apply()
    trace_id, caller_span = new_ids()
    status, body, _ = curl_timed(mesh, "http://%s/b3" % WEB_IP, [("b3", "%s-%s-1" % (trace_id, caller_span))])
    assert status == 200
    found = fetch_trace(mesh, trace_id, 2)
    client, _ = by_kind(found, 3, "client")
    server, _ = by_kind(found, 2, "web")
    assert client["parentSpanId"] == caller_span and server["parentSpanId"] == client["spanId"]
    # The app gets B3 back in the form it came in, and W3C beside it.
    assert body["headers"].get("b3") == "%s-%s-1" % (trace_id, server["spanId"]), body["headers"]
    assert body["headers"].get("traceparent") == "00-%s-%s-01" % (trace_id, server["spanId"])

    # B3 multi header with a 64-bit trace id: padded to 128 bits.
    short = "%016x" % random.getrandbits(64)
    status, body, _ = curl_timed(mesh, "http://%s/b3multi" % WEB_IP, [
        ("X-B3-TraceId", short), ("X-B3-SpanId", caller_span), ("X-B3-Sampled", "1")])
    assert status == 200
    found = fetch_trace(mesh, "0" * 16 + short, 2)
    server, _ = by_kind(found, 2, "web")
    assert body["headers"].get("x-b3-traceid") == "0" * 16 + short
    assert body["headers"].get("x-b3-spanid") == server["spanId"]
    client, _ = by_kind(found, 3, "client")
    assert body["headers"].get("x-b3-parentspanid") == client["spanId"], "the span's parent, never itself"


def test_a_request_without_context_starts_a_trace_and_weftctl_draws_both_pods(mesh):
    mesh.apply()
    status, body, _ = curl_timed(mesh, "http://%s/fresh" % WEB_IP)
    assert status == 200
    parent = body["headers"].get("traceparent", "")
    assert parent.startswith("00-") and parent.endswith("-01"), body["headers"]
    trace_id = parent.split("-")[1]
    found = fetch_trace(mesh, trace_id, 2)
    client, _ = by_kind(found, 3, "client")
    assert "parentSpanId" not in client or not client["parentSpanId"], "a new trace: the CLIENT span is its root"

    p = weftctl("trace", trace_id, "--control-plane", mesh.control.http, prefix=mesh.node_prefix)
    text = p.stdout.decode()
    assert p.returncode == 0, text + p.stderr.decode()
    assert "client" in text and "web" in text, text
    assert "app" in text, "the SERVER span's upstream part is the app's: %s" % text


SDK_APP = r'''
import sys
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

endpoint, traceparent = sys.argv[1], sys.argv[2]
provider = TracerProvider(resource=Resource.create({"service.name": "web-app"}))
provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint, timeout=5)))
ctx = TraceContextTextMapPropagator().extract({"traceparent": traceparent})
with provider.get_tracer("app").start_as_current_span("render", context=ctx):
    pass
print("flushed" if provider.force_flush(10_000) else "flush failed")
provider.shutdown()
'''


def test_an_app_span_from_the_opentelemetry_sdk_joins_the_trace(mesh):
    pytest.importorskip("opentelemetry.exporter.otlp.proto.http")
    mesh.apply()
    status, body, _ = curl_timed(mesh, "http://%s/sdk" % WEB_IP)
    assert status == 200
    received = body["headers"]["traceparent"]
    trace_id, server_span = received.split("-")[1:3]
    # The app, in its pod, exports with the SDK's own exporter to the intake the sidecars use.
    p = subprocess.run(list(mesh.prefix("server")) + [
        sys.executable, "-c", SDK_APP, "http://%s:%d/v1/traces" % (NODE_IP, mesh.control.otlp_port), received],
        capture_output=True, timeout=60)
    assert b"flushed" in p.stdout, p.stdout + p.stderr
    found = fetch_trace(mesh, trace_id, 3)
    app = [s for s, r in found.values() if r.get("service.name") == "web-app"]
    assert len(app) == 1 and app[0]["parentSpanId"] == server_span, app


def test_a_stalled_intake_drops_and_counts_spans_and_requests_go_on(mesh):
    if subprocess.run(["which", "h2load"], capture_output=True).returncode != 0:
        pytest.fail("h2load not installed (apt: nghttp2-client)")
    mesh.apply()
    client = mesh.proxies["client"]
    dropped0 = metric(client.metrics(), "weft_spans_dropped_total", reason="queue_full") or 0
    # weft-control stopped: connections to its intake are accepted by the kernel and never
    # answered, so one export hangs and the queue behind it fills.
    mesh.control.proc.send_signal(signal.SIGSTOP)
    try:
        started = time.monotonic()
        p = subprocess.run(list(mesh.prefix("client")) + [
            "h2load", "--h1", "-n", "4000", "-c", "4", "http://%s/load" % WEB_IP], capture_output=True, timeout=60)
        elapsed = time.monotonic() - started
    finally:
        mesh.control.proc.send_signal(signal.SIGCONT)
    text = p.stdout.decode()
    assert "4000 succeeded" in text and "0 failed" in text, text
    assert elapsed < 30, "4000 requests took %.1f s" % elapsed
    dropped = metric(client.metrics(), "weft_spans_dropped_total", reason="queue_full") or 0
    assert dropped - dropped0 >= 4000 - 2048 - 512, "dropped %d" % (dropped - dropped0)
    # The intake is back: later spans are exported again.
    exported0 = metric(client.metrics(), "weft_spans_exported_total") or 0
    trace_id, caller_span = new_ids()
    curl_timed(mesh, "http://%s/after" % WEB_IP, [("traceparent", "00-%s-%s-01" % (trace_id, caller_span))])
    fetch_trace(mesh, trace_id, 2, timeout=20)
    assert (metric(client.metrics(), "weft_spans_exported_total") or 0) > exported0


def test_sampling_zero_records_nothing_and_adds_no_context(mesh):
    mesh.sampling = 0
    mesh.apply()
    client = mesh.proxies["client"]

    def exported():
        return metric(client.metrics(), "weft_spans_exported_total") or 0
    time.sleep(1.5)  # spans of earlier tests leave the queue
    before = exported()
    status, body, _ = curl_timed(mesh, "http://%s/unsampled" % WEB_IP)
    assert status == 200
    assert "traceparent" not in body["headers"], body["headers"]
    # A caller's "not sampled" passes on untouched.
    trace_id, caller_span = new_ids()
    header = "00-%s-%s-00" % (trace_id, caller_span)
    status, body, _ = curl_timed(mesh, "http://%s/unsampled" % WEB_IP, [("traceparent", header)])
    assert body["headers"].get("traceparent") == header
    time.sleep(1.5)
    assert exported() == before
    code, _ = mesh.control.get("/api/v1/traces/" + trace_id)
    assert code == 404


def test_an_app_that_does_not_propagate_has_its_call_linked_by_inference(mesh):
    mesh.apply()
    trace_id, caller_span = new_ids()
    status, body, _ = curl_timed(mesh, "http://%s/call/%s/inner" % (WEB_IP, DB_IP),
                                 [("traceparent", "00-%s-%s-01" % (trace_id, caller_span))])
    assert status == 200, body
    assert body["called"]["pod"] == "db"
    # web's app sent no traceparent, yet db's app got one in the same trace.
    assert trace_id in body["called"]["headers"].get("traceparent", ""), body["called"]["headers"]
    found = fetch_trace(mesh, trace_id, 4)
    web_server, _ = by_kind(found, 2, "web")
    web_client, _ = by_kind(found, 3, "web")
    db_server, _ = by_kind(found, 2, "db")
    assert web_client["parentSpanId"] == web_server["spanId"], "joined to the request it serves"
    assert attrs(web_client).get("weft.link.inferred") is True, attrs(web_client)
    links = web_client.get("links", [])
    assert len(links) == 1 and links[0]["spanId"] == web_server["spanId"], links
    assert db_server["parentSpanId"] == web_client["spanId"]
    assert "weft.link.inferred" not in attrs(web_server)


@pytest.mark.parametrize("other", ["sampled", "unsampled"])
def test_no_link_is_inferred_while_the_app_serves_two_requests(mesh, other):
    import concurrent.futures
    mesh.apply()
    busy, caller = new_ids(), new_ids()
    flag = "01" if other == "sampled" else "00"
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        # Another request keeps web busy for 2.8 s (an unsampled one is not traced, but it
        # is served too); while it is, the calling request comes and calls db at once.
        long = pool.submit(lambda: curl_timed(mesh, "http://%s/delay/2800" % WEB_IP,
                                              [("traceparent", "00-%s-%s-%s" % (busy[0], busy[1], flag))])
                           + (time.monotonic(),))
        time.sleep(0.8)
        started = time.monotonic()
        status, body, _ = curl_timed(mesh, "http://%s/call/%s/inner" % (WEB_IP, DB_IP),
                                     [("traceparent", "00-%s-%s-01" % caller)])
        ended = time.monotonic()
        long_status, _, long_us, long_end = long.result()
    assert status == 200 and long_status == 200, (status, long_status)
    # The busy request was in flight (by curl's own clock) all along the calling one.
    assert long_end - long_us / 1e6 < started and ended < long_end, \
        "no overlap: busy %.2f..%.2f, calling %.2f..%.2f" % (long_end - long_us / 1e6, long_end, started, ended)
    assert caller[0] not in body["called"]["headers"].get("traceparent", caller[0] + "?"), \
        "db's call must start a trace of its own"
    time.sleep(1.5)  # spans exported
    found = fetch_trace(mesh, caller[0], 2)
    assert sorted((s["kind"], r["service.name"]) for s, r in found.values()) == [(2, "web"), (3, "client")], found


def openmetrics_exemplars(mesh, pod, family_name, trace_id, **labels):
    """(le, exemplar) of `trace_id` on `family_name`'s buckets with `labels`, from `pod`'s
    sidecar asked for OpenMetrics, read whole by prometheus_client's OpenMetrics parser."""
    from prometheus_client.openmetrics.parser import text_string_to_metric_families
    proxy = mesh.proxies[pod]
    argv = list(mesh.prefix(pod)) + ["curl", "-s", "-H", "Accept: application/openmetrics-text; version=1.0.0",
                                     "-D", "-", "http://127.0.0.1:%d/metrics" % proxy.admin_port]
    raw = subprocess.run(argv, capture_output=True, timeout=10).stdout.decode()
    head, _, text = raw.partition("\r\n\r\n")
    assert "application/openmetrics-text" in head.lower(), head
    assert text.endswith("# EOF\n")
    exemplars = []
    for family in text_string_to_metric_families(text):
        if family.name == family_name:
            exemplars += [(s.labels.get("le"), s.exemplar) for s in family.samples if s.exemplar
                          and all(s.labels.get(k) == v for k, v in labels.items())]
    ours = [(le, e) for le, e in exemplars if e.labels.get("trace_id") == trace_id]
    assert ours, "%s: no exemplar of trace %s on %s among %s" % (pod, trace_id, family_name, exemplars)
    return ours


def test_latency_buckets_carry_the_trace_as_an_exemplar_in_openmetrics(mesh):
    mesh.apply()
    trace_id, caller_span = new_ids()
    status, _, _ = curl_timed(mesh, "http://%s/delay/120" % WEB_IP,
                              [("traceparent", "00-%s-%s-01" % (trace_id, caller_span))])
    assert status == 200
    client = mesh.proxies["client"]
    le, exemplar = openmetrics_exemplars(mesh, "client", "weft_route_request_duration_seconds", trace_id)[0]
    assert 0.12 <= exemplar.value <= float(le), (le, exemplar)
    found = fetch_trace(mesh, trace_id, 2)
    client_span, _ = by_kind(found, 3, "client")
    server_span, _ = by_kind(found, 2, "web")
    assert exemplar.labels["span_id"] == client_span["spanId"], "the exemplar names the CLIENT span"
    # The per-direction histograms carry them too: the CLIENT span outbound, and on the
    # server's sidecar the SERVER span inbound.
    le, exemplar = openmetrics_exemplars(mesh, "client", "weft_request_duration_seconds", trace_id,
                                         direction="outbound", protocol="http1")[0]
    assert exemplar.labels["span_id"] == client_span["spanId"] and 0.12 <= exemplar.value <= float(le), exemplar
    le, exemplar = openmetrics_exemplars(mesh, "server", "weft_request_duration_seconds", trace_id,
                                         direction="inbound", protocol="http1")[0]
    assert exemplar.labels["span_id"] == server_span["spanId"] and 0.12 <= exemplar.value <= float(le), exemplar
    # Prometheus text (the default) is unchanged: no exemplars.
    plain = subprocess.run(list(mesh.prefix("client")) + ["curl", "-s", "http://127.0.0.1:%d/metrics" % client.admin_port],
                           capture_output=True, timeout=10).stdout.decode()
    assert " # {" not in plain and "# EOF" not in plain
