#!/usr/bin/env bash
# bench/mtls.sh — the full mesh hop: client → sidecar → mesh TLS → sidecar → nginx, against
# no proxy (direct) and against a haproxy mTLS pair on the same pods (issue 11).
#
# Usage: sudo bench/mtls.sh [--quick] [--no-instr] [-h|--help]
#
# Topology: a node netns with a bridge (10.218.0.254, weft-control) and two pods on it:
#   client pod 10.218.0.1  load generators; weft-proxy (init + run as uid 2102, client-0);
#                          haproxy A (uid 2103, nbthread 1): 127.0.0.1:8002 mode http and
#                          127.0.0.1:8003 mode tcp, each to haproxy B over TLS 1.3 with a
#                          client certificate (`weftctl ca issue`, the mesh's CA)
#   server pod 10.218.0.2  nginx :80 (the meshed app), :81 (direct), :5432 (the opaque
#                          port, through the sidecars), :5433 (haproxy B's TCP backend);
#                          weft-proxy (web-0); haproxy B (uid 2103, nbthread 1): :8443
#                          mode http and :8444 mode tcp, TLS 1.3, client certificate
#                          required (verify required against the mesh's CA)
# Ports 81, 8443 and 8444 are excluded from both pods' capture. Config: Pods client-0 and
# web-0, both meshed; Service demo/web 10.99.0.10 (80 → 80, 5432 → 5432); no route.
#
# Measured (setups interleaved A B C A B C …, medians of the repeats):
#   1. latency at fixed rates, 1,000 and 5,000 req/s over 4 keep-alive connections
#      (h2load --h1 --rps, per-request log): p50 and p99, and what each proxy pair adds over
#      direct. weft: 10.99.0.10:80 with HTTP/1 between the sidecars on pooled HTTP/1.1
#      (MeshConfig mtls.http1Transport: HTTP1); weft-h2: the same URL, the MeshConfig
#      switched to HTTP2 for the round (each request a stream of one HTTP/2 connection);
#      haproxy: 127.0.0.1:8002; direct: 10.218.0.2:81.
#   2. throughput: wrk, 32 connections, through both weft transports and the haproxy pair.
#   3. handshakes per second: wrk with `Connection: close` to the opaque port (weft: one
#      mesh TLS connection per TCP connection, 10.99.0.10:5432) and to haproxy's TCP mode
#      (a TLS connection per client connection); direct plain TCP for scale.
#   4. memory: both sidecars' RSS before and with 1,000 open mesh TLS connections
#      (opaque port, each one request answered, then held open).
#   5. instructions per request (callgrind, unless --no-instr): the client sidecar under
#      valgrind, whole process (start-up included: compare the two), a fixed number of
#      requests on 8 connections to the meshed endpoint (their handshakes included), with
#      each HTTP/1 transport; then the same with web-0 not meshed (plaintext), same run. (callgrind_control -z would
#      leave start-up out, but vgdb hangs on the sidecar's epoll_wait here.)
#
# Report (Markdown) to stdout and bench/results/mtls-<UTC time>/ (gitignored) with the raw
# outputs. Everything is removed on exit. A full run takes about 8 minutes.
#
# Environment (defaults: full / --quick):
#   BENCH_DURATION   seconds per measured load          10 / 3
#   BENCH_REPEATS    repeats per setup                  3 / 1
#   BENCH_INSTR_N    requests under callgrind           5000 / 1000
#   WEFT_RELEASE_DIR weft-proxy, weft-control, weftctl  <repo>/.build/release
set -Eeuo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
usage() { sed -n '2,/^set -Eeuo/p' "${BASH_SOURCE[0]}" | sed '$d' | sed 's/^# \{0,1\}//'; }

QUICK=0 DO_INSTR=1
while (($#)); do
  case $1 in
    --quick) QUICK=1 ;;
    --no-instr) DO_INSTR=0 ;;
    -h | --help) usage; exit 0 ;;
    *) echo "mtls.sh: unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
