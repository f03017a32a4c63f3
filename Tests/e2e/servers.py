#!/usr/bin/env python3
"""Test peers for the Weft end-to-end suite.

Each server runs as its own process inside pod B's network namespace:

    python3 servers.py KIND PORT

KIND is one of: http, grpc, echo, banner, ws, reset, blackhole, badh2, refusingh2.

Every listener is a dual-stack socket bound to [::] (IPV6_V6ONLY=0), so it
accepts 10.211.0.2, fd00:211::2 and 127.0.0.1 (the inbound sidecar delivers to
127.0.0.1:<original port>).

Nothing here is imported by the tests except the shared constants and the
deterministic payload helpers (block_for_seed), which the clients use to
compute the expected bytes and digests of the streamed up/downloads.
"""

import asyncio
import hashlib
import json
import os
import random
import signal
import socket
import struct
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

BANNER = b"+OK weft\r\n"
BLOCK_SIZE = 1 << 20
MAX_ECHO_BODY = 64 << 20


def block_for_seed(seed: int, size: int = BLOCK_SIZE) -> bytes:
    """Deterministic pseudo-random block; streams are this block repeated."""
    return random.Random(seed).randbytes(size)


def stream_digest(seed: int, total: int) -> str:
    """sha256 of `total` bytes of block_for_seed(seed) repeated."""
    block = block_for_seed(seed)
    h = hashlib.sha256()
    full, rest = divmod(total, len(block))
    for _ in range(full):
        h.update(block)
    h.update(block[:rest])
    return h.hexdigest()


def log(*args):
    print(time.strftime("%H:%M:%S"), *args, file=sys.stderr, flush=True)


def dual_stack_listener(port: int, backlog: int = 128) -> socket.socket:
    s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    s.bind(("::", port))
    s.listen(backlog)
    return s


# --------------------------------------------------------------------------
# HTTP/1.1 server: echo, header reflection, streamed upload / download.
# --------------------------------------------------------------------------

class DualStackHTTPServer(ThreadingHTTPServer):
    address_family = socket.AF_INET6
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def server_bind(self):
        self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        super().server_bind()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "weft-e2e-http/1"
    timeout = 120  # per-connection socket timeout: idle connections go away

    def log_message(self, fmt, *args):
        log("http", self.client_address[0], fmt % args)

    # -- request body -----------------------------------------------------
    def iter_body(self, chunk=256 * 1024):
        """Yields the request body, decoding Content-Length or chunked framing."""
        te = self.headers.get("Transfer-Encoding", "")
        if "chunked" in te.lower():
            while True:
                line = self.rfile.readline(65537)
                if not line:
                    raise ConnectionError("EOF in chunk size")
                size = int(line.split(b";", 1)[0].strip(), 16)
                if size == 0:
                    # trailers until the empty line
                    while True:
                        t = self.rfile.readline(65537)
                        if t in (b"\r\n", b"\n", b""):
                            return
                remaining = size
                while remaining:
                    data = self.rfile.read(min(chunk, remaining))
                    if not data:
                        raise ConnectionError("EOF in chunk data")
                    remaining -= len(data)
                    yield data
                self.rfile.readline(3)  # CRLF after the chunk
        else:
            remaining = int(self.headers.get("Content-Length") or 0)
            while remaining:
                data = self.rfile.read(min(chunk, remaining))
                if not data:
                    raise ConnectionError("EOF in body")
                remaining -= len(data)
                yield data

    def read_body(self, limit=MAX_ECHO_BODY) -> bytes:
        parts, n = [], 0
        for data in self.iter_body():
            n += len(data)
            if n > limit:
                raise ValueError("body too large")
            parts.append(data)
        return b"".join(parts)

    # -- responses ----------------------------------------------------------
    def reply(self, status, body: bytes, ctype="application/octet-stream", extra=()):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in extra:
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def reply_json(self, obj, status=200):
        self.reply(status, json.dumps(obj).encode(), "application/json")

    def describe(self, body_len):
        return {
            "method": self.command,
            "path": self.path,
            "version": self.request_version,
            "headers": [[k, v] for k, v in self.headers.items()],
            "body_length": body_len,
        }

    def route(self):
        url = urllib.parse.urlsplit(self.path)
        q = dict(urllib.parse.parse_qsl(url.query))
        return url.path, q

    def do_GET(self):
        path, q = self.route()
        body = self.read_body()
        if path == "/headers":
            return self.reply_json(self.describe(len(body)))
        if path == "/download":
            return self.download(int(q.get("bytes", BLOCK_SIZE)), int(q.get("seed", 1)),
                                 q.get("chunked") == "1")
        if path.startswith("/status/"):
            code = int(path.rsplit("/", 1)[1])
            return self.reply(code, b"status %d\n" % code, "text/plain")
        if path == "/":
            return self.reply(200, b"python ok\n", "text/plain")
        return self.reply(404, b"not found\n", "text/plain")

    do_HEAD = do_GET

    def do_POST(self):
        path, q = self.route()
        if path == "/echo":
            body = self.read_body()
            return self.reply(200, body, self.headers.get("Content-Type", "application/octet-stream"))
        if path == "/headers":
            body = self.read_body()
            return self.reply_json(self.describe(len(body)))
        if path == "/upload":
            h, n, t0 = hashlib.sha256(), 0, time.monotonic()
            for data in self.iter_body(chunk=BLOCK_SIZE):
                n += len(data)
                h.update(data)
            log("upload", n, "bytes in", round(time.monotonic() - t0, 2), "s")
            return self.reply_json({"bytes": n, "sha256": h.hexdigest()})
        return self.reply(404, b"not found\n", "text/plain")

    do_PUT = do_POST

    def download(self, total, seed, chunked):
        block = block_for_seed(seed)
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.send_header("Content-Length", str(total))
        self.end_headers()
        if self.command == "HEAD":
            return
        sent = 0
        while sent < total:
            piece = block[: min(len(block), total - sent)]
            if chunked:
                self.wfile.write(b"%x\r\n" % len(piece))
                self.wfile.write(piece)
                self.wfile.write(b"\r\n")
            else:
                self.wfile.write(piece)
            sent += len(piece)
        if chunked:
            self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()
        log("download", sent, "bytes", "chunked" if chunked else "content-length")


