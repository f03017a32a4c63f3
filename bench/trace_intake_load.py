#!/usr/bin/env python3
"""Load for bench/trace-intake.sh: OTLP/HTTP protobuf exports of realistic spans.

Each export holds TRACES traces of SPANS spans (a parent-child chain, 8 attributes each,
a resource with service.name and k8s.pod.name), with fresh random ids; exports are made
before the clock starts and cycled. Modes:
  --seconds S --connections C   send for S seconds on C keep-alive connections (threads)
  --total-traces N              send exactly N traces, then stop
Prints one JSON line: exports, spans, seconds, errors.
"""
import argparse
import http.client
import json
import os
import random
import threading
import time

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span


def kv(key, value):
    return KeyValue(key=key, value=AnyValue(int_value=value) if isinstance(value, int) else AnyValue(string_value=value))


def export(traces, spans):
    request = ExportTraceServiceRequest()
    rs = request.resource_spans.add()
    rs.resource.attributes.extend([kv("service.name", "web"), kv("k8s.pod.name", "web-0"),
                                   kv("k8s.namespace.name", "demo")])
    scope = rs.scope_spans.add()
    scope.scope.name = "weft-proxy"
    now = time.time_ns()
    for _ in range(traces):
        trace_id = os.urandom(16)
        parent = b""
        for i in range(spans):
            span_id = os.urandom(8)
            s = scope.spans.add()
            s.trace_id, s.span_id, s.parent_span_id = trace_id, span_id, parent
            s.name = "GET /api/items/{id}"
            s.kind = Span.SPAN_KIND_CLIENT if i % 2 == 0 else Span.SPAN_KIND_SERVER
            s.start_time_unix_nano = now + i * 1000
            s.end_time_unix_nano = now + 5_000_000 - i * 1000
            s.attributes.extend([kv("http.request.method", "GET"), kv("url.path", "/api/items/42"),
                                 kv("http.response.status_code", 200), kv("server.address", "web.demo"),
                                 kv("weft.duration.proxy", 180), kv("weft.duration.connect", 0),
                                 kv("weft.duration.tls", 0), kv("weft.duration.upstream", 4800)])
            parent = span_id
    return request.SerializeToString()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--seconds", type=float, default=0)
    p.add_argument("--connections", type=int, default=4)
    p.add_argument("--total-traces", type=int, default=0)
    p.add_argument("--traces", type=int, default=10, help="traces per export")
    p.add_argument("--spans", type=int, default=10, help="spans per trace")
    p.add_argument("--payloads", type=int, default=200)
    a = p.parse_args()
    if a.total_traces:
        payloads = [export(a.traces, a.spans) for _ in range(a.total_traces // a.traces)]
    else:
        payloads = [export(a.traces, a.spans) for _ in range(a.payloads)]
    counts = {"exports": 0, "errors": 0}
    lock = threading.Lock()
    deadline = [0.0]
    queue = list(payloads) if a.total_traces else None

    def worker():
        c = http.client.HTTPConnection("127.0.0.1", a.port, timeout=10)
        sent = errors = 0
        i = random.randrange(len(payloads))
        while True:
            if queue is not None:
                with lock:
                    if not queue:
                        break
                    body = queue.pop()
            else:
                if time.monotonic() >= deadline[0]:
                    break
                body = payloads[i % len(payloads)]
                i += 1
            try:
                c.request("POST", "/v1/traces", body, {"Content-Type": "application/x-protobuf"})
                r = c.getresponse()
                r.read()
                if r.status == 200:
                    sent += 1
                else:
                    errors += 1
            except (OSError, http.client.HTTPException):
                errors += 1
                c.close()
                c = http.client.HTTPConnection("127.0.0.1", a.port, timeout=10)
        with lock:
            counts["exports"] += sent
            counts["errors"] += errors

    start = time.monotonic()
    deadline[0] = start + a.seconds
    threads = [threading.Thread(target=worker) for _ in range(a.connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - start
    print(json.dumps({"exports": counts["exports"], "spans": counts["exports"] * a.traces * a.spans,
                      "seconds": round(elapsed, 3), "errors": counts["errors"]}))


if __name__ == "__main__":
    main()
