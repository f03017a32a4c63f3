#!/usr/bin/env python3
"""Summarise one bench/run.sh results directory.

Usage: report.py RESULTS_DIR

Reads RESULTS_DIR/meta.env (key=value lines written by run.sh),
RESULTS_DIR/raw/wrk-<config>-r<N>.txt (wrk output with a WRKJSON line from
wrk_report.lua) and RESULTS_DIR/raw/h2-<config>-r<N>.txt (h2load output).
Prints a Markdown report on stdout and writes summary.md and results.json
next to them.  Only the standard library is used.
"""
import json
import os
import re
import statistics
import sys

CONFIGS = [
    ("direct", "direct"),
    ("weft", "weft-proxy"),
    ("haproxy", "haproxy"),
    ("haproxy-capture", "haproxy behind the same REDIRECT"),
    ("nginx", "nginx"),
]
H2_CONFIGS = [("direct", "direct"), ("weft", "weft-proxy"), ("haproxy", "haproxy")]
MEM_GOAL_IDLE_MB = 12
MEM_GOAL_PEAK_MB = 20


def read_meta(path):
    meta, notes = {}, []
    if not os.path.exists(path):
        return meta, notes
    with open(path) as f:
        for line in f:
            line = line.rstrip("\n")
            if not line or "=" not in line:
                continue
            k, v = line.split("=", 1)
            if k == "note":
                notes.append(v)
            else:
                meta[k] = v
    return meta, notes


def parse_wrk(path):
    with open(path, errors="replace") as f:
        text = f.read()
    m = re.search(r"^WRKJSON (\{.*\})\s*$", text, re.M)
    if not m:
        return None
    d = json.loads(m.group(1))
    d["errors"] = sum(d[k] for k in d if k.startswith("err_"))
    return d


def parse_h2(path):
    with open(path, errors="replace") as f:
        text = f.read()
    m = re.search(r"finished in ([\d.]+)(m?s), ([\d.]+) req/s", text)
    r = re.search(r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, "
                  r"(\d+) failed, (\d+) errored, (\d+) timeout", text)
    if not m or not r:
        return None
    return {
        "rps": float(m.group(3)),
        "succeeded": int(r.group(4)),
        "failed": int(r.group(5)),
        "errored": int(r.group(6)),
        "timeout": int(r.group(7)),
    }


def runs(raw, prefix, cfg, parser):
    out = []
    if not os.path.isdir(raw):
        return out
    pat = re.compile(r"^%s-%s-r(\d+)\.txt$" % (re.escape(prefix), re.escape(cfg)))
    for name in sorted(os.listdir(raw)):
        m = pat.match(name)
        if m:
            d = parser(os.path.join(raw, name))
            if d is not None:
                d["round"] = int(m.group(1))
                out.append(d)
    return out


def med(xs):
    return statistics.median(xs) if xs else None


def fmt_int(x):
    return "—" if x is None else f"{x:,.0f}"


def fmt_ratio(a, b):
    if a is None or not b:
        return "—"
    return f"{a / b:.2f}"


def fmt_ms(us):
    return "—" if us is None else f"{us / 1000:.3f}"


def fmt_delta_ms(us, base):
    if us is None or base is None:
        return "—"
    return f"{(us - base) / 1000:+.3f}"


def fmt_mb(kb):
    if kb in (None, ""):
        return None
    return float(kb) / 1024


