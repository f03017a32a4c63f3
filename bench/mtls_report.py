#!/usr/bin/env python3
"""The Markdown report of bench/mtls.sh, from its results directory (raw/ and meta.env)."""

import glob
import os
import re
import statistics
import sys

SETUPS = ("weft", "weft-h2", "haproxy", "direct")
LABELS = {"weft": "weft (HTTP/1.1 pooled)", "weft-h2": "weft (HTTP/1 over HTTP/2)", "haproxy": "haproxy",
          "direct": "direct"}


def meta(results):
    out = {}
    path = os.path.join(results, "meta.env")
    if os.path.exists(path):
        for line in open(path):
            if "=" in line:
                k, v = line.rstrip("\n").split("=", 1)
                out[k] = v
    return out


def percentile(values, q):
    if not values:
        return None
    values = sorted(values)
    k = max(0, min(len(values) - 1, int(round(q * (len(values) - 1)))))
    return values[k]


def latencies(path):
    """h2load --log-file: start (µs since epoch), status, µs until the response ended."""
    ok, bad = [], 0
    for line in open(path):
        parts = line.split()
        if len(parts) < 3:
            continue
        if parts[1] == "200":
            ok.append(int(parts[2]))
        else:
            bad += 1
    return ok, bad


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def rps(path):
    text = open(path, errors="replace").read()
    m = re.search(r"Requests/sec:\s+([0-9.]+)", text)
    errors = 0
    for pat in (r"Non-2xx or 3xx responses: (\d+)", r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)"):
        for g in re.findall(pat, text):
            errors += sum(int(x) for x in (g if isinstance(g, tuple) else (g,)))
    return (float(m.group(1)) if m else None), errors


def fmt(x, digits=2, unit=""):
    return "?" if x is None else ("{:,.%df}" % digits).format(x) + unit


