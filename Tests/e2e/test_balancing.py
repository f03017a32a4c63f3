"""Endpoint balancing and health in the client pod's sidecar, end to end (the mesh of
mesh_fixtures.py: no kube-proxy, ClusterIPs only through the sidecar), over HTTP/1.1 and
HTTP/2.

What the sidecar promises:
  - the endpoint of a request is chosen by power of two choices over peak-EWMA latency x
    (requests in flight + 1): a slow endpoint gets few requests under load;
  - 7 consecutive failures (connect failure, reset before the response, 5xx) eject an
    endpoint for 1 s, doubling per ejection in a row up to 60 s; then one probe request
    may go, and its success makes the endpoint healthy again;
  - a connect failure is retried on another endpoint (nothing was sent), up to 3 attempts;
  - EndpointSlice changes reach it as deltas: a removed endpoint gets no new request once
    the change is acked (in-flight ones finish), an added one is tried at once.

Each test has a Service of its own (ClusterIPs 10.97.3.x, only that Service in the
config). The sidecar keeps an endpoint's state (latency estimate, failures, ejection) per
address for as long as some Service of the config lists it, and forgets it when none
does: the pods are chosen so that no test inherits another's ejection, and the dead and
the added endpoint are new to the sidecar when they join.

Load is `streams` kept-alive connections from the client pod in parallel (threads), each
sending GETs in a loop, every request timed; the loops are bounded in count and time.
"""

import collections
import json
import os
import sys
import threading
import time

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from control_fixtures import ca_template, metric, run  # noqa: E402,F401 - fixtures are used by name
from mesh_fixtures import ServiceSpec, mesh, mesh_test, summary  # noqa: E402,F401
from weft_e2e import Deadline, report_line  # noqa: E402

pytestmark = pytest.mark.usefixtures("mesh_test")

PROTOCOLS = [pytest.param(False, id="http1"), pytest.param(True, id="http2")]
# 50 ms rather than 20: on a loaded machine the Python backends slow down too, and the
# slow pod must stay clearly slower than the fast one.
SLOW_MS = 50

# Test 1: web-1 answers SLOW_MS later than web-0 (module fixture `slow_web1`).
SPEED = ServiceSpec("lb-speed", "demo", "10.97.3.1", ["web-0", "web-1"])
# Test 2: web-v2-0's server is stopped, then started again.
DEAD = ServiceSpec("lb-dead", "demo", "10.97.3.2", ["web-v1-0", "web-v2-0"])
# Test 3: api-demo-0 leaves the EndpointSlice under load.
REMOVE_BEFORE = ServiceSpec("lb-remove", "demo", "10.97.3.3", ["web-v3-0", "api-demo-0"])
REMOVE_AFTER = ServiceSpec("lb-remove", "demo", "10.97.3.3", ["web-v3-0"])
# Test 4: web-v3-0 joins; it is in no Service of the config before, so it is new to the sidecar.
ADD_BEFORE = ServiceSpec("lb-add", "demo", "10.97.3.4", ["web-0", "web-v1-0"])
ADD_AFTER = ServiceSpec("lb-add", "demo", "10.97.3.4", ["web-0", "web-v1-0", "web-v3-0"])


def proto(http2):
    return "HTTP/2" if http2 else "HTTP/1.1"


def outbound(mesh, name, **labels):
    return metric(mesh.proxy.metrics(), name, direction="outbound", **labels) or 0


# ------------------------------------------------------------------ helpers --

class Sent:
    """One request of a Load: its stream, when it started and ended (monotonic), the Reply."""

    __slots__ = ("stream", "start", "end", "reply")

    def __init__(self, stream, start, end, reply):
        self.stream, self.start, self.end, self.reply = stream, start, end, reply

    @property
    def pod(self):
        return self.reply.pod

    @property
    def ms(self):
        return (self.end - self.start) * 1000.0


