#!/usr/bin/env bash
# Profiles weft-proxy's HTTP/1 outbound path with callgrind: a client netns with the
# redirect rules and the proxy (under valgrind), a server netns with nginx, and a
# fixed number of keep-alive requests from h2load --h1. Prints the hottest functions.
# Usage: sudo bench/profile.sh [requests]   (needs valgrind, nginx, h2load, gcc)
#        PROFILE_H2=1 sudo bench/profile.sh [requests]   profiles the HTTP/2 path instead
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-5000}
BIN=${WEFT_PROXY_BIN:-$PWD/.build/release/weft-proxy}
C="weft-prof-c-$$" S="weft-prof-s-$$" T=$(mktemp -d)
chmod 777 "$T"
cleanup() { set +e; [ -n "${PIDS:-}" ] && kill $PIDS 2>/dev/null; sleep 1; ip netns del "$C"; ip netns del "$S"; rm -rf "$T"; }
trap cleanup EXIT INT TERM
PIDS=""
. bench/netns-pair.sh
netns_pair "$C" "$S" p 10.214.0
cat >"$T/nginx.conf" <<NGINX
worker_processes 1; daemon off; pid $T/nginx.pid; error_log $T/nginx.err;
events { worker_connections 1024; }
http { access_log off; keepalive_requests 1000000;
  client_body_temp_path $T/b; proxy_temp_path $T/p; fastcgi_temp_path $T/f; uwsgi_temp_path $T/u; scgi_temp_path $T/s;
  server { listen 80; listen 8080 http2; location / { return 200 "hello\n"; } } }
NGINX
ip netns exec "$S" nginx -c "$T/nginx.conf" & PIDS="$PIDS $!"
objcopy --strip-debug "$BIN" "$T/weft-proxy"
cc -shared -fPIC -O2 -o "$T/shim.so" bench/valgrind-sigsuspend-shim.c -ldl
ip netns exec "$C" "$T/weft-proxy" init >/dev/null
ip netns exec "$C" setpriv --reuid=2102 --regid=2102 --clear-groups env LD_PRELOAD="$T/shim.so" \
  valgrind --tool=callgrind --callgrind-out-file="$T/cg.out" --vgdb=no "$T/weft-proxy" run 2>"$T/vg.log" &
PIDS="$PIDS $!"
for _ in $(seq 100); do ip netns exec "$C" curl -fs -o /dev/null http://127.0.0.1:15000/ready && break; sleep 0.3; done
ip netns exec "$C" curl -sS -o /dev/null -w "probe: %{http_code}\n" http://10.214.0.2/ || tail -5 "$T/vg.log"
if [ "${PROFILE_H2:-0}" = 1 ]; then
  ip netns exec "$C" h2load -n "$N" -c 8 -m 10 http://10.214.0.2:8080/ | grep -E "requests:|finished in"
else
  ip netns exec "$C" h2load --h1 -n "$N" -c 8 http://10.214.0.2/ | grep -E "requests:|finished in"
fi
kill -INT $(pgrep -f "callgrind-out-file=$T/cg.out" | head -1) 2>/dev/null || true
for _ in $(seq 50); do [ -s "$T/cg.out" ] && break; sleep 0.3; done; sleep 2
cp "$T/cg.out" /tmp/weft-profile.callgrind
callgrind_annotate "$T/cg.out" 2>/dev/null | head -60 || true  # head closes the pipe early (SIGPIPE under pipefail)
echo "(full profile kept in /tmp/weft-profile.callgrind; callers: callgrind_annotate --tree=caller FILE)"
