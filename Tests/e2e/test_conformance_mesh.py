"""Gateway API mesh (GAMMA) conformance, replayed against the Weft sidecar.

The scenarios and their cases come from Tests/conformance/mesh/ (README.md there:
upstream source, topology, what upstream's echo client and server do; cases.json: every
case in Weft's own format; manifests/: the upstream YAML, unchanged). Each upstream test
is one pytest test here (`test_scenario[<name>]`), checked the way upstream's mesh harness
checks it (`upstream_checks` of each case): status, the answering pod's Hostname prefix,
request headers seen by the backend, absent request headers, response headers, absent
response headers, and for the weight tests the split over 500 requests.

Topology (mesh_fixtures.Mesh with other pods; module fixture `conformance`):

- netns `wc-node-<pid>`: bridge 10.231.0.254/24, weft-control (config folder = one file).
  Nothing routes the ClusterIP range 10.98.0.0/16: only a sidecar can reach a ClusterIP.
- backend pods without a sidecar, one per upstream Deployment, named like a Deployment's
  pod (`echo-v1-<hash>-<hash>`): echo-v1 (10.231.0.11) and echo-v2 (.12) in
  gateway-conformance-mesh, labels app=echo + version, service account default. Each runs
  istio_echo.py (Istio's echo text format; HTTP/1.1 and h2c on :8080 and :7070, gRPC
  `proto.EchoTestService/Echo` on both, a TCP echo on :9090; no TLS on :8443).
- client pods with a sidecar (`weft-proxy init` + `run` as UID 2102): one in
  gateway-conformance-mesh (.1) and one in gateway-conformance-mesh-consumer (.2), the
  stand-ins of upstream's echo-v1 pods, which upstream uses as clients. They are pods of
  their own, not backends (label app=conformance-client, in no Service).
- config: MeshConfig, the Pods, the three Services of base-manifests.yaml (their YAML as
  upstream wrote it, plus `clusterIP`: echo 10.98.0.10, echo-v1 .11, echo-v2 .12), one
  EndpointSlice per Service (the pods its selector picks, ports by name, as the
  EndpointSlice controller writes them), then the scenario's manifests verbatim (a
  GRPCRoute is skipped by weft-control with a warning; a scenario with a skipped route
  counts as failed whatever its cases show). The Namespace and Deployment documents of
  base-manifests.yaml are left out: weft-control does not read those kinds. The client
  Pod in gateway-conformance-mesh carries a label `e2e.weft.dev/config-serial` that
  changes with every config: weft-control starts no new generation for a folder whose
  mesh equals the one in force, and two scenarios can differ only in what it ignores.

Requests, as upstream's echo client sends them, from the case's client pod: HTTP/1.1, a
new connection per request, the headers as written (a `Host` entry replaces the Host
header only). There is no DNS in the namespaces, so a host naming a Service
(`echo`, `echo-v1:8080`, `echo-v1.gateway-conformance-mesh`) is resolved here, from the
client's namespace, to its ClusterIP, and the connection goes there; the Host header is
the name as upstream sends it. gRPC cases run istio_echo.py's client in the client pod.
A case passes after 3 passing attempts in a row, 100 ms apart (upstream's rule), within
CASE_LIMIT seconds (upstream allows 30 s; the config here is acked before the first
request, so a few seconds are plenty). The gRPC case upstream sends from the echo-v2 pod
goes from the client pod in the same namespace: nothing in GAMMA routing depends on the
client's labels.

EXPECTED_TO_FAIL lists the scenarios that need a feature Weft does not have yet; they
are strict xfails, so one that starts passing fails the run and must leave the table.

WEFT_CONFORMANCE_RESULTS=<path>: writes the results table (markdown) there at the end of
the module (Tests/conformance/mesh/RESULTS.md is made that way).
"""

