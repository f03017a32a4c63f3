"""A small mesh in network namespaces, for the outbound routing tests (test_traffic.py).

Topology (module-scoped fixture `mesh`, set up once per test module):

- netns `wm-node-<pid>`: a bridge `br0` with 10.230.0.254/24 (the "node"). No route for
  the ClusterIP range 10.97.0.0/16 and no NAT: nothing but the client's sidecar can
  reach a ClusterIP. weft-control runs here, its push port on 10.230.0.254:25112, its
  HTTP port on 127.0.0.1:25114 (weftctl and the API from inside the namespace).
- one netns per pod, `wm-<pod>-<pid>`, with `eth0` (a veth whose peer is a port of
  `br0`), an address in 10.230.0.0/24 and only a default route via 10.230.0.254.
- pod `client` (namespace demo, service account client, app=client) at 10.230.0.1:
  `weft-proxy init`, then `weft-proxy run` as UID 2102 (setpriv) connected to
  weft-control, with `--connect-timeout 1s --response-timeout 3s
  --request-head-timeout 3s`. Clients (curl, Python sockets) run here as root, so
  their connections are captured.
- backend pods (no sidecar), each running BACKEND_SERVER: HTTP/1.1 *and* h2c prior
  knowledge on :8080 and :8081 (the first bytes decide), and a TCP echo on :7000.
  Every HTTP answer is 200 with the JSON body
  {"pod", "method", "path" (raw request target), "headers" {lowercase name: value}}
  and a header `x-pod: <pod>`; `/status/<N>` answers N, `/delay/<ms>` sleeps first,
  `/flaky/<pct>` answers 503 to pct% of requests; `/counts` answers how many requests
  each target (path and query) received, and the last request to each ("last": method,
  headers, body length and its first 256 bytes); `/refuse-second/<tag>` answers 503,
  then refuses the stream unprocessed (HTTP/2 RST_STREAM REFUSED_STREAM; HTTP/1.1 503),
  then 200, and `/counts` lists each of its requests' headers ("seen"). A test may stop a backend's server
  (`mesh.stop_backend`: its ports then refuse connections) and start it again
  (`mesh.start_backend`, optionally with `delay_ms`: every answer but /counts waits that
  long first); a restarted server's counts start at zero.
- pod `outsider` runs the same servers but is in no Service and not in the config:
  the destination that REGISTRY_ONLY refuses.

Config: the test writes the whole config folder as one file (`mesh.yaml`: MeshConfig,
Pods, Services, EndpointSlices, HTTPRoutes) with `Mesh.apply(...)`, which waits until
weft-control accepted it (a new generation) and the client sidecar acked it.

Other topologies (test_conformance_mesh.py) subclass Mesh: the class attributes `pods`,
`backends`, `clients` and `ns_prefix` / `node_ip`, and the hooks `backend_argv`,
`backend_ports` and `render` (the config text) replace the ones above; every client pod
gets a sidecar (`mesh.proxies`, by pod name; `mesh.proxy` is the first). The fixture
bodies are `run_mesh` and `watch_mesh_test`.

Every process is started through control_fixtures.ControlEnv and killed at teardown;
every namespace is deleted at teardown, also after a failure, Ctrl-C or SIGTERM. Those
left by a run that was killed are removed at the next start. Every wait is bounded.
"""

import collections
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from control_fixtures import (  # noqa: E402
    CONTROL_BIN, PROXY_BIN, WEFTCTL, ControlEnv, Proxy, eventually, out, run, stop_process, tail,
    write_atomic,
)
from weft_e2e import REPORT, Deadline, RawReader, ns_connect  # noqa: E402

PID = os.getpid()
NS_PREFIX = "wm-"
SUBNET = "10.230.0"
NODE_IP = SUBNET + ".254"
OUTSIDER_IP = SUBNET + ".100"  # pod `outsider`: in no Service, not in the config
PUSH_PORT, HTTP_PORT = 25112, 25114  # inside the node namespace: no clash possible
ADMIN_PORT, OUTBOUND_PORT, INBOUND_PORT = 15000, 15001, 15006
PROXY_UID = PROXY_GID = 2102
APP_PORT = 8080   # HTTP/1.1 and h2c (prior knowledge), chosen by the first bytes
H2C_PORT = 8081   # the same server, for clients that want a port of its own for h2c
ECHO_PORT = 7000  # TCP echo
PROXY_FLAGS = ("--connect-timeout", "1s", "--response-timeout", "3s", "--request-head-timeout", "3s")
SETPRIV = ("setpriv", "--reuid=%d" % PROXY_UID, "--regid=%d" % PROXY_GID, "--clear-groups")


# ------------------------------------------------------------------ the mesh --

class PodSpec:
    def __init__(self, name, namespace, host, app, sa=None, ready=True, in_config=True, labels=None,
                 subnet=SUBNET, ns_prefix=NS_PREFIX):
        self.name, self.namespace, self.ip, self.app = name, namespace, "%s.%d" % (subnet, host), app
        self.labels = dict(labels) if labels else {"app": app}
        self.sa = sa or app
        self.ready = ready          # the Pod's Ready condition and its endpoints' `ready`
        self.in_config = in_config  # False: a workload the mesh does not know (outsider)
        self.ns = "%s%s-%d" % (ns_prefix, name, PID)

    def __repr__(self):
        return "<pod %s/%s %s>" % (self.namespace, self.name, self.ip)


class ServiceSpec:
    """A ClusterIP Service; `pods` back it through one EndpointSlice (None: no slice at all)."""

    def __init__(self, name, namespace, cluster_ip, pods, ports=(("http", 80, APP_PORT),)):
        self.name, self.namespace, self.cluster_ip = name, namespace, cluster_ip
        self.pods = None if pods is None else list(pods)
        self.ports = [tuple(p) for p in ports]  # (name, port, targetPort)

    @property
    def key(self):
        return "%s/%s" % (self.namespace, self.name)

    def with_ports(self, *ports):
        return ServiceSpec(self.name, self.namespace, self.cluster_ip, self.pods, ports)


CLIENT = PodSpec("client", "demo", 1, "client")
BACKENDS = [
    PodSpec("web-0", "demo", 10, "web"),
    PodSpec("web-1", "demo", 11, "web"),
    PodSpec("web-v1-0", "demo", 12, "web-v1"),
    PodSpec("web-v2-0", "demo", 13, "web-v2"),
    PodSpec("web-v3-0", "demo", 14, "web-v3"),
    PodSpec("down-0", "demo", 15, "down", ready=False),  # running, but not Ready
    PodSpec("api-0", "other", 20, "api"),
    PodSpec("api-v2-0", "other", 21, "api-v2"),
    PodSpec("api-demo-0", "demo", 22, "api-demo"),
    PodSpec("api-else-0", "elsewhere", 23, "api-else"),
    PodSpec("outsider", "none", 100, "outsider", in_config=False),
]
PODS = [CLIENT] + BACKENDS
POD = {p.name: p for p in PODS}

