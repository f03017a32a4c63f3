"""Outbound routing and balancing by the client's sidecar (issue 10), end to end.

The mesh of mesh_fixtures.py: a client pod with its sidecar, backend pods without one,
weft-control with a config folder each test rewrites (`mesh.apply`). Nothing routes the
ClusterIP range, so a ClusterIP answers only if the sidecar picked an endpoint itself.

The contract (errors are answered by the sidecar with a `weft-error` header):
  no rule matches                               404 no-route
  the chosen backend has no ready endpoint      503 no-endpoints
  the backendRef names no existing Service      500 unresolved-backend
  routes/endpoints late for the first request   503 discovery-timeout
  REGISTRY_ONLY, destination not in the mesh    502 registry-only (TCP: reset)
Routes follow Gateway API v1 (GAMMA): an HTTPRoute whose parentRef is a Service applies
to traffic to that Service's ClusterIP (and only that port when the parentRef has one),
never to traffic sent to a pod IP; a route in the Service's namespace (producer) applies
to every client unless routes in the client's own namespace (consumer) have that Service
as parent, and then only those apply.

The fixture tests (test_fixture_*) check the harness itself and pass with a sidecar that
does not route; the rest need the routing sidecar.
"""

import json
import math
import os
import signal
import socket
import sys
import threading
import time

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from control_fixtures import ca_template, eventually, metric  # noqa: E402,F401 - fixtures are used by name
from mesh_fixtures import (  # noqa: E402,F401
    APP_PORT, ECHO_PORT, H2C_PORT, OUTSIDER_IP, POD, SERVICE, SERVICES, http_route, mesh, mesh_test, summary,
)
from weft_e2e import ns_connect  # noqa: E402

pytestmark = pytest.mark.usefixtures("mesh_test")

PROTOCOLS = [pytest.param(False, id="http1"), pytest.param(True, id="http2")]
WEB = {"web-0", "web-1"}


def proto(http2):
    return "HTTP/2" if http2 else "HTTP/1.1"


# ------------------------------------------------------------------ helpers --

def expect_from(replies, allowed, what):
    """Every reply is a 200 from one of `allowed` (pod names)."""
    if isinstance(allowed, str):
        allowed = {allowed}
    bad = [r for r in replies if r.status != 200 or r.pod not in allowed]
    assert not bad, "%s: expected every answer to be 200 from %s; got %s; first unexpected: %r" % (
        what, " or ".join(sorted(allowed)), summary(replies), bad[0])


def expect_error(reply, status, code, what):
    assert reply.status == status and reply.weft_error == code, \
        "%s: expected %d with weft-error: %s (answered by the sidecar); got %s: %r" % (
            what, status, code, reply.short(), reply)


def expect_cases(mesh, cases, http2, what):
    """cases: [(request dict, expected pod or (status, weft-error))], sent in order over
    kept-alive connections (mesh.requests); every mismatch is reported, not only the first."""
    replies = mesh.requests(*[rq for rq, _ in cases], http2=http2)
    failures = []
    for (rq, want), r in zip(cases, replies):
        label = "%s %s%s" % (rq.get("method") or "GET", rq["url"],
                             "".join(" [%s: %s]" % tuple(h) for h in rq.get("headers", ())))
        if isinstance(want, tuple):
            if not (r.status == want[0] and r.weft_error == want[1]):
                failures.append("%s: expected %d weft-error=%s, got %s" % (label, want[0], want[1], r.short()))
        elif r.status != 200 or r.pod != want:
            failures.append("%s: expected 200 from %s, got %s" % (label, want, r.short()))
    assert not failures, "%s over %s, %d of %d requests went wrong:\n  %s" % (
        what, proto(http2), len(failures), len(cases), "\n  ".join(failures))


def req(url, method=None, headers=(), data=None):
    return {"url": url, "method": method, "headers": list(headers), "data": data}


def outbound_requests(mesh):
    return metric(mesh.proxy.metrics(), "weft_requests_total", direction="outbound") or 0


# ------------------------------------------------------ the fixture itself --

def test_fixture_sidecar_ready_acked_and_passing_pod_traffic(mesh):
    """Harness check (passes without routing): the client's sidecar is ready, holds an
    identity, acked the config, and relays a request to a pod IP to that pod."""
    mesh.apply()
    code, body = mesh.proxy.ready()
    assert code == 200, "client sidecar /ready: expected 200, got %s %r" % (code, body)
    cfg = mesh.proxy.config()
    assert cfg["connected"] is True, "client sidecar not connected to weft-control: %s" % cfg
    assert cfg.get("identity"), "client sidecar holds no identity: %s" % cfg
    status = mesh.control.wait_acked(pod="client")
    assert status["pod"] == "client", status
    before = outbound_requests(mesh)
    for http2 in (False, True):
        for pod in ("web-0", "api-else-0"):
            r = mesh.get(mesh.pod_url(pod, "/hello?x=1"), http2=http2)
            assert r.status == 200 and r.pod == pod, \
                "%s to pod %s's IP: expected 200 from %s, got %s: %r" % (proto(http2), pod, pod, r.short(), r)
            assert r.json["path"] == "/hello?x=1", "backend saw target %r, want /hello?x=1" % r.json["path"]
    after = eventually(lambda: _grew(mesh, before, 4), timeout=5, what="outbound requests counted")
    assert after >= before + 4


