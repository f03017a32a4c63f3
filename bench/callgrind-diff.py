#!/usr/bin/env python3
"""Where two callgrind profiles of weft-proxy differ, function by function (self Ir).

Usage: bench/callgrind-diff.py BASE.callgrind OTHER.callgrind [--requests N] [--base-top K]
                                [--top T] [--delta D]

E.g. BASE from bench/profile.sh (pass-through), OTHER from bench/profile-routed.sh
(routed), both with the same N. Prints:
  - both whole-process totals, their difference, and per request when --requests N;
  - the first T functions of OTHER's list (by self instructions) that are not among
    BASE's first K (default 35: about what profile.sh's `head -60` shows);
  - the D functions whose self instructions grew most from BASE to OTHER.
Names are demangled with swift-demangle --simplified when it is on the PATH (or in
/opt/swift/usr/bin); object paths are reduced to their file name, since each profile
runs a copy of the binary in its own temp dir. Needs callgrind_annotate.
"""
import argparse
import os
import re
import shutil
import subprocess

LINE = re.compile(r"^\s*([\d,]+)\s+\(\s*[\d.]+%\)\s+(.*)$")


def functions(path):
    """{function: self Ir} and the program total, from callgrind_annotate."""
    text = subprocess.run(["callgrind_annotate", "--threshold=100", "--inclusive=no", path],
                          capture_output=True, text=True, check=True).stdout
    total, funcs, in_funcs = None, {}, False
    for line in text.splitlines():
        if "PROGRAM TOTALS" in line:
            total = int(line.split()[0].replace(",", ""))
            continue
        if line.startswith("Ir") and "file:function" in line:
            in_funcs = True
            continue
        if not in_funcs:
            continue
        m = LINE.match(line)
        if not m:
            continue
        name = re.sub(r"\[(?:[^\]]*/)?([^/\]]+)\]\s*$", r"[\1]", m.group(2).strip())
        funcs[name] = funcs.get(name, 0) + int(m.group(1).replace(",", ""))
    return total, funcs


def demangler():
    exe = shutil.which("swift-demangle") or "/opt/swift/usr/bin/swift-demangle"
    if not os.access(exe, os.X_OK):
        return lambda names: {n: n for n in names}

    def run(names):
        names = list(names)
        out = subprocess.run([exe, "--simplified"], input="\n".join(names) + "\n", capture_output=True,
                             text=True).stdout.split("\n")
        return {n: (out[i] if i < len(out) and out[i] else n) for i, n in enumerate(names)}
    return run


def short(name, width=150):
    name = re.sub(r"^\?\?\?:", "", name)
    return name if len(name) <= width else name[:width - 1] + "…"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("base")
    ap.add_argument("other")
    ap.add_argument("--requests", type=int, default=0)
    ap.add_argument("--base-top", type=int, default=35)
    ap.add_argument("--top", type=int, default=15)
    ap.add_argument("--delta", type=int, default=20)
    a = ap.parse_args()
    bt, bf = functions(a.base)
    ot, of = functions(a.other)
    n = a.requests
    per = (lambda x: " (%s per request)" % format(round(x / n), ",")) if n else (lambda x: "")
    print("base  %s: %s instructions%s" % (a.base, format(bt, ","), per(bt)))
    print("other %s: %s instructions%s" % (a.other, format(ot, ","), per(ot)))
    print("difference: %s%s, × %.3f" % (format(ot - bt, "+,"), per(ot - bt), ot / bt))
    base_top = set(sorted(bf, key=bf.get, reverse=True)[:a.base_top])
    other_sorted = sorted(of, key=of.get, reverse=True)
    new = [f for f in other_sorted if f not in base_top][:a.top]
    deltas = sorted(set(bf) | set(of), key=lambda f: of.get(f, 0) - bf.get(f, 0), reverse=True)[:a.delta]
    dm = demangler()(set(new) | set(deltas))
    print()
    print("First %d functions of other's list not among base's first %d (self Ir; rank in other; base's self Ir):"
          % (a.top, a.base_top))
    for f in new:
        print("%14s %8s  #%-3d base %12s  %s" % (
            format(of[f], ","), ("%.0f/req" % (of[f] / n)) if n else "", other_sorted.index(f) + 1,
            format(bf.get(f, 0), ","), short(dm.get(f, f))))
    print()
    print("Largest growth in self Ir, other − base:")
    for f in deltas:
        d = of.get(f, 0) - bf.get(f, 0)
        print("%14s %8s  base %12s  other %12s  %s" % (
            format(d, "+,"), ("%+.0f/req" % (d / n)) if n else "", format(bf.get(f, 0), ","),
            format(of.get(f, 0), ","), short(dm.get(f, f))))


if __name__ == "__main__":
    main()
