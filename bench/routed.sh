#!/usr/bin/env bash
# bench/routed.sh — the sidecar routing through a control plane's config: requests to a
# Service's ClusterIP (routed) against the same sidecar passing traffic through to the
# nginx IP, haproxy (as bench/run.sh runs it) and no proxy at all.
#
# Usage: sudo bench/routed.sh [--quick] [--no-h2] [-h|--help]
#
# Topology (two network namespaces joined by a veth pair):
#   client netns  10.215.0.1/24  wrk, h2load, curl; weft-proxy as uid 2102 with
#                                `weft-proxy init`'s capture, connected to weft-control;
#                                haproxy on 127.0.0.1:8001 (as bench/run.sh); a route
#                                for 10.99.0.0/16 out of the veth (nothing answers there:
#                                only the sidecar can reach a ClusterIP)
#   server netns  10.215.0.2/24  nginx :80 HTTP/1.1 and :8080 h2c (as bench/run.sh);
#                                weft-control, push port 10.215.0.2:15012, HTTP port
#                                127.0.0.1:15014
# Config (bench/routed-config.sh): the demo's MeshConfig (retry budget on), Pods
# client-0 and web-0, Service demo/web with ClusterIP 10.99.0.10 (80 -> 80, 8080 -> 8080)
# and an EndpointSlice listing the nginx IP, HTTPRoutes on web:80 and web:8080 with ten
# non-matching rules ahead of PathPrefix / -> web.
#
# Setups, measured interleaved (A B C D A B C D ...), medians reported:
#   routed        wrk -> 10.99.0.10:80   captured; route, weighted backend, P2C endpoint
#   pass-through  wrk -> 10.215.0.2:80   captured by the same sidecar; no Service: as is
#   haproxy       wrk -> 127.0.0.1:8001  (mode http, nbthread 1, http-reuse always)
#   direct        wrk -> 10.215.0.2:80
#   HTTP/2 (h2load h2c prior knowledge): routed 10.99.0.10:8080, pass-through and direct
#   10.215.0.2:8080.
# For each measured load the proxy's CPU time (user + system, /proc/PID/stat) is read
# before and after, and reported per request: a busy machine disturbs it less than rps.
# The capture rules are installed only for the sidecar's slots (as bench/run.sh does).
# Before measuring, the sidecar must hold identity and config, have subscribed demo/web
# and show both routes and the endpoint on its admin /config (checked, else it stops).
#
# The binaries are copied at the start (a rebuild during the run changes nothing).
# Progress goes to stderr; the Markdown report to stdout and, with the raw outputs, to
# bench/results/routed-<UTC time>/ (gitignored). A full run takes about 5 minutes.
# Everything (namespaces, processes, iptables rules, temp files) is removed on exit.
#
# Environment (defaults: full run / --quick):
#   BENCH_DURATION        seconds per measured load            10 / 3
#   BENCH_WARMUP          seconds of warm-up before each load  2 / 1
#   BENCH_REPEATS         repeats per setup                    3 / 1
#   BENCH_CONNECTIONS     wrk connections (1 wrk thread)       32
#   BENCH_H2_CONNECTIONS  h2load connections                   32
#   BENCH_H2_STREAMS      h2load max concurrent streams / conn 10
#   WEFT_RELEASE_DIR      weft-proxy, weft-control, weftctl    <repo>/.build/release
#   WEFT_UID              uid the sidecar runs as              2102
#   WEFT_RUN_ARGS         args after `weft-proxy run`, before the control-plane flags
#                                                              --threads 1 --admin-port 15000 --admin-host 127.0.0.1
#   ROUTED_RETRY          1: the matching rule also has retry and timeouts   0
set -Eeuo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)

usage() { sed -n '2,/^set -Eeuo/p' "${BASH_SOURCE[0]}" | sed '$d' | sed 's/^# \{0,1\}//'; }

QUICK=0 DO_H2=1
while (($#)); do
  case $1 in
    --quick) QUICK=1 ;;
    --no-h2) DO_H2=0 ;;
    -h | --help) usage; exit 0 ;;
    *) echo "routed.sh: unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done

