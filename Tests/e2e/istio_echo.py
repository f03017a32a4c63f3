#!/usr/bin/env python3
"""An imitation of Istio's echo app, for the mesh conformance replay (test_conformance_mesh.py).

Gateway API's mesh conformance tests run Istio's echo server and client (`pkg/test/echo`,
istio 1.30.3, in the image echo-advanced:v0.1.0); Tests/conformance/mesh/README.md
describes what they print. This file imitates both, as far as the tests look:

    python3 istio_echo.py serve POD HTTP_PORTS TCP_PORTS
        HTTP_PORTS (comma-separated): HTTP/1.1, h2c with prior knowledge and gRPC
        (`/proto.EchoTestService/Echo`, unary, h2c) on each port, chosen by the first
        bytes and the content-type. TCP_PORTS: a plain TCP echo.
    python3 istio_echo.py grpc TARGET AUTHORITY COUNT [NAME=VALUE ...]
        COUNT unary Echo calls over one channel to TARGET (ip:port) with :authority
        AUTHORITY and the metadata given; one JSON line per call on stdout:
        {"code": "OK" | grpc status name, "body": EchoResponse.message, "error": ...}.
        gRPC's C core opens sockets from its own threads, so the test runs this under
        `ip netns exec` rather than in pytest.

Every HTTP answer is 200, `Content-Type: application/text`, with the body

    ServiceVersion=
    ServicePort=<port that received it>
    Host=<Host / :authority>
    URL=<request target>
    Method=<method>
    Proto=HTTP/1.1 | HTTP/2.0
    IP=<peer address>
    RequestHeader=<Canonical-Name>:<value>   one line per value, names sorted, no Host
    Hostname=<POD>

and a gRPC answer carries the gRPC variant of it (README, "gRPC") in
EchoResponse.message. Not imitated: `?codes=` / `?headers=` / `?delay=`, TLS on 8443,
and the text client (the test sends HTTP/1.1 itself).
"""

import json
import socket
import socketserver
import sys
import threading
import time

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
GRPC_METHOD = "/proto.EchoTestService/Echo"
RESERVED_GRPC = {"content-type", "user-agent", "te", "grpc-timeout", "grpc-encoding", "grpc-accept-encoding",
                 "grpc-message-type"}


# ----------------------------------------------------------------- format --

def canonical(name):
    """Go's textproto.CanonicalMIMEHeaderKey (names with odd bytes stay as they are)."""
    if not name or any(not (c.isalnum() or c in "-!#$%&'*+.^_`|~") for c in name):
        return name
    return "-".join(part[:1].upper() + part[1:].lower() for part in name.split("-"))


def http_body(pod, port, host, target, method, proto, peer, headers):
    """The Istio echo text body. `headers`: (name, value) pairs as received, Host excluded."""
    by_name = {}
    for k, v in headers:
        by_name.setdefault(canonical(k), []).append(v)
    lines = ["ServiceVersion=", "ServicePort=%d" % port, "Host=%s" % host, "URL=%s" % target,
             "Method=%s" % method, "Proto=%s" % proto, "IP=%s" % peer]
    for k in sorted(by_name):
        lines += ["RequestHeader=%s:%s" % (k, v) for v in by_name[k]]
    lines.append("Hostname=%s" % pod)
    return ("\n".join(lines) + "\n").encode()


def grpc_body(pod, port, peer, authority, metadata, message):
    lines = []
    if authority is not None:
        lines += ["Host=%s" % authority, "RequestHeader=:authority:%s" % authority]
    for k, v in metadata:
        if not k.endswith("-bin"):
            lines.append("RequestHeader=%s:%s" % (k, v))
    lines += ["StatusCode=200", "ServiceVersion=", "ServicePort=%d" % port, "IP=%s" % peer, "Proto=GRPC",
              "Echo=%s" % message, "Hostname=%s" % pod]
    return ("\n".join(lines) + "\n").encode()


# ------------------------------------------------------------- protobuf --

def _varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def pb_string_field1(text):
    """A message whose field 1 (string) is `text`: EchoRequest / EchoResponse."""
    data = text.encode()
    return b"\x0a" + _varint(len(data)) + data


def pb_read_field1(data):
    """Field 1 (length-delimited) of a message; '' when absent. Other fields are skipped."""
    i = 0
    while i < len(data):
        key, shift = 0, 0
        while True:
            b = data[i]
            i += 1
            key |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                break
        field, wire = key >> 3, key & 7
        if wire == 0:
            while data[i] & 0x80:
                i += 1
            i += 1
        elif wire == 2:
            n, shift = 0, 0
            while True:
                b = data[i]
                i += 1
                n |= (b & 0x7F) << shift
                shift += 7
                if not b & 0x80:
                    break
            if field == 1:
                return data[i:i + n].decode(errors="replace")
            i += n
        elif wire == 1:
            i += 8
        elif wire == 5:
            i += 4
        else:
            return ""
    return ""


def grpc_frame(message):
    return b"\x00" + len(message).to_bytes(4, "big") + message


# ----------------------------------------------------------------- server --

