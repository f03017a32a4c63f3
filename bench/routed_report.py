#!/usr/bin/env python3
"""Summarise one bench/routed.sh results directory.

Usage: routed_report.py RESULTS_DIR

Reads RESULTS_DIR/meta.env, raw/wrk-<setup>-r<N>.txt and raw/h2-<setup>-r<N>.txt (parsed
as bench/report.py parses them) and raw/weft-metrics.txt. Prints a Markdown report on
stdout and writes summary.md and results.json next to them. Standard library only.
"""
import json
import os
import re
import statistics
import sys

sys.dont_write_bytecode = True  # no __pycache__ in bench/
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from report import fmt_int, fmt_ms, med, parse_h2, parse_wrk, read_meta, runs  # noqa: E402

H1 = [("routed", "weft-proxy, routed (ClusterIP)"), ("passthrough", "weft-proxy, pass-through (nginx IP)"),
      ("haproxy", "haproxy"), ("direct", "direct")]
H2 = [("routed", "weft-proxy, routed (ClusterIP)"), ("passthrough", "weft-proxy, pass-through (nginx IP)"),
      ("direct", "direct")]


def ratio(a, b):
    return "—" if a is None or not b else "%.2f" % (a / b)


def per_round_ratio(xs, ys):
    """Median over rounds of x/y, the rounds both ran (interleaved, so noise is shared)."""
    y = {d["round"]: d["rps"] for d in ys}
    rs = [d["rps"] / y[d["round"]] for d in xs if y.get(d["round"])]
    return statistics.median(rs) if rs else None


def cpu_us_per_request(raw, kind, cfg, runs_):
    """The proxy's CPU (user + system) per request in µs, per round: cpu-<kind>-<cfg>-r<N>.txt
    holds the clock ticks over the measured load; requests from wrk or h2load."""
    out = []
    for d in runs_:
        path = os.path.join(raw, "cpu-%s-%s-r%d.txt" % (kind, cfg, d["round"]))
        if not os.path.exists(path):
            continue
        kv = dict(line.strip().split("=", 1) for line in open(path) if "=" in line)
        n = d.get("requests") or d.get("succeeded")
        if n:
            out.append({"round": d["round"], "us": int(kv["cpu_ticks"]) / int(kv["clk_tck"]) * 1e6 / n})
    return out


def fmt_us(x):
    return "—" if x is None else "%.1f" % x