def _grew(mesh, before, n):
    now = outbound_requests(mesh)
    assert now >= before + n, "the sidecar counted %s outbound requests, want >= %s" % (now - before, n)
    return now


def test_fixture_cluster_ips_unreachable_without_the_sidecar(mesh):
    """Harness check: with the sidecar bypassed (a socket of UID 2102), a ClusterIP does
    not answer; there is no kube-proxy, so only the sidecar can make it work."""
    ip = SERVICE["web"].cluster_ip
    try:
        s = ns_connect(POD["client"].ns, ip, 80, timeout=2.0, uncaptured=True)
    except OSError:
        return  # unreachable / timed out: as it must be
    s.close()
    pytest.fail("an uncaptured connection to ClusterIP %s:80 succeeded; the topology must not route "
                "the ClusterIP range" % ip)


def test_fixture_backends_answer_http1_and_h2c(mesh):
    """Harness check: a backend answers HTTP/1.1 and h2c on :8080 and :8081 with its name,
    through the sidecar to its pod IP, with curl and with the Python client (mesh.send)."""
    for port in (APP_PORT, H2C_PORT):
        for http2 in (False, True):
            for client in (mesh.curl, mesh.send):
                what = "%s :%d with %s" % (proto(http2), port, client.__name__)
                rs = client(req(mesh.pod_url("web-v1-0", "/status/418", port=port)),
                            req(mesh.pod_url("web-v1-0", "/a/b?c=d", port=port), method="PUT",
                                headers=[("X-Test", "1")], data="x"),
                            req(mesh.pod_url("web-v1-0", "/delay/50", port=port), method="POST", data=""),
                            http2=http2)
                assert rs[0].status == 418 and rs[0].pod == "web-v1-0", "%s /status/418: %r" % (what, rs[0])
                j = rs[1].json or {}
                assert rs[1].status == 200 and j.get("method") == "PUT" and j.get("path") == "/a/b?c=d" \
                    and j["headers"].get("x-test") == "1", "%s echo: %r" % (what, rs[1])
                assert rs[2].status == 200 and rs[2].pod == "web-v1-0", "%s /delay/50: %r" % (what, rs[2])


# ------------------------------------------------------------- 1. ClusterIP --

def expect_balancer(mesh, backend, pods):
    """The sidecar balances `backend` over exactly `pods` (its /debug/endpoints). Which of
    them served a given request is the balancer's choice: P2C over peak-EWMA latency
    rightly sends a burst to the one that answered faster (test_balancing.py tests that)."""
    code, body = mesh.proxy.get("/debug/endpoints")
    assert code == 200, (code, body)
    report = json.loads(body)
    found = [b for loop in report["loops"] for b in loop["backends"] if b["backend"] == backend]
    assert found, "no balancer for %s in /debug/endpoints: %s" % (backend, body)
    addresses = {e["address"].rsplit(":", 1)[0] for e in found[0]["endpoints"]}
    want = {POD[p].ip for p in pods}
    assert addresses == want, "%s balances over %s, expected %s (%s)" % (backend, addresses, want, sorted(pods))