class Load:
    """`streams` connections from the client pod to `service`:80 in parallel, each sending
    GET `path` in a loop until it sent `each` requests, `seconds` passed or stop() was
    called. Connections are kept alive (HTTP/1.1, or one h2c connection per stream); a
    connection the sidecar closed is reopened by the next request (Conn)."""

    def __init__(self, mesh, service, path, http2, streams=4, each=100000, seconds=30.0):
        self.mesh, self.ip, self.path, self.http2 = mesh, service.cluster_ip, path, http2
        self.each, self.seconds = each, seconds
        self.stopping = threading.Event()
        self.lock = threading.Lock()
        self.sent = []
        self.crashed = []
        self.threads = [threading.Thread(target=self._stream, args=(i,), daemon=True) for i in range(streams)]

    def _stream(self, i):
        deadline = Deadline(self.seconds)
        try:
            with self.mesh.connect(self.ip, 80, http2=self.http2, timeout=5.0) as conn:
                for n in range(self.each):
                    if self.stopping.is_set() or deadline.expired:
                        return
                    start = time.monotonic()
                    reply = conn.request("%s?s=%d&n=%d" % (self.path, i, n))
                    sent = Sent(i, start, time.monotonic(), reply)
                    with self.lock:
                        self.sent.append(sent)
        except Exception as e:  # noqa: BLE001 - reported by stop()
            self.crashed.append("stream %d: %s: %s" % (i, type(e).__name__, e))

    def start(self):
        for t in self.threads:
            t.start()
        return self

    def snapshot(self):
        with self.lock:
            return list(self.sent)

    def stop(self):
        """Stops the streams (each ends after its current request); the requests, by start."""
        self.stopping.set()
        return self.join()

    def join(self):
        deadline = Deadline(self.seconds + 15)
        for t in self.threads:
            t.join(deadline.remaining(0.1))
        alive = sum(t.is_alive() for t in self.threads)
        assert not alive, "%d request streams to %s did not end" % (alive, self.ip)
        assert not self.crashed, "request streams crashed: %s" % self.crashed
        return sorted(self.sent, key=lambda s: s.start)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stopping.set()
        for t in self.threads:
            t.join(10)


def run_load(mesh, service, path, http2, streams=4, each=100, seconds=30.0):
    """streams x each requests (bounded by `seconds`); the requests, by start."""
    return Load(mesh, service, path, http2, streams=streams, each=each, seconds=seconds).start().join()


def pods(sent):
    return dict(collections.Counter(s.pod for s in sent))


def expect_ok(sent, allowed, what):
    """Every request answered 200 by one of `allowed`; the first wrong one reported in full."""
    bad = [s for s in sent if s.reply.status != 200 or s.pod not in allowed]
    assert not bad, "%s: expected every answer to be 200 from %s; got %s; first unexpected (stream %d, " \
        "%.1f ms): %r" % (what, " or ".join(sorted(allowed)), summary([s.reply for s in sent]),
                          bad[0].stream, bad[0].ms, bad[0].reply)


def balancer_state(mesh, service):
    """The sidecar's view of `service`'s endpoints (admin /debug/endpoints), one line each:
    address, state, latency estimate, requests in flight; for assertion messages."""
    code, body = mesh.proxy.get("/debug/endpoints")
    if code != 200:
        return "(/debug/endpoints answered %s)" % code
    try:
        loops = json.loads(body)["loops"]
    except (ValueError, KeyError):
        return "(/debug/endpoints: %r)" % body[:300]
    want = "%s/%s:80" % (service.namespace, service.name)
    lines = []
    for loop in loops:
        for backend in loop.get("backends", []):
            if backend.get("backend") != want:
                continue
            for e in backend.get("endpoints", []):
                ewma = e.get("ewmaMs")
                lines.append("%s %s%s ewma %s in-flight %s" % (
                    e.get("address"), e.get("state"),
                    " for %s ms" % e["ejectedForMs"] if e.get("ejectedForMs") is not None else "",
                    "-" if ewma is None else "%.2f ms" % ewma, e.get("inFlight")))
    return "; ".join(lines) or "(no balancer for %s)" % want


class SynCounter:
    """Counts the TCP SYNs that reach a backend pod (an iptables rule in its network
    namespace, where no sidecar runs): the connections tried to it, refused or not."""

    COMMENT = "weft-e2e-balancing-syns"

    def __init__(self, mesh, pod):
        self.prefix = list(mesh.prefix(pod))
        self.pod = pod
        self.rule = ["INPUT", "-p", "tcp", "--syn", "-m", "comment", "--comment", self.COMMENT]
        run(self.prefix + ["iptables", "-w", "-A"] + self.rule)

    def count(self):
        text = run(self.prefix + ["iptables", "-w", "-nvxL", "INPUT"]).stdout.decode()
        for line in text.splitlines():
            if self.COMMENT in line:
                return int(line.split()[0])
        raise AssertionError("the SYN counting rule is gone from %s:\n%s" % (self.pod, text))

    def close(self):
        run(self.prefix + ["iptables", "-w", "-D"] + self.rule, check=False)