if ((QUICK)); then d_dur=3 d_warm=1 d_rep=1; else d_dur=10 d_warm=2 d_rep=3; fi
DURATION=${BENCH_DURATION:-$d_dur}
WARMUP=${BENCH_WARMUP:-$d_warm}
REPEATS=${BENCH_REPEATS:-$d_rep}
CONNS=${BENCH_CONNECTIONS:-32}
H2_CONNS=${BENCH_H2_CONNECTIONS:-32}
H2_STREAMS=${BENCH_H2_STREAMS:-10}
REL=${WEFT_RELEASE_DIR:-$ROOT/.build/release}
WEFT_UID=${WEFT_UID:-2102}
ADMIN_PORT=15000
OUTBOUND_PORT=15001
WEFT_RUN_ARGS=${WEFT_RUN_ARGS:---threads 1 --admin-port $ADMIN_PORT --admin-host 127.0.0.1}

for v in DURATION WARMUP REPEATS CONNS H2_CONNS H2_STREAMS WEFT_UID; do
  [[ ${!v} =~ ^[0-9]+$ ]] || { echo "routed.sh: $v must be a non-negative integer (got '${!v}')" >&2; exit 2; }
done
((DURATION >= 1 && DURATION <= 600)) || { echo "routed.sh: duration must be 1..600 s" >&2; exit 2; }
((REPEATS >= 1 && REPEATS <= 20)) || { echo "routed.sh: repeats must be 1..20" >&2; exit 2; }
((CONNS >= 1 && CONNS <= 1000 && H2_CONNS >= 1 && H2_CONNS <= 1000)) || { echo "routed.sh: connections must be 1..1000" >&2; exit 2; }

CLIENT_IP=10.215.0.1
SERVER_IP=10.215.0.2
PUSH_PORT=15012
CP_HTTP_PORT=15014
HAPROXY_PORT=8001
HAPROXY_UID=2103
. "$HERE/routed-config.sh"
CLUSTER_IP=$ROUTED_CLUSTER_IP

exec 7>&1 8>&2
log() { printf '[routed %s] %s\n' "$(date +%H:%M:%S)" "$*" >&8; }
die() { log "ERROR: $*"; exit 1; }

