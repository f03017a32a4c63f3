#!/usr/bin/env bash
# bench/capture-cost.sh — what the iptables capture itself costs, with haproxy as the
# proxy, so that no sidecar code is involved. Same topology and load as bench/run.sh
# (two namespaces on a veth pair, nginx in the server namespace, wrk -t1 -c32):
#
#   haproxy           wrk → 127.0.0.1:8001 → haproxy → nginx        (no netfilter state)
#   haproxy-ct        the same, with conntrack running in the client namespace (a nat
#                     rule that matches nothing loads it): every packet is tracked,
#                     none is translated
#   haproxy-ct-notrack  the same, with the proxy → nginx leg exempted (raw NOTRACK)
#   haproxy-capture   wrk → 10.213.0.2:80, REDIRECTed to haproxy (as the sidecar's
#                     capture does): tracked and translated (DNAT + re-routing)
#   haproxy-capture-notrack  the same, upstream leg exempted from conntrack
#   weft              wrk → 10.213.0.2:80 through `weft-proxy init` rules to weft-proxy
#   weft-notrack      the same, upstream leg exempted
#
# Rounds are interleaved (every setup once per round) and medians reported, since the
# machine is shared. Usage: sudo bench/capture-cost.sh   (DURATION=6 ROUNDS=3)
# Needs: apt-get install -y wrk haproxy nginx-light iptables iproute2 util-linux
set -Eeuo pipefail
cd "$(dirname "$0")/.."
((EUID == 0)) || { echo "needs root (network namespaces, iptables)" >&2; exit 1; }
BIN=${WEFT_PROXY_BIN:-$PWD/.build/release/weft-proxy}
DURATION=${DURATION:-6}
ROUNDS=${ROUNDS:-3}
C=wcc$$ S=wcs$$
T=$(mktemp -d)
cleanup() {
  set +e
  for ns in $C $S; do
    for p in $(ip netns pids $ns 2>/dev/null); do kill -9 "$p"; done
    ip netns del $ns 2>/dev/null
  done
  rm -rf "$T"
}
trap cleanup EXIT INT TERM
in_c() { ip netns exec $C "$@"; }

ip netns add $C
ip netns add $S
ip -n $C link set lo up
ip -n $S link set lo up
ip link add vc$$ netns $C type veth peer name vs$$ netns $S
ip -n $C addr add 10.213.0.1/24 dev vc$$
ip -n $S addr add 10.213.0.2/24 dev vs$$
ip -n $C link set vc$$ up
ip -n $S link set vs$$ up

mkdir -p "$T/ngs"
cat >"$T/nginx.conf" <<EOF
worker_processes 1;
daemon off;
pid $T/ngs/nginx.pid;
error_log $T/ngs/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_requests 1000000;
    keepalive_timeout 300s;
    default_type text/plain;
    client_body_temp_path $T/ngs/b; proxy_temp_path $T/ngs/p; fastcgi_temp_path $T/ngs/f;
    uwsgi_temp_path $T/ngs/u; scgi_temp_path $T/ngs/s;
    server { listen 10.213.0.2:80 backlog=4096; location / { return 200 "hello\n"; } }
}
EOF
ip netns exec $S nginx -p "$T/ngs" -c "$T/nginx.conf" -e "$T/ngs/error.log" &
disown
cat >"$T/haproxy.conf" <<EOF
global
    nbthread 1
    maxconn 2000
    uid 2103
    gid 2103
defaults
    mode http
    option http-keep-alive
    http-reuse always
    timeout connect 5s
    timeout client 60s
    timeout server 60s
frontend fe
    bind 127.0.0.1:8001
    default_backend be
frontend fe_capture
    bind 127.0.0.1:8003
    default_backend be
backend be
    server s1 10.213.0.2:80
EOF
in_c haproxy -f "$T/haproxy.conf" >"$T/haproxy.log" 2>&1 &
disown
in_c setpriv --reuid 2102 --regid 2102 --clear-groups "$BIN" run --threads 1 --no-ipv6 >"$T/weft.log" 2>&1 &
disown
for _ in $(seq 100); do
  in_c curl -sf -o /dev/null http://127.0.0.1:15000/ready && in_c curl -sf -o /dev/null http://127.0.0.1:8001/ && break
  sleep 0.1
done

rules_off() {
  in_c "$BIN" init --cleanup >/dev/null 2>&1 || true
  in_c iptables -t nat -F; in_c iptables -t nat -X; in_c iptables -t raw -F
}
conntrack_on() { in_c iptables -t nat -A OUTPUT -p udp --dport 9 -j RETURN; }
notrack() { # uid of the proxy: its packets to nginx, and nginx's answers, skip conntrack
  in_c iptables -t raw -A OUTPUT -p tcp -d 10.213.0.2 --dport 80 -m owner --uid-owner "$1" -j NOTRACK
  in_c iptables -t raw -A PREROUTING -p tcp -s 10.213.0.2 --sport 80 -j NOTRACK
}
haproxy_capture() {
  in_c iptables -t nat -A OUTPUT -p tcp -d 10.213.0.2 --dport 80 -m owner ! --uid-owner 2103 -j REDIRECT --to-ports 8003
}
SETUPS=(haproxy haproxy-ct haproxy-ct-notrack haproxy-capture haproxy-capture-notrack weft weft-notrack)
declare -A RESULTS
for round in $(seq "$ROUNDS"); do
  for setup in "${SETUPS[@]}"; do
    rules_off
    url=http://10.213.0.2/
    case $setup in
      haproxy) url=http://127.0.0.1:8001/ ;;
      haproxy-ct) conntrack_on; url=http://127.0.0.1:8001/ ;;
      haproxy-ct-notrack) conntrack_on; notrack 2103; url=http://127.0.0.1:8001/ ;;
      haproxy-capture) haproxy_capture ;;
      haproxy-capture-notrack) haproxy_capture; notrack 2103 ;;
      weft) in_c "$BIN" init --ipv6 off >/dev/null ;;
      weft-notrack) in_c "$BIN" init --ipv6 off >/dev/null; notrack 2102 ;;
    esac
    rps=$(in_c timeout $((DURATION + 10)) wrk -t1 -c32 -d"${DURATION}s" "$url" 2>&1 | awk '/Requests\/sec/ {print $2}')
    RESULTS[$setup]="${RESULTS[$setup]:-} ${rps:-0}"
    echo "round $round  $setup  ${rps:-failed} req/s" >&2
  done
done
rules_off
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
base=$(median ${RESULTS[haproxy]})
echo "| setup | median req/s | × haproxy | rounds |"
echo "|---|---|---|---|"
for setup in "${SETUPS[@]}"; do
  # shellcheck disable=SC2086
  m=$(median ${RESULTS[$setup]})
  printf '| %s | %.0f | %.2f | %s |\n' "$setup" "$m" "$(awk -v a="$m" -v b="$base" 'BEGIN {print (b > 0) ? a / b : 0}')" "${RESULTS[$setup]# }"
done