# Every ClusterIP is in 10.97.0.0/16, which nothing routes.
SERVICES = [
    ServiceSpec("web", "demo", "10.97.0.10", ["web-0", "web-1"]),
    ServiceSpec("web-v1", "demo", "10.97.0.11", ["web-v1-0"]),
    ServiceSpec("web-v2", "demo", "10.97.0.12", ["web-v2-0"]),
    ServiceSpec("web-v3", "demo", "10.97.0.13", ["web-v3-0"]),
    ServiceSpec("empty", "demo", "10.97.0.20", ["down-0"]),   # its one endpoint is not ready
    ServiceSpec("vacant", "demo", "10.97.0.21", None),         # no EndpointSlice at all
    ServiceSpec("api-demo", "demo", "10.97.0.30", ["api-demo-0"]),
    # Used by one test each, which must be the first traffic to them (discovery).
    ServiceSpec("slow1", "demo", "10.97.0.41", ["web-v1-0"]),
    ServiceSpec("slow2", "demo", "10.97.0.42", ["web-v1-0"]),
    ServiceSpec("api", "other", "10.97.1.10", ["api-0"]),
    ServiceSpec("api-v2", "other", "10.97.1.11", ["api-v2-0"]),
    ServiceSpec("api-else", "elsewhere", "10.97.2.10", ["api-else-0"]),
]
SERVICE = {s.name: s for s in SERVICES}


def service(name):
    return SERVICE[name]


# ------------------------------------------------------------------ YAML -------

def _labels(d):
    return "{%s}" % ", ".join("%s: %s" % kv for kv in sorted(d.items()))


def pod_yaml(p):
    return textwrap.dedent("""\
        apiVersion: v1
        kind: Pod
        metadata: {name: %(name)s, namespace: %(ns)s, labels: %(labels)s}
        spec: {serviceAccountName: %(sa)s}
        status:
          phase: Running
          podIP: %(ip)s
          podIPs: [{ip: %(ip)s}]
          conditions: [{type: Ready, status: "%(ready)s"}]
        """) % {"name": p.name, "ns": p.namespace, "labels": _labels(p.labels), "sa": p.sa,
                "ip": p.ip, "ready": "True" if p.ready else "False"}


def meshed_pod_yaml(p, app="{name: app}"):
    """A Pod listing the sidecar container beside its `app` container (what injection
    adds): the control plane then treats its endpoint as meshed (mesh TLS to it)."""
    return pod_yaml(p).replace("spec: {serviceAccountName: %s}" % p.sa,
                               "spec:\n  serviceAccountName: %s\n  containers: [%s, {name: weft-proxy}]" % (p.sa, app))


def service_yaml(s, pods=None):
    """A Service and its EndpointSlice; `pods`: the PodSpecs its endpoints name (default PODS)."""
    by_name = POD if pods is None else {p.name: p for p in pods}
    ports = "".join("  - {name: %s, port: %d, targetPort: %d, protocol: TCP}\n" % p for p in s.ports)
    text = textwrap.dedent("""\
        apiVersion: v1
        kind: Service
        metadata: {name: %(name)s, namespace: %(ns)s, labels: {app: %(name)s}}
        spec:
          type: ClusterIP
          clusterIP: %(ip)s
          clusterIPs: [%(ip)s]
          selector: {app: %(name)s}
          ports:
        """) % {"name": s.name, "ns": s.namespace, "ip": s.cluster_ip} + ports
    if s.pods is None:
        return text
    slice_ports = "".join("- {name: %s, port: %d, protocol: TCP}\n" % (name, target) for name, _, target in s.ports)
    eps = ""
    for name in s.pods:
        p = by_name[name]
        r = "true" if p.ready else "false"
        eps += ("- addresses: [%s]\n  conditions: {ready: %s, serving: %s, terminating: false}\n"
                "  targetRef: {kind: Pod, name: %s, namespace: %s}\n  nodeName: node-1\n"
                % (p.ip, r, r, p.name, p.namespace))
    return text + "---\n" + textwrap.dedent("""\
        apiVersion: discovery.k8s.io/v1
        kind: EndpointSlice
        metadata:
          name: %(name)s-slice
          namespace: %(ns)s
          labels: {kubernetes.io/service-name: %(name)s}
        addressType: IPv4
        ports:
        """) % {"name": s.name, "ns": s.namespace} + slice_ports + "endpoints:\n" + eps


def mesh_config_yaml(outbound_policy="ALLOW_ANY", spec_extra="", http1_transport=None):
    """The MeshConfig; `spec_extra`: more fields of its spec (YAML at the spec's level,
    e.g. "retryBudget: {ratio: 0.5}"); `http1_transport`: mtls.http1Transport, if set."""
    extra = textwrap.indent(textwrap.dedent(spec_extra).strip("\n") + "\n", "  ") if spec_extra.strip() else ""
    return textwrap.dedent("""\
        apiVersion: weft.dev/v1alpha1
        kind: MeshConfig
        metadata: {name: mesh}
        spec:
          trustDomain: cluster.local
          mtls: {mode: PERMISSIVE%s}
          outboundPolicy: %s
        """) % (", http1Transport: %s" % http1_transport if http1_transport else "", outbound_policy) + extra


def http_route(name, parent, rules, namespace="demo", parent_namespace=None, port=None):
    """An HTTPRoute (GAMMA) on Service `parent`; `rules` is the YAML of `spec.rules`' items.

    http_route("split", "web", '''
        - backendRefs:
          - {name: web-v1, port: 80, weight: 90}
    ''')
    """
    ref = "{group: \"\", kind: Service, name: %s%s%s}" % (
        parent, ", namespace: %s" % parent_namespace if parent_namespace else "",
        ", port: %d" % port if port else "")
    head = textwrap.dedent("""\
        apiVersion: gateway.networking.k8s.io/v1
        kind: HTTPRoute
        metadata: {name: %s, namespace: %s}
        spec:
          parentRefs:
          - %s
          rules:
        """) % (name, namespace, ref)
    return head + textwrap.indent(textwrap.dedent(rules).strip("\n") + "\n", "  ")


