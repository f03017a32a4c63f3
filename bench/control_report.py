#!/usr/bin/env python3
"""Markdown report of bench/control.sh: medians over runs of each N, goals met or missed.

Usage: control_report.py RESULTS_DIR REPEATS ROUNDS COMMAND
Reads RESULTS_DIR/n<N>-run<i>.json (written by weft-control-load).
"""
import glob
import json
import os
import re
import statistics
import sys
from datetime import datetime, timezone

GOAL_P100_MS = {1000: 1000.0, 10000: 3000.0}
GOAL_RSS_KB = 20.0  # per connected proxy, in KB (1000 bytes)


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def fmt(value, digits=0, unit=""):
    return "–" if value is None else f"{value:,.{digits}f}{unit}"


def histogram(text):
    """count, sum and the bucket bound holding p99 of the delta push latency."""
    buckets, count, total = [], None, None
    for line in (text or "").splitlines():
        m = re.match(r'weft_control_push_latency_seconds_bucket\{.*le="([^"]+)".*\} (\S+)', line)
        if m:
            buckets.append((float("inf") if m.group(1) == "+Inf" else float(m.group(1)), float(m.group(2))))
        elif line.startswith("weft_control_push_latency_seconds_count"):
            count = float(line.split()[-1])
        elif line.startswith("weft_control_push_latency_seconds_sum"):
            total = float(line.split()[-1])
    p99 = None
    if count:
        for bound, cumulative in sorted(buckets):
            if cumulative >= 0.99 * count:
                p99 = bound
                break
    return count, total, p99


def main():
    results, repeats, rounds, command = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    runs = {}
    for path in sorted(glob.glob(os.path.join(results, "n*-run*.json"))):
        n = int(re.search(r"n(\d+)-run", os.path.basename(path)).group(1))
        with open(path) as f:
            runs.setdefault(n, []).append(json.load(f))
    date = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    out = [
        f"### Control plane run ({date})",
        "",
        f"`{command}` on {date}: one load process (`weft-control-load`) opens N simulated sidecars "
        "(TLS 1.3, hello with a fresh P-256 CSR, identity, config, 10 subscribed Services, 110 Services "
        f"in the index); then {rounds} rounds rewrite the EndpointSlice of `load/svc-0`, which every "
        "sidecar subscribes to. Propagation = from just before the file write until each connection "
        "received and acked the delta with the new endpoints (100 ms debounce included). "
        f"Medians over {repeats} run(s) per N of each run's median round; weft-control and the load "
        "tool share the 2 cores.",
        "",
        "| N | connect phase | propagation p50 | p99 | p100 | worst round p100 | goal p100 | RSS/proxy | goal | all acked |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    notes = []
    for n in sorted(runs):
        rs = runs[n]
        connect = median([r["connectSeconds"] for r in rs])
        p50 = median([r.get("medianAckP50Ms") for r in rs])
        p99 = median([r.get("medianAckP99Ms") for r in rs])
        p100 = median([r.get("medianAckP100Ms") for r in rs])
        worst = max([r.get("worstAckP100Ms") or 0 for r in rs]) or None
        per_proxy = []
        for r in rs:
            if r.get("rssBeforeKB") is not None and r.get("rssConnectedKB") is not None and r["connected"]:
                per_proxy.append((r["rssConnectedKB"] - r["rssBeforeKB"]) * 1.024 / r["connected"])
        rss = median(per_proxy)
        complete = all(
            r["connected"] == r["connections"] and all(x["missing"] == 0 for x in r["rounds"]) for r in rs
        )
        goal = GOAL_P100_MS.get(n)
        p100_ok = "—" if goal is None or p100 is None else ("met" if p100 <= goal else "**missed**")
        rss_ok = "—" if rss is None else ("met" if rss <= GOAL_RSS_KB else "**missed**")
        out.append(
            f"| {n:,} | {fmt(connect, 1, ' s')} | {fmt(p50, 0, ' ms')} | {fmt(p99, 0, ' ms')} | "
            f"{fmt(p100, 0, ' ms')} | {fmt(worst, 0, ' ms')} | ≤ {fmt(goal, 0, ' ms')}: {p100_ok} | "
            f"{fmt(rss, 1, ' KB')} | ≤ 20 KB: {rss_ok} | {'yes' if complete else '**no**'} |"
        )
        for i, r in enumerate(rs, 1):
            rounds_p100 = ", ".join(fmt(x.get("ackP100Ms"), 0) for x in r["rounds"])
            count, total, hp99 = histogram(r.get("runAfterOutput"))
            check = next(
                (l.strip() for l in (r.get("runAfterOutput") or "").splitlines() if "proxies connected" in l), "–"
            )
            after_rounds = (
                fmt((r["rssAfterRoundsKB"] - r["rssBeforeKB"]) * 1.024 / r["connected"], 1, " KB")
                if r.get("rssAfterRoundsKB") and r.get("rssBeforeKB") and r["connected"]
                else "–"
            )
            notes.append(
                f"- N={n:,} run {i}: rounds p100 [{rounds_p100}] ms; connect p50/p99 per connection "
                f"{fmt(r.get('connectP50Ms'), 0)}/{fmt(r.get('connectP99Ms'), 0)} ms; VmRSS "
                f"{fmt(r.get('rssBeforeKB'))} → {fmt(r.get('rssConnectedKB'))} kB "
                f"(after rounds {after_rounds}/proxy); server delta latency "
                f"(`weft_control_push_latency_seconds{{kind=\"delta\"}}`, from the compiled change to the ack) "
                f"{fmt(count)} acks, mean {fmt(total / count * 1000 if count else None, 0, ' ms')}, p99 ≤ "
                f"{fmt(hp99 * 1000 if hp99 is not None else None, 0, ' ms')}; nacks {r['nacks']}, "
                f"dropped {r['dropped']}, errors {r['errors']}; `weftctl check`: {check}; "
                f"load tool peak RSS {fmt((r.get('loadToolMaxRSSKB') or 0) / 1024, 0, ' MiB')}"
            )
    out += ["", "RSS/proxy = (weft-control VmRSS with all N connected and acked − VmRSS before any "
            "connection) / N, in KB of 1000 bytes. Per run:", ""] + notes
    print("\n".join(out))


if __name__ == "__main__":
    main()