import collections
import concurrent.futures
import copy
import datetime
import hashlib
import json
import os
import re
import subprocess
import sys
import time

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from control_fixtures import (  # noqa: E402,F401 - ca_template: a fixture, used by name
    CONTROL_BIN, PROXY_BIN, REPO, ca_template, run,
)
from mesh_fixtures import (  # noqa: E402
    Mesh, PodSpec, mesh_config_yaml, pod_yaml, run_mesh, watch_mesh_test,
)
from weft_e2e import Deadline, RawReader, ns_connect  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
CONFORMANCE = os.path.join(REPO, "Tests", "conformance", "mesh")
ISTIO_ECHO = os.path.join(HERE, "istio_echo.py")
with open(os.path.join(CONFORMANCE, "cases.json")) as _f:
    DATA = json.load(_f)
TESTS = {t["name"]: t for t in DATA["tests"]}
MESH_NS = DATA["namespaces"]["mesh"]
CONSUMER_NS = DATA["namespaces"]["consumer"]

# Scenarios that need a feature Weft does not have yet. Strict xfails: when a feature
# lands, its scenarios pass, the strict xfails fail the run ("[XPASS(strict)]"), and
# their entries must go. (The HTTPRoute filter scenarios left the table with 0b504bc.)
EXPECTED_TO_FAIL = {
    # Every mesh scenario passes (RESULTS.md); a feature a new scenario needs goes here,
    # with the reason.
}

CASE_LIMIT = 5.0         # s per case (expected to pass) for 3 passes in a row
CASE_LIMIT_XFAIL = 2.0   # s per case of an expected failure
PASSES_IN_A_ROW = 3
RETRY_INTERVAL = 0.1
MAX_ATTEMPTS = 60
PARALLEL = 8             # cases of a scenario in flight at once
WEIGHT_LIMIT = 30.0      # s for all attempts of a weight test (upstream: up to 10 attempts)
WEIGHT_LIMIT_XFAIL = 15.0
REQUEST_TIMEOUT = 5.0

# ------------------------------------------------------------------ topology --

NS_PREFIX = "wc-"
SUBNET = "10.231.0"
NODE_IP = SUBNET + ".254"
HTTP_PORTS = (8080, 7070)   # the echo's --port=8080 and --grpc=7070 (both serve everything here)
TCP_PORTS = (9090,)         # --tcp=9090
CLUSTER_IPS = {"echo": "10.98.0.10", "echo-v1": "10.98.0.11", "echo-v2": "10.98.0.12"}
BASE_SERVICES = ("echo-v1", "echo-v2", "echo")


def _k8s_hash(seed, n):
    alphabet = "bcdfghjklmnpqrstvwxz2456789"  # the one of Kubernetes' generated names
    return "".join(alphabet[b % len(alphabet)] for b in hashlib.sha256(seed.encode()).digest()[:n])


def pod_name(namespace, deployment):
    """`<deployment>-<pod-template-hash>-<suffix>`, stable for a namespace and Deployment."""
    seed = "%s/%s" % (namespace, deployment)
    return "%s-%s-%s" % (deployment, _k8s_hash(seed, 10), _k8s_hash(seed + "/pod", 5))


def _pod(namespace, deployment, host, labels):
    return PodSpec(pod_name(namespace, deployment), namespace, host, labels.get("app", deployment), sa="default",
                   labels=labels, subnet=SUBNET, ns_prefix=NS_PREFIX)


CLIENTS = [  # upstream's echo-v1 pods, as clients (mesh_fixtures matches acks by pod name: distinct)
    _pod(MESH_NS, "client", 1, {"app": "conformance-client"}),
    _pod(CONSUMER_NS, "client", 2, {"app": "conformance-client"}),
]
CLIENT_BY_NS = {c.namespace: c for c in CLIENTS}
BACKENDS = [
    _pod(MESH_NS, "echo-v1", 11, {"app": "echo", "version": "v1"}),
    _pod(MESH_NS, "echo-v2", 12, {"app": "echo", "version": "v2"}),
]


def _read(name):
    with open(os.path.join(CONFORMANCE, "manifests", name)) as f:
        return f.read()