def serve_http(port):
    srv = DualStackHTTPServer(("::", port), Handler)
    log("http listening on", port)
    srv.serve_forever()


# --------------------------------------------------------------------------
# gRPC server (generic handlers, raw bytes; no protoc needed).
# --------------------------------------------------------------------------

GRPC_SERVICE = "weft.test.Echo"


def serve_grpc(port):
    from concurrent import futures

    import grpc

    def unary(request, context):
        md = dict(context.invocation_metadata())
        context.send_initial_metadata((("x-weft-initial", "hello"),
                                       ("x-weft-echo", md.get("x-weft-echo", ""))))
        context.set_trailing_metadata((("x-weft-trailer", "unary-ok"),
                                       ("x-weft-trailer-bin", b"\x00\x01\xfe\xff")))
        return request

    def server_stream(request, context):
        count = int(request.decode() or "0")
        for i in range(count):
            yield b"msg-%d" % i
        context.set_trailing_metadata((("x-weft-count", str(count)),))

    def client_stream(request_iterator, context):
        n, total = 0, 0
        for m in request_iterator:
            n += 1
            total += len(m)
        return b"%d %d" % (n, total)

    def bidi(request_iterator, context):
        for m in request_iterator:
            yield b"echo:" + m

    def fail(request, context):
        context.set_trailing_metadata((("x-weft-detail", "failed-on-purpose"),
                                       ("x-weft-detail-bin", b"\x00\xffweft")))
        context.abort(grpc.StatusCode.FAILED_PRECONDITION, "weft says no: " + request.decode(errors="replace"))

    handler = grpc.method_handlers_generic_handler(GRPC_SERVICE, {
        "Unary": grpc.unary_unary_rpc_method_handler(unary),
        "ServerStream": grpc.unary_stream_rpc_method_handler(server_stream),
        "ClientStream": grpc.stream_unary_rpc_method_handler(client_stream),
        "Bidi": grpc.stream_stream_rpc_method_handler(bidi),
        "Fail": grpc.unary_unary_rpc_method_handler(fail),
    })
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=16),
                         options=[("grpc.max_receive_message_length", 16 << 20),
                                  ("grpc.max_send_message_length", 16 << 20)])
    server.add_generic_rpc_handlers((handler,))
    bound = server.add_insecure_port("[::]:%d" % port)
    if bound != port:
        raise SystemExit("grpc: could not bind port %d" % port)
    server.start()
    log("grpc listening on", port)
    server.wait_for_termination()


# --------------------------------------------------------------------------
# Raw TCP servers (asyncio).
# --------------------------------------------------------------------------

async def _echo_loop(reader, writer, peer):
    n = 0
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            n += len(data)
            writer.write(data)
            await writer.drain()
        # Half-close from the client: everything has been echoed, now send FIN.
        if writer.can_write_eof():
            writer.write_eof()
        await writer.drain()
    except (ConnectionError, OSError) as e:
        log("echo", peer, "error", repr(e))
    finally:
        log("echo", peer, "done", n, "bytes")
        writer.close()
        try:
            await writer.wait_closed()
        except (ConnectionError, OSError):
            pass


async def _serve_async(port, handler):
    sock = dual_stack_listener(port)
    server = await asyncio.start_server(handler, sock=sock, limit=1 << 20)
    log("tcp listening on", port)
    async with server:
        await server.serve_forever()


def serve_echo(port):
    async def handle(reader, writer):
        await _echo_loop(reader, writer, writer.get_extra_info("peername"))
    asyncio.run(_serve_async(port, handle))


