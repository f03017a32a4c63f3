#!/usr/bin/env bash
# Regenerates scripts/link/weft-proxy.order, the link order of weft-proxy's functions
# (docs/ARCHITECTURE.md, "Linking"): the functions a deployed sidecar executes, hottest
# first, so that they sit together in the binary and its resident text is what it runs,
# not every 64 KiB neighbourhood of it.
#
# Runs weft-proxy under callgrind as deployed: a client netns with the redirect rules,
# weft-control on its loopback handing out identity and config, and traffic of every
# kind the sidecar carries (HTTP/1 and HTTP/2 outbound, TLS and opaque splices, HTTP/1
# inbound, the admin server). Every function callgrind saw run is written out, ordered
# by instructions spent in it.
#
# Usage: sudo bench/order-file.sh   (needs a release build, valgrind, nginx, h2load,
#        socat, openssl, python3, gcc; about two minutes)
# A stale order file costs only locality: symbols it names that no longer exist are
# skipped by the linker.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
REL=${WEFT_RELEASE_DIR:-$ROOT/.build/release}
OUT=${1:-$ROOT/scripts/link/weft-proxy.order}
C="weft-ord-c-$$" S="weft-ord-s-$$" T=$(mktemp -d)
chmod 755 "$T"
PIDS=""
cleanup() {
  set +e
  [ -n "$PIDS" ] && kill $PIDS 2>/dev/null
  sleep 1
  ip netns pids "$C" 2>/dev/null | xargs -r kill 2>/dev/null
  ip netns pids "$S" 2>/dev/null | xargs -r kill 2>/dev/null
  ip netns del "$C" 2>/dev/null; ip netns del "$S" 2>/dev/null
  rm -rf "$T"
}
trap cleanup EXIT INT TERM
in_c() { ip netns exec "$C" "$@"; }
in_s() { ip netns exec "$S" "$@"; }

. bench/netns-pair.sh
netns_pair "$C" "$S" o 10.215.0

# Server pod: nginx for HTTP/1, h2c and TLS; socat for an opaque echo.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=server \
  -keyout "$T/key.pem" -out "$T/cert.pem" 2>/dev/null
cat >"$T/nginx.conf" <<NGINX
worker_processes 1; daemon off; pid $T/nginx.pid; error_log $T/nginx.err;
events { worker_connections 1024; }
http { access_log off;
  client_body_temp_path $T/b; proxy_temp_path $T/p; fastcgi_temp_path $T/f; uwsgi_temp_path $T/u; scgi_temp_path $T/s;
  server { listen 80; listen 8080 http2; listen 443 ssl;
    ssl_certificate $T/cert.pem; ssl_certificate_key $T/key.pem;
    location / { return 200 "hello\n"; } } }
NGINX
in_s nginx -c "$T/nginx.conf" & PIDS="$PIDS $!"
in_s socat TCP-LISTEN:6379,fork,reuseaddr EXEC:cat & PIDS="$PIDS $!"
# Client pod's own application, for inbound traffic.
in_c python3 -m http.server 8080 --bind 127.0.0.1 --directory "$T" >/dev/null 2>&1 & PIDS="$PIDS $!"

# Control plane on the client pod's loopback.
mkdir -p "$T/cache" "$T/cg"
"$REL/weftctl" ca init --out "$T/ca" >/dev/null
head -c 24 /dev/urandom | base64 >"$T/token"
chmod 0644 "$T/token" "$T/ca/bundle.crt"; chown 2102 "$T/cache" "$T/cg"
in_c "$REL/weft-control" --config "$ROOT/control-plane/config" --ca "$T/ca" --token-file "$T/token" \
  --host 127.0.0.1 >"$T/control.log" 2>&1 & PIDS="$PIDS $!"
for _ in $(seq 50); do in_c curl -fs -o /dev/null http://127.0.0.1:15014/ready && break; sleep 0.2; done