class ServiceDoc:
    """A Service of base-manifests.yaml: its YAML text with a ClusterIP, and what its
    EndpointSlice needs (selector, ports)."""

    def __init__(self, text):
        self.name = re.search(r"(?m)^  name: (\S+)$", text).group(1)
        self.namespace = re.search(r"(?m)^  namespace: (\S+)$", text).group(1)
        self.cluster_ip = CLUSTER_IPS[self.name]
        assert text.count("\nspec:\n") == 1, "unexpected Service layout:\n" + text
        self.text = text.replace("\nspec:\n", "\nspec:\n  type: ClusterIP\n  clusterIP: %s\n  clusterIPs: [%s]\n" % (
            self.cluster_ip, self.cluster_ip)).strip("\n") + "\n"
        self.selector, self.ports = {}, []
        section = None
        for line in text.splitlines():
            if line in ("  selector:", "  ports:"):
                section = line.strip(" :")
                continue
            if not line.startswith("    "):
                section = None
                continue
            if section == "selector":
                k, _, v = line.strip().partition(": ")
                self.selector[k] = v
            elif section == "ports":
                m = re.fullmatch(r"    (- |  )(\w+): (\S+)", line)
                assert m, "unexpected Service port line %r in:\n%s" % (line, text)
                if m.group(1) == "- ":
                    self.ports.append({})
                self.ports[-1][m.group(2)] = m.group(3)
        for p in self.ports:
            assert "name" in p and "port" in p, "Service %s: port without name or number: %s" % (self.name, p)
            p.setdefault("targetPort", p["port"])

    def slice_yaml(self):
        pods = [p for p in BACKENDS if p.namespace == self.namespace
                and all(p.labels.get(k) == v for k, v in self.selector.items())]
        ports = "".join("- {name: %s, port: %s, protocol: TCP%s}\n" % (
            p["name"], p["targetPort"], ", appProtocol: %s" % p["appProtocol"] if "appProtocol" in p else "")
            for p in self.ports)
        eps = "".join("- addresses: [%s]\n  conditions: {ready: true, serving: true, terminating: false}\n"
                      "  targetRef: {kind: Pod, name: %s, namespace: %s}\n  nodeName: node-1\n"
                      % (p.ip, p.name, p.namespace) for p in pods)
        return ("apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: %s-%s\n"
                "  namespace: %s\n  labels:\n    kubernetes.io/service-name: %s\n"
                "    endpointslice.kubernetes.io/managed-by: endpointslice-controller.k8s.io\n"
                "addressType: IPv4\nports:\n%sendpoints:\n%s") % (
            self.name, _k8s_hash(self.name, 5), self.namespace, self.name, ports, eps)


def _services():
    docs = {}
    for doc in re.split(r"(?m)^---[ \t]*$", _read(DATA["base_manifests"])):
        if re.search(r"(?m)^kind: Service$", doc):
            s = ServiceDoc(doc.strip("\n") + "\n")
            docs[s.name] = s
    assert set(docs) == set(BASE_SERVICES), "base manifests' Services: %s" % sorted(docs)
    return docs


SERVICES = _services()


class ConformanceMesh(Mesh):
    ns_prefix = NS_PREFIX
    node_ip = NODE_IP
    pods = CLIENTS + BACKENDS
    backends = BACKENDS
    clients = CLIENTS

    def backend_argv(self, p):
        return [sys.executable, ISTIO_ECHO, "serve", p.name, ",".join(map(str, HTTP_PORTS)),
                ",".join(map(str, TCP_PORTS))]

    def backend_ports(self, p):
        return HTTP_PORTS + TCP_PORTS

    def render(self, routes=(), services=None, outbound_policy="ALLOW_ANY", extra=""):
        """MeshConfig, Pods, the base manifests' Services with their slices, then `extra`:
        the scenario's manifests, verbatim."""
        assert not routes and services is None, "ConformanceMesh takes the scenario's YAML as `extra`"
        # weft-control starts no generation for a folder whose mesh equals the one in force
        # (two scenarios can differ only in what it ignores: filters, GRPCRoutes), and
        # apply() waits for one. A label nothing selects makes each config a new mesh.
        self.serial = getattr(self, "serial", 0) + 1
        marked = copy.copy(self.clients[0])
        marked.labels = dict(marked.labels, **{"e2e.weft.dev/config-serial": "c%d" % self.serial})
        docs = [mesh_config_yaml(outbound_policy)] + [pod_yaml(marked if p is self.clients[0] else p)
                                                      for p in self.pods]
        for name in BASE_SERVICES:
            docs += [SERVICES[name].text, SERVICES[name].slice_yaml()]
        if extra:
            docs.append(extra if extra.endswith("\n") else extra + "\n")
        return "# written by Tests/e2e/test_conformance_mesh.py\n" + "---\n".join(docs)


