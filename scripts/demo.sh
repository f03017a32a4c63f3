#!/usr/bin/env bash
# The local mesh demo: two "pods" (network namespaces joined by a veth), each with the
# sidecar's redirect rules (`weft-proxy init`) and the sidecar (`weft-proxy run` as UID
# 2102). nginx serves in pod B; curl in pod A calls it. Every byte passes both sidecars,
# and the demo shows their metrics. Needs root; cleans up after itself.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "demo.sh needs root (it creates network namespaces and iptables rules)" >&2; exit 1; }
for tool in ip iptables-restore nginx curl setpriv; do
  command -v "$tool" >/dev/null || { echo "missing $tool: run scripts/install-deps.sh first" >&2; exit 1; }
done

echo "== building weft-proxy (release)"
BIN=$(scripts/build-release.sh 2> >(tail -n 1 >&2))

A="weft-demo-a-$$" B="weft-demo-b-$$" WORK=$(mktemp -d)
cleanup() {
  set +e
  [ -n "${PIDS:-}" ] && kill $PIDS 2>/dev/null && wait $PIDS 2>/dev/null
  ip netns del "$A" 2>/dev/null; ip netns del "$B" 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT INT TERM
PIDS=""

echo "== pods: $A (10.213.0.1) and $B (10.213.0.2)"
ip netns add "$A"; ip netns add "$B"
ip link add "va$$" type veth peer name "vb$$"
ip link set "va$$" netns "$A"; ip link set "vb$$" netns "$B"
ip -n "$A" addr add 10.213.0.1/24 dev "va$$"; ip -n "$B" addr add 10.213.0.2/24 dev "vb$$"
for ns in "$A" "$B"; do ip -n "$ns" link set lo up; done
ip -n "$A" link set "va$$" up; ip -n "$B" link set "vb$$" up

echo "== weft-proxy init (redirect rules) in both pods"
for ns in "$A" "$B"; do ip netns exec "$ns" "$BIN" init >/dev/null; done
ip netns exec "$A" iptables -t nat -S | grep WEFT | sed 's/^/   /'

echo "== weft-proxy run in both pods, as UID 2102"
for ns in "$A" "$B"; do
  ip netns exec "$ns" setpriv --reuid=2102 --regid=2102 --clear-groups "$BIN" run >"$WORK/$ns.log" 2>&1 &
  PIDS="$PIDS $!"
done
cat >"$WORK/nginx.conf" <<NGINX
worker_processes 1; daemon off; pid $WORK/nginx.pid; error_log $WORK/nginx.err;
events { worker_connections 256; }
http {
  access_log off;
  client_body_temp_path $WORK/b; proxy_temp_path $WORK/p; fastcgi_temp_path $WORK/f;
  uwsgi_temp_path $WORK/u; scgi_temp_path $WORK/s;
  server { listen 80; listen 8080 http2;
    location / { return 200 "hello from pod B, served by nginx\n"; } }
}
NGINX
ip netns exec "$B" nginx -c "$WORK/nginx.conf" & PIDS="$PIDS $!"
for ns in "$A" "$B"; do
  for _ in $(seq 50); do ip netns exec "$ns" curl -fs -o /dev/null http://127.0.0.1:15000/ready && break; sleep 0.1; done
done
sleep 0.3

echo "== curl in pod A -> http://10.213.0.2/ (HTTP/1.1, through both sidecars)"
ip netns exec "$A" curl -sS -i http://10.213.0.2/ | sed 's/^/   /'
echo "== curl --http2-prior-knowledge in pod A -> http://10.213.0.2:8080/"
ip netns exec "$A" curl -sS --http2-prior-knowledge http://10.213.0.2:8080/ | sed 's/^/   /'
echo "== 200 requests on one keep-alive connection (curl with 200 URLs)"
urls=(); for _ in $(seq 200); do urls+=(http://10.213.0.2/); done
ip netns exec "$A" curl -s "${urls[@]}" >"$WORK/bodies"
echo "   $(grep -c 'hello from pod B' "$WORK/bodies") of 200 answered"

show() {
  ip netns exec "$1" curl -s http://127.0.0.1:15000/metrics \
    | grep -E '^weft_(connections_total|requests_total|tcp_read_bytes_total)' | grep -v ' 0$' | sed 's/^/   /'
}
echo "== pod A sidecar (outbound) metrics"; show "$A"
echo "== pod B sidecar (inbound) metrics"; show "$B"
echo "== graceful drain: POST /shutdown to pod A's sidecar"
ip netns exec "$A" curl -s -X POST http://127.0.0.1:15000/shutdown | sed 's/^/   /'
sleep 0.5
echo "== done: the demo removes its namespaces and processes on exit"
