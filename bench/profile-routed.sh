#!/usr/bin/env bash
# Profiles weft-proxy's routed outbound path with callgrind, as bench/profile.sh profiles
# pass-through: a client netns with the redirect rules and the proxy (under valgrind),
# here connected to a weft-control, and a server netns with nginx and weft-control. The
# fixed number of keep-alive requests goes to the ClusterIP of Service demo/web
# (bench/routed-config.sh: ten non-matching rules ahead of PathPrefix / -> web), so each
# is matched, given a backend and an endpoint (P2C over peak EWMA), and sent to nginx.
# Prints the whole process's instructions and the hottest functions, as profile.sh does,
# so that the two totals (same N) can be compared.
#
# Before the counted requests the sidecar holds its identity and config, has subscribed
# demo/web on the first request to the ClusterIP (warm-up requests, bounded), and shows
# both routes and the endpoint on its admin /config. Those requests and the control-plane
# start-up (key, CSR, TLS, config) are in the whole-process total; profile.sh's one
# probe request is in its total too.
#
# Usage: sudo bench/profile-routed.sh [requests]   (needs valgrind, nginx, h2load, gcc)
#        PROFILE_H2=1 sudo bench/profile-routed.sh [requests]   the HTTP/2 path (h2c, -m 10)
#        PROFILE_PASSTHROUGH=1 ...   same sidecar and control plane, but the counted
#                                    requests go to the nginx IP (no Service): pass-through
#                                    with a control plane, to tell routing from the rest
#        WEFT_RELEASE_DIR=dir        weft-proxy, weft-control, weftctl (.build/release)
#        PROFILE_OUT=file            where the profile is kept (/tmp/weft-profile-routed.callgrind)
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-5000}
REL=${WEFT_RELEASE_DIR:-$PWD/.build/release}
OUT=${PROFILE_OUT:-/tmp/weft-profile-routed.callgrind}
C="weft-profr-c-$$" S="weft-profr-s-$$" T=$(mktemp -d)
chmod 755 "$T"
PIDS=""
cleanup() {
  set +e
  for p in $PIDS; do kill "$p" 2>/dev/null; done
  sleep 1
  for p in $PIDS; do kill -KILL "$p" 2>/dev/null; done
  ip netns del "$C" 2>/dev/null; ip netns del "$S" 2>/dev/null; rm -rf "$T"
}
trap cleanup EXIT INT TERM
. bench/netns-pair.sh
. bench/routed-config.sh
CIP=10.214.0.1 SIP=10.214.0.2
netns_pair "$C" "$S" p 10.214.0
# Only the sidecar can reach a ClusterIP: the route takes connect() as far as the capture.
ip -n "$C" route add "$ROUTED_CLUSTER_CIDR" dev "pc$$"

for b in weft-proxy weft-control weftctl; do
  [ -x "$REL/$b" ] || { echo "$REL/$b missing" >&2; exit 1; }
done
cp "$REL/weft-control" "$REL/weftctl" "$T/"
"$T/weftctl" ca init --out "$T/ca" >/dev/null
chmod 755 "$T/ca"; chmod 644 "$T/ca/bundle.crt"
head -c 24 /dev/urandom | base64 >"$T/token"; chmod 644 "$T/token"
mkdir -p "$T/cache" "$T/cg"; chown 2102:2102 "$T/cache" "$T/cg"; chmod 700 "$T/cache"
routed_config "$T/config" "$CIP" "$SIP" control-plane/config/mesh.yaml

cat >"$T/nginx.conf" <<NGINX
worker_processes 1; daemon off; pid $T/nginx.pid; error_log $T/nginx.err;
events { worker_connections 1024; }
http { access_log off; keepalive_requests 1000000;
  client_body_temp_path $T/b; proxy_temp_path $T/p; fastcgi_temp_path $T/f; uwsgi_temp_path $T/u; scgi_temp_path $T/s;
  server { listen 80; listen 8080 http2; location / { return 200 "hello\n"; } } }
NGINX
ip netns exec "$S" nginx -c "$T/nginx.conf" & PIDS="$PIDS $!"
ip netns exec "$S" "$T/weft-control" --config "$T/config" --ca "$T/ca" --token-file "$T/token" \
  --host "$SIP" --http-host 127.0.0.1 --push-port 15012 --http-port 15014 --debounce 50ms >"$T/control.log" 2>&1 &
PIDS="$PIDS $!"
for _ in $(seq 100); do ip netns exec "$S" curl -fs -o /dev/null http://127.0.0.1:15014/ready && break; sleep 0.2; done
ip netns exec "$S" curl -fs -o /dev/null http://127.0.0.1:15014/ready || { echo "weft-control not ready:"; tail -5 "$T/control.log"; exit 1; }

