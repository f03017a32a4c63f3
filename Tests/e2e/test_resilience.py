"""Timeouts and retries, end to end through the client pod's sidecar (the mesh topology of
mesh_fixtures.py: no kube-proxy, ClusterIPs only through the sidecar), over HTTP/1.1 and
HTTP/2: a route's timeouts answer 504, a route's retry policy absorbs a flaky backend, the
mesh's retry budget keeps an always-failing backend from being stormed, and a body larger
than the replay buffer is forwarded once and never retried."""

import json
import os
import sys
import time

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from control_fixtures import ca_template, metric  # noqa: E402,F401 - fixtures are used by name
from mesh_fixtures import http_route, mesh, mesh_test  # noqa: E402,F401

PROTOCOLS = [False, True]
WEB = {"web-0", "web-1"}


def proto(http2):
    return "HTTP/2" if http2 else "HTTP/1.1"


def outbound(mesh, name, **labels):
    return metric(mesh.proxy.metrics(), name, direction="outbound", **labels) or 0


def counts(mesh, pods=("web-0", "web-1")):
    """Requests each path got, summed over `pods` (each backend counts what it received)."""
    total = {}
    for pod in pods:
        reply = mesh.get(mesh.pod_url(pod, "/counts"))
        for path, n in reply.json["counts"].items():
            total[path] = total.get(path, 0) + n
    return total


@pytest.mark.parametrize("http2", PROTOCOLS)
def test_route_request_timeout_answers_504(mesh, http2):
    mesh.apply(routes=[http_route("web-timeout", "web", """
        - timeouts: {request: 500ms}
          backendRefs: [{name: web, port: 80}]
    """)])
    started = time.monotonic()
    reply = mesh.get(mesh.url("web", "/delay/3000"), http2=http2)
    elapsed = time.monotonic() - started
    assert reply.status == 504 and reply.weft_error == "upstream-timeout", \
        "%s to a backend that takes 3 s on a route with timeouts.request 500ms: expected 504 " \
        "upstream-timeout; got %s" % (proto(http2), reply.short())
    assert "timeouts.request (500ms)" in reply.body.decode(errors="replace"), reply.body
    assert 0.4 <= elapsed < 2.0, "the 504 came after %.2f s; the route's limit is 0.5 s" % elapsed
    fast = mesh.get(mesh.url("web", "/delay/10"), http2=http2)
    assert fast.status == 200, "a request within the limit: %s" % fast.short()


@pytest.mark.parametrize("http2", PROTOCOLS)
def test_backend_request_timeout_is_per_attempt_and_retried(mesh, http2):
    """timeouts.backendRequest bounds each attempt; with a retry policy the request is sent
    again, and timeouts.request bounds the whole."""
    mesh.apply(routes=[http_route("web-attempts", "web", """
        - timeouts: {request: 1500ms, backendRequest: 300ms}
          retry: {codes: [503], attempts: 2}
          backendRefs: [{name: web, port: 80}]
    """)])
    retries0 = outbound(mesh, "weft_retries_total", reason="timeout")
    started = time.monotonic()
    reply = mesh.get(mesh.url("web", "/delay/2000"), http2=http2)
    elapsed = time.monotonic() - started
    assert reply.status == 504 and reply.weft_error == "upstream-timeout", reply.short()
    assert 0.8 <= elapsed < 2.0, "three attempts of 0.3 s each: the 504 after %.2f s" % elapsed
    assert outbound(mesh, "weft_retries_total", reason="timeout") - retries0 == 2


@pytest.mark.parametrize("http2", PROTOCOLS)
def test_retries_absorb_a_flaky_backend(mesh, http2):
    """A backend failing 10% of requests (503) is made >= 99.5% successful by a retry policy."""
    mesh.apply(routes=[http_route("web-retry", "web", """
        - retry: {codes: [503], attempts: 3}
          backendRefs: [{name: web, port: 80}]
    """)])
    retries0 = outbound(mesh, "weft_retries_total", reason="status")
    replies = mesh.get_many(mesh.url("web", "/flaky/10"), 1000, http2=http2, max_time=60)
    ok = sum(1 for r in replies if r.status == 200)
    retried = outbound(mesh, "weft_retries_total", reason="status") - retries0
    assert ok >= 995, "%s: %d of 1000 requests to a 10%%-flaky backend succeeded with retries (%d retries)" % (
        proto(http2), ok, retried)
    assert 50 <= retried <= 250, "about 100 retries expected for 1000 requests at 10%% failures; got %d" % retried
    marked = [r for r in replies if r.status == 200 and r.json and "weft-retry-attempt" in r.json["headers"]]
    assert marked, "retried requests carry weft-retry-attempt to the backend"
    assert {r.json["headers"]["weft-retry-attempt"] for r in marked} <= {"1", "2", "3"}