# ---------------------------------------------------------------- preflight
((EUID == 0)) || die "needs root for network namespaces and iptables: sudo bench/routed.sh"
missing=()
need() { command -v "$1" >/dev/null 2>&1 || missing+=("$1 (apt: $2)"); }
need ip iproute2; need wrk wrk; need nginx nginx-light; need haproxy haproxy; need iptables iptables
need curl curl; need python3 python3; need timeout coreutils; need flock util-linux; need setpriv util-linux
((DO_H2)) && need h2load nghttp2-client
((${#missing[@]})) && die "missing tools: ${missing[*]}"
for b in weft-proxy weft-control weftctl; do
  [[ -x $REL/$b ]] || die "$REL/$b missing or not executable (scripts/build-release.sh, or WEFT_RELEASE_DIR)"
done

exec 9>/run/lock/weft-bench.lock
flock -n 9 || die "another bench run holds /run/lock/weft-bench.lock"
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

ID=$$
NS_C=weftr-c-$ID
NS_S=weftr-s-$ID
VETH_C=wrc$ID
VETH_S=wrs$ID
declare -A PIDS=()
FG_PID=
SAMPLER=
WEFT_RULES=0
CLEANED=0
NETNS_MADE=0
TMP=
STAMP=$(date -u +%Y%m%d-%H%M%S)
RESULTS=$HERE/results/routed-$STAMP
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT TERM HUP
trap 'log "failed at line $LINENO: $BASH_COMMAND"' ERR

TMP=$(mktemp -d /tmp/weft-routed.XXXXXX)
chmod 755 "$TMP"
RAW=$RESULTS/raw
mkdir -p "$RAW"
META=$RESULTS/meta.env
: >"$META"
meta() { printf '%s=%s\n' "$1" "$2" >>"$META"; }
note() { log "note: $*"; printf 'note=%s\n' "$*" >>"$META"; }

# ---------------------------------------------------------------- process helpers (as bench/run.sh)
start_bg() {
  local name=$1; shift
  [[ $(type -t "$1") == file ]] || die "start_bg: $1 is not an external command"
  "$@" >"$TMP/$name.log" 2>&1 &
  PIDS[$name]=$!
}
alive() { [[ -n ${1:-} ]] && kill -0 "$1" 2>/dev/null; }
run_fg() {
  "$@" &
  FG_PID=$!
  local rc=0
  wait "$FG_PID" || rc=$?
  FG_PID=
  return "$rc"
}
stop_bg() {
  local name=$1 pid=${PIDS[$1]:-} i
  [[ -n $pid ]] || return 0
  if alive "$pid"; then
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do alive "$pid" || break; sleep 0.1; done
    alive "$pid" && kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
  unset "PIDS[$name]"
}
in_c() { ip netns exec "$NS_C" "$@"; }
in_s() { ip netns exec "$NS_S" "$@"; }
wait_http() { # NS URL TIMEOUT_S [PID] [CURL_OPTS...]
  local ns=$1 url=$2 secs=$3 pid=${4:-} i code
  shift 4 || shift $#
  for ((i = 0; i < secs * 5; i++)); do
    code=$(ip netns exec "$ns" curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$@" "$url" 2>/dev/null) || true
    [[ $code == 200 ]] && return 0
    if [[ -n $pid ]] && ! alive "$pid"; then return 1; fi
    sleep 0.2
  done
  return 1
}

WEFT=$TMP/bin/weft-proxy
weft_rules_on() { WEFT_RULES=1; in_c "$WEFT" init >>"$TMP/weft-init.log" 2>&1; }
weft_rules_off() {
  in_c "$WEFT" init --cleanup >>"$TMP/weft-init.log" 2>&1 || note "weft-proxy init --cleanup exited non-zero"
  if in_c iptables -t nat -S 2>/dev/null | grep -qE -- '^-A |^-N '; then
    note "nat rules left in the client netns after init --cleanup; flushed"
    in_c iptables -t nat -F 2>/dev/null || true
    in_c iptables -t nat -X 2>/dev/null || true
  fi
  WEFT_RULES=0
}
# CPU time (user + system, all threads) of the proxy a setup goes through, in clock ticks;
# recorded per measured load, so the report can give CPU per request, which this noisy
# machine disturbs less than rps.
CLK_TCK=$(getconf CLK_TCK)
proxy_pid() {
  case $1 in
    routed | passthrough) echo "${PIDS[weft]:-}" ;;
    haproxy) echo "${PIDS[haproxy]:-}" ;;
  esac
}
cpu_ticks() { awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat" 2>/dev/null; }
cpu_record() { # PID TICKS_BEFORE FILE
  local c1
  [[ -n $1 && -n $2 ]] || return 0
  c1=$(cpu_ticks "$1") || return 0
  [[ -n $c1 ]] && printf 'cpu_ticks=%s\nclk_tck=%s\n' "$((c1 - $2))" "$CLK_TCK" >"$3"
}
weft_captured() { # connections that hit the REDIRECT to the outbound port (-1: no such rule)
  in_c iptables -t nat -L -n -v -x 2>/dev/null |
    awk -v p="redir ports $OUTBOUND_PORT" 'index($0, p) && $3 == "REDIRECT" { n++; s += $1 } END { print (n ? s : -1) }' || true
}

cleanup() {
  local rc=$?
  trap - EXIT INT TERM HUP ERR
  set +e
  exec 1>&7 2>&8
  ((CLEANED)) && exit "$rc"
  CLEANED=1
  log "cleaning up"
  ((WEFT_RULES)) && [[ -x $WEFT ]] && weft_rules_off
  local name ns p
  if [[ -n $FG_PID ]]; then kill -TERM "$FG_PID" 2>/dev/null; wait "$FG_PID" 2>/dev/null; fi
  if [[ -n $SAMPLER ]]; then kill -TERM "$SAMPLER" 2>/dev/null; wait "$SAMPLER" 2>/dev/null; fi
  for name in "${!PIDS[@]}"; do stop_bg "$name"; done
  if ((NETNS_MADE)); then
    for ns in "$NS_C" "$NS_S"; do
      ip netns list 2>/dev/null | grep -qw "$ns" || continue
      # Anything still living in our own namespaces was started by this script.
      for p in $(ip netns pids "$ns" 2>/dev/null); do kill -TERM "$p" 2>/dev/null; done
      sleep 0.3
      for p in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$p" 2>/dev/null; done
      ip netns del "$ns" 2>/dev/null || log "could not delete netns $ns"
    done
  fi
  if [[ -n $TMP && -d $TMP ]]; then
    mkdir -p "$RESULTS/logs"
    cp "$TMP"/*.log "$TMP"/*.conf "$RESULTS/logs/" 2>/dev/null
    cp -r "$TMP/config" "$RESULTS/" 2>/dev/null
    rm -rf "$TMP"
  fi
  exit "$rc"
}

# ---------------------------------------------------------------- binaries, CA, config
mkdir -p "$TMP/bin" "$TMP/cache"
for b in weft-proxy weft-control weftctl; do cp "$REL/$b" "$TMP/bin/$b"; done
chmod 755 "$TMP/bin" "$TMP/bin"/*
chown "$WEFT_UID:$WEFT_UID" "$TMP/cache"
chmod 700 "$TMP/cache"
"$TMP/bin/weftctl" ca init --out "$TMP/ca" >"$TMP/ca.log" 2>&1 || die "weftctl ca init failed: $(tail -3 "$TMP/ca.log")"
chmod 755 "$TMP/ca"; chmod 644 "$TMP/ca/bundle.crt"
head -c 24 /dev/urandom | base64 >"$TMP/token"
chmod 644 "$TMP/token"
routed_config "$TMP/config" "$CLIENT_IP" "$SERVER_IP" "$ROOT/control-plane/config/mesh.yaml"

# ---------------------------------------------------------------- topology
log "results: ${RESULTS#"$ROOT"/}"
log "netns $NS_C ($CLIENT_IP) <-> $NS_S ($SERVER_IP); duration ${DURATION}s warm-up ${WARMUP}s repeats $REPEATS conns $CONNS"
NETNS_MADE=1
ip netns add "$NS_C"
ip netns add "$NS_S"
ip -n "$NS_C" link set lo up
ip -n "$NS_S" link set lo up
ip link add "$VETH_C" netns "$NS_C" type veth peer name "$VETH_S" netns "$NS_S"
ip -n "$NS_C" addr add "$CLIENT_IP/24" dev "$VETH_C"
ip -n "$NS_S" addr add "$SERVER_IP/24" dev "$VETH_S"
ip -n "$NS_C" link set "$VETH_C" up
ip -n "$NS_S" link set "$VETH_S" up
# A route for the ClusterIP range, so that connect() gets as far as the capture. Nothing
# answers there: a request that reached a ClusterIP without being routed would fail.
ip -n "$NS_C" route add "$ROUTED_CLUSTER_CIDR" dev "$VETH_C"

meta date "$(date -u '+%Y-%m-%d %H:%M UTC')"
meta host "$(hostname)"
meta cpus "$(nproc)"
meta duration "$DURATION"
meta warmup "$WARMUP"
meta repeats "$REPEATS"
meta conns "$CONNS"
meta h2_conns "$H2_CONNS"
meta h2_streams "$H2_STREAMS"
meta routed_retry "${ROUTED_RETRY:-0}"
meta results_rel "${RESULTS#"$ROOT"/}"
meta loadavg_start "$(cut -d' ' -f1-3 /proc/loadavg)"
{
  set +o pipefail
  echo "wrk: $(wrk --version 2>&1 | head -1)"
  echo "nginx: $(nginx -v 2>&1)"
  echo "haproxy: $(haproxy -v 2>&1 | head -1)"
  command -v h2load >/dev/null && echo "h2load: $(h2load --version 2>&1 | head -1)"
  echo "kernel: $(uname -r)"
  for b in weft-proxy weft-control weftctl; do
    echo "$b: $REL/$b $(stat -c '%y %s bytes' "$REL/$b") sha256 $(sha256sum "$TMP/bin/$b" | cut -c1-16)"
  done
  echo "git: $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo none) ($(git -C "$ROOT" status --porcelain 2>/dev/null | wc -l) paths changed in the tree)"
} >"$RESULTS/versions.txt" 2>&1 || true
set -o pipefail
meta weft_bin "$(stat -c '%y' "$REL/weft-proxy" | cut -d. -f1)"

# ---------------------------------------------------------------- nginx (server), as bench/run.sh
mkdir -p "$TMP/ngs"
cat >"$TMP/nginx-server.conf" <<EOF
worker_processes 1;
daemon off;
pid $TMP/ngs/nginx.pid;
error_log $TMP/ngs/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_requests 1000000;
    keepalive_timeout 300s;
    default_type text/plain;
    client_body_temp_path $TMP/ngs/body;
    proxy_temp_path $TMP/ngs/proxy;
    fastcgi_temp_path $TMP/ngs/fastcgi;
    uwsgi_temp_path $TMP/ngs/uwsgi;
    scgi_temp_path $TMP/ngs/scgi;
    server {
        listen $SERVER_IP:80 backlog=4096;
        location / { return 200 "hello\n"; }
    }
    server {
        listen $SERVER_IP:8080 http2 backlog=4096;
        http2_max_concurrent_streams 256;
        location / { return 200 "hello\n"; }
    }
}
EOF
start_bg nginx-server ip netns exec "$NS_S" nginx -p "$TMP/ngs" -c "$TMP/nginx-server.conf" -e "$TMP/ngs/error.log"
wait_http "$NS_C" "http://$SERVER_IP/" 15 "${PIDS[nginx-server]}" || die "backend nginx did not come up: $(tail -5 "$TMP/nginx-server.log")"
wait_http "$NS_C" "http://$SERVER_IP:8080/" 15 "${PIDS[nginx-server]}" --http2-prior-knowledge || die "backend nginx h2c did not come up"
log "backend nginx up"

# ---------------------------------------------------------------- haproxy (client), as bench/run.sh
cat >"$TMP/haproxy.conf" <<EOF
global
    nbthread 1
    maxconn 2000
    uid $HAPROXY_UID
    gid $HAPROXY_UID
defaults
    mode http
    option http-keep-alive
    http-reuse always
    timeout connect 5s
    timeout client 60s
    timeout server 60s
    timeout http-keep-alive 60s
frontend fe
    bind 127.0.0.1:$HAPROXY_PORT
    default_backend be
backend be
    server s1 $SERVER_IP:80
EOF
start_bg haproxy ip netns exec "$NS_C" haproxy -db -f "$TMP/haproxy.conf"
wait_http "$NS_C" "http://127.0.0.1:$HAPROXY_PORT/" 15 "${PIDS[haproxy]}" || die "haproxy did not come up: $(tail -5 "$TMP/haproxy.log")"
log "haproxy up"

# ---------------------------------------------------------------- weft-control (server netns)
start_bg control ip netns exec "$NS_S" "$TMP/bin/weft-control" --config "$TMP/config" --ca "$TMP/ca" \
  --token-file "$TMP/token" --host "$SERVER_IP" --http-host 127.0.0.1 \
  --push-port "$PUSH_PORT" --http-port "$CP_HTTP_PORT" --debounce 50ms
wait_http "$NS_S" "http://127.0.0.1:$CP_HTTP_PORT/ready" 20 "${PIDS[control]}" || die "weft-control did not become ready: $(tail -5 "$TMP/control.log")"
in_s curl -s --max-time 3 "http://127.0.0.1:$CP_HTTP_PORT/api/v1/status" >"$RESULTS/control-status.json" || true
python3 - "$RESULTS/control-status.json" <<'PY' || die "weft-control did not accept the config: $(cat "$RESULTS/control-status.json")"
import json, sys
c = json.load(open(sys.argv[1]))["config"]
assert c["state"] == "valid" and c["rejectedCount"] == 0 and not c["warnings"], c
PY
log "weft-control up, config valid"

# ---------------------------------------------------------------- the sidecar
# shellcheck disable=SC2086
start_bg weft bash -c 'cd "$1" && shift && exec "$@"' _ "$TMP/cache" \
  ip netns exec "$NS_C" setpriv --reuid="$WEFT_UID" --regid="$WEFT_UID" --clear-groups \
  "$WEFT" run $WEFT_RUN_ARGS \
  --control-plane "$SERVER_IP:$PUSH_PORT" --token-file "$TMP/token" --trust-bundle "$TMP/ca/bundle.crt" \
  --cache-dir "$TMP/cache" --pod-name client-0 --pod-namespace demo --service-account client --pod-ip "$CLIENT_IP"
wait_http "$NS_C" "http://127.0.0.1:$ADMIN_PORT/ready" 60 "${PIDS[weft]}" ||
  die "weft-proxy did not become ready (identity + config): $(tail -5 "$TMP/weft.log"; in_c curl -s --max-time 2 "http://127.0.0.1:$ADMIN_PORT/ready")"
log "weft-proxy ready (pid ${PIDS[weft]}), connected to weft-control"

# Warm-up through the capture: the first request to the ClusterIP subscribes demo/web.
weft_rules_on || die "weft-proxy init failed: $(tail -3 "$TMP/weft-init.log")"
in_c iptables -t nat -S >"$RESULTS/weft-nat-rules.txt" 2>&1 || true
wait_http "$NS_C" "http://$CLUSTER_IP/" 20 "${PIDS[weft]}" || die "no 200 from http://$CLUSTER_IP/ through the sidecar: $(tail -5 "$TMP/weft.log")"
wait_http "$NS_C" "http://$CLUSTER_IP:8080/" 20 "${PIDS[weft]}" --http2-prior-knowledge || die "no 200 from h2c http://$CLUSTER_IP:8080/ through the sidecar"
ok=0
for ((i = 0; i < 50; i++)); do
  in_c curl -s --max-time 2 "http://127.0.0.1:$ADMIN_PORT/config" >"$RESULTS/weft-config.json" 2>/dev/null || true
  if why=$(routed_config_ok "$RESULTS/weft-config.json" "$SERVER_IP"); then ok=1; break; fi
  sleep 0.2
done
((ok)) || die "the sidecar's /config does not show the routed Service: $why"
body=$(in_c curl -s --max-time 3 "http://$CLUSTER_IP/") || true
[[ $body == hello ]] || die "routed request answered '${body:0:80}', not hello"
body=$(in_c curl -s --max-time 3 "http://$SERVER_IP/") || true
[[ $body == hello ]] || die "pass-through request answered '${body:0:80}', not hello"
captured=$(weft_captured)
((captured < 0 || captured >= 3)) || die "only $captured connections were captured: the sidecar is not in the path"
weft_rules_off
in_s curl -s --max-time 3 "http://127.0.0.1:$CP_HTTP_PORT/api/v1/proxies" >"$RESULTS/control-proxies.json" || true
log "sidecar holds demo/web (routes web, web-h2c; endpoint $SERVER_IP) and routes to it"

# ---------------------------------------------------------------- HTTP/1 (wrk)
url_for() {
  case $1 in
    routed) echo "http://$CLUSTER_IP:80/" ;;
    passthrough | direct) echo "http://$SERVER_IP:80/" ;;
    haproxy) echo "http://127.0.0.1:$HAPROXY_PORT/" ;;
  esac
}
wrk_slot() { # CONFIG ROUND
  local cfg=$1 r=$2 url out rps
  url=$(url_for "$cfg")
  out=$RAW/wrk-$cfg-r$r.txt
  if ((WARMUP > 0)); then
    run_fg timeout -k 5 $((WARMUP + 20)) ip netns exec "$NS_C" wrk -t1 -c"$CONNS" -d"${WARMUP}s" --timeout 5s "$url" >/dev/null 2>&1 || true
  fi
  local pid c0=
  pid=$(proxy_pid "$cfg")
  [[ -n $pid ]] && c0=$(cpu_ticks "$pid")
  if ! run_fg timeout -k 5 $((DURATION + 30)) ip netns exec "$NS_C" \
    wrk -t1 -c"$CONNS" -d"${DURATION}s" --timeout 5s --latency -s "$HERE/wrk_report.lua" "$url" >"$out" 2>&1; then
    note "wrk $cfg round $r exited non-zero (see raw/$(basename "$out"))"
  fi
  cpu_record "$pid" "$c0" "$RAW/cpu-wrk-$cfg-r$r.txt"
  rps=$(sed -n 's/.*"rps":\([0-9.]*\).*/\1/p' "$out")
  log "wrk  round $r/$REPEATS  $(printf '%-12s' "$cfg") ${rps:-?} req/s"
}
sidecar_slot() { # FN CONFIG ROUND
  local c
  weft_rules_on || note "weft-proxy init exited non-zero ($2 round $3)"
  "$1" "$2" "$3"
  c=$(weft_captured)
  ((c < 0 || c >= CONNS)) || note "$2 round $3: only $c connections were captured (expected >= $CONNS)"
  weft_rules_off
}

CONFIGS=(routed passthrough haproxy direct)
log "HTTP/1: ${CONFIGS[*]} × $REPEATS, interleaved"
for ((r = 1; r <= REPEATS; r++)); do
  for cfg in "${CONFIGS[@]}"; do
    case $cfg in
      routed | passthrough) sidecar_slot wrk_slot "$cfg" "$r" ;;
      *) wrk_slot "$cfg" "$r" ;;
    esac
    alive "${PIDS[weft]}" || die "weft-proxy died: $(tail -5 "$TMP/weft.log")"
  done
done

# ---------------------------------------------------------------- HTTP/2 (h2load, h2c prior knowledge)
h2_slot() { # CONFIG ROUND
  local cfg=$1 r=$2 out rps warm=() url="http://$SERVER_IP:8080/"
  [[ $cfg == routed ]] && url="http://$CLUSTER_IP:8080/"
  out=$RAW/h2-$cfg-r$r.txt
  ((WARMUP > 0)) && warm=(--warm-up-time="$WARMUP")
  # The proxy's CPU from the end of h2load's warm-up (sampled WARMUP s after its start) to its end.
  local pid c0=
  pid=$(proxy_pid "$cfg")
  rm -f "$TMP/cpu0"
  if [[ -n $pid ]]; then (sleep "$WARMUP"; cpu_ticks "$pid" >"$TMP/cpu0") & SAMPLER=$!; fi
  if ! run_fg timeout -k 5 $((DURATION + WARMUP + 30)) ip netns exec "$NS_C" \
    h2load -t1 -c"$H2_CONNS" -m"$H2_STREAMS" -D "$DURATION" "${warm[@]}" "$url" >"$out" 2>&1; then
    note "h2load $cfg round $r exited non-zero (see raw/$(basename "$out"))"
  fi
  if [[ -n $pid ]]; then wait "$SAMPLER" 2>/dev/null || true; SAMPLER=; c0=$(cat "$TMP/cpu0" 2>/dev/null); fi
  cpu_record "$pid" "$c0" "$RAW/cpu-h2-$cfg-r$r.txt"
  rps=$(sed -n 's/^finished in [^,]*, \([0-9.]*\) req\/s.*/\1/p' "$out")
  log "h2   round $r/$REPEATS  $(printf '%-12s' "$cfg") ${rps:-?} req/s"
}
if ((DO_H2)); then
  H2CONF=(routed passthrough direct)
  log "HTTP/2: ${H2CONF[*]} × $REPEATS, interleaved"
  for ((r = 1; r <= REPEATS; r++)); do
    for cfg in "${H2CONF[@]}"; do
      case $cfg in
        routed | passthrough) sidecar_slot h2_slot "$cfg" "$r" ;;
        *) h2_slot "$cfg" "$r" ;;
      esac
      alive "${PIDS[weft]}" || die "weft-proxy died: $(tail -5 "$TMP/weft.log")"
    done
  done
fi

in_c curl -s --max-time 3 "http://127.0.0.1:$ADMIN_PORT/metrics" >"$RAW/weft-metrics.txt" 2>/dev/null || true
in_c curl -s --max-time 3 "http://127.0.0.1:$ADMIN_PORT/config" >"$RAW/weft-config-end.json" 2>/dev/null || true
meta mem_weft_peak_kb "$(awk '/^VmHWM:/ {print $2}' "/proc/${PIDS[weft]}/status" 2>/dev/null)"
meta loadavg_end "$(cut -d' ' -f1-3 /proc/loadavg)"
python3 "$HERE/routed_report.py" "$RESULTS"