@pytest.fixture(scope="module")
def conformance(ca_template):  # noqa: F811 - ca_template is the fixture
    yield from run_mesh(ConformanceMesh(ca_template))


@pytest.fixture
def conformance_test(conformance, request):
    yield from watch_mesh_test(conformance, request)


# ------------------------------------------------------------------ requests --

class Observation:
    """What one attempt saw, in the terms upstream compares."""

    def __init__(self, status=0, response_headers=(), body="", error=None):
        self.status, self.response_headers, self.body, self.error = status, list(response_headers), body, error
        self.fields, self.request_headers = {}, []
        for line in body.splitlines():
            key, sep, value = line.partition("=")
            if not sep:
                continue
            if key == "RequestHeader":
                name, _, v = value.partition(":")
                if not name and v.startswith(":"):  # gRPC's ":authority:<value>"
                    name, _, v = v[1:].partition(":")
                    name = ":" + name
                self.request_headers.append((name, v))
            else:
                self.fields.setdefault(key, value)  # upstream takes the first match

    @property
    def hostname(self):
        return self.fields.get("Hostname", "")

    def header(self, name):
        return [v for k, v in self.response_headers if k.lower() == name.lower()]

    def short(self):
        if self.status == 0:
            return "no answer (%s)" % self.error
        s = "%s" % self.status
        if self.hostname:
            s += " from %s" % self.hostname
        weft = self.header("weft-error")
        if weft:
            s += " weft-error=%s" % weft[-1]
        return s


def _client(test, case):
    c = case.get("client") or test.get("client") or {"namespace": MESH_NS}
    return CLIENT_BY_NS[c["namespace"]]


def resolve(host, client):
    """(ip, port, authority) for a case's host, as the client's DNS would resolve it."""
    m = re.fullmatch(r"(\d+\.\d+\.\d+\.\d+)(?::(\d+))?", host)
    if m:
        return m.group(1), int(m.group(2) or 80), host
    m = re.fullmatch(r"\{pod_ip:([a-z0-9-]+)\}(?::(\d+))?", host)
    if m:
        pods = [p for p in BACKENDS if p.namespace == MESH_NS and p.name.startswith(m.group(1) + "-")]
        assert pods, "no pod for %s" % host
        port = int(m.group(2) or 80)
        return pods[0].ip, port, pods[0].ip + ("" if port == 80 else ":%d" % port)
    name, _, port = host.partition(":")
    parts = name.split(".")
    svc = parts[0]
    ns = parts[1] if len(parts) > 1 else client.namespace
    assert parts[2:] in ([], ["svc"], ["svc", "cluster", "local"]), "host %r is not a Service name" % host
    s = SERVICES.get(svc)
    assert s is not None and s.namespace == ns, "host %r from namespace %s names no Service (no DNS answer)" % (
        host, client.namespace)
    return s.cluster_ip, int(port or 80), host


def http_attempt(client, request):
    ip, port, authority = resolve(request["host"], client)
    headers = [(k, v) for k, v in request["headers"].items() if k.lower() != "host"]
    host = next((v for k, v in request["headers"].items() if k.lower() == "host"), authority)
    lines = ["%s %s HTTP/1.1" % (request.get("method") or "GET", request.get("path") or "/"), "Host: " + host,
             "User-Agent: Go-http-client/1.1"] + ["%s: %s" % kv for kv in headers]
    try:
        s = ns_connect(client.ns, ip, port, timeout=REQUEST_TIMEOUT)
    except OSError as e:
        return Observation(error="connect %s:%d: %s" % (ip, port, e))
    try:
        s.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        resp = RawReader(s, REQUEST_TIMEOUT).read_response(request.get("method") or "GET")
        return Observation(resp.status, resp.headers, resp.body.decode("utf-8", "replace"))
    except Exception as e:  # noqa: BLE001 - reset, EOF, timeout: an attempt without an answer
        return Observation(error="%s: %s" % (type(e).__name__, e))
    finally:
        s.close()