objcopy --strip-debug "$REL/weft-proxy" "$T/weft-proxy"
cc -shared -fPIC -O2 -o "$T/shim.so" bench/valgrind-sigsuspend-shim.c -ldl
in_c "$T/weft-proxy" init >/dev/null
in_c setpriv --reuid=2102 --regid=2102 --clear-groups env LD_PRELOAD="$T/shim.so" \
  valgrind --tool=callgrind --demangle=no --callgrind-out-file="$T/cg/cg.out" --vgdb=no \
  "$T/weft-proxy" run --control-plane 127.0.0.1:15012 --token-file "$T/token" \
  --trust-bundle "$T/ca/bundle.crt" --cache-dir "$T/cache" --pod-name client-0 \
  --pod-namespace demo --service-account client --pod-ip 10.215.0.1 2>"$T/vg.log" &
PIDS="$PIDS $!"
ready=0
for _ in $(seq 150); do in_c curl -fs -o /dev/null http://127.0.0.1:15000/ready && { ready=1; break; }; sleep 0.3; done
((ready)) || { echo "weft-proxy did not become ready:"; tail -5 "$T/vg.log"; exit 1; }
sleep 3   # idle: heartbeats, timers

in_c curl -fsS -o /dev/null http://10.215.0.2/
in_c h2load --h1 -n 2000 -c 4 http://10.215.0.2/ | grep -E "^requests:"
in_c h2load -n 2000 -c 4 -m 10 http://10.215.0.2:8080/ | grep -E "^requests:"
in_c curl -fsS -k -o /dev/null https://10.215.0.2/
for _ in 1 2 3; do echo ping | in_c timeout 5 socat - TCP:10.215.0.2:6379 >/dev/null; done
for _ in $(seq 20); do in_s curl -fsS -o /dev/null http://10.215.0.1:8080/; done
in_c curl -fsS -o /dev/null http://127.0.0.1:15000/metrics
in_c curl -fsS -o /dev/null http://127.0.0.1:15000/config

kill -INT "$(pgrep -f "callgrind-out-file=$T/cg/cg.out" | head -1)" 2>/dev/null || true
for _ in $(seq 50); do [ -s "$T/cg/cg.out" ] && break; sleep 0.3; done; sleep 2
[ -n "${KEEP_CG:-}" ] && cp "$T/cg/cg.out" "$KEEP_CG"
nm --defined-only "$T/weft-proxy" | awk '$2 ~ /^[tTwW]$/ {print $3}' | sort -u >"$T/symbols"
python3 - "$T/cg/cg.out" "$T/symbols" "$OUT" <<'PY'
import re, sys
cg, symfile, out = sys.argv[1:4]
symbols = set(open(symfile).read().split())
names, cost, cur, skip_next = {}, {}, None, False
for line in open(cg, errors="replace"):
    if skip_next:              # the inclusive cost of the call on the line before
        skip_next = False
        continue
    if line.startswith("fn="):
        m = re.match(r"fn=\((\d+)\)(?: (.*))?$", line.rstrip("\n"))
        if m:
            if m.group(2):
                names[m.group(1)] = m.group(2)
            cur = m.group(1)
            cost.setdefault(cur, 0)
    elif line.startswith("calls="):
        skip_next = True
    elif line.startswith("cfn="):   # may be where a function's name is first given
        m = re.match(r"cfn=\((\d+)\) (.*)$", line.rstrip("\n"))
        if m:
            names[m.group(1)] = m.group(2)
    elif line.startswith(("cfi=", "cfl=", "cob=")):
        continue
    elif cur is not None and (line[:1].isdigit() or line[:1] in "+-*"):
        parts = line.split()
        if len(parts) >= 2 and parts[1].isdigit():
            cost[cur] += int(parts[1])
ranked = sorted(((c, names.get(i, "")) for i, c in cost.items()), reverse=True)
kept = [n for c, n in ranked if n in symbols]
with open(out, "w") as f:
    f.write("\n".join(kept) + "\n")
print(f"{len(kept)} functions executed ({len(ranked) - len(kept)} outside the binary or unnamed)")
PY
echo "wrote $OUT"
