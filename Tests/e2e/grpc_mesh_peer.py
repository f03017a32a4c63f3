#!/usr/bin/env python3
"""gRPC server and client for the GRPCRoute tests (test_grpc_mesh.py), grpcio with raw-bytes
messages (generic handlers, no protoc).

    python3 grpc_mesh_peer.py serve POD PORT
        A grpcio server on PORT for every method of `weft.test.Echo` (and of any other
        service): each call is answered with the JSON body {"pod", "method", "metadata"}
        and initial metadata `x-pod: POD`, except
          Flaky   UNAVAILABLE (context.abort, before any metadata: a trailers-only response)
                  to 30% of calls, never to two calls in a row of this server (a backend
                  whose failures are transient: after one, its next call succeeds; in the
                  long run 3/7 of the calls after a success fail, i.e. 30% of all).
          Sleep   request JSON {"ms", "tag"}: sleeps up to `ms`, checking every 10 ms
                  whether the call is still active (a RST_STREAM from the sidecar or the
                  client cancels it); the outcome is kept under `tag` for Stats.
          Stats   the JSON of what this server saw: calls per method, Flaky's aborts and
                  successes, the `weft-retry-attempt` values Flaky calls carried ("0" for
                  none), and the Sleep outcomes by tag {cancelled, after_ms}.
    python3 grpc_mesh_peer.py call TARGET PLAN_JSON
        Unary calls over ONE channel (one HTTP/2 connection) to TARGET (ip:port), in order.
        PLAN_JSON: [{"method": "/svc/Method", "count": N, "timeout": s, "payload": str,
        "metadata": [[k, v], ...]}, ...]. One JSON line per call on stdout:
        {"method", "code" (grpc status name), "details", "body", "initial", "trailing",
        "elapsed" (s)}. gRPC's C core opens sockets from its own threads, so the tests run
        this under `ip netns exec` (in the client pod, whose sidecar captures it).
"""

import json
import random
import sys
import threading
import time

import grpc

FLAKY_RATE_AFTER_SUCCESS = 3.0 / 7.0  # stationary failure rate 0.3 (module docstring)


def serve(pod, port):
    from concurrent import futures

    lock = threading.Lock()
    state = {"calls": {}, "flaky": {"aborted": 0, "ok": 0, "attempts": {}}, "sleeps": {}, "last_failed": False}

    def reply(method, context):
        md = [[k, v if isinstance(v, str) else v.hex()] for k, v in context.invocation_metadata()]
        context.send_initial_metadata((("x-pod", pod),))
        return json.dumps({"pod": pod, "method": method, "metadata": md}).encode()

    def handler_for(method):
        name = method.rsplit("/", 1)[-1]

        def handle(request, context):
            with lock:
                state["calls"][method] = state["calls"].get(method, 0) + 1
            if name == "Flaky":
                attempt = dict(context.invocation_metadata()).get("weft-retry-attempt", "0")
                with lock:
                    attempts = state["flaky"]["attempts"]
                    attempts[attempt] = attempts.get(attempt, 0) + 1
                    fail = not state["last_failed"] and random.random() < FLAKY_RATE_AFTER_SUCCESS
                    state["last_failed"] = fail
                    state["flaky"]["aborted" if fail else "ok"] += 1
                if fail:
                    context.abort(grpc.StatusCode.UNAVAILABLE, "flaky %s says try again" % pod)
                return reply(method, context)
            if name == "Sleep":
                args = json.loads(request.decode() or "{}")
                started = time.monotonic()
                limit = min(float(args.get("ms", 0)), 30000.0) / 1000.0
                cancelled = False
                while time.monotonic() - started < limit:
                    if not context.is_active():
                        cancelled = True
                        break
                    time.sleep(0.01)
                with lock:
                    state["sleeps"][args.get("tag", "")] = {
                        "cancelled": cancelled, "after_ms": round((time.monotonic() - started) * 1000)}
                if cancelled:
                    return b""
                return reply(method, context)
            if name == "Stats":
                with lock:
                    return json.dumps(dict(state, pod=pod)).encode()
            return reply(method, context)
        return grpc.unary_unary_rpc_method_handler(handle)

    class Any(grpc.GenericRpcHandler):
        def service(self, details):
            return handler_for(details.method)

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=16))
    server.add_generic_rpc_handlers((Any(),))
    if server.add_insecure_port("0.0.0.0:%d" % port) != port:
        raise SystemExit("grpc: could not bind port %d" % port)
    server.start()
    print("grpc mesh peer %s listening on %d" % (pod, port), flush=True)
    server.wait_for_termination()


def md_list(md):
    return [[k, v if isinstance(v, str) else v.hex()] for k, v in (md or ())]


def call(target, plan):
    channel = grpc.insecure_channel(target, options=[("grpc.enable_http_proxy", 0), ("grpc.enable_retries", 0)])
    try:
        for step in plan:
            stub = channel.unary_unary(step["method"])
            payload = step.get("payload", "").encode()
            metadata = tuple(tuple(kv) for kv in step.get("metadata", ()))
            for _ in range(int(step.get("count", 1))):
                started = time.monotonic()
                try:
                    body, c = stub.with_call(payload, timeout=float(step.get("timeout", 5.0)), metadata=metadata)
                    out = {"code": "OK", "details": "", "body": body.decode(errors="replace"),
                           "initial": md_list(c.initial_metadata()), "trailing": md_list(c.trailing_metadata())}
                except grpc.RpcError as e:
                    out = {"code": e.code().name, "details": e.details() or "", "body": "",
                           "initial": md_list(e.initial_metadata()), "trailing": md_list(e.trailing_metadata())}
                out.update(method=step["method"], elapsed=round(time.monotonic() - started, 4))
                print(json.dumps(out), flush=True)
    finally:
        channel.close()


def main(argv):
    if len(argv) == 3 and argv[0] == "serve":
        serve(argv[1], int(argv[2]))
    elif len(argv) == 3 and argv[0] == "call":
        call(argv[1], json.loads(argv[2]))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