def grpc_attempts(client, request, count, budget=None):
    """`count` unary calls over one channel (istio_echo.py's client in the client pod),
    killed after `budget` seconds (default: 20 + 0.2 per call)."""
    ip, port, authority = resolve(request["host"], client)
    argv = ["ip", "netns", "exec", client.ns, sys.executable, ISTIO_ECHO, "grpc", "%s:%d" % (ip, port),
            authority, str(count)] + ["%s=%s" % kv for kv in request["headers"].items()]
    try:
        p = subprocess.run(argv, capture_output=True, timeout=budget or 20 + count * 0.2)
    except subprocess.TimeoutExpired:
        return [Observation(error="gRPC client timed out")] * count
    out = []
    for line in p.stdout.decode(errors="replace").splitlines():
        try:
            r = json.loads(line)
        except ValueError:
            continue
        out.append(Observation(200 if r["code"] == "OK" else 0, (), r["body"],
                               error=None if r["code"] == "OK" else "gRPC %s: %s" % (r["code"], r.get("error"))))
    if len(out) < count:
        err = "gRPC client exit %d: %s" % (p.returncode, p.stderr.decode(errors="replace")[-500:])
        out += [Observation(error=err)] * (count - len(out))
    return out


def attempt(client, request):
    if request["protocol"] == "grpc":
        return grpc_attempts(client, request, 1)[0]
    return http_attempt(client, request)


# --------------------------------------------------------------- comparison --

def mismatches(case, obs):
    """What differs from the case's expectations, for the checks upstream makes."""
    e, checks, bad = case["expect"], case["upstream_checks"], []
    if obs.status == 0:
        return ["no answer: %s" % obs.error]
    if "status" in checks:
        want = e["status"] if isinstance(e["status"], list) else [e["status"]]
        if obs.status not in want:
            bad.append("status %s, want %s" % (obs.status, " or ".join(map(str, want))))
    if "backend_prefix" in checks and e.get("backend") and not obs.hostname.startswith(e["backend"]):
        bad.append("backend %r, want a pod of %s" % (obs.hostname or None, e["backend"]))
    rw = e.get("request_after_rewrite") or {}
    if "request_headers" in checks:
        for name, value in (rw.get("headers") or {}).items():
            got = [v for k, v in obs.request_headers if k.lower() == name.lower()]
            if not got:
                bad.append("backend did not get request header %s (want %r)" % (name, value))
            elif ",".join(got) != value:
                bad.append("request header %s = %r at the backend, want %r" % (name, ",".join(got), value))
    if "absent_request_headers" in checks:
        for name in rw.get("absent_headers") or ():
            got = [v for k, v in obs.request_headers if k.lower() == name.lower()]
            if got:
                bad.append("request header %s reached the backend (%r), want it absent" % (name, ",".join(got)))
    if "response_headers" in checks:
        for name, value in (e.get("response_headers") or {}).items():
            got = obs.header(name)
            if not got:
                bad.append("no response header %s (want %r)" % (name, value))
            elif got[-1] != value:
                bad.append("response header %s = %r, want %r" % (name, got[-1], value))
    if "absent_response_headers" in checks:
        for name in e.get("absent_response_headers") or ():
            if obs.header(name):
                bad.append("response header %s = %r, want it absent" % (name, obs.header(name)[-1]))
    return bad


def describe(case, client):
    r = case["request"]
    ip, port, _ = resolve(r["host"], client)
    url = re.sub(r"\{pod_ip:[^}]+\}", ip, r["url"])
    if r["protocol"] == "grpc":
        what = "gRPC %s %s" % (url, r.get("grpc_method") or "")
    else:
        what = "%s %s" % (r.get("method") or "GET", url)
    hdrs = "".join(" [%s: %s]" % kv for kv in r["headers"].items())
    return "%s%s from %s (connects to %s:%d)" % (what, hdrs, client.namespace, ip, port)