if ((QUICK)); then d_dur=3 d_rep=1 d_n=1000; else d_dur=10 d_rep=3 d_n=5000; fi
DURATION=${BENCH_DURATION:-$d_dur}
REPEATS=${BENCH_REPEATS:-$d_rep}
INSTR_N=${BENCH_INSTR_N:-$d_n}
REL=${WEFT_RELEASE_DIR:-$ROOT/.build/release}
for v in DURATION REPEATS INSTR_N; do
  [[ ${!v} =~ ^[0-9]+$ ]] || { echo "mtls.sh: $v must be a non-negative integer" >&2; exit 2; }
done
((DURATION >= 1 && DURATION <= 120 && REPEATS >= 1 && REPEATS <= 10 && INSTR_N >= 100 && INSTR_N <= 100000)) ||
  { echo "mtls.sh: duration 1..120 s, repeats 1..10, instructions requests 100..100000" >&2; exit 2; }

NODE_IP=10.218.0.254 C_IP=10.218.0.1 S_IP=10.218.0.2 CLUSTER_IP=10.99.0.10
PUSH_PORT=15012 CP_HTTP=15014 ADMIN=15000

exec 7>&1 8>&2
log() { printf '[mtls %s] %s\n' "$(date +%H:%M:%S)" "$*" >&8; }
die() { log "ERROR: $*"; exit 1; }
((EUID == 0)) || die "needs root (network namespaces, iptables)"
for t in ip wrk h2load nginx haproxy curl python3 setpriv openssl objcopy cc; do
  command -v "$t" >/dev/null || die "missing $t (apt: iproute2 wrk nghttp2-client nginx-light haproxy curl python3 util-linux openssl)"
done
((DO_INSTR)) && { command -v valgrind >/dev/null && command -v callgrind_annotate >/dev/null || die "missing valgrind (or --no-instr)"; }
for b in weft-proxy weft-control weftctl; do [[ -x $REL/$b ]] || die "$REL/$b missing (scripts/build-release.sh)"; done
exec 9>/run/lock/weft-bench.lock
flock -n 9 || die "another bench run holds /run/lock/weft-bench.lock"
ulimit -n "$(ulimit -Hn)"