def main(results):
    raw = os.path.join(results, "raw")
    m = meta(results)
    print("## Mesh hop over mTLS (`bench/mtls.sh`), %s, %s cores, load %s → %s, git %s\n" % (
        m.get("date", "?"), m.get("cpus", "?"), m.get("loadavg_start", "?"), m.get("loadavg_end", "?"),
        m.get("git", "?")))
    print("Fixed rates over 4 keep-alive connections (h2load --h1 --rps), %s s each, %s repeats interleaved; "
          "medians of the repeats' percentiles; added = setup − direct.\n" % (m.get("duration"), m.get("repeats")))
    print("| rate | setup | p50 ms | p99 ms | added p50 ms | added p99 ms | requests (median) | failed |")
    print("|---:|---|---:|---:|---:|---:|---:|---:|")
    for rate in (1000, 5000):
        rows = {}
        for cfg in SETUPS:
            p50s, p99s, counts, fails = [], [], [], 0
            for path in sorted(glob.glob(os.path.join(raw, "rate%d-%s-r*.log" % (rate, cfg)))):
                ok, bad = latencies(path)
                p50s.append(percentile(ok, 0.50))
                p99s.append(percentile(ok, 0.99))
                counts.append(len(ok))
                fails += bad
            if counts:
                rows[cfg] = (med(p50s), med(p99s), med(counts), fails)
        d50, d99 = rows["direct"][0], rows["direct"][1]
        for cfg in [c for c in SETUPS if c in rows]:
            p50, p99, n, fails = rows[cfg]
            a50 = None if p50 is None or d50 is None else (p50 - d50) / 1000
            a99 = None if p99 is None or d99 is None else (p99 - d99) / 1000
            print("| %s | %s | %s | %s | %s | %s | %s | %d |" % (
                "{:,}".format(rate), LABELS[cfg], fmt(p50 and p50 / 1000, 3), fmt(p99 and p99 / 1000, 3),
                "—" if cfg == "direct" else fmt(a50, 3), "—" if cfg == "direct" else fmt(a99, 3),
                fmt(n, 0), fails))
    print()
    for title, prefix, note in (
            ("Throughput (wrk, 32 connections, keep-alive)", "wrk", "rps"),
            ("Handshakes (wrk, 8 connections, `Connection: close`: a new TLS connection per request; "
             "weft: opaque port, one mesh TLS connection per TCP connection; haproxy: mode tcp; direct: plain)",
             "handshakes", "per s")):
        print("%s:\n" % title)
        print("| setup | %s (median) | × haproxy | errors | rounds |" % note)
        print("|---|---:|---:|---:|---|")
        res = {}
        for cfg in SETUPS:
            vals, errs = [], 0
            for path in sorted(glob.glob(os.path.join(raw, "%s-%s-r*.txt" % (prefix, cfg)))):
                v, e = rps(path)
                vals.append(v)
                errs += e
            if vals:
                res[cfg] = (med(vals), errs, vals)
        for cfg in [c for c in SETUPS if c in res]:
            v, errs, vals = res[cfg]
            ratio = None if v is None or not res["haproxy"][0] else v / res["haproxy"][0]
            print("| %s | %s | %s | %d | %s |" % (LABELS[cfg], fmt(v, 0), fmt(ratio, 2), errs,
                                                   ", ".join(fmt(x, 0) for x in vals)))
        print()
    if "rss_client_1000_kb" in m:
        c0, c1 = int(m["rss_client_before_kb"]), int(m["rss_client_1000_kb"])
        s0, s1 = int(m["rss_server_before_kb"]), int(m["rss_server_1000_kb"])
        print("Memory with 1,000 open mesh TLS connections (opaque port; each carried one request, then held; "
              "server sidecar's open inbound connections: %s):\n" % m.get("held_open_inbound", "?"))
        print("| sidecar | RSS before | RSS with 1,000 | per connection |")
        print("|---|---:|---:|---:|")
        print("| client (originates: 1,000 accepted + 1,000 mesh TLS) | %s kB | %s kB | %s KB |" % (
            fmt(c0, 0), fmt(c1, 0), fmt((c1 - c0) / 1000, 1)))
        print("| server (terminates: 1,000 mesh TLS + 1,000 to the app) | %s kB | %s kB | %s KB |" % (
            fmt(s0, 0), fmt(s1, 0), fmt((s1 - s0) / 1000, 1)))
        print()
    n = int(m.get("instr_requests", "0") or 0)
    totals = {}
    for tag in ("mtls", "mtls-h2", "plain"):
        path = os.path.join(raw, "instr-%s.total" % tag)
        if os.path.exists(path):
            text = open(path).read().strip()
            totals[tag] = int(text) if text.isdigit() else None
    if n and totals:
        print("Instructions, client sidecar, whole process (callgrind; start-up, identity and config included "
              "in both), %s requests on 8 keep-alive connections to the Service (their handshakes included):\n"
              % "{:,}".format(n))
        print("| endpoint | instructions | per request |")
        print("|---|---:|---:|")
        for tag, label in (("mtls", "meshed (mesh TLS, HTTP/1.1 pooled)"),
                           ("mtls-h2", "meshed (mesh TLS, HTTP/1 over HTTP/2)"), ("plain", "not meshed (plaintext)")):
            t = totals.get(tag)
            if t is not None:
                print("| %s | %s | %s |" % (label, fmt(t, 0), fmt(t and t / n, 0)))
        for tag, label in (("mtls", "mesh TLS (HTTP/1.1 pooled)"), ("mtls-h2", "mesh TLS with HTTP/1 over HTTP/2")):
            if totals.get(tag) and totals.get("plain"):
                print("\n%s adds %s instructions per request (%s)." % (
                    label, fmt((totals[tag] - totals["plain"]) / n, 0),
                    "{:+.1%}".format(totals[tag] / totals["plain"] - 1)))


if __name__ == "__main__":
    main(sys.argv[1])