def expectation(case):
    e, checks = case["expect"], case["upstream_checks"]
    parts = ["status %s" % e["status"]]
    if "backend_prefix" in checks and e.get("backend"):
        parts.append("backend %s" % e["backend"])
    rw = e.get("request_after_rewrite") or {}
    if "request_headers" in checks and rw.get("headers"):
        parts.append("request headers %s" % json.dumps(rw["headers"]))
    if "absent_request_headers" in checks and rw.get("absent_headers"):
        parts.append("no request headers %s" % rw["absent_headers"])
    if "response_headers" in checks and e.get("response_headers"):
        parts.append("response headers %s" % json.dumps(e["response_headers"]))
    if "absent_response_headers" in checks and e.get("absent_response_headers"):
        parts.append("no response headers %s" % e["absent_response_headers"])
    return ", ".join(parts)


def replay_case(test, case, limit):
    """Upstream's rule: passes after PASSES_IN_A_ROW passing attempts in a row, 100 ms
    apart, started within `limit` seconds (a streak under way may finish after it; at most
    MAX_ATTEMPTS in all). None when it passed, else what went wrong."""
    client = _client(test, case)
    started, deadline = time.monotonic(), Deadline(limit)
    streak, attempts, last = 0, 0, None
    while attempts < MAX_ATTEMPTS:
        attempts += 1
        obs = attempt(client, case["request"])
        bad = mismatches(case, obs)
        if not bad:
            streak += 1
            if streak >= PASSES_IN_A_ROW:
                return None
        else:
            streak, last = 0, (obs, bad)
        if deadline.expired and streak == 0:
            break
        time.sleep(RETRY_INTERVAL)
    if last is None:
        return "case %r: %s: passed only %d times in a row in %d attempts" % (
            case["name"], describe(case, client), streak, attempts)
    obs, bad = last
    return "case %r: %s\n      expected: %s\n      got: %s: %s (%d attempts in %.1fs, last failure shown)" % (
        case["name"], describe(case, client), expectation(case), obs.short(), "; ".join(bad), attempts,
        time.monotonic() - started)


def backend_of(hostname):
    """Upstream's weight.go: the pod's hostname minus its last two '-' parts."""
    parts = hostname.split("-")
    return "-".join(parts[:-2]) if len(parts) > 2 else hostname


def replay_distribution(test, case, limit):
    """Upstream's weight test: one request must pass (200, any backend); then attempts of
    `requests` requests until one has exactly the weighted backends, each share within
    the tolerance of its weight."""
    d = case["expect"]["distribution"]
    first = dict(case, upstream_checks=["status"])
    err = replay_case(test, first, min(limit, CASE_LIMIT))
    if err:
        return err
    client = _client(test, case)
    deadline = Deadline(limit)
    report = []
    for n in range(d["max_attempts"]):
        if deadline.expired:
            report.append("time limit %.0fs reached after %d attempts" % (limit, n))
            break
        if case["request"]["protocol"] == "grpc":
            obs = grpc_attempts(client, case["request"], d["requests"], budget=deadline.remaining(1.0) + 5)
        else:
            def one(_):
                if deadline.expired:
                    return Observation(error="not sent: the weight test's time limit was reached")
                return http_attempt(client, case["request"])
            with concurrent.futures.ThreadPoolExecutor(PARALLEL) as pool:
                obs = list(pool.map(one, range(d["requests"])))
        failed = [o for o in obs if o.status != 200 or not o.hostname]
        counts = collections.Counter(backend_of(o.hostname) for o in obs if o.status == 200 and o.hostname)
        shares = {k: v / float(len(obs)) for k, v in counts.items()}
        problems = []
        if failed:
            problems.append("%d requests failed (first: %s)" % (len(failed), failed[0].short()))
        if set(counts) != set(d["weights"]):
            problems.append("backends %s, want exactly %s" % (sorted(counts), sorted(d["weights"])))
        for name, w in sorted(d["weights"].items()):
            if abs(shares.get(name, 0.0) - w) > d["tolerance"]:
                problems.append("%s got %.1f%%, want %.0f%% ± %.0f%%" % (
                    name, 100 * shares.get(name, 0.0), 100 * w, 100 * d["tolerance"]))
        if not problems:
            return None
        report.append("attempt %d: %s; split %s" % (
            n + 1, "; ".join(problems), ", ".join("%s=%d" % kv for kv in sorted(counts.items()))))
    return "case %r: %d x %s from %s\n      expected: shares %s within ±%s\n      got: %s" % (
        case["name"], d["requests"], case["request"]["url"], client.namespace, json.dumps(d["weights"]),
        d["tolerance"], "\n           ".join(report))