def render_config(services=None, routes=(), outbound_policy="ALLOW_ANY", extra="", pods=None, mesh_spec=""):
    """The whole config folder's content: MeshConfig, Pods, Services (+ slices), routes.
    `pods`: the PodSpecs of another topology (default PODS; `services` then names those);
    `mesh_spec`: more MeshConfig spec fields (mesh_config_yaml's `spec_extra`)."""
    docs = [mesh_config_yaml(outbound_policy, mesh_spec)]
    docs += [pod_yaml(p) for p in (PODS if pods is None else pods) if p.in_config]
    docs += [service_yaml(s, pods) for s in (SERVICES if services is None else services)]
    if isinstance(routes, str):
        routes = [routes]
    docs += [textwrap.dedent(r).strip("\n") + "\n" for r in routes if r and r.strip()]
    if extra:
        docs.append(textwrap.dedent(extra).strip("\n") + "\n")
    return "# written by Tests/e2e/mesh_fixtures.py\n" + "---\n".join(docs)


# ------------------------------------------------------------ backend server --

BACKEND_SERVER = r'''
import http.server, json, random, re, socket, socketserver, sys, threading, time
import h2.config, h2.connection, h2.errors, h2.events, h2.exceptions

POD = sys.argv[1]
PORTS = [int(p) for p in sys.argv[2].split(",")]
ECHO = int(sys.argv[3])
# --delay-ms N: every HTTP answer but /counts waits N ms first (a slow pod).
DELAY_MS = int(sys.argv[sys.argv.index("--delay-ms") + 1]) if "--delay-ms" in sys.argv else 0
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


COUNTS = {}
LAST = {}
SEEN = {}  # /refuse-second/ targets: every request's headers, in order
COUNTS_LOCK = threading.Lock()


def answer(method, target, headers, body=b""):
    """(status, body); status None: refuse the stream unprocessed (HTTP/2 RST_STREAM
    REFUSED_STREAM; HTTP/1.1 answers 503)."""
    path = target.split("?", 1)[0]
    if path == "/counts":
        with COUNTS_LOCK:
            return 200, json.dumps({"pod": POD, "counts": COUNTS, "last": LAST, "seen": SEEN}).encode()
    with COUNTS_LOCK:
        COUNTS[target] = COUNTS.get(target, 0) + 1
        nth = COUNTS[target]
        LAST[target] = {"method": method, "headers": headers, "length": len(body),
                        "body": body[:256].decode("utf-8", "replace")}
        if path.startswith("/refuse-second/") and len(SEEN.setdefault(target, [])) < 8:
            SEEN[target].append(headers)
    if DELAY_MS:
        time.sleep(DELAY_MS / 1000.0)
    # /refuse-second/<tag>: 503 first, then the stream refused, then 200.
    if path.startswith("/refuse-second/") and nth <= 2:
        return (503, b"{}") if nth == 1 else (None, b"")
    status = 200
    m = re.fullmatch(r"/status/(\d{3})", path)
    if m:
        status = int(m.group(1))
    m = re.fullmatch(r"/flaky/(\d+)", path)
    if m and random.random() * 100 < int(m.group(1)):
        status = 503
    m = re.fullmatch(r"/delay/(\d+)", path)
    if m:
        time.sleep(min(int(m.group(1)), 60000) / 1000.0)
    answer_ = {"pod": POD, "method": method, "path": target, "headers": headers}
    m = re.fullmatch(r"/call/([0-9.]+)(/.*)", path)
    if m:
        # An app that calls another and does NOT pass trace context on (?after=MS: first
        # waits MS ms).
        query = dict(kv.split("=", 1) for kv in target.partition("?")[2].split("&") if "=" in kv)
        time.sleep(min(int(query.get("after", "0")), 60000) / 1000.0)
        import urllib.request
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open("http://%s%s" % (m.group(1), m.group(2)), timeout=10) as r:
            answer_["called"] = json.loads(r.read())
    return status, json.dumps(answer_).encode()


def is_h2(conn):
    """Peeks at the first bytes: the h2c preface, or anything else (HTTP/1.1)."""
    for _ in range(500):
        data = conn.recv(len(PREFACE), socket.MSG_PEEK)
        if not data or not PREFACE.startswith(data):
            return False
        if len(data) == len(PREFACE):
            return True
        time.sleep(0.01)
    return False


def serve_h2(conn):
    c = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False, header_encoding="utf-8"))
    lock = threading.Lock()
    heads = {}
    bodies = {}

    def flush():
        data = c.data_to_send()
        if data:
            conn.sendall(data)

    def respond(sid, hdrs, request_body):
        pseudo = {k: v for k, v in hdrs if k.startswith(":")}
        plain = {}
        for k, v in hdrs:
            if not k.startswith(":"):
                plain[k.lower()] = plain[k.lower()] + ", " + v if k.lower() in plain else v
        if ":authority" in pseudo:
            plain.setdefault("host", pseudo[":authority"])  # as HTTP/1.1's Host
        status, body = answer(pseudo.get(":method", ""), pseudo.get(":path", ""), plain, request_body)
        if status is None:
            with lock:
                c.reset_stream(sid, error_code=h2.errors.ErrorCodes.REFUSED_STREAM)
                flush()
            return
        try:
            with lock:
                c.send_headers(sid, [(":status", str(status)), ("content-type", "application/json"),
                                     ("content-length", str(len(body))), ("x-pod", POD)])
            for _ in range(500):
                with lock:
                    if c.local_flow_control_window(sid) >= len(body):
                        c.send_data(sid, body, end_stream=True)
                        flush()
                        return
                time.sleep(0.01)
            with lock:
                c.reset_stream(sid)
                flush()
        except (h2.exceptions.ProtocolError, h2.exceptions.StreamClosedError, OSError):
            pass

    with lock:
        c.initiate_connection()
        flush()
    while True:
        data = conn.recv(65536)
        if not data:
            return
        with lock:
            try:
                events = c.receive_data(data)
            except h2.exceptions.ProtocolError:
                flush()
                return
            for ev in events:
                if isinstance(ev, h2.events.RequestReceived):
                    heads[ev.stream_id] = ev.headers
                elif isinstance(ev, h2.events.DataReceived):
                    c.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
                    bodies[ev.stream_id] = bodies.get(ev.stream_id, b"") + ev.data
                elif isinstance(ev, h2.events.StreamEnded) and ev.stream_id in heads:
                    threading.Thread(target=respond, args=(ev.stream_id, heads.pop(ev.stream_id),
                                                           bodies.pop(ev.stream_id, b"")),
                                     daemon=True).start()
                elif isinstance(ev, h2.events.StreamReset):
                    heads.pop(ev.stream_id, None)
                    bodies.pop(ev.stream_id, None)
                elif isinstance(ev, h2.events.ConnectionTerminated):
                    flush()
                    return
            flush()


class H1(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 300
    # One write per response (wfile is flushed after each request), and no Nagle: head
    # and body in two small segments cost a delayed ACK (40 ms) per request.
    wbufsize = 1 << 16
    disable_nagle_algorithm = True

    def handle(self):
        try:
            if is_h2(self.connection):
                self.connection.settimeout(300)
                serve_h2(self.connection)
                return
        except OSError:
            return
        super().handle()

    def _any(self):
        n = int(self.headers.get("content-length") or 0)
        request_body = b""
        if n:
            request_body = self.rfile.read(n)
        elif "chunked" in (self.headers.get("transfer-encoding") or "").lower():
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                request_body += self.rfile.read(size + 2)[:-2]
        headers = {}
        for k in self.headers.keys():
            headers[k.lower()] = ", ".join(self.headers.get_all(k))
        status, body = answer(self.command, self.path, headers, request_body)
        status = 503 if status is None else status
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("x-pod", POD)
        if status >= 200 and status not in (204, 304):
            self.send_header("content-length", str(len(body)))
        self.end_headers()
        if status >= 200 and status not in (204, 304) and self.command != "HEAD":
            self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _any

    def log_message(self, *a):
        pass


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128


class Echo(socketserver.BaseRequestHandler):
    def handle(self):
        self.request.settimeout(300)
        while True:
            data = self.request.recv(65536)
            if not data:
                return
            self.request.sendall(data)


class EchoServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


servers = [Server(("0.0.0.0", p), H1) for p in PORTS] + [EchoServer(("0.0.0.0", ECHO), Echo)]
for s in servers[1:]:
    threading.Thread(target=s.serve_forever, daemon=True).start()
print("backend %s listening on %s and echo %d" % (POD, PORTS, ECHO), flush=True)
servers[0].serve_forever()
'''


