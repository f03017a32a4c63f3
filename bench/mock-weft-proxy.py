#!/usr/bin/python3
"""Stand-in for weft-proxy, only to exercise bench/run.sh's weft code path.

    WEFT_PROXY_BIN=bench/mock-weft-proxy.py sudo -E bench/run.sh --quick

It implements just the CLI surface run.sh relies on:
  init [--cleanup]                 iptables nat OUTPUT -> REDIRECT :15001, uid 2102
                                   and loopback destinations excluded
  run [--threads N] [--admin-port P]
                                   TCP relay on :15001 to SO_ORIGINAL_DST (so
                                   HTTP/1.1 and h2c both pass), admin
                                   http://127.0.0.1:P/ready -> 200
It is a byte-level asyncio relay, slow by design: its numbers mean nothing.
"""
import argparse
import asyncio
import socket
import struct
import subprocess
import sys

CHAIN = "WEFT_MOCK_OUTPUT"
SO_ORIGINAL_DST = 80


def ipt(*args, check=True):
    return subprocess.run(["iptables", "-t", "nat", *args], check=check,
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode


def init(cleanup, uid, port):
    # Remove first so init is idempotent.
    while ipt("-D", "OUTPUT", "-p", "tcp", "-j", CHAIN, check=False) == 0:
        pass
    ipt("-F", CHAIN, check=False)
    ipt("-X", CHAIN, check=False)
    if cleanup:
        return 0
    ipt("-N", CHAIN)
    ipt("-A", CHAIN, "-m", "owner", "--uid-owner", str(uid), "-j", "RETURN")
    ipt("-A", CHAIN, "-d", "127.0.0.0/8", "-j", "RETURN")
    ipt("-A", CHAIN, "-p", "tcp", "-j", "REDIRECT", "--to-ports", str(port))
    ipt("-A", "OUTPUT", "-p", "tcp", "-j", CHAIN)
    return 0


async def pipe(reader, writer):
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        try:
            writer.close()
        except Exception:
            pass


async def handle(reader, writer):
    sock = writer.get_extra_info("socket")
    raw = sock.getsockopt(socket.SOL_IP, SO_ORIGINAL_DST, 16)
    port, = struct.unpack_from("!H", raw, 2)
    ip = socket.inet_ntoa(raw[4:8])
    try:
        ur, uw = await asyncio.open_connection(ip, port)
    except OSError:
        writer.close()
        return
    await asyncio.gather(pipe(reader, uw), pipe(ur, writer))


async def admin(reader, writer):
    try:
        line = await reader.readline()
        while (await reader.readline()) not in (b"\r\n", b"\n", b""):
            pass
        ok = line.split(b" ")[1:2] == [b"/ready"]
        body = b"ready\n" if ok else b"not found\n"
        status = b"200 OK" if ok else b"404 Not Found"
        writer.write(b"HTTP/1.1 " + status + b"\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % len(body) + body)
        await writer.drain()
    finally:
        writer.close()


async def serve(port, admin_port):
    s1 = await asyncio.start_server(handle, "0.0.0.0", port, backlog=4096)
    s2 = await asyncio.start_server(admin, "127.0.0.1", admin_port)
    async with s1, s2:
        await asyncio.gather(s1.serve_forever(), s2.serve_forever())


def main():
    ap = argparse.ArgumentParser(prog="mock-weft-proxy")
    sub = ap.add_subparsers(dest="cmd", required=True)
    pi = sub.add_parser("init")
    pi.add_argument("--cleanup", action="store_true")
    pi.add_argument("--proxy-uid", type=int, default=2102)
    pi.add_argument("--outbound-port", type=int, default=15001)
    pr = sub.add_parser("run")
    pr.add_argument("--threads", type=int, default=1)
    pr.add_argument("--admin-port", type=int, default=15000)
    pr.add_argument("--outbound-port", type=int, default=15001)
    a = ap.parse_args()
    if a.cmd == "init":
        return init(a.cleanup, a.proxy_uid, a.outbound_port)
    try:
        asyncio.run(serve(a.outbound_port, a.admin_port))
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