@pytest.fixture(scope="module")
def slow_web1(mesh):
    """web-1 answers SLOW_MS late for the module's first test (it is restored at the end)."""
    mesh.restart_backend("web-1", delay_ms=SLOW_MS)
    yield
    mesh.restart_backend("web-1")


# ------------------------------------------------- 1. slow and fast endpoint --

@pytest.mark.parametrize("http2", PROTOCOLS)
def test_the_fast_endpoint_gets_most_requests(mesh, slow_web1, http2):
    """Service lb-speed: web-0 answers at once, web-1 after SLOW_MS. Under 4 parallel
    streams of 100 requests, peak-EWMA x in-flight sends >= 75% to web-0 (round robin or
    a random pick: 50%)."""
    mesh.apply(services=[SPEED])
    sent = run_load(mesh, SPEED, "/speed", http2, streams=4, each=100)
    what = "%s, 4 streams x 100 requests to Service lb-speed (web-0 fast, web-1 +%d ms)" % (proto(http2), SLOW_MS)
    expect_ok(sent, {"web-0", "web-1"}, what)
    slow = [s.ms for s in sent if s.pod == "web-1"]
    fast = [s.ms for s in sent if s.pod == "web-0"]
    assert not slow or min(slow) >= SLOW_MS, \
        "the harness: web-1's answers should take >= %d ms; the fastest took %.1f ms" % (SLOW_MS, min(slow))
    share = len(fast) / float(len(sent))
    fast.sort()
    slow.sort()
    medians = "median latency web-0 %.1f ms, web-1 %s" % (
        fast[len(fast) // 2] if fast else 0, "%.1f ms" % slow[len(slow) // 2] if slow else "-")
    state = balancer_state(mesh, SPEED)
    report_line("balancing %s: fast web-0 got %d of %d requests (%.0f%%), web-1 (+%d ms) %d; %s; the sidecar's "
                "balancer: %s" % (proto(http2), len(fast), len(sent), 100 * share, SLOW_MS, len(slow), medians, state))
    assert share >= 0.75, \
        "%s: expected >= 75%% of the requests to go to the fast endpoint web-0; got %d of %d (%.0f%%), " \
        "web-1 got %d; %s; the sidecar's balancer: %s" % (what, len(fast), len(sent), 100 * share, len(slow), medians,
                                                          state)


# --------------------------------------------------------- 2. dead endpoint --

@pytest.mark.parametrize("http2", PROTOCOLS)
def test_a_dead_endpoint_is_ejected_and_comes_back(mesh, http2):
    """Service lb-dead: web-v2-0 joins it with its server stopped (its port refuses
    connections). Every request succeeds (a connect failure goes to web-v1-0), and once
    web-v2-0 is ejected (7 failures), it is not tried per request: only a probe per
    backoff (1 s, then 2 s) reaches it, counted as SYNs in its namespace. Started again,
    it serves within a few seconds (the backoff running, then a probe).

    web-v2-0 is new to the sidecar when it joins (it was in no Service of the config just
    before), so it is tried at once: an endpoint that answered before keeps its latency
    estimate, and one slow answer of it (these Python backends stall now and then) could
    keep the balancer away from it for seconds, and the test from seeing it fail."""
    alone = ServiceSpec(DEAD.name, DEAD.namespace, DEAD.cluster_ip, ["web-v1-0"])
    mesh.apply(services=[alone])
    warm = run_load(mesh, alone, "/warm", http2, streams=4, each=10)
    expect_ok(warm, {"web-v1-0"}, "%s warm-up to Service lb-dead (web-v1-0 only)" % proto(http2))

    syns = SynCounter(mesh, "web-v2-0")
    stopped = False
    try:
        mesh.stop_backend("web-v2-0")
        stopped = True
        mesh.apply(services=[DEAD])
        failed0 = outbound(mesh, "weft_errors_total", error="connect_failed")
        ejections0 = outbound(mesh, "weft_endpoint_ejections_total")
        s0 = syns.count()
        t0 = time.monotonic()
        first = run_load(mesh, DEAD, "/dead", http2, streams=4, each=50)
        s1 = syns.count()
        t1 = time.monotonic()
        ejected = outbound(mesh, "weft_endpoint_ejections_total") - ejections0
        state = balancer_state(mesh, DEAD)
        # Continuous load for 1.5 s: past the first backoff (1 s), so one probe goes.
        second = run_load(mesh, DEAD, "/ejected", http2, streams=4, each=100000, seconds=1.5)
        s2 = syns.count()
        t2 = time.monotonic()
        failed = outbound(mesh, "weft_errors_total", error="connect_failed") - failed0
        report_line("balancing %s: web-v2-0 stopped: %d connection attempts to it in 200 requests (%.2f s, the "
                    "slowest %.1f ms; ejections +%d), %d in the next %d requests (%.2f s); then: %s" % (
                        proto(http2), s1 - s0, t1 - t0, max(s.ms for s in first), ejected, s2 - s1, len(second),
                        t2 - t1, state))
        expect_ok(first, {"web-v1-0"}, "%s, 200 requests to lb-dead with web-v2-0 stopped" % proto(http2))
        expect_ok(second, {"web-v1-0"}, "%s, %.1f s of requests to lb-dead with web-v2-0 stopped" % (
            proto(http2), t2 - t1))
        assert failed == 0, "no request should be answered 502 connect-failed; " \
            "weft_errors_total{error=connect_failed} grew by %d" % failed
        assert s1 - s0 >= 1, "%s: web-v2-0, new in lb-dead, should have been tried at once; in 200 requests its " \
            "namespace saw no SYN; the sidecar's balancer: %s" % (proto(http2), state)
        assert s1 - s0 <= 15, "%s: 200 requests over %.2f s while web-v2-0 refuses: expected it tried about 7 " \
            "times (then ejected), got %d connection attempts; weft_endpoint_ejections_total grew by %d; the " \
            "sidecar's balancer: %s" % (proto(http2), t1 - t0, s1 - s0, ejected, state)
        assert ejected >= 1, "%s: web-v2-0 refused %d connections in 200 requests; expected it ejected " \
            "(weft_endpoint_ejections_total{direction=outbound} to grow), it grew by %d; the sidecar's " \
            "balancer: %s" % (proto(http2), s1 - s0, ejected, state)
        assert s2 - s1 <= 3, \
            "%s: after the ejection, %d requests over %.2f s: expected web-v2-0 tried only by probes (one per " \
            "backoff: 1 s, then 2 s; <= 3), got %d connection attempts (%d in the first 200 requests); the " \
            "sidecar's balancer: %s" % (proto(http2), len(second), t2 - t1, s2 - s1, s1 - s0,
                                         balancer_state(mesh, DEAD))

        mesh.start_backend("web-v2-0")
        stopped = False
        restarted = time.monotonic()
        load = Load(mesh, DEAD, "/back", http2, streams=4, seconds=12.0).start()
        back_at = None
        try:
            for _ in range(1200):
                back = [s for s in load.snapshot() if s.pod == "web-v2-0"]
                if back or not any(t.is_alive() for t in load.threads):
                    back_at = back[0].end if back else None
                    break
                time.sleep(0.01)
            time.sleep(0.3)
        finally:
            third = load.stop()
        expect_ok(third, {"web-v1-0", "web-v2-0"},
                  "%s, requests to lb-dead after web-v2-0 started again" % proto(http2))
        assert back_at is not None, \
            "%s: web-v2-0 started again, and within %.1f s of requests (%d, all to web-v1-0) it got none; " \
            "expected it back after its backoff (1-4 s) and a probe. SYNs to it since: %d; the sidecar's " \
            "balancer: %s" % (proto(http2), time.monotonic() - restarted, len(third), syns.count() - s2,
                              balancer_state(mesh, DEAD))
        took = back_at - restarted
        report_line("balancing %s: web-v2-0 served again %.2f s after it started" % (proto(http2), took))
        assert took <= 5.0, "%s: web-v2-0 served again %.1f s after it started; expected within 5 s " \
            "(the backoff at most 4 s, then a probe)" % (proto(http2), took)
    finally:
        syns.close()
        if stopped:
            mesh.start_backend("web-v2-0")


# ------------------------------------------------- 3. endpoint removed live --

@pytest.mark.parametrize("http2", PROTOCOLS)
def test_an_endpoint_removed_under_load(mesh, http2):
    """Service lb-remove (web-v3-0, api-demo-0) under 4 streams of /delay/10 requests; the
    EndpointSlice drops api-demo-0. No request fails, requests started after the sidecar
    acked the change all go to web-v3-0; api-demo-0's server is stopped 0.5 s after the
    ack (as a terminating pod would), which nothing may notice."""
    mesh.apply(services=[REMOVE_BEFORE])
    load = Load(mesh, REMOVE_BEFORE, "/delay/10", http2, streams=4, seconds=8.0)
    stopped = False
    try:
        with load:
            for _ in range(300):  # until the pod to remove served some (at most 3 s)
                if "api-demo-0" in pods(load.snapshot()) or not any(t.is_alive() for t in load.threads):
                    break
                time.sleep(0.01)
            time.sleep(0.5)
            state = balancer_state(mesh, REMOVE_BEFORE)
            changed = time.monotonic()
            generation = mesh.apply(services=[REMOVE_AFTER])
            acked = time.monotonic()
            time.sleep(0.5)
            mesh.stop_backend("api-demo-0")
            stopped = True
            time.sleep(1.5)
            sent = load.stop()
        what = "%s, 4 streams to lb-remove while api-demo-0 left its EndpointSlice (generation %d, acked " \
               "%.2f s after the write)" % (proto(http2), generation, acked - changed)
        before = [s for s in sent if s.end < changed]
        after = [s for s in sent if s.start > acked]
        straddling = [s for s in sent if s.start <= acked and s.end >= changed]
        assert "api-demo-0" in pods(before), \
            "the harness: api-demo-0 should have served before it was removed; got %s; the sidecar's balancer: " \
            "%s" % (pods(before), state)
        bad = [s for s in sent if s.reply.status != 200]
        assert not bad, "%s: expected no request to fail; %d of %d did: %s; first: %.3f s after the ack, %r" % (
            what, len(bad), len(sent), summary([s.reply for s in bad]), bad[0].start - acked, bad[0].reply)
        assert len(after) >= 50, "the harness: only %d requests started after the ack" % len(after)
        wrong = [s for s in after if s.pod != "web-v3-0"]
        report_line("balancing %s: removal acked %.2f s after the write; %d requests before (%s; balancer: %s), "
                    "%d straddling (%s), %d after (%s)" % (
                        proto(http2), acked - changed, len(before), pods(before), state, len(straddling),
                        pods(straddling), len(after), pods(after)))
        assert not wrong, \
            "%s: expected every request started after the ack to go to web-v3-0; %d of %d went to %s, the " \
            "first %.3f s after the ack (%d requests straddled the change: %s)" % (
                what, len(wrong), len(after), pods(wrong), wrong[0].start - acked, len(straddling),
                pods(straddling))
    finally:
        if stopped:
            mesh.start_backend("api-demo-0")


# --------------------------------------------------------- 4. endpoint added --

@pytest.mark.parametrize("http2", PROTOCOLS)
def test_an_added_endpoint_gets_requests_promptly(mesh, http2):
    """Service lb-add (web-0, web-v1-0) gains web-v3-0 in its EndpointSlice: within the
    first 50 requests of 4 parallel streams after the ack, web-v3-0 answers some (a new
    endpoint is tried at once)."""
    mesh.apply(services=[ADD_BEFORE])
    warm = run_load(mesh, ADD_BEFORE, "/delay/2", http2, streams=4, each=20)
    expect_ok(warm, {"web-0", "web-v1-0"}, "%s, requests to lb-add before web-v3-0 joined" % proto(http2))
    mesh.apply(services=[ADD_AFTER])
    sent = run_load(mesh, ADD_AFTER, "/delay/2", http2, streams=4, each=25)
    what = "%s, 4 streams x 25 requests to lb-add after web-v3-0 joined its EndpointSlice" % proto(http2)
    expect_ok(sent, {"web-0", "web-v1-0", "web-v3-0"}, what)
    first = next((i for i, s in enumerate(sent) if s.pod == "web-v3-0"), None)
    report_line("balancing %s: web-v3-0 added: first answer at request %s; shares of 100: %s" % (
        proto(http2), "-" if first is None else first + 1, pods(sent)))
    assert first is not None and first < 50, \
        "%s: expected web-v3-0 to answer one of the first 50 requests; %s (shares of all 100: %s)" % (
            what, "it answered none" if first is None else "its first was request %d" % (first + 1), pods(sent))