def test_a_retried_attempt_refused_unprocessed_is_sent_again_as_that_attempt(mesh):
    """HTTP/2: the route retries a 503, and the server refuses the retry's stream unprocessed
    (REFUSED_STREAM), so the sidecar sends it again on another stream. What it sends again
    is that attempt's request, with that attempt's `weft-retry-attempt` and trace context,
    not the first attempt's."""
    mesh.apply(routes=[http_route("web-v1-retry", "web-v1", """
        - retry: {codes: [503], attempts: 3}
          backendRefs: [{name: web-v1, port: 80}]
    """)])
    target = "/refuse-second/%d" % time.monotonic_ns()
    reply = mesh.get(mesh.url("web-v1", target), http2=True,
                     headers=[("traceparent", "00-%s-%s-01" % ("5e" * 16, "7a" * 8))])
    assert reply.status == 200, reply.short()
    seen = mesh.get(mesh.pod_url("web-v1-0", "/counts")).json["seen"][target]
    assert len(seen) == 3, "503, refused, then 200: %s" % seen
    first, retried, again = seen
    keys = ("weft-retry-attempt", "traceparent")
    assert [retried.get(k) for k in keys] == [again.get(k) for k in keys], \
        "the refused attempt is sent again as itself: %s, then %s" % (retried, again)
    assert retried.get("weft-retry-attempt") and retried.get("weft-retry-attempt") != first.get("weft-retry-attempt"), \
        (first, retried)
    assert retried["traceparent"] != first["traceparent"], "each attempt carries its own span id"


@pytest.mark.parametrize("http2", PROTOCOLS)
def test_an_always_failing_backend_is_not_stormed(mesh, http2):
    """Retries withdraw from the Service port's budget (default: 20% of requests + 10/s over
    10 s): with the budget spent, the failure goes back as it is. The budget is the
    requested Service port's and counts its last 10 s, so each variant uses a Service no
    other test sent to (web-v2 over HTTP/1.1, web-v3 over HTTP/2)."""
    service = "web-v3" if http2 else "web-v2"
    mesh.apply(routes=[http_route("storm", service, """
        - retry: {codes: [503], attempts: 5}
          backendRefs: [{name: %s, port: 80}]
    """ % service)])
    target = "/status/503?storm=%d" % time.monotonic_ns()
    exhausted0 = outbound(mesh, "weft_retry_budget_exhausted_total")
    replies = mesh.get_many(mesh.url(service, target), 300, http2=http2, max_time=60)
    assert all(r.status == 503 and r.weft_error is None for r in replies), \
        "every request answered with the backend's own 503: %s" % {r.short() for r in replies}
    sent = counts(mesh, pods=(service + "-0",)).get(target, 0)
    # 300 requests, and at most 100 (10/s x 10 s) + 20% of 300 = 160 retries; without the
    # budget, 5 retries each would make 1800.
    assert 300 + 100 <= sent <= 300 + 160, \
        "the backend got %d requests for 300 (the budget allows 100 to 160 retries)" % sent
    assert outbound(mesh, "weft_retry_budget_exhausted_total") > exhausted0


@pytest.mark.parametrize("http2", PROTOCOLS)
def test_a_body_larger_than_the_replay_buffer_is_sent_once(mesh, http2):
    """On a retried route, a request whose body fits the 64 KiB replay buffer is retried, and
    one whose body does not is forwarded once (streamed, never held whole) and its failure
    returned. Service web-v1, so the storm test's spent budget (on web) plays no part."""
    mesh.apply(routes=[http_route("web-v1-big", "web-v1", """
        - retry: {codes: [503], attempts: 2}
          backendRefs: [{name: web-v1, port: 80}]
    """)])
    tag = "%s-%d" % ("h2" if http2 else "h1", time.monotonic_ns())
    big, small = "/status/503?big=" + tag, "/status/503?small=" + tag
    reply = mesh.get(mesh.url("web-v1", big), http2=http2, method="POST", data=b"x" * (100 * 1024))
    assert reply.status == 503 and reply.weft_error is None, reply.short()
    reply = mesh.get(mesh.url("web-v1", small), http2=http2, method="POST", data=b"y" * 1024)
    assert reply.status == 503 and reply.weft_error is None, reply.short()
    seen = counts(mesh, pods=("web-v1-0",))
    assert seen.get(big) == 1, "a 100 KiB body is forwarded exactly once; the backend got %s" % seen.get(big)
    assert seen.get(small) == 3, "a 1 KiB body is retried twice (attempts: 2); the backend got %s" % seen.get(small)