def get_concurrently(mesh, url, http2, streams=4, each=10):
    """streams x each requests, the streams in parallel. P2C weighs requests in flight, so
    concurrent callers spread over equal endpoints; one caller in sequence would rightly
    stay on the endpoint that answers fastest."""
    results = [None] * streams

    def stream(i):
        results[i] = mesh.get_many(url, each, http2=http2)
    threads = [threading.Thread(target=stream, args=(i,)) for i in range(streams)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert all(r is not None for r in results), "a request stream did not finish within 60 s"
    return [reply for r in results for reply in r]


@pytest.mark.parametrize("http2", PROTOCOLS)
def test_cluster_ip_balances_over_endpoints_without_kube_proxy(mesh, http2):
    mesh.apply()  # Service web: web-0 and web-1, no HTTPRoute
    first = mesh.get(mesh.url("web"), http2=http2)
    expect_from([first], WEB, "%s to Service web's ClusterIP (no route, no kube-proxy)" % proto(http2))
    replies = get_concurrently(mesh, mesh.url("web", "/many"), http2)
    expect_from(replies, WEB, "40 %s requests to Service web" % proto(http2))
    expect_balancer(mesh, "demo/web:80", WEB)


# ------------------------------------------------------------ 2. 90/10 split --

@pytest.mark.parametrize("http2", PROTOCOLS)
def test_weighted_split_90_10(mesh, http2):
    mesh.apply(routes=http_route("web-split", "web", """
        - backendRefs:
          - {name: web-v1, port: 80, weight: 90}
          - {name: web-v2, port: 80, weight: 10}
    """))
    warmup = mesh.get_many(mesh.url("web", "/warmup"), 10, http2=http2)
    expect_from(warmup, {"web-v1-0", "web-v2-0"}, "%s warm-up to web (split 90/10 to web-v1/web-v2)" % proto(http2))
    n, p = 1000, 0.1
    replies = mesh.get_many(mesh.url("web", "/split"), n, http2=http2, max_time=5)
    expect_from(replies, {"web-v1-0", "web-v2-0"}, "%d %s requests split 90/10" % (n, proto(http2)))
    v2 = sum(1 for r in replies if r.pod == "web-v2-0")
    sigma = math.sqrt(n * p * (1 - p))
    low, high = n * p - 4.5 * sigma, n * p + 4.5 * sigma
    assert low <= v2 <= high, (
        "%d %s requests with weights web-v1 90 / web-v2 10: expected web-v2's share within 4.5 sigma of 10%% "
        "(%.0f..%.0f requests); got %d to web-v2 and %d to web-v1" % (n, proto(http2), low, high, v2, n - v2))


# ----------------------------------------------------------------- 3. matches --

@pytest.mark.parametrize("http2", PROTOCOLS)
def test_header_match(mesh, http2):
    mesh.apply(routes=http_route("web-headers", "web", """
        - matches:
          - headers: [{name: x-canary, value: "true"}]
          backendRefs: [{name: web-v2, port: 80}]
        - matches:
          - headers: [{name: x-canary, value: "true"}, {type: Exact, name: x-user, value: alice}]
          backendRefs: [{name: web-v3, port: 80}]
        - backendRefs: [{name: web-v1, port: 80}]
    """))
    u = mesh.url("web", "/h")
    expect_cases(mesh, [
        (req(u), "web-v1-0"),
        (req(u, headers=[("x-canary", "true")]), "web-v2-0"),
        (req(u, headers=[("X-Canary", "true")]), "web-v2-0"),       # names are case-insensitive
        (req(u, headers=[("x-canary", "TRUE")]), "web-v1-0"),       # Exact values are not
        (req(u, headers=[("x-canary", "false")]), "web-v1-0"),
        (req(u, headers=[("x-user", "alice")]), "web-v1-0"),
        (req(u, headers=[("x-canary", "true"), ("x-user", "alice")]), "web-v3-0"),  # more header matches win
        (req(u, headers=[("x-canary", "true"), ("x-user", "bob")]), "web-v2-0"),
    ], http2, "header matches")


@pytest.mark.parametrize("http2", PROTOCOLS)
def test_query_param_match(mesh, http2):
    mesh.apply(routes=http_route("web-query", "web", """
        - matches:
          - queryParams: [{name: version, value: "2"}]
          backendRefs: [{name: web-v2, port: 80}]
        - backendRefs: [{name: web-v1, port: 80}]
    """))
    expect_cases(mesh, [
        (req(mesh.url("web", "/q")), "web-v1-0"),
        (req(mesh.url("web", "/q?version=2")), "web-v2-0"),
        (req(mesh.url("web", "/q/deeper?a=1&version=2&b=3")), "web-v2-0"),
        (req(mesh.url("web", "/q?version=3")), "web-v1-0"),
        (req(mesh.url("web", "/q?version=22")), "web-v1-0"),
        (req(mesh.url("web", "/q?Version=2")), "web-v1-0"),         # names match exactly
        (req(mesh.url("web", "/q?versions=2")), "web-v1-0"),
    ], http2, "query parameter matches")


@pytest.mark.parametrize("http2", PROTOCOLS)
def test_method_match(mesh, http2):
    mesh.apply(routes=http_route("web-methods", "web", """
        - matches: [{method: POST}]
          backendRefs: [{name: web-v2, port: 80}]
        - matches: [{method: DELETE, path: {type: PathPrefix, value: /admin}}]
          backendRefs: [{name: web-v3, port: 80}]
        - backendRefs: [{name: web-v1, port: 80}]
    """))
    expect_cases(mesh, [
        (req(mesh.url("web", "/m")), "web-v1-0"),
        (req(mesh.url("web", "/m"), method="POST", data=""), "web-v2-0"),
        (req(mesh.url("web", "/m"), method="PUT", data=""), "web-v1-0"),
        (req(mesh.url("web", "/admin/x"), method="DELETE"), "web-v3-0"),
        (req(mesh.url("web", "/m"), method="DELETE"), "web-v1-0"),
        (req(mesh.url("web", "/admin"), method="GET"), "web-v1-0"),
        (req(mesh.url("web", "/admin"), method="POST", data=""), "web-v2-0"),
    ], http2, "method matches")


@pytest.mark.parametrize("http2", PROTOCOLS)
def test_path_precedence(mesh, http2):
    # Rules deliberately in the wrong order, and the Exact one in a route of its own:
    # precedence is Gateway API's across all routes of the Service, not document order.
    mesh.apply(routes=[
        http_route("web-paths", "web", """
            - matches: [{path: {type: PathPrefix, value: /}}]
              backendRefs: [{name: web, port: 80}]
            - matches: [{path: {type: PathPrefix, value: /foo}}]
              backendRefs: [{name: web-v1, port: 80}]
            - matches: [{path: {type: PathPrefix, value: /foo/bar}}]
              backendRefs: [{name: web-v2, port: 80}]
        """),
        http_route("web-exact", "web", """
            - matches: [{path: {type: Exact, value: /foo/bar}}]
              backendRefs: [{name: web-v3, port: 80}]
        """),
    ])
    u = lambda p: req(mesh.url("web", p))  # noqa: E731
    cases = [
        (u("/foo/bar"), "web-v3-0"),           # Exact beats every prefix
        (u("/foo/bar?x=1"), "web-v3-0"),       # the query is not part of the path
        (u("/foo/bar/"), "web-v2-0"),          # not Exact; prefix /foo/bar matches /foo/bar/
        (u("/foo/bar/baz"), "web-v2-0"),       # the longer prefix wins
        (u("/foo/barbaz"), "web-v1-0"),        # /foo/bar does not match /foo/barbaz
        (u("/foo"), "web-v1-0"),
        (u("/foo/"), "web-v1-0"),
        (u("/foo/x"), "web-v1-0"),
    ]
    replies = mesh.requests(*[c for c, _ in cases], http2=http2)
    wrong = ["%s: expected 200 from %s, got %s" % (c["url"], want, r.short())
             for (c, want), r in zip(cases, replies) if r.status != 200 or r.pod != want]
    # /foobar and / go to Service web itself: either of its pods.
    for path in ("/foobar", "/", "/other"):
        r = mesh.get(mesh.url("web", path), http2=http2)
        if r.status != 200 or r.pod not in WEB:
            wrong.append("%s: expected 200 from web-0 or web-1 (prefix /), got %s" % (path, r.short()))
    assert not wrong, "path precedence over %s:\n  %s" % (proto(http2), "\n  ".join(wrong))


# ----------------------------------------------------------------- 4. no route --

@pytest.mark.parametrize("http2", PROTOCOLS)
def test_no_rule_matches_is_404_no_route(mesh, http2):
    mesh.apply(routes=http_route("web-api-only", "web", """
        - matches: [{path: {type: PathPrefix, value: /api}}]
          backendRefs: [{name: web-v2, port: 80}]
    """))
    expect_cases(mesh, [
        (req(mesh.url("web", "/api")), "web-v2-0"),
        (req(mesh.url("web", "/api/x")), "web-v2-0"),
        (req(mesh.url("web", "/other")), (404, "no-route")),
        (req(mesh.url("web", "/")), (404, "no-route")),
        (req(mesh.url("web", "/apix")), (404, "no-route")),
    ], http2, "a route with only a PathPrefix /api rule")


# ------------------------------------------------------ 5. backends that fail --

@pytest.mark.parametrize("http2", PROTOCOLS)
def test_backend_without_endpoints_and_missing_backend(mesh, http2):
    mesh.apply(routes=[
        http_route("v3-to-empty", "web-v3", "- backendRefs: [{name: empty, port: 80}]"),
        http_route("v2-to-ghost", "web-v2", "- backendRefs: [{name: ghost, port: 80}]"),
    ])
    assert any("ghost" in w for w in mesh.warnings()), \
        "weft-control should warn about the backendRef to missing Service ghost; warnings: %s" % mesh.warnings()
    expect_cases(mesh, [
        # A route's backend whose only endpoint is not ready.
        (req(mesh.url("web-v3", "/e")), (503, "no-endpoints")),
        # No route: the Service itself, with a not-ready endpoint / with no EndpointSlice.
        (req(mesh.url("empty", "/e")), (503, "no-endpoints")),
        (req(mesh.url("vacant", "/e")), (503, "no-endpoints")),
        # A backendRef to a Service that does not exist.
        (req(mesh.url("web-v2", "/g")), (500, "unresolved-backend")),
    ], http2, "backends without ready endpoints, and a backendRef to a missing Service")
    expect_from([mesh.get(mesh.url("web", "/ok"), http2=http2)], WEB, "Service web beside the failing ones")


# ----------------------------------------------------- 6. pod IPs pass through --

@pytest.mark.parametrize("http2", PROTOCOLS)
def test_pod_ip_passes_through_despite_service_routes(mesh, http2):
    mesh.apply(routes=http_route("web-all-to-v2", "web", "- backendRefs: [{name: web-v2, port: 80}]"))
    for pod in ("web-0", "web-1"):
        replies = mesh.get_many(mesh.pod_url(pod, "/direct"), 5, http2=http2)
        expect_from(replies, pod, "%s to pod %s's IP:8080 while Service web routes everything to web-v2"
                    % (proto(http2), pod))
    # And the route is in force for the Service's ClusterIP (else the above proves nothing).
    replies = mesh.get_many(mesh.url("web", "/via-service"), 5, http2=http2)
    expect_from(replies, "web-v2-0", "%s to Service web's ClusterIP with the route to web-v2" % proto(http2))


# ----------------------------------------------------------- 7. port-scoped route --

@pytest.mark.parametrize("http2", PROTOCOLS)
def test_route_with_parent_port_applies_to_that_port_only(mesh, http2):
    services = [s.with_ports(("http", 80, APP_PORT), ("alt", 81, APP_PORT)) if s.name == "web" else s
                for s in SERVICES]
    mesh.apply(services=services, routes=http_route("web-port-80", "web", port=80, rules="""
        - backendRefs: [{name: web-v2, port: 80}]
    """))
    on80 = mesh.get_many(mesh.url("web", "/p80", port=80), 10, http2=http2)
    expect_from(on80, "web-v2-0", "%s to web:80 (route with parentRef port 80 -> web-v2)" % proto(http2))
    on81 = get_concurrently(mesh, mesh.url("web", "/p81", port=81), http2)
    expect_from(on81, WEB, "%s to web:81 (the route is for port 80 only)" % proto(http2))
    expect_balancer(mesh, "demo/web:81", WEB)


# --------------------------------------------------- 8. producer and consumer --

@pytest.mark.parametrize("http2", PROTOCOLS)
def test_consumer_and_producer_routes(mesh, http2):
    elsewhere = http_route("api-for-elsewhere", "api", namespace="elsewhere", parent_namespace="other", rules="""
        - backendRefs: [{name: api-else, port: 80}]
    """)
    producer = http_route("api-producer", "api", namespace="other", rules="""
        - backendRefs: [{name: api-v2, port: 80}]
    """)
    consumer = http_route("api-for-demo", "api", namespace="demo", parent_namespace="other", rules="""
        - matches: [{path: {type: PathPrefix, value: /c}}]
          backendRefs: [{name: api-demo, port: 80}]
    """)
    url = lambda p: mesh.url("api", p)  # noqa: E731

    # A consumer route of another namespace (elsewhere) does not apply to the client (demo).
    mesh.apply(routes=[elsewhere])
    expect_from(mesh.get_many(url("/a"), 5, http2=http2), "api-0",
                "%s from demo to other/api with only a route in namespace elsewhere" % proto(http2))

    # A producer route (namespace other, the Service's) applies to every client.
    mesh.apply(routes=[elsewhere, producer])
    expect_from(mesh.get_many(url("/b"), 5, http2=http2), "api-v2-0",
                "%s from demo to other/api with the producer route to api-v2" % proto(http2))

    # A consumer route in the client's namespace: only the consumer routes apply.
    mesh.apply(routes=[elsewhere, producer, consumer])
    expect_cases(mesh, [
        (req(url("/c")), "api-demo-0"),
        (req(url("/c/x")), "api-demo-0"),
        (req(url("/b")), (404, "no-route")),  # the producer route no longer applies to demo
    ], http2, "from demo to other/api with a consumer route in demo (PathPrefix /c) and a producer route")


# --------------------------------------------------- 9. live config change --

@pytest.mark.parametrize("http2", PROTOCOLS)
def test_route_change_applies_on_an_open_connection(mesh, http2):
    def to(backend):
        return http_route("web-live", "web", "- backendRefs: [{name: %s, port: 80}]" % backend)

    mesh.apply(routes=to("web-v1"))
    with mesh.connect("web", 80, http2=http2) as conn:
        before = [conn.request("/before/%d" % i) for i in range(5)]
        expect_from(before, "web-v1-0", "%s keep-alive requests with the route to web-v1" % proto(http2))
        mesh.apply(routes=to("web-v2"))
        after = [conn.request("/after/%d" % i) for i in range(5)]
        expect_from(after, "web-v2-0", "%s requests on the same connection after the route moved to web-v2"
                    % proto(http2))
        assert conn.connects == 1, "the client had to open %d connections; the change must apply to the open one" \
            % conn.connects


# --------------------------------------------------------- 10. REGISTRY_ONLY --

@pytest.mark.parametrize("http2", PROTOCOLS)
def test_registry_only_refuses_destinations_outside_the_mesh(mesh, http2):
    mesh.apply(outbound_policy="ALLOW_ANY")
    r = mesh.get(mesh.pod_url("outsider", "/free"), http2=http2)
    assert r.status == 200 and r.pod == "outsider", \
        "ALLOW_ANY: %s to a workload outside the mesh should pass through; got %s: %r" % (proto(http2), r.short(), r)

    mesh.apply(outbound_policy="REGISTRY_ONLY")
    expect_error(mesh.get(mesh.pod_url("outsider", "/closed"), http2=http2), 502, "registry-only",
                 "REGISTRY_ONLY: %s to %s:8080, neither a Service nor a pod of the mesh" % (proto(http2), OUTSIDER_IP))
    # The Service first: then its pods are known to the sidecar however it learns them.
    expect_from([mesh.get(mesh.url("web", "/svc"), http2=http2)], WEB,
                "REGISTRY_ONLY: %s to Service web" % proto(http2))
    expect_from([mesh.get(mesh.pod_url("web-0", "/pod"), http2=http2)], "web-0",
                "REGISTRY_ONLY: %s to pod web-0's IP (a pod of the mesh, an endpoint of web)" % proto(http2))


def test_registry_only_resets_tcp_to_destinations_outside_the_mesh(mesh):
    ns = POD["client"].ns

    def echo(pod):
        """(bytes read, how it ended): "echoed", "reset", "eof", "timeout" or "connect failed"."""
        try:
            s = ns_connect(ns, POD[pod].ip, ECHO_PORT, timeout=5)
        except OSError as e:
            return b"", "connect failed (%s)" % e
        try:
            try:
                s.sendall(b"weft-echo-probe\n")
            except OSError as e:
                return b"", "reset (%s)" % e.__class__.__name__
            data, how = b"", "eof"
            s.settimeout(5)
            for _ in range(10):
                try:
                    chunk = s.recv(4096)
                except (ConnectionResetError, ConnectionAbortedError):
                    return data, "reset"
                except socket.timeout:
                    return data, "timeout"
                if not chunk:
                    return data, "eof"
                data += chunk
                if data.endswith(b"\n"):
                    return data, "echoed"
            return data, how
        finally:
            s.close()

    mesh.apply(outbound_policy="ALLOW_ANY")
    data, how = echo("outsider")
    assert how == "echoed" and data == b"weft-echo-probe\n", \
        "ALLOW_ANY: TCP echo at the outsider should pass through; got %s %r" % (how, data)
    mesh.apply(outbound_policy="REGISTRY_ONLY")
    data, how = echo("outsider")
    assert how == "reset" and not data, \
        "REGISTRY_ONLY: TCP to the outsider (no Service, no pod of the mesh) should be reset; got %s %r" % (how, data)
    expect_from([mesh.get(mesh.url("web", "/svc"))], WEB, "REGISTRY_ONLY: HTTP/1.1 to Service web")
    data, how = echo("web-0")
    assert how == "echoed", "REGISTRY_ONLY: TCP echo at pod web-0 (in the mesh) should pass; got %s %r" % (how, data)


# ------------------------------------------------------ 11. discovery timeout --

def test_discovery_timeout_when_routes_do_not_arrive(mesh):
    """The first request to a Service waits for its routes and endpoints; weft-control is
    frozen (SIGSTOP), so they never come: 503 discovery-timeout, then, once it runs
    again, the Service answers."""
    mesh.apply()
    subscribed = mesh.proxy.config().get("subscriptions") or []
    assert not {"demo/slow1", "demo/slow2"} & set(subscribed), \
        "slow1/slow2 must see their first traffic in this test; already subscribed: %s" % subscribed
    results = {}

    def call(name, http2):
        try:
            results[name] = mesh.get(mesh.url(name, "/first"), http2=http2, max_time=25)
        except AssertionError as e:  # noqa: PERF203
            results[name] = e

    threads = [threading.Thread(target=call, args=("slow1", False)),
               threading.Thread(target=call, args=("slow2", True))]
    os.killpg(mesh.control.proc.pid, signal.SIGSTOP)
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(40)
    finally:
        os.killpg(mesh.control.proc.pid, signal.SIGCONT)
    for name, http2 in (("slow1", False), ("slow2", True)):
        r = results.get(name)
        assert not isinstance(r, Exception) and r is not None, "%s to %s: %r" % (proto(http2), name, r)
        expect_error(r, 503, "discovery-timeout",
                     "%s first request to Service %s while weft-control is frozen" % (proto(http2), name))
    mesh.control.wait_acked(pod="client", timeout=30)

    def answers():
        expect_from([mesh.get(mesh.url("slow1", "/later"))], "web-v1-0", "slow1 once weft-control runs again")
    eventually(answers, timeout=15, interval=0.5, what="slow1 answering after discovery")


# ---------------------------------------------------------------- 12. filters --

@pytest.mark.parametrize("http2", PROTOCOLS)
def test_header_modifier_filters(mesh, http2):
    """RequestHeaderModifier (rule and backendRef) and ResponseHeaderModifier."""
    mesh.apply(routes=[http_route("web-headers", "web", """
        - filters:
          - type: RequestHeaderModifier
            requestHeaderModifier:
              set: [{name: X-Set, value: from-route}]
              add: [{name: X-Add, value: added}]
              remove: [X-Remove]
          - type: ResponseHeaderModifier
            responseHeaderModifier:
              add: [{name: X-Mesh, value: weft}]
              remove: [x-pod]
          backendRefs:
          - name: web-v1
            port: 80
            filters:
            - type: RequestHeaderModifier
              requestHeaderModifier: {set: [{name: X-Backend, value: web-v1}]}
    """)])
    reply = mesh.get(mesh.url("web", "/h"), http2=http2,
                     headers=[("X-Set", "from-client"), ("X-Remove", "please"), ("X-Keep", "kept")])
    assert reply.status == 200 and reply.pod == "web-v1-0", reply.short()
    seen = reply.json["headers"]
    assert seen.get("x-set") == "from-route", "set replaces the client's value: %s" % seen
    assert seen.get("x-add") == "added" and seen.get("x-keep") == "kept", seen
    assert "x-remove" not in seen, "remove drops the header: %s" % seen
    assert seen.get("x-backend") == "web-v1", "the backendRef's own modifier applies: %s" % seen
    assert reply.headers.get("x-mesh") == "weft", "response header added: %s" % reply.headers
    assert "x-pod" not in reply.headers, "response header removed: %s" % reply.headers


@pytest.mark.parametrize("http2", PROTOCOLS)
def test_request_redirect_filter(mesh, http2):
    mesh.apply(routes=[http_route("web-redirect", "web", """
        - matches: [{path: {type: PathPrefix, value: /old}}]
          filters:
          - type: RequestRedirect
            requestRedirect: {hostname: example.org, statusCode: 301, path: {type: ReplacePrefixMatch, replacePrefixMatch: /new}}
        - matches: [{path: {type: PathPrefix, value: /secure}}]
          filters:
          - type: RequestRedirect
            requestRedirect: {scheme: https}
        - backendRefs: [{name: web, port: 80}]
    """)])
    moved = mesh.get(mesh.url("web", "/old/page?x=1"), http2=http2)
    assert moved.status == 301 and moved.headers.get("location") == "http://example.org/new/page?x=1", \
        "%s: expected 301 to http://example.org/new/page?x=1; got %s %s" % (
            proto(http2), moved.short(), moved.headers.get("location"))
    secure = mesh.get(mesh.url("web", "/secure"), http2=http2)
    assert secure.status == 302 and secure.headers.get("location", "").startswith("https://"), \
        "default status 302, https without a port: %s %s" % (secure.short(), secure.headers.get("location"))
    assert ":443" not in secure.headers["location"] and ":80" not in secure.headers["location"]
    ok = mesh.get(mesh.url("web", "/else"), http2=http2)
    assert ok.status == 200 and ok.pod in WEB, ok.short()


@pytest.mark.parametrize("http2", PROTOCOLS)
def test_url_rewrite_filter(mesh, http2):
    mesh.apply(routes=[http_route("web-rewrite", "web", """
        - matches: [{path: {type: PathPrefix, value: /api/v1}}]
          filters:
          - type: URLRewrite
            urlRewrite: {hostname: internal.web, path: {type: ReplacePrefixMatch, replacePrefixMatch: /v2}}
          backendRefs: [{name: web, port: 80}]
        - matches: [{path: {type: PathPrefix, value: /full}}]
          filters:
          - type: URLRewrite
            urlRewrite: {path: {type: ReplaceFullPath, replaceFullPath: /replaced}}
          backendRefs: [{name: web, port: 80}]
    """)])
    reply = mesh.get(mesh.url("web", "/api/v1/users?id=7"), http2=http2)
    assert reply.status == 200, reply.short()
    assert reply.json["path"] == "/v2/users?id=7", "the backend got %s" % reply.json["path"]
    host = reply.json["headers"].get("host") or reply.json["headers"].get(":authority")
    assert host == "internal.web", "the backend got host %s" % host
    full = mesh.get(mesh.url("web", "/full/a/b"), http2=http2)
    assert full.status == 200 and full.json["path"] == "/replaced", full.json


def mirrored(mesh, result):
    return metric(mesh.proxy.metrics(), "weft_mirror_requests_total", direction="outbound", result=result) or 0


def mirror_route(timeout=None):
    """Requests to web go to web-v1; a copy of each goes to web-v3 (RequestMirror), with the
    rule's own header modifier; `timeout`: the rule's timeouts.request."""
    rule = """
        - filters:
          - type: RequestHeaderModifier
            requestHeaderModifier: {set: [{name: X-Route, value: web-mirror}]}
          - type: RequestMirror
            requestMirror: {backendRef: {name: web-v3, port: 80}}
          backendRefs: [{name: web-v1, port: 80}]
    """
    if timeout:
        rule += "      timeouts: {request: %s}\n" % timeout
    return http_route("web-mirror", "web", rule)


@pytest.mark.parametrize("http2", PROTOCOLS)
def test_request_mirror_filter(mesh, http2):
    """RequestMirror: the client gets web-v1's answers only; web-v3 gets a copy of every
    request (method, path, body, and the rule's header modifier), and its answers are
    dropped; the sidecar counts the copies."""
    mesh.apply(routes=[mirror_route()])
    before = mirrored(mesh, "completed")
    tag = "h2" if http2 else "h1"
    # A traced caller: the copies carry this hop's span, as the request does.
    trace, caller = "4bf92f3577b34da6a3ce929d0e0e47%02d" % (2 if http2 else 1), "00f067aa0ba902b7"
    replies = mesh.requests(*[req(mesh.url("web", "/mirror/%s/%d" % (tag, i)), method="POST",
                                  headers=[("traceparent", "00-%s-%s-01" % (trace, caller))],
                                  data="payload-%s-%d" % (tag, i)) for i in range(5)], http2=http2)
    expect_from(replies, "web-v1-0", "%s requests under a RequestMirror" % proto(http2))

    def copies():
        seen = mesh.get(mesh.pod_url("web-v3-0", "/counts")).json
        got = {t: n for t, n in seen["counts"].items() if t.startswith("/mirror/%s/" % tag)}
        assert got == {"/mirror/%s/%d" % (tag, i): 1 for i in range(5)}, \
            "web-v3 (the mirror) got %s, want one copy of each request" % got
        return seen["last"]
    last = eventually(copies, timeout=5, what="copies at the mirror")
    copy = last["/mirror/%s/4" % tag]
    assert copy["method"] == "POST" and copy["body"] == "payload-%s-4" % tag, "the copy: %s" % copy
    assert copy["headers"].get("x-route") == "web-mirror", "the rule's header modifier applies: %s" % copy
    real = mesh.get(mesh.pod_url("web-v1-0", "/counts")).json["last"]["/mirror/%s/4" % tag]
    assert real["body"] == "payload-%s-4" % tag, real
    carried = real["headers"].get("traceparent", "")
    assert carried.startswith("00-%s-" % trace) and caller not in carried, "the request carries its span: %s" % real
    assert copy["headers"].get("traceparent") == carried, \
        "the copy carries the same context as the request (%s): %s" % (carried, copy)

    def counted():
        assert mirrored(mesh, "completed") - before == 5, \
            "weft_mirror_requests_total{result=completed} grew by %s, want 5" % (mirrored(mesh, "completed") - before)
    eventually(counted, timeout=5, what="mirror metric")


def timed_requests(conn, prefix, count):
    """`count` requests on `conn` (`prefix/0`, `prefix/1`, ...), each a 200 from web-v1-0;
    the durations of those that took over 0.5 s."""
    slow = []
    for i in range(count):
        started = time.monotonic()
        r = conn.request("%s/%d" % (prefix, i))
        elapsed = time.monotonic() - started
        assert r.status == 200 and r.pod == "web-v1-0", "request %s/%d: %s" % (prefix, i, r.short())
        if elapsed > 0.5:
            slow.append(elapsed)
    return slow


def test_request_mirror_target_that_hangs(mesh):
    """A mirror target that accepts and never answers (web-v3 delays every answer by 60 s):
    the real requests are as fast as without a mirror; each copy is abandoned at the
    route's request timeout (counted as `timeout`); and past 64 copies in flight per event
    loop, copies are dropped (`busy`), so the hang costs a bounded number of sockets."""
    mesh.restart_backend("web-v3-0", delay_ms=60000)
    try:
        mesh.apply(routes=[mirror_route(timeout="1500ms")])
        conn = mesh.connect("web")
        try:
            before = mirrored(mesh, "timeout")
            slow = timed_requests(conn, "/hang", 10)
            assert not slow, "requests slowed by the hanging mirror: %s s" % slow

            def timed_out():
                grew = mirrored(mesh, "timeout") - before
                assert grew == 10, "weft_mirror_requests_total{result=timeout} grew by %s, want 10" % grew
            eventually(timed_out, timeout=6, what="copies abandoned at the request timeout")

            # No route timeout: copies hang for the mirror's own 10 s, and the cap holds.
            mesh.apply(routes=[mirror_route()])
            busy = mirrored(mesh, "busy")
            slow = timed_requests(conn, "/flood", 200)
            assert not slow, "requests slowed by the hanging mirror: %s s" % slow
        finally:
            conn.close()
        dropped = mirrored(mesh, "busy") - busy
        # One client connection is served by one event loop: at most 64 copies in flight.
        assert dropped >= 200 - 64, "weft_mirror_requests_total{result=busy} grew by %s, want >= 136" % dropped
        received = sum(n for t, n in mesh.get(mesh.pod_url("web-v3-0", "/counts")).json["counts"].items()
                       if t.startswith("/flood/"))
        assert received <= 64, "the hanging mirror received %d copies; at most 64 may be in flight" % received
    finally:
        mesh.restart_backend("web-v3-0")


# ------------------------------------------- 13. metrics, balancers, explain --

def test_route_metrics_debug_endpoints_and_explain(mesh):
    """Requests are counted by route, rule and backend (labels from the config, never from
    the request); /debug/endpoints shows the balancers; `weftctl config --explain` says
    which rule a request takes and why the others were passed over."""
    from control_fixtures import weftctl
    mesh.apply(routes=[http_route("web-explain", "web", """
        - name: canary
          matches: [{path: {type: PathPrefix, value: /api}, headers: [{name: x-canary, value: "yes"}]}]
          backendRefs: [{name: web-v2, port: 80}]
        - name: api
          matches: [{path: {type: PathPrefix, value: /api}}]
          backendRefs: [{name: web-v1, port: 80}]
    """)])
    before = metric(mesh.proxy.metrics(), "weft_route_requests_total", direction="outbound",
                    route="demo/web-explain", rule="api", backend="demo/web-v1:80", status_class="2xx") or 0
    replies = mesh.get_many(mesh.url("web", "/api/x"), 5)
    assert all(r.status == 200 and r.pod == "web-v1-0" for r in replies), [r.short() for r in replies]
    after = metric(mesh.proxy.metrics(), "weft_route_requests_total", direction="outbound",
                   route="demo/web-explain", rule="api", backend="demo/web-v1:80", status_class="2xx") or 0
    assert after - before == 5, "weft_route_requests_total{rule=api, backend=demo/web-v1:80} grew by %s, not 5" % (
        after - before)
    # The latency histogram the event loops keep themselves, summed over loops.
    text = mesh.proxy.metrics()
    labels = dict(direction="outbound", route="demo/web-explain", rule="api", backend="demo/web-v1:80")
    count = metric(text, "weft_route_request_duration_seconds_count", **labels)
    inf = metric(text, "weft_route_request_duration_seconds_bucket", le="+Inf", **labels)
    small = metric(text, "weft_route_request_duration_seconds_bucket", le="0.0005", **labels)
    assert count is not None and count >= 5 and inf == count and small <= count, (count, inf, small)
    assert text.count("# TYPE weft_route_request_duration_seconds histogram") == 1, "one family"
    from test_metrics import promtool_check
    rc, checked = promtool_check(text)
    assert rc == 0, "promtool check metrics on the sidecar's /metrics:\n%s" % checked

    code, body = mesh.proxy.get("/debug/endpoints")
    assert code == 200, (code, body)
    report = json.loads(body)
    backends = {b["backend"]: b for loop in report["loops"] for b in loop["backends"]}
    assert "demo/web-v1:80" in backends, sorted(backends)
    endpoint = backends["demo/web-v1:80"]["endpoints"][0]
    assert endpoint["address"].startswith(POD["web-v1-0"].ip + ":") and endpoint["state"] == "healthy", endpoint
    assert endpoint["ewmaMs"] is not None and endpoint["inFlight"] == 0, endpoint

    out = weftctl("config", "demo/client", "--control-plane", mesh.control.http, "--explain", "GET",
                  mesh.url("web", "/api/x"), prefix=mesh.control.prefix)
    text = out.stdout.decode()
    assert out.returncode == 0, text + out.stderr.decode()
    assert "rule canary: PathPrefix /api, header x-canary  ✗ header x-canary does not match" in text, text
    assert "rule api: PathPrefix /api  ✓ taken" in text, text
    assert "demo/web-v1:80  weight 1 (100%)" in text, text