objcopy --strip-debug "$REL/weft-proxy" "$T/weft-proxy"
chmod 755 "$T/weft-proxy"
cc -shared -fPIC -O2 -o "$T/shim.so" bench/valgrind-sigsuspend-shim.c -ldl
ip netns exec "$C" "$T/weft-proxy" init >/dev/null
ip netns exec "$C" setpriv --reuid=2102 --regid=2102 --clear-groups env LD_PRELOAD="$T/shim.so" \
  valgrind --tool=callgrind --callgrind-out-file="$T/cg/cg.out" --vgdb=no "$T/weft-proxy" run \
  --control-plane "$SIP:15012" --token-file "$T/token" --trust-bundle "$T/ca/bundle.crt" --cache-dir "$T/cache" \
  --pod-name client-0 --pod-namespace demo --service-account client --pod-ip "$CIP" 2>"$T/vg.log" &
VG=$!
PIDS="$PIDS $VG"
for _ in $(seq 300); do
  ip netns exec "$C" curl -fs -o /dev/null http://127.0.0.1:15000/ready && break
  kill -0 "$VG" 2>/dev/null || break
  sleep 0.3
done
ip netns exec "$C" curl -fs -o /dev/null http://127.0.0.1:15000/ready ||
  { echo "weft-proxy not ready: $(ip netns exec "$C" curl -s http://127.0.0.1:15000/ready)"; tail -5 "$T/vg.log"; exit 1; }

# Warm-up: the first request to the ClusterIP subscribes demo/web (it waits for the
# routes and endpoints); repeat until one answers 200, at most 20.
if [ "${PROFILE_H2:-0}" = 1 ]; then PORT=8080 CURLH=--http2-prior-knowledge; else PORT=80 CURLH=--http1.1; fi
warm=0 code=
while [ "$warm" -lt 20 ]; do
  warm=$((warm + 1))
  code=$(ip netns exec "$C" curl -s -o /dev/null -w '%{http_code}' --max-time 10 $CURLH "http://$ROUTED_CLUSTER_IP:$PORT/") || true
  [ "$code" = 200 ] && break
  sleep 0.5
done
[ "$code" = 200 ] || { echo "no 200 from the ClusterIP after $warm requests (last: $code)"; tail -5 "$T/vg.log"; exit 1; }
ok=0
for _ in $(seq 50); do
  ip netns exec "$C" curl -s --max-time 5 http://127.0.0.1:15000/config >"$T/config.json" 2>/dev/null || true
  if why=$(routed_config_ok "$T/config.json" "$SIP"); then ok=1; break; fi
  sleep 0.3
done
[ "$ok" = 1 ] || { echo "the sidecar's /config does not show demo/web: $why"; exit 1; }
echo "warm-up: $warm request(s) to $ROUTED_CLUSTER_IP:$PORT until 200; /config shows demo/web subscribed, routes demo/web and demo/web-h2c, endpoint $SIP"

if [ "${PROFILE_PASSTHROUGH:-0}" = 1 ]; then HOST=$SIP; else HOST=$ROUTED_CLUSTER_IP; fi
ip netns exec "$C" curl -sS -o /dev/null -w "probe: %{http_code}\n" $CURLH "http://$HOST:$PORT/" || tail -5 "$T/vg.log"
echo "counted requests: http://$HOST:$PORT/ ($([ "$HOST" = "$SIP" ] && echo pass-through || echo routed))"
if [ "${PROFILE_H2:-0}" = 1 ]; then
  ip netns exec "$C" timeout 600 h2load -n "$N" -c 8 -m 10 "http://$HOST:8080/" | grep -E "requests:|status codes:|finished in"
else
  ip netns exec "$C" timeout 600 h2load --h1 -n "$N" -c 8 "http://$HOST/" | grep -E "requests:|status codes:|finished in"
fi
kill -INT "$VG" 2>/dev/null || true
for _ in $(seq 100); do [ -s "$T/cg/cg.out" ] && ! kill -0 "$VG" 2>/dev/null && break; sleep 0.3; done; sleep 1
cp "$T/cg/cg.out" "$OUT"
total=$(awk '/^(totals|summary):/ {print $2; exit}' "$OUT")
echo "total instructions: $total (whole process; $N counted requests: $((total / N)) per request, nothing subtracted)"
callgrind_annotate "$OUT" 2>/dev/null | head -60 || true # head closes the pipe early
echo "(full profile kept in $OUT; callers: callgrind_annotate --tree=caller FILE)"