def h2_non2xx(path):
    with open(path, errors="replace") as f:
        text = f.read()
    m = re.search(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", text)
    return None if not m else sum(int(m.group(i)) for i in (2, 3, 4))


def main():
    res = sys.argv[1]
    raw = os.path.join(res, "raw")
    meta, notes = read_meta(os.path.join(res, "meta.env"))
    out = []
    p = out.append
    p("## Routed vs pass-through (%s, `bench/routed.sh`)" % meta.get("date", "?"))
    p("")
    p("%s CPUs, wrk 1 thread %s connections, %s s + %s s warm-up, %s interleaved repeats, medians. "
      "weft-proxy built %s; route retry/timeouts: %s. Load average %s at the start, %s at the end." % (
          meta.get("cpus", "?"), meta.get("conns", "?"), meta.get("duration", "?"), meta.get("warmup", "?"),
          meta.get("repeats", "?"), meta.get("weft_bin", "?"), "on" if meta.get("routed_retry") == "1" else "off",
          meta.get("loadavg_start", "?"), meta.get("loadavg_end", "?")))
    p("")
    data = {"meta": meta, "notes": notes, "h1": {}, "h2": {}}
    h1 = {k: runs(raw, "wrk", k, parse_wrk) for k, _ in H1}
    m1 = {k: med([d["rps"] for d in v]) for k, v in h1.items()}
    c1 = {k: cpu_us_per_request(raw, "wrk", k, v) for k, v in h1.items()}
    mc1 = {k: med([d["us"] for d in v]) for k, v in c1.items()}
    p("| HTTP/1 (wrk) | rps | runs | × pass-through | × haproxy | × direct | p50 ms | p99 ms | errors / non-2xx "
      "| proxy CPU µs/req |")
    p("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|")
    for k, label in H1:
        v = h1[k]
        p("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
            label, fmt_int(m1[k]), " / ".join(fmt_int(d["rps"]) for d in sorted(v, key=lambda d: d["round"])),
            ratio(m1[k], m1["passthrough"]), ratio(m1[k], m1["haproxy"]), ratio(m1[k], m1["direct"]),
            fmt_ms(med([d["p50_us"] for d in v])), fmt_ms(med([d["p99_us"] for d in v])),
            sum(d["errors"] for d in v) if v else "—", fmt_us(mc1[k])))
        data["h1"][k] = {"median_rps": m1[k], "runs": v, "cpu_us_per_request": c1[k]}
    rp = per_round_ratio(h1["routed"], h1["passthrough"])
    rh = per_round_ratio(h1["routed"], h1["haproxy"])
    p("")
    p("Routed / pass-through: **%s** (median of per-round ratios %s); routed / haproxy: **%s** (per round %s)." % (
        ratio(m1["routed"], m1["passthrough"]), "—" if rp is None else "%.2f" % rp,
        ratio(m1["routed"], m1["haproxy"]), "—" if rh is None else "%.2f" % rh))
    cr = per_round_ratio([{"round": d["round"], "rps": d["us"]} for d in c1["routed"]],
                         [{"round": d["round"], "rps": d["us"]} for d in c1["passthrough"]])
    if mc1["routed"] and mc1["passthrough"]:
        p("Sidecar CPU per request, routed / pass-through: **%s** (%s against %s µs; per round %s); "
          "routed / haproxy: %s." % (ratio(mc1["routed"], mc1["passthrough"]), fmt_us(mc1["routed"]),
                                    fmt_us(mc1["passthrough"]), "—" if cr is None else "%.2f" % cr,
                                    ratio(mc1["routed"], mc1["haproxy"])))
    data["h1"]["routed_over_passthrough"] = m1["routed"] / m1["passthrough"] if m1["routed"] and m1["passthrough"] else None
    data["h1"]["routed_over_haproxy"] = m1["routed"] / m1["haproxy"] if m1["routed"] and m1["haproxy"] else None

    h2 = {k: runs(raw, "h2", k, parse_h2) for k, _ in H2}
    if any(h2.values()):
        m2 = {k: med([d["rps"] for d in v]) for k, v in h2.items()}
        p("")
        c2 = {k: cpu_us_per_request(raw, "h2", k, v) for k, v in h2.items()}
        mc2 = {k: med([d["us"] for d in v]) for k, v in c2.items()}
        p("| HTTP/2 (h2load -c %s -m %s, h2c) | rps | runs | × pass-through | × direct | failed+errored | non-2xx "
          "| proxy CPU µs/req |" % (meta.get("h2_conns", "?"), meta.get("h2_streams", "?")))
        p("|---|---:|---|---:|---:|---:|---:|---:|")
        for k, label in H2:
            v = h2[k]
            non2xx = 0
            for d in v:
                n = h2_non2xx(os.path.join(raw, "h2-%s-r%d.txt" % (k, d["round"])))
                non2xx += n or 0
            p("| %s | %s | %s | %s | %s | %s | %s | %s |" % (
                label, fmt_int(m2[k]), " / ".join(fmt_int(d["rps"]) for d in sorted(v, key=lambda d: d["round"])),
                ratio(m2[k], m2["passthrough"]), ratio(m2[k], m2["direct"]),
                sum(d["failed"] + d["errored"] for d in v) if v else "—", non2xx if v else "—", fmt_us(mc2[k])))
            data["h2"][k] = {"median_rps": m2[k], "runs": v, "cpu_us_per_request": c2[k]}
        r2 = per_round_ratio(h2["routed"], h2["passthrough"])
        p("")
        p("HTTP/2 routed / pass-through: **%s** (median of per-round ratios %s)." % (
            ratio(m2["routed"], m2["passthrough"]), "—" if r2 is None else "%.2f" % r2))
        if mc2["routed"] and mc2["passthrough"]:
            p("Sidecar CPU per request, routed / pass-through: **%s** (%s against %s µs)." % (
                ratio(mc2["routed"], mc2["passthrough"]), fmt_us(mc2["routed"]), fmt_us(mc2["passthrough"])))
        data["h2"]["routed_over_passthrough"] = m2["routed"] / m2["passthrough"] if m2["routed"] and m2["passthrough"] else None

    mpath = os.path.join(raw, "weft-metrics.txt")
    if os.path.exists(mpath):
        errs = []
        with open(mpath) as f:
            for line in f:
                m = re.match(r'^weft_errors_total\{[^}]*error="([^"]+)"[^}]*\}\s+(\S+)', line)
                if m and float(m.group(2)) > 0:
                    errs.append("%s %s" % (m.group(1), m.group(2)))
        reqs = []
        with open(mpath) as f:
            for line in f:
                m = re.match(r'^weft_requests_total\{(?=[^}]*direction="outbound")[^}]*protocol="([^"]+)"[^}]*'
                             r'status_class="([^"]+)"[^}]*\}\s+(\S+)', line)
                if m and float(m.group(3)) > 0:
                    reqs.append("%s %s: %s" % (m.group(1), m.group(2), fmt_int(float(m.group(3)))))
        p("")
        p("Sidecar errors counted (`weft_errors_total`): %s. Outbound requests it counted (all slots, warm-ups "
          "included; an HTTP/2 4xx is a 499, a stream h2load reset when its time was up): %s." % (
              ", ".join(errs) if errs else "none", ", ".join(sorted(reqs)) or "none"))
    if meta.get("mem_weft_peak_kb"):
        p("Sidecar peak RSS (VmHWM): %.1f MB." % (float(meta["mem_weft_peak_kb"]) / 1024))
    for n in notes:
        p("- note: %s" % n)
    p("")
    p("Raw output: `%s`." % meta.get("results_rel", res))
    text = "\n".join(out) + "\n"
    sys.stdout.write(text)
    with open(os.path.join(res, "summary.md"), "w") as f:
        f.write(text)
    with open(os.path.join(res, "results.json"), "w") as f:
        json.dump(data, f, indent=1, default=str)


if __name__ == "__main__":
    main()
