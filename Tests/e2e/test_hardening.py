"""Hardening (issue 13): the admin port's remote endpoints, services bound to loopback,
and what the strict HTTP/1 parser must never hand on as opaque bytes.

Each test fails on the code before the fix (the red-team report's findings)."""

import os
import subprocess
import time

import pytest

from weft_e2e import (
    ADMIN_PORT, NGINX_PORT, POD_B_V4, PYTHON, recv_until_closed, requires_proxy, send_ignoring_reset,
    wait_for_port,
)

pytestmark = requires_proxy

LOCAL_ONLY_PORT = 9999


@pytest.fixture(autouse=True)
def still_serving(topo):
    yield
    topo.assert_serving()


def curl_status(pod, *args, timeout=15):
    r = pod.curl("-o", "/dev/null", "-w", "%{http_code}", *args, timeout=timeout)
    return r.stdout.decode().strip()


# ------------------------------------------------------------------ admin --

def test_shutdown_from_another_pod_is_forbidden(topo):
    """POST /shutdown to podIP:15000 from another pod drained and stopped that sidecar."""
    url = "http://%s:%d/shutdown" % (POD_B_V4, ADMIN_PORT)
    assert curl_status(topo.a, "-X", "POST", url) == "403"
    time.sleep(0.5)
    assert topo.b.proxy_alive(), "pod B's sidecar stopped"
    assert topo.b.admin("/ready").status == 200, "pod B's sidecar is draining"
    for _ in range(20):
        assert curl_status(topo.a, "http://%s:%d/hello" % (POD_B_V4, NGINX_PORT)) == "200"


def test_config_only_on_loopback_metrics_and_probes_for_everyone(topo):
    base = "http://%s:%d" % (POD_B_V4, ADMIN_PORT)
    assert curl_status(topo.a, base + "/config") == "403"
    assert curl_status(topo.a, base + "/metrics") == "200"
    assert curl_status(topo.a, base + "/live") == "200"
    assert curl_status(topo.a, base + "/ready") == "200"
    # From a container of the same pod (loopback): answered.
    assert topo.b.admin("/config").status == 200


# ------------------------------------------------------- inbound delivery --

@pytest.fixture
def local_only_server(topo):
    """A Python HTTP server in pod B bound to 127.0.0.1 only."""
    argv = topo.b.cmd([PYTHON, "-m", "http.server", "--bind", "127.0.0.1", str(LOCAL_ONLY_PORT)])
    p = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd="/")
    try:
        wait_for_port(topo.b.ns, "127.0.0.1", LOCAL_ONLY_PORT, timeout=10, proc=p, what="local-only server")
        yield p
    finally:
        p.kill()
        p.wait(5)


def test_service_bound_to_loopback_is_not_reachable_from_other_pods(topo, local_only_server):
    """The inbound sidecar delivered to 127.0.0.1:<port>, exposing loopback-only services.
    It now delivers to the pod IP at the original port: nothing listens there."""
    # From inside pod B it works (the service is real).
    r = topo.b.curl("-o", "/dev/null", "-w", "%{http_code}", "http://127.0.0.1:%d/" % LOCAL_ONLY_PORT)
    assert r.stdout.decode().strip() == "200"
    status = curl_status(topo.a, "http://%s:%d/" % (POD_B_V4, LOCAL_ONLY_PORT))
    assert status == "502", "a loopback-only service answered another pod: %s" % status
    # An opaque client (raw TCP, a pod without a sidecar) gets nothing either.
    s = topo.a.connect(POD_B_V4, LOCAL_ONLY_PORT, uncaptured=True)
    try:
        send_ignoring_reset(s, b"\x00\x01binary\r\n")
        data, _ = recv_until_closed(s, timeout=12)
    finally:
        s.close()
    assert b"HTTP/1.0 200" not in data and b"HTTP/1.1 200" not in data, data[:200]


def test_service_on_the_pod_ip_is_reachable(topo):
    """The ordinary case: nginx listens on every address, so the pod IP reaches it."""
    assert curl_status(topo.a, "http://%s:%d/hello" % (POD_B_V4, NGINX_PORT)) == "200"
    s = topo.a.connect(POD_B_V4, NGINX_PORT, uncaptured=True)  # straight to pod B's inbound
    try:
        send_ignoring_reset(s, b"GET /hello HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n")
        data, _ = recv_until_closed(s, timeout=5)
    finally:
        s.close()
    assert data.startswith(b"HTTP/1.1 200"), data[:200]


# ------------------------------------------------------ HTTP/1 downgrades --

SMUGGLE = b"Host: b\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
DISGUISED = {
    "leading-crlf": b"\r\nPOST / HTTP/1.1\r\n" + SMUGGLE,
    "double-space": b"POST  / HTTP/1.1\r\n" + SMUGGLE,
    "long-target": b"POST /" + b"a" * 9000 + b" HTTP/1.1\r\n" + SMUGGLE,
}


@pytest.mark.parametrize("side", ["outbound", "inbound"])
@pytest.mark.parametrize("name", list(DISGUISED))
def test_request_that_starts_like_http1_is_parsed_not_passed_through(topo, name, side):
    """A request with both Content-Length and Transfer-Encoding gets 400; it reached the
    app verbatim when it began with CRLF, had a double space in the request line or a
    target over 8 KiB, because detection gave up and forwarded it as opaque TCP."""
    s = topo.a.connect(POD_B_V4, NGINX_PORT, uncaptured=(side == "inbound"))
    try:
        send_ignoring_reset(s, DISGUISED[name])
        data, how = recv_until_closed(s, timeout=8)
    finally:
        s.close()
    head = data.split(b"\r\n\r\n", 1)[0].lower()
    assert data.startswith(b"HTTP/1.1 4"), "%s (%s): want a 4xx from the sidecar, got %r" % (name, side, data[:120])
    assert b"\r\nweft-error: bad-request" in head, "not answered by the sidecar: %r" % head
    assert b"server: nginx" not in head, "reached the app: %r" % head