# ---------------------------------------------------------------- scenarios --

def manifests(test):
    return "---\n".join(_read(m) if _read(m).endswith("\n") else _read(m) + "\n" for m in test["manifests"])


RESULTS = {}  # row name -> (outcome, details)


class ScenarioMismatch(AssertionError):
    """A scenario's cases did not all pass: the one failure an xfail here stands for."""


def replay(mesh, key, test, text):
    expected_fail = key in EXPECTED_TO_FAIL
    mesh.apply(extra=text)
    limit = CASE_LIMIT_XFAIL if expected_fail else CASE_LIMIT
    wlimit = WEIGHT_LIMIT_XFAIL if expected_fail else WEIGHT_LIMIT
    jobs = [(replay_distribution, c, wlimit) if "distribution" in c["expect"] else (replay_case, c, limit)
            for c in test["cases"]]
    with concurrent.futures.ThreadPoolExecutor(min(PARALLEL, len(jobs))) as pool:
        errors = [e for e in pool.map(lambda j: j[0](test, j[1], j[2]), jobs) if e]
    # A scenario whose routes weft-control skipped (a kind it does not read) cannot pass,
    # whatever its cases show: without a GRPCRoute the default balancing splits echo:7070
    # anywhere between 50/50 and 99/1, sometimes 70/30 (the weight test) by chance.
    kinds = set(re.findall(r"(?m)^kind: (\S+)$", text))
    skipped = []
    for w in mesh.warnings():
        m = re.search(r" (\w+) (\S+) is not a kind Weft reads", w)
        if m and m.group(1) in kinds:
            skipped.append("weft-control skipped %s %s of the scenario (not a kind it reads), so no case can show "
                           "its routing" % (m.group(1), m.group(2)))
    if not errors and not skipped:
        RESULTS[key] = ("unexpected pass" if expected_fail else "pass", [])
        return
    warnings = [w for w in mesh.warnings() if "not a kind Weft reads" not in w]
    summary = "; ".join(skipped + ["%d of %d cases failed" % (len(errors), len(jobs))])
    detail = "%s:\n  %s" % (summary, "\n  ".join(errors))
    if warnings:
        detail += "\n  weft-control warnings: %s" % "; ".join(warnings)
    RESULTS[key] = ("expected-fail" if expected_fail else "fail",
                    [summary] + errors + (["weft-control warnings: " + "; ".join(warnings)] if warnings else []))
    raise ScenarioMismatch("%s (%s): %s" % (key, test["source"], detail))


def _param(name):
    if name in EXPECTED_TO_FAIL:
        # raises=: only a failed comparison is the expected failure; a harness error, a
        # failed setup or a rejected config fails the test.
        return pytest.param(name, marks=pytest.mark.xfail(strict=True, raises=ScenarioMismatch,
                                                          reason=EXPECTED_TO_FAIL[name]))
    return name


@pytest.mark.parametrize("scenario", [_param(t["name"]) for t in DATA["tests"]])
def test_scenario(conformance_test, scenario):
    """One upstream mesh conformance test, replayed (module docstring)."""
    test = TESTS[scenario]
    replay(conformance_test, scenario, test, manifests(test))