# ------------------------------------------------------------------ replies --

class Reply:
    """One answer: status (0 when none came), headers {lowercase: value}, body bytes,
    json (the parsed body or None), error (curl's message / the exception), and
    new_connections (how many connections the client opened for this request)."""

    def __init__(self, status, headers=None, body=b"", error=None, new_connections=0):
        self.status, self.headers, self.body = status, headers or {}, body
        self.error, self.new_connections = error, new_connections
        try:
            self.json = json.loads(body) if body else None
        except ValueError:
            self.json = None

    @property
    def pod(self):
        """The backend pod that answered (None for the sidecar's own answers)."""
        if isinstance(self.json, dict) and "pod" in self.json:
            return self.json["pod"]
        return self.headers.get("x-pod")

    @property
    def weft_error(self):
        return self.headers.get("weft-error")

    def __iter__(self):  # status, headers, json = reply
        return iter((self.status, self.headers, self.json))

    def short(self):
        if self.status == 0:
            return "no answer (%s)" % self.error
        if self.weft_error:
            return "%d weft-error=%s" % (self.status, self.weft_error)
        return "%d from %s" % (self.status, self.pod)

    def __repr__(self):
        return "<Reply %s %r body=%r>" % (self.short(), self.headers, self.body[:200])


def summary(replies):
    """'200 from web-0' x 12, '404 weft-error=no-route' x 3, ... for assertion messages."""
    c = collections.Counter(r.short() for r in replies)
    return ", ".join("%r x %d" % kv for kv in c.most_common())


def _parse_head(block):
    """Headers of one `curl -i` output block (the last non-1xx head)."""
    headers = {}
    for line in block.split(b"\r\n")[1:]:
        if b":" in line:
            k, _, v = line.partition(b":")
            k = k.decode("latin-1").strip().lower()
            v = v.decode("latin-1").strip()
            headers[k] = headers[k] + ", " + v if k in headers else v
    return headers


_MARK = re.compile(rb"\n--weft-end (\d{3}) (\d+) (\d+) ([^\n]*?)--weft\n")


def _parse_curl(stdout):
    parts = _MARK.split(stdout)
    replies = []
    for i in range(0, len(parts) - 1, 5):
        chunk, code, conns, exitcode, errmsg = parts[i:i + 5]
        status, headers, body = int(code), {}, b""
        rest = chunk
        for _ in range(10):  # skip 1xx heads
            head, sep, tail_ = rest.partition(b"\r\n\r\n")
            if not sep:
                break
            m = re.match(rb"HTTP/[\d.]+ (\d{3})", head)
            if m and m.group(1).startswith(b"1") and tail_.startswith(b"HTTP/"):
                rest = tail_
                continue
            headers, body = _parse_head(head), tail_
            break
        err = None if exitcode == b"0" else "curl exit %s: %s" % (exitcode.decode(), errmsg.decode(errors="replace"))
        replies.append(Reply(status, headers, body, error=err, new_connections=int(conns)))
    return replies


# --------------------------------------------------------- keep-alive client --