def serve(pod, http_ports, tcp_ports):
    import http.server

    import h2.config
    import h2.connection
    import h2.events
    import h2.exceptions

    def is_h2(conn):
        for _ in range(500):
            data = conn.recv(len(PREFACE), socket.MSG_PEEK)
            if not data or not PREFACE.startswith(data):
                return False
            if len(data) == len(PREFACE):
                return True
            time.sleep(0.01)
        return False

    def serve_h2(conn, port, peer):
        c = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False, header_encoding="utf-8"))
        lock = threading.Lock()
        heads, bodies = {}, {}

        def flush():
            data = c.data_to_send()
            if data:
                conn.sendall(data)

        def respond(sid, fields, body):
            pseudo = {k: v for k, v in fields if k.startswith(":")}
            plain = [(k, v) for k, v in fields if not k.startswith(":")]
            ctype = dict(plain).get("content-type", "")
            if ctype.startswith("application/grpc"):
                message = pb_read_field1(body[5:]) if len(body) >= 5 else ""
                meta = [(k, v) for k, v in plain if k not in RESERVED_GRPC]
                if pseudo.get(":path") != GRPC_METHOD:
                    head = [(":status", "200"), ("content-type", "application/grpc"), ("grpc-status", "12"),
                            ("grpc-message", "unknown method %s" % pseudo.get(":path"))]
                    with lock:
                        c.send_headers(sid, head, end_stream=True)
                        flush()
                    return
                text = grpc_body(pod, port, peer, pseudo.get(":authority"), meta, message).decode()
                data = grpc_frame(pb_string_field1(text))
                head = [(":status", "200"), ("content-type", "application/grpc")]
                trailers = [("grpc-status", "0"), ("grpc-message", "")]
            else:
                data = http_body(pod, port, pseudo.get(":authority", ""), pseudo.get(":path", ""),
                                 pseudo.get(":method", ""), "HTTP/2.0", peer, plain)
                head = [(":status", "200"), ("content-type", "application/text"),
                        ("content-length", str(len(data)))]
                trailers = None
            try:
                with lock:
                    c.send_headers(sid, head)
                for _ in range(500):
                    with lock:
                        if c.local_flow_control_window(sid) >= len(data):
                            c.send_data(sid, data, end_stream=trailers is None)
                            if trailers:
                                c.send_headers(sid, trailers, end_stream=True)
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
                        bodies[ev.stream_id] = []
                    elif isinstance(ev, h2.events.DataReceived):
                        c.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
                        bodies.setdefault(ev.stream_id, []).append(ev.data)
                    elif isinstance(ev, h2.events.StreamEnded) and ev.stream_id in heads:
                        threading.Thread(target=respond, daemon=True, args=(
                            ev.stream_id, heads.pop(ev.stream_id), b"".join(bodies.pop(ev.stream_id, [])))).start()
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
        wbufsize = 1 << 16
        disable_nagle_algorithm = True
        server_version = "istio-echo-imitation"
        sys_version = ""

        def handle(self):
            try:
                if is_h2(self.connection):
                    self.connection.settimeout(300)
                    serve_h2(self.connection, self.server.server_address[1], self.client_address[0])
                    return
            except OSError:
                return
            super().handle()

        def _any(self):
            n = int(self.headers.get("content-length") or 0)
            if n:
                self.rfile.read(n)
            headers = [(k, v) for k, v in self.headers.items() if k.lower() != "host"]
            body = http_body(pod, self.server.server_address[1], self.headers.get("host", ""), self.path,
                             self.command, self.request_version, self.client_address[0], headers)
            self.send_response(200)
            self.send_header("Content-Type", "application/text")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
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

    servers = [Server(("0.0.0.0", p), H1) for p in http_ports] + [EchoServer(("0.0.0.0", p), Echo)
                                                                   for p in tcp_ports]
    for s in servers[1:]:
        threading.Thread(target=s.serve_forever, daemon=True).start()
    print("istio echo imitation %s: HTTP/h2c/gRPC on %s, TCP echo on %s" % (pod, http_ports, tcp_ports), flush=True)
    servers[0].serve_forever()


# ----------------------------------------------------------------- client --

def grpc_calls(target, authority, count, metadata):
    import grpc

    channel = grpc.insecure_channel(target, options=[("grpc.enable_http_proxy", 0),
                                                     ("grpc.default_authority", authority)])
    call = channel.unary_unary(GRPC_METHOD)
    request = pb_string_field1("HelloWorld")
    for _ in range(count):
        try:
            resp = call(request, timeout=5.0, metadata=metadata)
            print(json.dumps({"code": "OK", "body": pb_read_field1(resp)}), flush=True)
        except grpc.RpcError as e:
            print(json.dumps({"code": e.code().name, "body": "", "error": e.details()}), flush=True)
    channel.close()


def main(argv):
    if len(argv) == 4 and argv[0] == "serve":
        ports = [[int(p) for p in a.split(",") if p] for a in argv[2:4]]
        serve(argv[1], ports[0], ports[1])
    elif len(argv) >= 4 and argv[0] == "grpc":
        metadata = tuple(tuple(kv.split("=", 1)) for kv in argv[4:])
        grpc_calls(argv[1], argv[2], int(argv[3]), metadata)
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