ID=$$ N=weftm-n-$$ C=weftm-c-$$ S=weftm-s-$$
declare -A PIDS=()
TMP=$(mktemp -d /tmp/weft-mtls.XXXXXX)
chmod 755 "$TMP"
STAMP=$(date -u +%Y%m%d-%H%M%S)
RESULTS=$HERE/results/mtls-$STAMP RAW=$HERE/results/mtls-$STAMP/raw
mkdir -p "$RAW"
META=$RESULTS/meta.env
: >"$META"
meta() { printf '%s=%s\n' "$1" "$2" >>"$META"; }
cleanup() {
  local rc=$? ns p name
  trap - EXIT INT TERM HUP ERR
  set +e
  for name in "${!PIDS[@]}"; do kill -TERM "${PIDS[$name]}" 2>/dev/null; done
  sleep 0.5
  for ns in "$C" "$S" "$N"; do
    ip netns list 2>/dev/null | grep -qw "$ns" || continue
    for p in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$p" 2>/dev/null; done
    ip netns del "$ns" 2>/dev/null
  done
  mkdir -p "$RESULTS/logs"
  cp "$TMP"/*.log "$TMP"/*.conf "$RESULTS/logs/" 2>/dev/null
  rm -rf "$TMP"
  exit "$rc"
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT TERM HUP
trap 'log "failed at line $LINENO: $BASH_COMMAND"' ERR
in_c() { ip netns exec "$C" "$@"; }
in_s() { ip netns exec "$S" "$@"; }
in_n() { ip netns exec "$N" "$@"; }
start_bg() { local name=$1; shift; "$@" >"$TMP/$name.log" 2>&1 & PIDS[$name]=$!; }
stop_bg() {
  local pid=${PIDS[$1]:-} i
  [[ -n $pid ]] || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 100; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  unset "PIDS[$1]"
}
wait_ok() { # NS URL SECONDS
  local i
  for ((i = 0; i < $3 * 5; i++)); do
    [[ $(ip netns exec "$1" curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$2" 2>/dev/null) == 200 ]] && return 0
    sleep 0.2
  done
  return 1
}
rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
# The weft-proxy process of a pod (the sidecar started through setpriv/bash).
proxy_pid() { pgrep -u 2102 -f "weft-proxy run .*--pod-name $1" | head -1; }

# ---------------------------------------------------------------- binaries, CA, certificates, config
mkdir -p "$TMP/bin"
for b in weft-proxy weft-control weftctl; do cp "$REL/$b" "$TMP/bin/"; done
chmod 755 "$TMP/bin" "$TMP/bin"/*
WEFTCTL=$TMP/bin/weftctl
"$WEFTCTL" ca init --out "$TMP/ca" >"$TMP/ca.log" 2>&1 || die "weftctl ca init: $(tail -3 "$TMP/ca.log")"
chmod 755 "$TMP/ca"; chmod 644 "$TMP/ca/bundle.crt"
head -c 24 /dev/urandom | base64 >"$TMP/token"; chmod 644 "$TMP/token"
for who in client:hac web:hab; do
  "$WEFTCTL" ca issue --ca "$TMP/ca" --namespace demo --service-account "${who%%:*}" --out "$TMP/${who#*:}" >>"$TMP/ca.log" 2>&1 ||
    die "weftctl ca issue: $(tail -3 "$TMP/ca.log")"
  cat "$TMP/${who#*:}/cert.pem" "$TMP/${who#*:}/key.pem" >"$TMP/${who#*:}.pem"
  chmod 644 "$TMP/${who#*:}.pem"; chmod 755 "$TMP/${who#*:}"; chmod 644 "$TMP/${who#*:}"/*
done
TRANSPORT=HTTP1
write_config() { # MESHED(1|0): is web-0 meshed? (MeshConfig mtls.http1Transport: $TRANSPORT)
  local dir=$TMP/config sidecar=""
  mkdir -p "$dir"
  sed "s/^    mode: PERMISSIVE$/    mode: PERMISSIVE\n    http1Transport: $TRANSPORT/" \
    "$ROOT/control-plane/config/mesh.yaml" >"$dir/mesh.yaml.tmp"
  grep -q "http1Transport: $TRANSPORT" "$dir/mesh.yaml.tmp" || die "control-plane/config/mesh.yaml: no mtls.mode line"
  mv "$dir/mesh.yaml.tmp" "$dir/mesh.yaml"
  (($1)) && sidecar=", {name: weft-proxy}"
  cat >"$dir/bench.yaml.tmp" <<EOF
apiVersion: v1
kind: Pod
metadata: {name: client-0, namespace: demo, labels: {app: client}}
spec: {serviceAccountName: client, containers: [{name: app}, {name: weft-proxy}]}
status: {phase: Running, podIP: $C_IP, podIPs: [{ip: $C_IP}], conditions: [{type: Ready, status: "True"}]}
---
apiVersion: v1
kind: Pod
metadata: {name: web-0, namespace: demo, labels: {app: web}}
spec: {serviceAccountName: web, containers: [{name: app}$sidecar]}
status: {phase: Running, podIP: $S_IP, podIPs: [{ip: $S_IP}], conditions: [{type: Ready, status: "True"}]}
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: demo}
spec:
  clusterIP: $CLUSTER_IP
  clusterIPs: [$CLUSTER_IP]
  ports: [{name: http, port: 80, targetPort: 80, protocol: TCP}, {name: pg, port: 5432, targetPort: 5432, protocol: TCP}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: web-1, namespace: demo, labels: {kubernetes.io/service-name: web}}
addressType: IPv4
ports: [{name: http, port: 80, protocol: TCP}, {name: pg, port: 5432, protocol: TCP}]
endpoints:
- addresses: [$S_IP]
  conditions: {ready: true, serving: true, terminating: false}
  targetRef: {kind: Pod, name: web-0, namespace: demo}
EOF
  mv "$dir/bench.yaml.tmp" "$dir/bench.yaml"
}
write_config 1

# ---------------------------------------------------------------- topology
log "results: ${RESULTS#"$ROOT"/}; duration ${DURATION}s, repeats $REPEATS"
for ns in "$N" "$C" "$S"; do ip netns add "$ns"; ip -n "$ns" link set lo up; done
ip -n "$N" link add br0 type bridge
ip -n "$N" addr add "$NODE_IP/24" dev br0
ip -n "$N" link set br0 up
for pod in "$C:$C_IP:c" "$S:$S_IP:s"; do
  IFS=: read -r ns ip tag <<<"$pod"
  ip -n "$N" link add "m$tag$ID" type veth peer name eth0 netns "$ns"
  ip -n "$N" link set "m$tag$ID" master br0 up
  ip -n "$ns" addr add "$ip/24" dev eth0
  ip -n "$ns" link set eth0 up
  ip -n "$ns" route add default via "$NODE_IP"
done
meta date "$(date -u '+%Y-%m-%d %H:%M UTC')"
meta cpus "$(nproc)"
meta duration "$DURATION"
meta repeats "$REPEATS"
meta loadavg_start "$(cut -d' ' -f1-3 /proc/loadavg)"
meta git "$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo none)"

# nginx (server pod)
mkdir -p "$TMP/ng"
cat >"$TMP/nginx.conf" <<EOF
worker_processes 1; daemon off; pid $TMP/ng/nginx.pid; error_log $TMP/ng/error.log warn;
events { worker_connections 8192; }
http {
  access_log off; keepalive_requests 1000000; keepalive_timeout 300s; default_type text/plain;
  client_body_temp_path $TMP/ng/b; proxy_temp_path $TMP/ng/p; fastcgi_temp_path $TMP/ng/f;
  uwsgi_temp_path $TMP/ng/u; scgi_temp_path $TMP/ng/s;
  server { listen 80 backlog=4096; listen 81 backlog=4096; listen 5432 backlog=4096; listen 5433 backlog=4096;
    location / { return 200 "hello\n"; } }
}
EOF
start_bg nginx ip netns exec "$S" nginx -p "$TMP/ng" -c "$TMP/nginx.conf" -e "$TMP/ng/error.log"

# haproxy pair: A in the client pod, B in the server pod (one thread each, TLS 1.3, client certificates)
cat >"$TMP/haproxy-a.conf" <<EOF
global
    nbthread 1
    maxconn 4000
    uid 2103
    gid 2103
defaults
    timeout connect 5s
    timeout client 60s
    timeout server 60s
frontend h1
    mode http
    option http-keep-alive
    bind 127.0.0.1:8002
    default_backend h1
backend h1
    mode http
    http-reuse always
    server b $S_IP:8443 ssl crt $TMP/hac.pem ca-file $TMP/ca/bundle.crt verify required ssl-min-ver TLSv1.3
frontend tcp
    mode tcp
    bind 127.0.0.1:8003
    default_backend tcp
backend tcp
    mode tcp
    server b $S_IP:8444 ssl crt $TMP/hac.pem ca-file $TMP/ca/bundle.crt verify required ssl-min-ver TLSv1.3
EOF
cat >"$TMP/haproxy-b.conf" <<EOF
global
    nbthread 1
    maxconn 4000
    uid 2103
    gid 2103
defaults
    timeout connect 5s
    timeout client 60s
    timeout server 60s
frontend h1
    mode http
    option http-keep-alive
    bind $S_IP:8443 ssl crt $TMP/hab.pem ca-file $TMP/ca/bundle.crt verify required ssl-min-ver TLSv1.3
    default_backend app
backend app
    mode http
    http-reuse always
    server app 127.0.0.1:81
frontend tcp
    mode tcp
    bind $S_IP:8444 ssl crt $TMP/hab.pem ca-file $TMP/ca/bundle.crt verify required ssl-min-ver TLSv1.3
    default_backend app_tcp
backend app_tcp
    mode tcp
    server app 127.0.0.1:5433
EOF
start_bg haproxy-b ip netns exec "$S" haproxy -db -f "$TMP/haproxy-b.conf"
start_bg haproxy-a ip netns exec "$C" haproxy -db -f "$TMP/haproxy-a.conf"

# control plane (node), sidecars (pods)
start_bg control ip netns exec "$N" "$TMP/bin/weft-control" --config "$TMP/config" --ca "$TMP/ca" \
  --token-file "$TMP/token" --host "$NODE_IP" --http-host 127.0.0.1 --push-port "$PUSH_PORT" --http-port "$CP_HTTP" \
  --debounce 50ms
wait_ok "$N" "http://127.0.0.1:$CP_HTTP/ready" 20 || die "weft-control not ready: $(tail -5 "$TMP/control.log")"
in_c "$TMP/bin/weft-proxy" init --exclude-outbound-ports 81,8443,8444 >"$TMP/init-c.log" 2>&1 || die "init (client): $(tail -3 "$TMP/init-c.log")"
in_s "$TMP/bin/weft-proxy" init --exclude-inbound-ports 81,8443,8444 >"$TMP/init-s.log" 2>&1 || die "init (server): $(tail -3 "$TMP/init-s.log")"
sidecar() { # NAME NS POD SA IP [valgrind args...]
  local name=$1 ns=$2 pod=$3 sa=$4 ip=$5
  shift 5
  mkdir -p "$TMP/cache-$pod"; chown 2102:2102 "$TMP/cache-$pod"; chmod 700 "$TMP/cache-$pod"
  start_bg "$name" ip netns exec "$ns" setpriv --reuid=2102 --regid=2102 --clear-groups "$@" \
    "${SIDECAR_BIN:-$TMP/bin/weft-proxy}" run --threads 1 --admin-port "$ADMIN" --admin-host 127.0.0.1 \
    --control-plane "$NODE_IP:$PUSH_PORT" --token-file "$TMP/token" --trust-bundle "$TMP/ca/bundle.crt" \
    --cache-dir "$TMP/cache-$pod" --pod-name "$pod" --pod-namespace demo --service-account "$sa" --pod-ip "$ip"
}
sidecar weft-c "$C" client-0 client "$C_IP"
sidecar weft-s "$S" web-0 web "$S_IP"
wait_ok "$C" "http://127.0.0.1:$ADMIN/ready" 30 || die "client sidecar not ready: $(tail -5 "$TMP/weft-c.log")"
wait_ok "$S" "http://127.0.0.1:$ADMIN/ready" 30 || die "server sidecar not ready: $(tail -5 "$TMP/weft-s.log")"
for url in "http://$CLUSTER_IP/" "http://$S_IP:81/" "http://127.0.0.1:8002/" "http://$CLUSTER_IP:5432/" "http://127.0.0.1:8003/"; do
  wait_ok "$C" "$url" 20 || die "no 200 from $url (client pod)"
done
tls0=$(in_s curl -s "http://127.0.0.1:$ADMIN/metrics" | awk '$1 ~ /^weft_connections_total\{direction="inbound",protocol="tls"\}/ {print $2}')
((${tls0:-0} >= 2)) || die "the server's sidecar saw ${tls0:-0} mesh TLS connections: the path is not mesh TLS"
log "all paths answer; the weft path is mesh TLS (server sidecar: $tls0 inbound TLS connections)"
PID_C=$(proxy_pid client-0) PID_S=$(proxy_pid web-0)
[[ -n $PID_C && -n $PID_S ]] || die "sidecar processes not found"

# Switches MeshConfig mtls.http1Transport (HTTP1|HTTP2) and waits until the client
# sidecar applies it.
use_transport() {
  local i
  [[ $TRANSPORT == "$1" ]] && return 0
  TRANSPORT=$1
  write_config 1
  for ((i = 0; i < 100; i++)); do
    in_c curl -s "http://127.0.0.1:$ADMIN/config" | grep -q "\"http1Transport\" : \"$TRANSPORT\"" && return 0
    sleep 0.2
  done
  die "the client sidecar did not apply http1Transport: $TRANSPORT"
}
# Before a round of setup $1: the MeshConfig its weft setup needs.
prepare() {
  case $1 in
    weft) use_transport HTTP1 ;;
    weft-h2) use_transport HTTP2 ;;
  esac
}

url_for() {
  case $1 in
    weft | weft-h2) echo "http://$CLUSTER_IP:80/" ;;
    haproxy) echo "http://127.0.0.1:8002/" ;;
    direct) echo "http://$S_IP:81/" ;;
  esac
}
SETUPS=(weft weft-h2 haproxy direct)

# ---------------------------------------------------------------- 1. latency at fixed rates
for rate in 1000 5000; do
  for ((r = 1; r <= REPEATS; r++)); do
    for cfg in "${SETUPS[@]}"; do
      prepare "$cfg"
      out=$RAW/rate$rate-$cfg-r$r
      in_c timeout -k 5 $((DURATION + 30)) h2load --h1 -t1 -c4 -m1 --rps $((rate / 4)) -D "$DURATION" \
        --warm-up-time=1 --log-file="$out.log" "$(url_for "$cfg")" >"$out.txt" 2>&1 || log "h2load $cfg $rate exited non-zero"
      log "rate $rate round $r $cfg: $(grep -o 'finished in.*' "$out.txt" | head -1)"
    done
  done
done

# ---------------------------------------------------------------- 2. throughput
for ((r = 1; r <= REPEATS; r++)); do
  for cfg in "${SETUPS[@]}"; do
    prepare "$cfg"
    out=$RAW/wrk-$cfg-r$r.txt
    in_c timeout -k 5 $((DURATION + 30)) wrk -t1 -c32 -d"${DURATION}s" --timeout 5s "$(url_for "$cfg")" >"$out" 2>&1 || true
    log "wrk round $r $cfg: $(grep Requests/sec "$out")"
  done
done

# ---------------------------------------------------------------- 3. handshakes per second
hs_url() {
  case $1 in
    weft) echo "http://$CLUSTER_IP:5432/" ;;
    haproxy) echo "http://127.0.0.1:8003/" ;;
    direct) echo "http://$S_IP:81/" ;;
  esac
}
use_transport HTTP1
for ((r = 1; r <= REPEATS; r++)); do
  for cfg in weft haproxy direct; do
    out=$RAW/handshakes-$cfg-r$r.txt
    in_c timeout -k 5 $((DURATION + 30)) wrk -t1 -c8 -d"${DURATION}s" --timeout 5s -H "Connection: close" \
      "$(hs_url "$cfg")" >"$out" 2>&1 || true
    log "handshakes round $r $cfg: $(grep Requests/sec "$out")"
    sleep 1  # TIME_WAIT and the sidecars' connections settle
  done
done

# ---------------------------------------------------------------- 4. RSS with 1,000 open mesh TLS connections
sleep 2
rc0=$(rss_kb "$PID_C") rs0=$(rss_kb "$PID_S")
in_c python3 - "$CLUSTER_IP" 1000 "$TMP/held.ready" >"$TMP/held.log" 2>&1 <<'PY' &
import socket, sys, time
host, n, ready = sys.argv[1], int(sys.argv[2]), sys.argv[3]
socks = []
for i in range(n):
    s = socket.create_connection((host, 5432), timeout=10)
    s.sendall(b"GET / HTTP/1.1\r\nHost: web\r\n\r\n")
    got = b""
    while b"hello" not in got:
        d = s.recv(4096)
        if not d:
            raise SystemExit("connection %d closed early" % i)
        got += d
    socks.append(s)
open(ready, "w").write("%d\n" % len(socks))
time.sleep(120)
PY
PIDS[held]=$!
for ((i = 0; i < 600; i++)); do [[ -s $TMP/held.ready ]] && break; kill -0 "${PIDS[held]}" 2>/dev/null || break; sleep 0.1; done
[[ -s $TMP/held.ready ]] || die "could not hold 1,000 connections: $(tail -3 "$TMP/held.log")"
sleep 2
rc1=$(rss_kb "$PID_C") rs1=$(rss_kb "$PID_S")
held_tls=$(in_s curl -s "http://127.0.0.1:$ADMIN/metrics" | awk '$1 ~ /^weft_connections_open\{direction="inbound"\}/ {print $2}')
stop_bg held
meta rss_client_before_kb "$rc0"; meta rss_client_1000_kb "$rc1"
meta rss_server_before_kb "$rs0"; meta rss_server_1000_kb "$rs1"
meta held_open_inbound "${held_tls:-?}"
log "RSS client $rc0 -> $rc1 kB, server $rs0 -> $rs1 kB with 1,000 connections (server inbound open: ${held_tls:-?})"

# ---------------------------------------------------------------- 5. instructions per request (callgrind)
instr_phase() { # TAG
  local tag=$1 cg=$TMP/cg/cg-$1.out
  mkdir -p "$TMP/cg"; chown 2102:2102 "$TMP/cg"
  stop_bg weft-c
  [[ -f $TMP/shim.so ]] || cc -shared -fPIC -O2 -o "$TMP/shim.so" "$HERE/valgrind-sigsuspend-shim.c" -ldl ||
    die "cannot build bench/valgrind-sigsuspend-shim.c (gcc)"
  # valgrind cannot read the release binary's DWARF 5 (as bench/profile.sh): without it.
  [[ -f $TMP/bin/weft-proxy-nodebug ]] || objcopy --strip-debug "$TMP/bin/weft-proxy" "$TMP/bin/weft-proxy-nodebug"
  chmod 755 "$TMP/bin/weft-proxy-nodebug"
  SIDECAR_BIN=$TMP/bin/weft-proxy-nodebug \
  sidecar weft-c "$C" client-0 client "$C_IP" env LD_PRELOAD="$TMP/shim.so" valgrind --tool=callgrind \
    --callgrind-out-file="$cg" --vgdb=no
  wait_ok "$C" "http://127.0.0.1:$ADMIN/ready" 120 || die "client sidecar under valgrind not ready"
  wait_ok "$C" "http://$CLUSTER_IP/" 60 || die "no answer through the sidecar under valgrind"
  in_c h2load --h1 -n "$INSTR_N" -c 8 "http://$CLUSTER_IP/" >"$RAW/instr-$tag.txt" 2>&1 || true
  kill -INT "$(pgrep -f "callgrind-out-file=$cg" | head -1)" 2>/dev/null || true
  for ((i = 0; i < 100; i++)); do [[ -s $cg ]] && break; sleep 0.3; done
  sleep 2
  stop_bg weft-c
  callgrind_annotate "$cg" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}' >"$RAW/instr-$tag.total"
  cp "$cg" "$RAW/callgrind-$tag.out" 2>/dev/null || true  # bench/callgrind-diff.py RAW/callgrind-plain.out RAW/callgrind-mtls.out
  log "instructions ($tag): $(cat "$RAW/instr-$tag.total") for $INSTR_N requests ($(grep -o '[0-9]* succeeded' "$RAW/instr-$tag.txt"))"
}
if ((DO_INSTR)); then
  meta instr_requests "$INSTR_N"
  use_transport HTTP1
  instr_phase mtls
  TRANSPORT=HTTP2 write_config 1
  sleep 2
  instr_phase mtls-h2
  TRANSPORT=HTTP1
  write_config 0
  sleep 1
  for ((i = 0; i < 100; i++)); do
    in_n curl -s "http://127.0.0.1:$CP_HTTP/api/v1/status" | python3 -c 'import json, sys; sys.exit(0 if json.load(sys.stdin)["config"]["state"] == "valid" else 1)' && break
    sleep 0.2
  done
  instr_phase plain
fi
meta loadavg_end "$(cut -d' ' -f1-3 /proc/loadavg)"
python3 "$HERE/mtls_report.py" "$RESULTS"