def main():
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    rd = sys.argv[1]
    raw = os.path.join(rd, "raw")
    meta, notes = read_meta(os.path.join(rd, "meta.env"))
    res = {"meta": meta, "notes": notes, "wrk": {}, "h2": {}, "memory": {}, "instructions": {}}
    L = []
    p = L.append

    p(f"## Weft proxy benchmark — {meta.get('date', '?')}")
    p("")
    p(f"Host `{meta.get('host', '?')}`, {meta.get('cpus', '?')} CPUs (shared: read medians and ratios, "
      f"not absolute numbers). weft-proxy: {meta.get('weft_status', '?')}.")
    p("")
    p(f"wrk HTTP/1.1 keep-alive, {meta.get('conns', '?')} connections, 1 thread, "
      f"{meta.get('duration', '?')} s (+{meta.get('warmup', '?')} s warm-up) × {meta.get('repeats', '?')} "
      f"repeats, interleaved; body `hello\\n` from nginx in the server netns.")
    p("")
    p("| config | rps (median) | × haproxy | × direct | p50 ms | p99 ms | +p50 over direct | +p99 over direct | rps min–max (n) | errors |")
    p("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    agg = {}
    for key, _ in CONFIGS:
        rs = runs(raw, "wrk", key, parse_wrk)
        if rs:
            agg[key] = {
                "rps": med([r["rps"] for r in rs]),
                "p50_us": med([r["p50_us"] for r in rs]),
                "p99_us": med([r["p99_us"] for r in rs]),
                "min": min(r["rps"] for r in rs),
                "max": max(r["rps"] for r in rs),
                "n": len(rs),
                "errors": sum(r["errors"] for r in rs),
                "runs": rs,
            }
    base = agg.get("direct", {})
    hap = agg.get("haproxy", {})
    for key, label in CONFIGS:
        a = agg.get(key)
        if not a:
            why = meta.get(f"skip_{key}", "not run")
            p(f"| {label} | {why} | | | | | | | | |")
            continue
        is_direct = key == "direct"
        p("| {} | {} | {} | {} | {} | {} | {} | {} | {}–{} ({}) | {} |".format(
            label, fmt_int(a["rps"]),
            fmt_ratio(a["rps"], hap.get("rps")),
            fmt_ratio(a["rps"], base.get("rps")),
            fmt_ms(a["p50_us"]), fmt_ms(a["p99_us"]),
            "—" if is_direct else fmt_delta_ms(a["p50_us"], base.get("p50_us")),
            "—" if is_direct else fmt_delta_ms(a["p99_us"], base.get("p99_us")),
            fmt_int(a["min"]), fmt_int(a["max"]), a["n"], a["errors"]))
        res["wrk"][key] = {k: v for k, v in a.items()}
    p("")

    # HTTP/2
    h2 = {}
    for key, _ in H2_CONFIGS:
        rs = runs(raw, "h2", key, parse_h2)
        if rs:
            h2[key] = {"rps": med([r["rps"] for r in rs]), "n": len(rs),
                       "failed": sum(r["failed"] + r["errored"] + r["timeout"] for r in rs),
                       "runs": rs}
    res["h2"] = h2
    if h2 or meta.get("h2") == "skipped":
        hd = h2.get("direct", {})
        hw = h2.get("weft")
        hh = h2.get("haproxy")
        line = (f"- **HTTP/2** (h2load h2c, -c {meta.get('h2_conns', '?')} -m {meta.get('h2_streams', '?')}, "
                f"{meta.get('duration', '?')} s, median of {hd.get('n', 0)}): direct {fmt_int(hd.get('rps'))} rps")
        if hw:
            line += (f"; weft-proxy {fmt_int(hw['rps'])} rps (× direct {fmt_ratio(hw['rps'], hd.get('rps'))})")
        else:
            line += f"; weft-proxy {meta.get('skip_h2_weft', meta.get('skip_weft', 'not run'))}"
        if hh:
            line += (f"; haproxy (h2 both sides) {fmt_int(hh['rps'])} rps (× direct {fmt_ratio(hh['rps'], hd.get('rps'))})")
            if hw:
                line += f"; weft-proxy × haproxy {fmt_ratio(hw['rps'], hh['rps'])}"
        fails = sum(v["failed"] for v in h2.values())
        if fails:
            line += f"; {fails} failed/errored requests"
        if meta.get("h2") == "skipped":
            line = "- **HTTP/2**: skipped"
        p(line)

    # Memory
    idle = fmt_mb(meta.get("mem_weft_idle_kb"))
    peak = fmt_mb(meta.get("mem_weft_peak_wrk_kb"))
    peak_all = fmt_mb(meta.get("mem_weft_peak_all_kb"))
    res["memory"] = {k: meta[k] for k in meta if k.startswith("mem_")}
    if idle is not None:
        ok_i = "OK" if idle <= MEM_GOAL_IDLE_MB else "OVER GOAL"
        s = f"- **Memory weft-proxy**: idle RSS {idle:.1f} MB (goal ≤ {MEM_GOAL_IDLE_MB} MB: {ok_i})"
        if peak is not None:
            ok_p = "OK" if peak <= MEM_GOAL_PEAK_MB else "OVER GOAL"
            s += f", peak RSS under wrk load (VmHWM) {peak:.1f} MB (goal ≤ {MEM_GOAL_PEAK_MB} MB: {ok_p})"
        if peak_all is not None and peak_all != peak:
            s += f", VmHWM after h2load too {peak_all:.1f} MB"
        idle_cp = fmt_mb(meta.get("mem_weft_idle_cp_kb"))
        if idle_cp is not None:
            s += f"; idle RSS as deployed, with its identity and config from weft-control, {idle_cp:.1f} MB"
        p(s)
    else:
        p(f"- **Memory weft-proxy**: {meta.get('skip_weft', 'not measured')} "
          f"(goals: idle ≤ {MEM_GOAL_IDLE_MB} MB, peak ≤ {MEM_GOAL_PEAK_MB} MB)")
    refs = []
    for key, label in (("haproxy", "haproxy"), ("nginx", "nginx worker")):
        i = fmt_mb(meta.get(f"mem_{key}_idle_kb"))
        pk = fmt_mb(meta.get(f"mem_{key}_peak_kb"))
        if i is not None and pk is not None:
            refs.append(f"{label} {i:.1f} MB idle / {pk:.1f} MB peak")
    if refs:
        p(f"- Memory, for reference: {', '.join(refs)}")

    # Instructions per request
    method = meta.get("instr_method")
    if method:
        parts = []
        for key, label in CONFIGS:
            load = meta.get(f"instr_{key}_load")
            if load is None:
                if key == "weft" and meta.get("skip_instr_weft"):
                    parts.append(f"weft-proxy {meta['skip_instr_weft']}")
                continue
            load = float(load)
            load_s = float(meta.get(f"instr_{key}_load_secs", 0))
            idle_i = float(meta.get(f"instr_{key}_idle", 0))
            idle_s = float(meta.get(f"instr_{key}_idle_secs", 0)) or 1.0
            ok = int(meta.get(f"instr_{key}_ok", 0))
            net = load - idle_i / idle_s * load_s
            per = net / ok if ok else None
            res["instructions"][key] = {"load": load, "load_secs": load_s, "idle": idle_i,
                                        "idle_secs": idle_s, "requests_ok": ok, "per_request": per}
            n = meta.get(f"instr_{key}_n", "?")
            parts.append(f"{label} {fmt_int(per)} (n={ok})" if per is not None else f"{label} — (0 of {n} requests ok)")
        p(f"- **Instructions per proxied request** ({method}; h2load --h1 -c {meta.get('instr_conns', '?')}, "
          f"n requests, at most {meta.get('instr_requests', '?')}; idle baseline subtracted): "
          + (", ".join(parts) or "none measured"))
    elif meta.get("instr") == "skipped":
        p("- **Instructions per proxied request**: skipped")
    if notes:
        p("")
        p("Notes:")
        for n in notes:
            p(f"- {n}")
    p("")
    p(f"Raw results: `{meta.get('results_rel', rd)}`")
    text = "\n".join(L) + "\n"
    sys.stdout.write(text)
    with open(os.path.join(rd, "summary.md"), "w") as f:
        f.write(text)
    with open(os.path.join(rd, "results.json"), "w") as f:
        json.dump(res, f, indent=2, default=str)
    return 0


if __name__ == "__main__":
    sys.exit(main())