class Conn:
    """One client connection from the client pod, kept alive across requests (HTTP/1.1,
    or h2c with prior knowledge). It never reconnects behind the caller's back: after the
    server closed it, the next request opens a new one and `connects` counts it."""

    def __init__(self, ns, host, port, http2=False, timeout=10.0):
        self.ns, self.host, self.port, self.http2, self.timeout = ns, host, port, http2, timeout
        self.sock = None
        self.h2 = None
        self.connects = 0

    def _open(self):
        self.sock = ns_connect(self.ns, self.host, self.port, timeout=self.timeout)
        self.connects += 1
        if self.http2:
            import h2.config
            import h2.connection
            self.h2 = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True,
                                                                           header_encoding="utf-8"))
            self.h2.initiate_connection()
            self.sock.sendall(self.h2.data_to_send())

    def close(self):
        if self.sock is not None:
            try:
                self.sock.close()
            except OSError:
                pass
        self.sock = self.h2 = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def request(self, path="/", method="GET", headers=(), data=None):
        """One request; a Reply, with status 0 and `error` when none came (never raises
        for the network). `data`: a body (bytes or str; "" sends Content-Length 0)."""
        opened = 0
        if isinstance(data, str):
            data = data.encode()
        try:
            if self.sock is None:
                self._open()
                opened = 1
            r = (self._h2 if self.http2 else self._h1)(path, method or "GET", headers, data)
        except Exception as e:  # noqa: BLE001 - socket, EOF, timeout, h2 protocol errors: reported
            self.close()
            return Reply(0, error="%s: %s" % (type(e).__name__, e), new_connections=opened)
        r.new_connections = opened
        return r

    def _h1(self, path, method, headers, data):
        lines = ["%s %s HTTP/1.1" % (method, path), "Host: %s:%d" % (self.host, self.port)]
        lines += ["%s: %s" % kv for kv in headers]
        if data is not None:
            lines.append("Content-Length: %d" % len(data))
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (data or b""))
        resp = RawReader(self.sock, self.timeout).read_response(method)
        hdrs = {}
        for k, v in resp.headers:
            k = k.lower()
            hdrs[k] = hdrs[k] + ", " + v if k in hdrs else v
        if "close" in hdrs.get("connection", "").lower():
            self.close()
        return Reply(resp.status, hdrs, resp.body)

    def _h2(self, path, method, headers, data):
        import h2.events
        c = self.h2
        sid = c.get_next_available_stream_id()
        fields = [(":method", method), (":scheme", "http"), (":authority", "%s:%d" % (self.host, self.port)),
                  (":path", path)] + [(k.lower(), v) for k, v in headers]
        if data is not None:
            fields.append(("content-length", str(len(data))))
        c.send_headers(sid, fields, end_stream=not data)
        if data:
            c.send_data(sid, data, end_stream=True)
        self.sock.sendall(c.data_to_send())
        deadline = Deadline(self.timeout)
        status, hdrs, body = 0, {}, []
        for _ in range(100000):
            self.sock.settimeout(max(0.01, deadline.remaining()))
            if deadline.expired:
                raise TimeoutError("no complete h2 response in %.0fs" % self.timeout)
            data = self.sock.recv(65536)
            if not data:
                raise EOFError("connection closed before the response ended")
            done = False
            for ev in c.receive_data(data):
                if isinstance(ev, h2.events.ResponseReceived) and ev.stream_id == sid:
                    for k, v in ev.headers:
                        if k == ":status":
                            status = int(v)
                        else:
                            hdrs[k] = hdrs[k] + ", " + v if k in hdrs else v
                elif isinstance(ev, h2.events.DataReceived):
                    c.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
                    if ev.stream_id == sid:
                        body.append(ev.data)
                elif isinstance(ev, h2.events.StreamEnded) and ev.stream_id == sid:
                    done = True
                elif isinstance(ev, h2.events.StreamReset) and ev.stream_id == sid:
                    raise EOFError("stream reset (error code %s)" % ev.error_code)
                elif isinstance(ev, h2.events.ConnectionTerminated):
                    pending = c.data_to_send()
                    if pending:
                        self.sock.sendall(pending)
                    if not done:
                        raise EOFError("GOAWAY (error code %s) before the response ended" % ev.error_code)
                    self.close()
                    return Reply(status, hdrs, b"".join(body))
            pending = c.data_to_send()
            if pending:
                self.sock.sendall(pending)
            if done:
                return Reply(status, hdrs, b"".join(body))
        raise RuntimeError("h2 read loop bound")


# ----------------------------------------------------------------- the fixture --

def sh(*argv, check=True, timeout=30):
    return run([str(a) for a in argv], check=check, timeout=timeout)


class PodProxy(Proxy):
    """control_fixtures.Proxy for a pod in any namespace (Proxy.start says `demo`)."""

    def __init__(self, env, control_port, namespace="demo", **kw):
        super().__init__(env, control_port, **kw)
        self.namespace = namespace

    def start(self, extra=()):
        popen = self.env.popen

        def with_namespace(argv, log, prefix=()):
            argv = list(argv)
            i = argv.index("--pod-namespace")
            argv[i + 1] = self.namespace
            return popen(argv, log, prefix=prefix)
        self.env.popen = with_namespace
        try:
            return super().start(extra=extra)
        finally:
            del self.env.popen  # the instance attribute: ControlEnv.popen again