def serve_banner(port):
    async def handle(reader, writer):
        peer = writer.get_extra_info("peername")
        log("banner: accepted", peer)
        writer.write(BANNER)
        await writer.drain()
        await _echo_loop(reader, writer, peer)
    asyncio.run(_serve_async(port, handle))


def _threaded_accept(port, fn):
    lsock = dual_stack_listener(port)
    log("tcp listening on", port)
    while True:
        conn, peer = lsock.accept()
        threading.Thread(target=fn, args=(conn, peer), daemon=True).start()


def serve_reset(port):
    """Reads a request (up to the end of its head), then resets the connection."""
    def handle(conn, peer):
        conn.settimeout(5)
        buf = b""
        try:
            while b"\r\n\r\n" not in buf and len(buf) < 65536:
                data = conn.recv(65536)
                if not data:
                    break
                buf += data
        except OSError:
            pass
        log("reset: read", len(buf), "bytes from", peer, "-> RST")
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        conn.close()
    _threaded_accept(port, handle)


def serve_blackhole(port):
    """Reads whatever arrives and never answers; closes after 60 s or on EOF."""
    def handle(conn, peer):
        conn.settimeout(60)
        n = 0
        try:
            while True:
                data = conn.recv(65536)
                if not data:
                    break
                n += len(data)
        except OSError:
            pass
        log("blackhole:", peer, "read", n, "bytes, closing")
        conn.close()
    _threaded_accept(port, handle)


def serve_refusing_h2(port):
    """An h2c server (prior knowledge) that refuses the first request on each connection
    with RST_STREAM(REFUSED_STREAM), which says it was not processed (RFC 9113 §8.7), and
    answers the next ones with 200 and "refused once\\n"."""
    serve_raw_h2(port, refuse_first=True)


def serve_bad_h2(port):
    """An h2c server (prior knowledge) that answers every request with a response head
    carrying `connection: close`, a connection-specific field HTTP/2 forbids (RFC 9113
    §8.2.2). Raw frames and a hand-made HPACK block, so no library tidies it up."""
    serve_raw_h2(port, refuse_first=False)


def serve_raw_h2(port, refuse_first):
    preface = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

    def frame(ftype, flags, stream, payload=b""):
        return struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) + struct.pack(">I", stream) + payload

    # :status 200 (static table index 8), then "connection: close" as a literal
    # without indexing, with a new name.
    block = b"\x88" + b"\x00" + bytes([10]) + b"connection" + bytes([5]) + b"close"

    def recv_exact(conn, n):
        buf = b""
        while len(buf) < n:
            data = conn.recv(n - len(buf))
            if not data:
                raise EOFError
            buf += data
        return buf

    def handle(conn, peer):
        conn.settimeout(30)
        answered = 0
        try:
            if recv_exact(conn, len(preface)) != preface:
                raise EOFError
            conn.sendall(frame(4, 0, 0))  # SETTINGS, empty
            while True:
                header = recv_exact(conn, 9)
                length = int.from_bytes(header[:3], "big")
                ftype, flags = header[3], header[4]
                stream = int.from_bytes(header[5:9], "big") & 0x7FFFFFFF
                recv_exact(conn, length)
                if ftype == 4 and not flags & 1:
                    conn.sendall(frame(4, 1, 0))  # SETTINGS ACK
                elif ftype == 1 and flags & 4:  # HEADERS with END_HEADERS
                    if refuse_first and answered == 0:
                        conn.sendall(frame(3, 0, stream, struct.pack(">I", 0x7)))  # RST_STREAM(REFUSED_STREAM)
                    elif refuse_first:
                        conn.sendall(frame(1, 0x4, stream, b"\x88") + frame(0, 0x1, stream, b"refused once\n"))
                    else:
                        conn.sendall(frame(1, 0x5, stream, block))  # END_STREAM | END_HEADERS
                    answered += 1
        except (OSError, EOFError):
            pass
        log("rawh2:", peer, "answered", answered, "requests, closing")
        conn.close()
    _threaded_accept(port, handle)


# --------------------------------------------------------------------------
# WebSocket echo (websockets, threaded sync server).
# --------------------------------------------------------------------------

def serve_ws(port):
    from websockets.sync.server import serve

    def handler(ws):
        for message in ws:
            ws.send(message)  # str -> text frame, bytes -> binary frame

    sock = dual_stack_listener(port)
    with serve(handler, sock=sock, compression=None, max_size=8 << 20) as server:
        log("ws listening on", port)
        server.serve_forever()


KINDS = {
    "http": serve_http,
    "grpc": serve_grpc,
    "echo": serve_echo,
    "banner": serve_banner,
    "reset": serve_reset,
    "blackhole": serve_blackhole,
    "badh2": serve_bad_h2,
    "refusingh2": serve_refusing_h2,
    "ws": serve_ws,
}


def main():
    if len(sys.argv) != 3 or sys.argv[1] not in KINDS:
        raise SystemExit("usage: servers.py {%s} PORT" % ",".join(KINDS))
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    KINDS[sys.argv[1]](int(sys.argv[2]))


if __name__ == "__main__":
    main()