def test_fixture_echo_backends(conformance_test):
    """Harness check (no routes): each backend answers HTTP/1.1 and gRPC in the echo text
    format with its pod name, through the client's sidecar to its pod IP, and a ClusterIP
    does not answer a connection that bypasses the sidecar."""
    mesh = conformance_test
    mesh.apply()
    client = CLIENT_BY_NS[MESH_NS]
    for p in BACKENDS:
        for port in HTTP_PORTS:
            req = {"protocol": "http", "host": "%s:%d" % (p.ip, port), "method": "GET", "path": "/x?y=1",
                   "headers": {"X-Multi": "a", "x-multi": "b"}}
            obs = Observation()
            for _ in range(20):
                obs = http_attempt(client, req)
                if obs.status == 200:
                    break
                time.sleep(0.1)
            assert obs.status == 200 and obs.hostname == p.name, "%s:%d: %s\n%s" % (p.ip, port, obs.short(), obs.body)
            assert obs.fields.get("URL") == "/x?y=1" and obs.fields.get("ServicePort") == str(port), obs.body
            assert [v for k, v in obs.request_headers if k == "X-Multi"] == ["a", "b"], obs.body
        g = grpc_attempts(client, {"host": "%s:7070" % p.ip, "headers": {"x-a": "1"}}, 1)[0]
        assert g.status == 200 and g.hostname == p.name and g.fields.get("Proto") == "GRPC", (g.short(), g.body)
        assert ("x-a", "1") in g.request_headers, g.body
    for name in BASE_SERVICES:
        try:
            s = ns_connect(client.ns, SERVICES[name].cluster_ip, 80, timeout=2.0, uncaptured=True)
        except OSError:
            continue
        s.close()
        pytest.fail("ClusterIP %s:80 answered a connection that bypassed the sidecar" % SERVICES[name].cluster_ip)


# ------------------------------------------------------------------ results --

RESULTS_COMMAND = ("WEFT_PROXY_BIN=/work/main/.build/release/weft-proxy "
                   "WEFT_CONFORMANCE_RESULTS=Tests/conformance/mesh/RESULTS.md "
                   "python3 -m pytest -q -p no:cacheprovider Tests/e2e/test_conformance_mesh.py")


@pytest.fixture(scope="module", autouse=True)
def results_file():
    started = time.monotonic()
    yield
    path = os.environ.get("WEFT_CONFORMANCE_RESULTS")
    if not path:
        return
    commit = run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"], check=False).stdout.decode().strip()
    dirty = run(["git", "-C", REPO, "status", "--porcelain", "--untracked-files=no"], check=False).stdout.strip()
    rows = [(t["name"], t["name"]) for t in DATA["tests"]]
    lines = [
        "# Mesh conformance replay: results",
        "",
        "- date: %s" % datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "- weft commit: `%s`%s" % (commit, " (with uncommitted changes in the tree)" if dirty else ""),
        "- binaries: %s" % ", ".join("`%s` (built %s)" % (os.path.relpath(b, REPO), _mtime(b))
                                      for b in (PROXY_BIN, CONTROL_BIN)),
        "- command: `%s` (%.0f s)" % (RESULTS_COMMAND, time.monotonic() - started),
        "- harness: `Tests/e2e/test_conformance_mesh.py` (see its docstring); data: `cases.json`, `manifests/`",
        "",
        "| scenario | result | details |",
        "| --- | --- | --- |",
    ]
    for key, label in rows:
        outcome, details = RESULTS.get(key, ("not run", []))
        if outcome == "expected-fail":
            # the reason, and the first failed case's "got" as a sample
            got = re.search(r"\n +got: (.*)", details[1]) if len(details) > 1 else None
            text = "%s. %s%s" % (EXPECTED_TO_FAIL[key], details[0], "; e.g. got " + got.group(1) if got else "")
        else:
            text = "<br>".join(d.replace("\n", "<br>") for d in details)
        lines.append("| %s | %s | %s |" % (label, outcome, text.replace("|", "\\|")))
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def _mtime(path):
    try:
        return datetime.datetime.fromtimestamp(os.path.getmtime(path), datetime.timezone.utc).strftime(
            "%Y-%m-%d %H:%M UTC")
    except OSError:
        return "missing"
