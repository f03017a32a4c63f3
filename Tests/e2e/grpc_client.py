#!/usr/bin/env python3
"""gRPC client for the e2e suite, run inside pod A's network namespace.

    python3 grpc_client.py TARGET SCENARIO

Uses grpcio's generic API with raw-bytes messages (no protoc / stubs).  Prints
one JSON object describing what happened; the test asserts on it.  gRPC's C
core opens its sockets from its own threads, which is why this runs as a
separate process under `ip netns exec` rather than inside pytest.
"""

import hashlib
import json
import os
import sys

import grpc

SERVICE = "/weft.test.Echo/"
DEADLINE = 15.0


def md_to_list(md):
    out = []
    for k, v in md or ():
        out.append([k, v.hex() if isinstance(v, bytes) else v])
    return out


def main():
    target, scenario = sys.argv[1], sys.argv[2]
    channel = grpc.insecure_channel(target, options=[
        ("grpc.enable_http_proxy", 0),
        ("grpc.max_receive_message_length", 16 << 20),
        ("grpc.max_send_message_length", 16 << 20),
    ])
    grpc.channel_ready_future(channel).result(timeout=DEADLINE)
    result = {"scenario": scenario}

    def unary(name):
        return channel.unary_unary(SERVICE + name)

    if scenario == "unary":
        resp, call = unary("Unary").with_call(b"hello weft", timeout=DEADLINE,
                                               metadata=(("x-weft-echo", "ping"),))
        result.update(response=resp.decode(), code=call.code().name,
                      initial=md_to_list(call.initial_metadata()),
                      trailing=md_to_list(call.trailing_metadata()))
    elif scenario == "unary_large":
        payload = os.urandom(3 << 20)
        resp, call = unary("Unary").with_call(payload, timeout=DEADLINE)
        result.update(equal=(resp == payload), size=len(resp), code=call.code().name,
                      sha=hashlib.sha256(resp).hexdigest()[:16])
    elif scenario == "server_stream":
        call = channel.unary_stream(SERVICE + "ServerStream")(b"100", timeout=DEADLINE)
        msgs = [m.decode() for m in call]
        result.update(messages=msgs, code=call.code().name,
                      trailing=md_to_list(call.trailing_metadata()))
    elif scenario == "client_stream":
        msgs = (b"x" * (i + 1) for i in range(50))
        resp, call = channel.stream_unary(SERVICE + "ClientStream").with_call(msgs, timeout=DEADLINE)
        result.update(response=resp.decode(), code=call.code().name)
    elif scenario == "bidi":
        # Lock-step: send one, read one, so both directions are open at once.
        import queue
        q = queue.Queue()

        def requests():
            for i in range(20):
                yield b"m%d" % i
                q.get(timeout=DEADLINE)  # wait for the echo before sending more

        call = channel.stream_stream(SERVICE + "Bidi")(requests(), timeout=DEADLINE)
        got = []
        for m in call:
            got.append(m.decode())
            q.put(None)
        result.update(messages=got, code=call.code().name)
    elif scenario == "cancel_client_stream":
        # One message, then the client cancels before the server (which answers only at
        # the end of the client's stream) has responded: a RST_STREAM(CANCEL) in flight.
        import threading
        stop = threading.Event()

        def requests():
            yield b"first"
            stop.wait(DEADLINE)

        future = channel.stream_unary(SERVICE + "ClientStream").future(requests(), timeout=DEADLINE)
        import time
        time.sleep(1.0)
        result.update(cancelled=future.cancel())
        stop.set()
        try:
            future.result(timeout=DEADLINE)
            result.update(code="OK")
        except grpc.FutureCancelledError:
            result.update(code="CANCELLED")
        except grpc.RpcError as e:
            result.update(code=e.code().name)
    elif scenario == "fail":
        try:
            unary("Fail")(b"please", timeout=DEADLINE)
            result.update(code="OK")
        except grpc.RpcError as e:
            result.update(code=e.code().name, details=e.details(),
                          trailing=md_to_list(e.trailing_metadata()))
    elif scenario == "unimplemented":
        try:
            unary("NoSuchMethod")(b"", timeout=DEADLINE)
            result.update(code="OK")
        except grpc.RpcError as e:
            result.update(code=e.code().name, details=e.details())
    else:
        raise SystemExit("unknown scenario " + scenario)
    channel.close()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