class Mesh:
    # The topology; a subclass may replace any of these (see the module docstring).
    ns_prefix = NS_PREFIX
    node_ip = NODE_IP     # the bridge in the node namespace; pods are in its /24
    pods = PODS           # one network namespace each
    backends = BACKENDS   # run backend_argv(p), listening on backend_ports(p)
    clients = (CLIENT,)   # a sidecar each (weft-proxy init + run as UID 2102)
    control_extra = ()    # more weft-control flags (e.g. a short certificate lifetime)

    def pod(self, name):
        for p in self.pods:
            if p.name == name:
                return p
        raise KeyError("no pod %r in this mesh" % name)

    def backend_argv(self, p):
        return [sys.executable, "-c", BACKEND_SERVER, p.name, "%d,%d" % (APP_PORT, H2C_PORT), str(ECHO_PORT)]

    def backend_ports(self, p):
        return (APP_PORT, H2C_PORT, ECHO_PORT)

    def render(self, routes=(), services=None, outbound_policy="ALLOW_ANY", extra=""):
        """The whole config folder's content (one file)."""
        return render_config(services=services, routes=routes, outbound_policy=outbound_policy, extra=extra)

    def __init__(self, ca_template):
        self.tmp = tempfile.mkdtemp(prefix="weft-e2e-mesh-")
        os.chmod(self.tmp, 0o755)
        self.ca_template = ca_template
        self.env = ControlEnv(self.tmp)
        self.node_ns = "%snode-%d" % (self.ns_prefix, PID)
        self.created_ns = []
        self.control = None
        self.proxy = None
        self.proxies = {}  # client pod name -> PodProxy
        self.servers = {}
        self.config_text = None
        self.applied = "outboundPolicy: ALLOW_ANY; Services: default; no routes"
        self.failed = False
        self.proxy_bin = PROXY_BIN

    # -- setup ------------------------------------------------------------------
    def setup(self):
        if os.geteuid() != 0:
            raise RuntimeError("the mesh tests need root (network namespaces, veth, iptables)")
        for tool in ("ip", "iptables", "setpriv", "curl", "ss"):
            if shutil.which(tool) is None:
                raise RuntimeError("required tool %r not found (Tests/e2e/REQUIREMENTS.md)" % tool)
        try:
            import h2  # noqa: F401 - the backends and Conn(http2=True) need it
        except ImportError:
            raise RuntimeError("python package h2 missing (Tests/e2e/REQUIREMENTS.md)") from None
        self._check_proxy_bin()
        cleanup_stale(self.ns_prefix, [p.name for p in self.pods])
        self.env.setup(self.ca_template)
        for name in os.listdir(self.env.config):  # the demo config is replaced whole
            path = os.path.join(self.env.config, name)
            shutil.rmtree(path) if os.path.isdir(path) else os.remove(path)
        self.config_text = self.render()
        write_atomic(self.env.path("mesh.yaml"), self.config_text)
        os.chmod(self.env.path("mesh.yaml"), 0o644)
        self._network()
        self._backends()
        self.control = self.env.start_control(push_port=PUSH_PORT, http_port=HTTP_PORT, prefix=self.node_prefix,
                                              host=self.node_ip, extra=("--http-host", "127.0.0.1") + tuple(self.control_extra))
        for p in self.clients:
            self._client(p)

    def _check_proxy_bin(self):
        for b in (PROXY_BIN, CONTROL_BIN, WEFTCTL):
            if not os.access(b, os.X_OK):
                raise RuntimeError("binary missing: %s (scripts/build-release.sh, or WEFT_PROXY_BIN / "
                                   "WEFT_CONTROL_BIN / WEFTCTL_BIN)" % b)
        probe = subprocess.run(list(SETPRIV) + ["test", "-x", PROXY_BIN], timeout=10)
        if probe.returncode != 0:  # not reachable for UID 2102 (a 0700 home): run a copy
            bindir = os.path.join(self.tmp, "bin")
            os.makedirs(bindir, mode=0o755, exist_ok=True)
            self.proxy_bin = os.path.join(bindir, "weft-proxy")
            shutil.copy2(PROXY_BIN, self.proxy_bin)
            os.chmod(self.proxy_bin, 0o755)

    @property
    def node_prefix(self):
        return ("ip", "netns", "exec", self.node_ns)

    def _add_ns(self, name):
        sh("ip", "netns", "add", name)
        self.created_ns.append(name)
        sh("ip", "-n", name, "link", "set", "lo", "up")

    def _network(self):
        self._add_ns(self.node_ns)
        n = self.node_ns
        sh("ip", "-n", n, "link", "add", "br0", "type", "bridge")
        sh("ip", "-n", n, "addr", "add", self.node_ip + "/24", "dev", "br0")
        sh("ip", "-n", n, "link", "set", "br0", "up")
        # Forwarding on, and no route for the ClusterIPs: a packet to one gets "network
        # unreachable" at once instead of vanishing, so a wrong connect fails fast.
        sh(*self.node_prefix, "sysctl", "-qw", "net.ipv4.ip_forward=1", "net.ipv4.icmp_ratelimit=0",
           "net.ipv4.icmp_msgs_per_sec=100000", "net.ipv4.icmp_msgs_burst=10000")
        for i, p in enumerate(self.pods):
            self._add_ns(p.ns)
            port = "v%d" % i
            sh("ip", "-n", n, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", p.ns)
            sh("ip", "-n", n, "link", "set", port, "master", "br0")
            sh("ip", "-n", n, "link", "set", port, "up")
            sh("ip", "-n", p.ns, "addr", "add", p.ip + "/24", "dev", "eth0")
            sh("ip", "-n", p.ns, "link", "set", "eth0", "up")
            sh("ip", "-n", p.ns, "route", "add", "default", "via", self.node_ip)

    def prefix(self, pod):
        return ("ip", "netns", "exec", self.pod(pod).ns)

    def _backends(self):
        for p in self.backends:
            self._spawn_backend(p)
        for p in self.backends:
            self._wait_backend(p)

    def _spawn_backend(self, p, extra=()):
        env = dict(os.environ, PYTHONUNBUFFERED="1", PYTHONDONTWRITEBYTECODE="1")
        log = os.path.join(self.tmp, "backend-%s.log" % p.name)
        f = open(log, "ab")
        try:
            proc = subprocess.Popen(
                list(self.prefix(p.name)) + self.backend_argv(p) + list(extra),
                stdin=subprocess.DEVNULL, stdout=f, stderr=subprocess.STDOUT, start_new_session=True,
                close_fds=True, env=env)
        finally:
            f.close()
        self.env.procs.append(proc)
        self.servers[p.name] = (proc, log)

    def _listening_ports(self, p):
        ss = sh(*self.prefix(p.name), "ss", "-Hltn").stdout.decode()
        return {port for port in self.backend_ports(p) if ":%d " % port in ss}

    def _wait_backend(self, p):
        proc, log = self.servers[p.name]

        def listening():
            assert proc.poll() is None, "backend %s exited %s:\n%s" % (p.name, proc.returncode, tail(log))
            missing = set(self.backend_ports(p)) - self._listening_ports(p)
            assert not missing, "backend %s not listening on %s yet" % (p.name, sorted(missing))
        eventually(listening, timeout=20, what="backend %s listening" % p.name)

    def stop_backend(self, name):
        """Stops the server of backend pod `name` (SIGTERM, then SIGKILL) and waits until
        none of its ports listens: a connection to it is then refused."""
        p = self.pod(name)
        proc, log = self.servers[name]
        stop_process(proc, grace=2.0)
        assert proc.poll() is not None, "backend %s did not stop" % name

        def closed():
            still = self._listening_ports(p)
            assert not still, "backend %s still listening on %s" % (name, sorted(still))
        eventually(closed, timeout=5, what="backend %s stopped" % name)

    def start_backend(self, name, delay_ms=0):
        """Starts the server of backend pod `name` again (after stop_backend) and waits until
        it listens. `delay_ms`: every HTTP answer but /counts waits that long first (the
        default BACKEND_SERVER's `--delay-ms`; a subclass's backend_argv must take it)."""
        p = self.pod(name)
        proc, _ = self.servers[name]
        assert proc.poll() is not None, "backend %s is running; stop_backend first" % name
        self._spawn_backend(p, ("--delay-ms", str(int(delay_ms))) if delay_ms else ())
        self._wait_backend(p)

    def restart_backend(self, name, delay_ms=0):
        """stop_backend, then start_backend (with `delay_ms`)."""
        self.stop_backend(name)
        self.start_backend(name, delay_ms=delay_ms)

    def _client(self, client):
        pfx = self.prefix(client.name)
        log = os.path.join(self.tmp, "proxy-%s.log" % client.name)
        init = run(list(pfx) + [self.proxy_bin, "init"], timeout=60, check=False)
        rules = run(list(pfx) + ["iptables-save"], check=False).stdout
        with open(log, "ab") as f:
            f.write(b"### weft-proxy init (exit %d)\n" % init.returncode + init.stdout + init.stderr)
            f.write(b"### iptables-save\n" + rules + b"### weft-proxy run\n")
        if init.returncode != 0:
            raise RuntimeError("weft-proxy init failed in the client pod %s:\n%s" % (client.name, out(init)))
        cache = os.path.join(self.tmp, "cache-%s" % client.name)
        os.makedirs(cache, mode=0o700)
        os.chown(cache, PROXY_UID, PROXY_GID)
        labels = os.path.join(self.tmp, "%s-labels" % client.name)
        with open(labels, "w") as f:
            f.write("".join('%s="%s"\n' % kv for kv in sorted(client.labels.items())))
        os.chmod(labels, 0o644)
        px = PodProxy(self.env, PUSH_PORT, namespace=client.namespace, pod=client.name, sa=client.sa,
                      cache_dir=cache, prefix=pfx + SETPRIV, name=client.name,
                      ports=(ADMIN_PORT, OUTBOUND_PORT, INBOUND_PORT), control_host=self.node_ip, pod_ip=client.ip)
        px.binary = self.proxy_bin
        # Spans go to this mesh's control plane (its intake has a free port, not :4318).
        intake = ("--trace-intake", "%s:%d" % (self.node_ip, self.control.otlp_port))
        px.start(extra=PROXY_FLAGS + ("--pod-labels-file", labels) + intake)  # env.popen: killed at teardown
        self.proxies[client.name] = px
        if self.proxy is None:
            self.proxy = px
        px.wait_ready(timeout=30)
        self.control.wait_acked(pod=client.name, timeout=20)

    # -- teardown ---------------------------------------------------------------
    def teardown(self):
        try:
            self.env.teardown()
        finally:
            for ns in reversed(self.created_ns):
                run(["ip", "netns", "del", ns], check=False)
            self.created_ns = []
            if self.failed or os.environ.get("WEFT_E2E_KEEP"):
                REPORT.append("mesh e2e logs and config kept in %s" % self.tmp)
            else:
                shutil.rmtree(self.tmp, ignore_errors=True)

    # -- logs -------------------------------------------------------------------
    def log_paths(self):
        paths = [os.path.join(self.tmp, "proxy-%s.log" % c.name) for c in self.clients]
        if self.control:
            paths.append(self.control.log)
        return paths + [log for _, log in self.servers.values()]

    def check_alive(self):
        for name, px in self.proxies.items():
            assert px.proc.poll() is None, "the weft-proxy of client %s exited %s:\n%s" % (
                name, px.proc.returncode, tail(px.log))
        assert self.control.proc.poll() is None, "weft-control exited %s:\n%s" % (
            self.control.proc.returncode, tail(self.control.log))

    # -- config -----------------------------------------------------------------
    def apply(self, routes=(), services=None, outbound_policy="ALLOW_ANY", extra="", timeout=15.0):
        """Rewrites the config folder (one file, atomically) and waits until weft-control
        accepted it and the client sidecar acked that generation. Returns the generation.
        `routes`: HTTPRoute YAML texts (see http_route); `services`: replaces SERVICES."""
        text = self.render(services=services, routes=routes, outbound_policy=outbound_policy, extra=extra)
        if isinstance(routes, str):
            routes = [routes]
        self.applied = "outboundPolicy: %s; Services: %s\n%s%s" % (
            outbound_policy, "default (mesh_fixtures.SERVICES)" if services is None else "changed by the test",
            "---\n".join(textwrap.dedent(r).strip("\n") + "\n" for r in routes if r and r.strip()) or "no routes\n",
            extra)
        if text == self.config_text:
            for c in self.clients[1:]:
                self.control.wait_acked(pod=c.name, timeout=timeout)
            return self.control.wait_acked(pod=self.clients[0].name, timeout=timeout)["ackedGeneration"]
        before = self.control.status()["config"]
        write_atomic(self.env.path("mesh.yaml"), text)
        os.chmod(self.env.path("mesh.yaml"), 0o644)
        self.config_text = text

        def reloaded():
            cfg = self.control.status()["config"]
            if cfg["rejectedCount"] > before["rejectedCount"]:
                raise RuntimeError("weft-control rejected the config: %s\n--- config ---\n%s" % (
                    json.dumps(cfg.get("lastRejection"), indent=1), text))
            assert cfg["generation"] > before["generation"], \
                "generation still %d (state %s)" % (cfg["generation"], cfg["state"])
            return cfg
        try:
            cfg = eventually(reloaded, timeout=timeout, what="config reloaded")
        except RuntimeError as e:
            raise AssertionError(str(e)) from None
        for c in self.clients:
            self.control.wait_acked(pod=c.name, generation=cfg["generation"], timeout=timeout)
        return cfg["generation"]

    def warnings(self):
        return self.control.status()["config"]["warnings"]

    # -- addresses ----------------------------------------------------------------
    def url(self, service_name, path="/", port=80):
        return "http://%s:%d%s" % (SERVICE[service_name].cluster_ip, port, path)

    def pod_url(self, pod, path="/", port=APP_PORT):
        return "http://%s:%d%s" % (POD[pod].ip, port, path)

    # -- clients ------------------------------------------------------------------
    def curl(self, *requests, http2=False, max_time=10, timeout=None):
        """Sends `requests` with curl in the client pod, in order; one Reply each. Each
        request is a URL or a dict {url, method, headers [(k, v)], data}. HTTP/1.1: ONE curl
        run, so its connection is kept alive between requests. HTTP/2 (prior knowledge):
        one run as well where curl can reuse an h2c connection (curl >= 8.0), else one run
        per request (curl 7.88 breaks on reuse: "Error in the HTTP2 framing layer",
        curl#10634). curl gives up on a request after `max_time` s and goes on."""
        if http2 and len(requests) > 1 and not curl_reuses_h2c():
            out_ = []
            for r in requests:
                out_ += self.curl(r, http2=True, max_time=max_time, timeout=timeout)
            return out_
        argv = ["curl", "--noproxy", "*"]
        for i, r in enumerate(requests):
            if isinstance(r, str):
                r = {"url": r}
            if i:
                argv.append("--next")
            argv += ["-s", "-S", "-i", "--connect-timeout", "5", "--max-time", str(max_time),
                     "-w", "\\n--weft-end %{http_code} %{num_connects} %{exitcode} %{errormsg}--weft\\n"]
            argv.append("--http2-prior-knowledge" if http2 else "--http1.1")
            if r.get("method"):
                argv += ["-X", r["method"]]
            for k, v in r.get("headers") or ():
                argv += ["-H", "%s: %s" % (k, v)]
            if r.get("data") is not None:
                argv += ["--data-binary", r["data"]]
            argv.append(r["url"])
        limit = timeout or (len(requests) * (max_time + 1) + 15)
        try:
            p = subprocess.run(list(self.prefix("client")) + argv, capture_output=True, timeout=limit)
        except subprocess.TimeoutExpired:
            raise AssertionError("curl with %d requests did not finish in %.0fs" % (len(requests), limit)) from None
        replies = _parse_curl(p.stdout)
        assert len(replies) == len(requests), "curl gave %d answers for %d requests (exit %d): %s\n%r" % (
            len(replies), len(requests), p.returncode, p.stderr.decode(errors="replace")[-2000:], p.stdout[-2000:])
        return replies

    def send(self, *requests, http2=False, timeout=10.0, budget=None):
        """Sends `requests` (as for curl) from Python over one kept-alive connection per
        destination (Conn), opening a new one only when the server closed it. Bounded by
        `budget` seconds in all (default: 2 s per request + 10): requests not sent in
        time get Reply(0, error="not sent: time budget spent")."""
        conns = {}
        deadline = Deadline(budget or (2.0 * len(requests) + 10))
        replies = []
        try:
            for r in requests:
                if isinstance(r, str):
                    r = {"url": r}
                if deadline.expired:
                    replies.append(Reply(0, error="not sent: time budget spent"))
                    continue
                m = re.fullmatch(r"http://([0-9.]+)(?::(\d+))?(/.*)?", r["url"])
                assert m, "send() takes http://<ip>[:port]/path URLs, not %r" % r["url"]
                host, port, path = m.group(1), int(m.group(2) or 80), m.group(3) or "/"
                conn = conns.get((host, port))
                if conn is None:
                    conn = conns[(host, port)] = Conn(POD["client"].ns, host, port, http2=http2,
                                                      timeout=min(timeout, deadline.remaining(0.5)))
                replies.append(conn.request(path, r.get("method") or "GET", r.get("headers") or (), r.get("data")))
        finally:
            for conn in conns.values():
                conn.close()
        return replies

    def requests(self, *requests, http2=False, max_time=10):
        """The bulk client: HTTP/1.1 with curl (one run); HTTP/2 with curl where it can
        keep an h2c connection (see curl()), else from Python over one h2 connection."""
        if http2 and len(requests) > 1 and not curl_reuses_h2c():
            return self.send(*requests, http2=True, timeout=max_time)
        return self.curl(*requests, http2=http2, max_time=max_time)

    def get(self, url, http2=False, method=None, headers=(), data=None, max_time=10):
        """One request with curl; the Reply."""
        return self.curl({"url": url, "method": method, "headers": headers, "data": data}, http2=http2,
                         max_time=max_time)[0]

    def get_many(self, url, count, http2=False, method=None, headers=(), data=None, max_time=10):
        """`count` requests to `url` over kept-alive connections (see requests())."""
        req = {"url": url, "method": method, "headers": headers, "data": data}
        return self.requests(*([req] * count), http2=http2, max_time=max_time)

    def connect(self, host, port=80, http2=False, timeout=10.0):
        """A Conn from the client pod (captured by its sidecar): keep-alive, no silent reconnects."""
        if host in SERVICE:
            host = SERVICE[host].cluster_ip
        elif host in POD:
            host = POD[host].ip
        return Conn(POD["client"].ns, host, port, http2=http2, timeout=timeout)


_CURL_H2C_REUSE = []


def curl_reuses_h2c():
    """Whether this curl keeps an h2c prior-knowledge connection for the next URL
    (curl 7.88.x fails the second request on it, curl#10634; fixed in 8.0)."""
    if not _CURL_H2C_REUSE:
        if os.environ.get("WEFT_E2E_CURL_H2C_REUSE") in ("0", "1"):
            _CURL_H2C_REUSE.append(os.environ["WEFT_E2E_CURL_H2C_REUSE"] == "1")
        else:
            m = re.match(r"curl (\d+)\.(\d+)", run(["curl", "--version"], check=False).stdout.decode())
            _CURL_H2C_REUSE.append(bool(m) and (int(m.group(1)), int(m.group(2))) >= (8, 0))
    return _CURL_H2C_REUSE[0]


def cleanup_stale(prefix=NS_PREFIX, pods=None):
    """Deletes namespaces `<prefix><pod>-<pid>` (default `wm-`) left by a run whose process is gone."""
    listing = run(["ip", "netns", "list"], check=False).stdout.decode()
    known = set(pods if pods is not None else (p.name for p in PODS)) | {"node"}
    for line in listing.splitlines():
        name = line.split()[0] if line.split() else ""
        m = re.fullmatch(re.escape(prefix) + r"([a-z0-9-]+)-(\d+)", name)
        if not m or m.group(1) not in known:
            continue
        pid = int(m.group(2))
        alive = pid != PID
        if alive:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                alive = False
            except PermissionError:
                pass
        if alive:
            continue
        for p in run(["ip", "netns", "pids", name], check=False).stdout.decode().split():
            try:
                os.kill(int(p), signal.SIGKILL)  # our own leftovers: servers, proxies
            except (ValueError, ProcessLookupError):
                pass
        run(["ip", "netns", "del", name], check=False)


# ---------------------------------------------------------------- fixtures ------

@pytest.fixture(scope="module")
def mesh(ca_template):
    """The topology, once per module. Tests change it through `mesh.apply(...)`."""
    yield from run_mesh(Mesh(ca_template))


def run_mesh(m):
    """The body of a module fixture: sets `m` up, yields it, and tears it down, also after
    a failed setup, Ctrl-C or SIGTERM."""
    previous = signal.getsignal(signal.SIGTERM)

    def on_sigterm(signum, frame):
        raise KeyboardInterrupt("SIGTERM")

    signal.signal(signal.SIGTERM, on_sigterm)
    try:
        try:
            m.setup()
        except Exception as e:  # noqa: BLE001 - reported with the logs
            m.failed = True
            logs = "\n".join("===== %s =====\n%s" % (p, tail(p, 5000)) for p in m.log_paths() if os.path.exists(p))
            pytest.fail("mesh setup failed: %s\n%s" % (e, logs), pytrace=False)
        yield m
    finally:
        m.teardown()
        signal.signal(signal.SIGTERM, previous)


@pytest.fixture
def mesh_test(mesh, request):
    """Per test: checks that the sidecar and weft-control are alive before and after,
    and on failure prints what the logs gained during the test (and keeps the temp dir)."""
    yield from watch_mesh_test(mesh, request)


def watch_mesh_test(mesh, request):
    """The body of a per-test fixture on a Mesh (see mesh_test)."""
    mesh.check_alive()
    offsets = {}
    for p in mesh.log_paths():
        try:
            offsets[p] = os.path.getsize(p)
        except OSError:
            pass
    yield mesh
    if getattr(request.node, "_control_failed", False):  # set by conftest's report hook
        mesh.failed = True
        for p in mesh.log_paths():
            try:
                with open(p, "rb") as f:
                    f.seek(offsets.get(p, 0))
                    data = f.read().decode(errors="replace")
            except OSError:
                continue
            if data:
                print("===== %s (from byte %d) =====\n%s" % (os.path.basename(p), offsets.get(p, 0), data[-20000:]))
        print("--- config applied last (whole file: %s) ---\n%s" % (mesh.env.path("mesh.yaml"), mesh.applied))
    mesh.check_alive()
