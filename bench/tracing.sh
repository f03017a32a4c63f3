#!/usr/bin/env bash
# bench/tracing.sh — what per-request tracing costs on the full mesh hop (issue 12):
# client → sidecar → mesh TLS → sidecar → nginx with the MeshConfig's trace sampling at 1.0
# (every request a CLIENT and a SERVER span, exported to weft-control's OTLP intake) and at
# 0 (no spans), against no proxy (direct).
#
# Usage: sudo bench/tracing.sh [--quick] [--no-instr] [-h|--help]
#
# Topology: a node netns with a bridge (10.216.0.254) and weft-control on it (push, and the
# OTLP/HTTP span intake --otlp-port 4318 on the node address; metrics on 127.0.0.1), and
# two pods on the bridge:
#   client pod 10.216.0.1  load generators; weft-proxy (init + run as uid 2102, client-0)
#   server pod 10.216.0.2  nginx :80 (the meshed app, through the sidecars over mesh TLS)
#                          and :81 (direct, excluded from both pods' capture); weft-proxy
#                          (web-0)
# Both sidecars run with --trace-intake 10.216.0.254:4318 (their spans are POSTed there).
# Config: Pods client-0 and web-0, both meshed; Service demo/web 10.99.0.10 (80 → 80); no
# route; the MeshConfig of control-plane/config with spec.tracing.sampling switched between
# rounds (the config is rewritten, then the run waits until both sidecars applied it: their
# admin /config, config.mesh.traceSampling).
#
# Setups (interleaved A B C A B C …, medians of the repeats):
#   direct          10.216.0.2:81, no proxy
#   weft-off        10.99.0.10:80 through both sidecars, tracing off (both restarted with
#                   --trace-intake off: no span recorded, no head scanned)
#   weft-sampled    the same, tracing on (--trace-intake weft-control), sampling 1.0
#   weft-null       sampling 1.0, both sidecars exporting to a discarding intake (nginx
#                   on the node answering 200): the sidecars' own cost, without
#                   weft-control's intake on the same 2 cores
#   weft-unsampled  the same, sampling 0
#   (both sidecars are restarted before every weft round, and a wrk round follows 2 s of
#   the same load, not measured)
# Measured:
#   1. throughput: wrk, 32 connections, BENCH_DURATION s per round; requests per second and
#      each setup's ratio to weft-off: the cost of tracing = 1 − sampled/off (the issue's
#      figure), and of sampling 0 = 1 − unsampled/off, of the medians and per round.
#   2. latency at a fixed rate, 1,000 req/s over 4 keep-alive connections (h2load --h1
#      --rps, per-request log): p50 and p99, and what each adds over weft-off.
#   3. instructions per request (callgrind, unless --no-instr): the client sidecar
#      restarted under valgrind, whole process (start-up included in both: compare the
#      two), BENCH_INSTR_N requests on 8 keep-alive connections to the Service (their
#      handshakes included), then 2 s for the last span batch to go out; with sampling
#      1.0, with 0, and with tracing off (--trace-intake off), and the differences per
#      request.
#   4. span counters around every weft round of 1 and 2 (read 2 s after the round, when the
#      sidecars' 1 s batches have gone): both sidecars' weft_spans_exported_total and
#      weft_spans_dropped_total{reason=queue_full|export_failed} (admin /metrics), and
#      weft-control's weft_control_spans_received_total, so the report shows the spans
#      really arrived and whether any were dropped; and the CPU time (utime+stime, /proc) of
#      both sidecars and weft-control over the same interval (the intake shares the cores).
#
# Report (Markdown) to stdout and bench/results/tracing-<UTC time>/report.md (gitignored),
# with the raw outputs. Everything is removed on exit (also on error or Ctrl-C). A full run
# takes about 5 minutes, --quick about 1.
#
# Environment (defaults: full / --quick):
#   BENCH_DURATION   seconds per measured load          10 / 3
#   BENCH_REPEATS    repeats per setup                  3 / 1
#   BENCH_INSTR_N    requests under callgrind           5000 / 1000
#   WEFT_RELEASE_DIR weft-proxy, weft-control, weftctl  <repo>/.build/release
#   BENCH_CONTROL_ARGS more weft-control flags (experiments: --threads 1, --trace-memory 8MB)
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
    *) echo "tracing.sh: unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
if ((QUICK)); then d_dur=3 d_rep=1 d_n=1000; else d_dur=10 d_rep=3 d_n=5000; fi
DURATION=${BENCH_DURATION:-$d_dur}
REPEATS=${BENCH_REPEATS:-$d_rep}
INSTR_N=${BENCH_INSTR_N:-$d_n}
REL=${WEFT_RELEASE_DIR:-$ROOT/.build/release}
for v in DURATION REPEATS INSTR_N; do
  [[ ${!v} =~ ^[0-9]+$ ]] || { echo "tracing.sh: $v must be a non-negative integer" >&2; exit 2; }
done
((DURATION >= 1 && DURATION <= 120 && REPEATS >= 1 && REPEATS <= 10 && INSTR_N >= 100 && INSTR_N <= 100000)) ||
  { echo "tracing.sh: duration 1..120 s, repeats 1..10, instructions requests 100..100000" >&2; exit 2; }

NODE_IP=10.216.0.254 C_IP=10.216.0.1 S_IP=10.216.0.2 CLUSTER_IP=10.99.0.10
PUSH_PORT=15012 CP_HTTP=15014 OTLP_PORT=4318 ADMIN=15000 NULL_PORT=4319
RATE=1000

exec 7>&1 8>&2
log() { printf '[tracing %s] %s\n' "$(date +%H:%M:%S)" "$*" >&8; }
die() { log "ERROR: $*"; exit 1; }
((EUID == 0)) || die "needs root (network namespaces, iptables)"
for t in ip wrk h2load nginx curl python3 setpriv objcopy cc timeout flock; do
  command -v "$t" >/dev/null || die "missing $t (apt: iproute2 wrk nghttp2-client nginx-light curl python3 util-linux binutils gcc)"
done
((DO_INSTR)) && { command -v valgrind >/dev/null && command -v callgrind_annotate >/dev/null || die "missing valgrind (or --no-instr)"; }
for b in weft-proxy weft-control weftctl; do [[ -x $REL/$b ]] || die "$REL/$b missing (scripts/build-release.sh)"; done
"$REL/weft-proxy" run --help 2>&1 | grep -q -- '--trace-intake' || die "$REL/weft-proxy has no --trace-intake (rebuild)"
exec 9>/run/lock/weft-bench.lock
flock -n 9 || die "another bench run holds /run/lock/weft-bench.lock"
ulimit -n "$(ulimit -Hn)"

ID=$$ N=weftt-n-$$ C=weftt-c-$$ S=weftt-s-$$
declare -A PIDS=()
TMP=$(mktemp -d /tmp/weft-tracing.XXXXXX)
chmod 755 "$TMP"
STAMP=$(date -u +%Y%m%d-%H%M%S)
RESULTS=$HERE/results/tracing-$STAMP RAW=$HERE/results/tracing-$STAMP/raw
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
  cp -r "$TMP/config" "$RESULTS/config" 2>/dev/null
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

# ---------------------------------------------------------------- binaries, CA, config
mkdir -p "$TMP/bin"
for b in weft-proxy weft-control weftctl; do cp "$REL/$b" "$TMP/bin/"; done
chmod 755 "$TMP/bin" "$TMP/bin"/*
WEFTCTL=$TMP/bin/weftctl
"$WEFTCTL" ca init --out "$TMP/ca" >"$TMP/ca.log" 2>&1 || die "weftctl ca init: $(tail -3 "$TMP/ca.log")"
chmod 755 "$TMP/ca"; chmod 644 "$TMP/ca/bundle.crt"
head -c 24 /dev/urandom | base64 >"$TMP/token"; chmod 644 "$TMP/token"
SAMPLING=1.0
write_mesh() { # the MeshConfig of control-plane/config with spec.tracing.sampling: $SAMPLING
  local dir=$TMP/config
  mkdir -p "$dir"
  sed "s/^    sampling: .*$/    sampling: $SAMPLING/" "$ROOT/control-plane/config/mesh.yaml" >"$dir/mesh.yaml.tmp"
  grep -q "^  tracing:" "$dir/mesh.yaml.tmp" && grep -q "^    sampling: $SAMPLING$" "$dir/mesh.yaml.tmp" ||
    die "control-plane/config/mesh.yaml: no tracing.sampling line"
  mv "$dir/mesh.yaml.tmp" "$dir/mesh.yaml"
}
write_mesh
cat >"$TMP/config/bench.yaml" <<EOF
apiVersion: v1
kind: Pod
metadata: {name: client-0, namespace: demo, labels: {app: client}}
spec: {serviceAccountName: client, containers: [{name: app}, {name: weft-proxy}]}
status: {phase: Running, podIP: $C_IP, podIPs: [{ip: $C_IP}], conditions: [{type: Ready, status: "True"}]}
---
apiVersion: v1
kind: Pod
metadata: {name: web-0, namespace: demo, labels: {app: web}}
spec: {serviceAccountName: web, containers: [{name: app}, {name: weft-proxy}]}
status: {phase: Running, podIP: $S_IP, podIPs: [{ip: $S_IP}], conditions: [{type: Ready, status: "True"}]}
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: demo}
spec:
  clusterIP: $CLUSTER_IP
  clusterIPs: [$CLUSTER_IP]
  ports: [{name: http, port: 80, targetPort: 80, protocol: TCP}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: web-1, namespace: demo, labels: {kubernetes.io/service-name: web}}
addressType: IPv4
ports: [{name: http, port: 80, protocol: TCP}]
endpoints:
- addresses: [$S_IP]
  conditions: {ready: true, serving: true, terminating: false}
  targetRef: {kind: Pod, name: web-0, namespace: demo}
EOF

# ---------------------------------------------------------------- topology
log "results: ${RESULTS#"$ROOT"/}; duration ${DURATION}s, repeats $REPEATS"
for ns in "$N" "$C" "$S"; do ip netns add "$ns"; ip -n "$ns" link set lo up; done
ip -n "$N" link add br0 type bridge
ip -n "$N" addr add "$NODE_IP/24" dev br0
ip -n "$N" link set br0 up
for pod in "$C:$C_IP:c" "$S:$S_IP:s"; do
  IFS=: read -r ns ip tag <<<"$pod"
  ip -n "$N" link add "t$tag$ID" type veth peer name eth0 netns "$ns"
  ip -n "$N" link set "t$tag$ID" master br0 up
  ip -n "$ns" addr add "$ip/24" dev eth0
  ip -n "$ns" link set eth0 up
  ip -n "$ns" route add default via "$NODE_IP"
done
meta date "$(date -u '+%Y-%m-%d %H:%M UTC')"
meta cpus "$(nproc)"
meta duration "$DURATION"
meta repeats "$REPEATS"
meta rate "$RATE"
meta loadavg_start "$(cut -d' ' -f1-3 /proc/loadavg)"
meta git "$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo none)"
meta git_dirty "$(git -C "$ROOT" --no-optional-locks status --porcelain --untracked-files=no -- Sources 2>/dev/null | wc -l)"

# nginx (server pod)
mkdir -p "$TMP/ng"
cat >"$TMP/nginx.conf" <<EOF
worker_processes 1; daemon off; pid $TMP/ng/nginx.pid; error_log $TMP/ng/error.log warn;
events { worker_connections 8192; }
http {
  access_log off; keepalive_requests 1000000; keepalive_timeout 300s; default_type text/plain;
  client_body_temp_path $TMP/ng/b; proxy_temp_path $TMP/ng/p; fastcgi_temp_path $TMP/ng/f;
  uwsgi_temp_path $TMP/ng/u; scgi_temp_path $TMP/ng/s;
  server { listen 80 backlog=4096; listen 81 backlog=4096;
    location / { return 200 "hello\n"; } }
}
EOF
start_bg nginx ip netns exec "$S" nginx -p "$TMP/ng" -c "$TMP/nginx.conf" -e "$TMP/ng/error.log"

# A span intake that takes every export and discards it (nginx answering 200 after reading
# the body), on the node address: weft-null's sidecars export there, so the sidecars' own
# cost shows apart from weft-control's intake sharing the cores.
cat >"$TMP/null.conf" <<EOF
worker_processes 1; daemon off; pid $TMP/ng/null.pid; error_log $TMP/ng/null-error.log warn;
events { worker_connections 1024; }
http {
  access_log off; keepalive_requests 1000000; client_max_body_size 8m; client_body_buffer_size 8m;
  client_body_temp_path $TMP/ng/nb; proxy_temp_path $TMP/ng/np; fastcgi_temp_path $TMP/ng/nf;
  uwsgi_temp_path $TMP/ng/nu; scgi_temp_path $TMP/ng/ns;
  server { listen $NODE_IP:$NULL_PORT; location / { return 200 ""; } }
}
EOF
start_bg null-intake ip netns exec "$N" nginx -p "$TMP/ng" -c "$TMP/null.conf" -e "$TMP/ng/null-error.log"

# control plane (node) with its span intake, sidecars (pods) exporting to it
start_bg control ip netns exec "$N" "$TMP/bin/weft-control" --config "$TMP/config" --ca "$TMP/ca" \
  --token-file "$TMP/token" --host "$NODE_IP" --http-host 127.0.0.1 --push-port "$PUSH_PORT" --http-port "$CP_HTTP" \
  --otlp-port "$OTLP_PORT" --debounce 50ms ${BENCH_CONTROL_ARGS:-}
wait_ok "$N" "http://127.0.0.1:$CP_HTTP/ready" 20 || die "weft-control not ready: $(tail -5 "$TMP/control.log")"
# Experiments: a scheduling change for weft-control's threads, e.g. "chrt -a -b -p 0".
[[ -z ${BENCH_CONTROL_SCHED:-} ]] || $BENCH_CONTROL_SCHED "${PIDS[control]}" >/dev/null
in_c "$TMP/bin/weft-proxy" init --exclude-outbound-ports 81 >"$TMP/init-c.log" 2>&1 || die "init (client): $(tail -3 "$TMP/init-c.log")"
in_s "$TMP/bin/weft-proxy" init --exclude-inbound-ports 81 >"$TMP/init-s.log" 2>&1 || die "init (server): $(tail -3 "$TMP/init-s.log")"
sidecar() { # NAME NS POD SA IP [valgrind args...]
  local name=$1 ns=$2 pod=$3 sa=$4 ip=$5
  shift 5
  mkdir -p "$TMP/cache-$pod"; chown 2102:2102 "$TMP/cache-$pod"; chmod 700 "$TMP/cache-$pod"
  start_bg "$name" ip netns exec "$ns" setpriv --reuid=2102 --regid=2102 --clear-groups "$@" \
    "${SIDECAR_BIN:-$TMP/bin/weft-proxy}" run --threads 1 --admin-port "$ADMIN" --admin-host 127.0.0.1 \
    --control-plane "$NODE_IP:$PUSH_PORT" --token-file "$TMP/token" --trust-bundle "$TMP/ca/bundle.crt" \
    --trace-intake "${TRACE_INTAKE:-$NODE_IP:$OTLP_PORT}" \
    --cache-dir "$TMP/cache-$pod" --pod-name "$pod" --pod-namespace demo --service-account "$sa" --pod-ip "$ip"
}
sidecar weft-c "$C" client-0 client "$C_IP"
sidecar weft-s "$S" web-0 web "$S_IP"
wait_ok "$C" "http://127.0.0.1:$ADMIN/ready" 30 || die "client sidecar not ready: $(tail -5 "$TMP/weft-c.log")"
wait_ok "$S" "http://127.0.0.1:$ADMIN/ready" 30 || die "server sidecar not ready: $(tail -5 "$TMP/weft-s.log")"

# Does the sidecar in NS apply trace sampling VALUE (its admin /config)?
sampling_is() { # NS VALUE
  ip netns exec "$1" curl -s --max-time 2 "http://127.0.0.1:$ADMIN/config" 2>/dev/null | python3 -S -c '
import json, sys
try:
    v = json.load(sys.stdin)["config"]["mesh"]["traceSampling"]
except Exception:
    sys.exit(1)
sys.exit(0 if abs(float(v) - float(sys.argv[1])) < 1e-9 else 1)' "$2"
}
# Both sidecars applied the sampling $SAMPLING (within SECONDS)?
wait_sampling() { # SECONDS
  local i
  for ((i = 0; i < $1 * 5; i++)); do
    sampling_is "$C" "$SAMPLING" && sampling_is "$S" "$SAMPLING" && return 0
    sleep 0.2
  done
  return 1
}
# Switches MeshConfig spec.tracing.sampling and waits until both sidecars apply it.
use_sampling() {
  [[ $SAMPLING == "$1" ]] && return 0
  SAMPLING=$1
  write_mesh
  wait_sampling 20 || die "the sidecars did not apply trace sampling $SAMPLING"
  in_n "$WEFTCTL" config client-0 --control-plane "127.0.0.1:$CP_HTTP" >"$RAW/weftctl-config-$SAMPLING.txt" 2>&1 || true
}
wait_sampling 20 || die "the sidecars do not apply trace sampling $SAMPLING at start"
for url in "http://$CLUSTER_IP/" "http://$S_IP:81/"; do
  wait_ok "$C" "$url" 20 || die "no 200 from $url (client pod)"
done
tls0=$(in_s curl -s "http://127.0.0.1:$ADMIN/metrics" | awk '$1 ~ /^weft_connections_total\{direction="inbound",protocol="tls"\}/ {print $2}')
((${tls0:-0} >= 1)) || die "the server's sidecar saw ${tls0:-0} mesh TLS connections: the path is not mesh TLS"
in_n "$WEFTCTL" config client-0 --control-plane "127.0.0.1:$CP_HTTP" >"$RAW/weftctl-config-$SAMPLING.txt" 2>&1 || true
grep -q "trace sampling" "$RAW/weftctl-config-$SAMPLING.txt" || log "weftctl config client-0 shows no trace sampling (see raw/)"
log "both paths answer; the weft path is mesh TLS (server sidecar: $tls0 inbound TLS connections); sampling $SAMPLING applied"

# The span counters of both sidecars and weft-control, as TAG_<name>=<value> lines.
span_counters() { # TAG
  local side ns
  for side in client:"$C" server:"$S"; do
    ns=${side#*:}
    ip netns exec "$ns" curl -s --max-time 5 "http://127.0.0.1:$ADMIN/metrics" 2>/dev/null |
      awk -v p="$1_${side%%:*}" '
        $1 == "weft_spans_exported_total" {print p "_exported=" $2}
        $1 ~ /^weft_spans_dropped_total\{.*reason="queue_full"/ {print p "_queue_full=" $2}
        $1 ~ /^weft_spans_dropped_total\{.*reason="export_failed"/ {print p "_export_failed=" $2}' || true
  done
  in_n curl -s --max-time 5 "http://127.0.0.1:$CP_HTTP/metrics" 2>/dev/null |
    awk -v p="$1_control" '
      $1 == "weft_control_spans_received_total" {print p "_received=" $2}
      $1 == "weft_control_spans_rejected_total" {print p "_rejected=" $2}' || true
}

# CPU time (utime+stime, clock ticks) of both sidecars and weft-control, as TAG_<name>=<value>
# lines, with the wall clock.
HZ=$(getconf CLK_TCK)
meta clk_tck "$HZ"
cpu_ticks() { # TAG
  local who pid
  ((CPU_OK)) || return 0
  echo "$1_time=$(date +%s.%N)"
  for who in weft-c:client weft-s:server control:control; do
    pid=${PIDS[${who%%:*}]:-}
    [[ -n $pid && -r /proc/$pid/stat ]] || continue
    awk -v k="$1_${who#*:}_cpu" '{print k "=" $14 + $15}' "/proc/$pid/stat" 2>/dev/null || true
  done
}
CPU_OK=1
[[ $(cat "/proc/${PIDS[weft-c]}/comm" 2>/dev/null) == weft-proxy && $(cat "/proc/${PIDS[weft-s]}/comm" 2>/dev/null) == weft-proxy &&
  $(cat "/proc/${PIDS[control]}/comm" 2>/dev/null) == weft-control ]] ||
  { CPU_OK=0; log "the started pids are not the weft processes themselves: no CPU times in the report"; }

# Restarts both sidecars with tracing on (--trace-intake weft-control) or off. Every weft
# round starts so, the three setups alike: sidecars that kept their connections and heap
# from earlier rounds ran some percent faster than fresh ones.
INTAKE=on
restart_sidecars() { # on|off|null
  local ti=""
  INTAKE=$1
  case $INTAKE in off) ti=off ;; null) ti=$NODE_IP:$NULL_PORT ;; esac
  stop_bg weft-c
  stop_bg weft-s
  TRACE_INTAKE=$ti sidecar weft-c "$C" client-0 client "$C_IP"
  TRACE_INTAKE=$ti sidecar weft-s "$S" web-0 web "$S_IP"
  wait_ok "$C" "http://127.0.0.1:$ADMIN/ready" 30 || die "client sidecar not ready: $(tail -5 "$TMP/weft-c.log")"
  wait_ok "$S" "http://127.0.0.1:$ADMIN/ready" 30 || die "server sidecar not ready: $(tail -5 "$TMP/weft-s.log")"
  wait_sampling 20 || die "the restarted sidecars do not apply trace sampling $SAMPLING"
  wait_ok "$C" "http://$CLUSTER_IP/" 20 || die "no answer through the restarted sidecars"
}
# Before a round of setup $1: the sidecars (restarted) and the MeshConfig it needs, and for
# a wrk round WARMUP seconds of the same load, not measured (connections, pools, heap).
WARMUP=2
prepare() { # SETUP PART
  case $1 in
    weft-off) restart_sidecars off ;;
    weft-sampled) use_sampling 1.0; restart_sidecars on ;;
    weft-null) use_sampling 1.0; restart_sidecars null ;;
    weft-unsampled) use_sampling 0; restart_sidecars on ;;
    *) return 0 ;;
  esac
  if [[ $2 == wrk ]]; then
    in_c timeout -k 5 $((WARMUP + 20)) wrk -t1 -c32 -d"${WARMUP}s" --timeout 5s "$(url_for "$1")" >/dev/null 2>&1 || true
  fi
}
url_for() {
  case $1 in
    weft-*) echo "http://$CLUSTER_IP:80/" ;;
    direct) echo "http://$S_IP:81/" ;;
  esac
}
# A round of a load: the span counters around it for the weft setups (read 2 s after it).
round() { # PART CFG R COMMAND...
  local part=$1 cfg=$2 r=$3 f=$RAW/spans-$1-$2-r$3.env
  shift 3
  if [[ $cfg == weft-* ]]; then
    { echo "sampling=$([[ $INTAKE == off ]] && echo off || echo "$SAMPLING")"; span_counters before; cpu_ticks before; } >"$f"
  fi
  "$@" || log "$part $cfg round $r: the load exited non-zero"
  if [[ $cfg == weft-* ]]; then sleep 2; { span_counters after; cpu_ticks after; } >>"$f"; fi
}
SETUPS=(direct weft-off weft-sampled weft-null weft-unsampled)

# ---------------------------------------------------------------- 1. throughput
for ((r = 1; r <= REPEATS; r++)); do
  for cfg in "${SETUPS[@]}"; do
    prepare "$cfg" wrk
    out=$RAW/wrk-$cfg-r$r.txt
    round wrk "$cfg" "$r" in_c timeout -k 5 $((DURATION + 30)) wrk -t1 -c32 -d"${DURATION}s" --timeout 5s \
      "$(url_for "$cfg")" >"$out" 2>&1
    log "wrk round $r $cfg: $(grep Requests/sec "$out" || echo 'no result')"
  done
done

# ---------------------------------------------------------------- 2. latency at a fixed rate
for ((r = 1; r <= REPEATS; r++)); do
  for cfg in "${SETUPS[@]}"; do
    prepare "$cfg" rate
    out=$RAW/rate$RATE-$cfg-r$r
    round rate "$cfg" "$r" in_c timeout -k 5 $((DURATION + 30)) h2load --h1 -t1 -c4 -m1 --rps $((RATE / 4)) \
      -D "$DURATION" --warm-up-time=1 --log-file="$out.log" "$(url_for "$cfg")" >"$out.txt" 2>&1
    log "rate $RATE round $r $cfg: $(grep -o 'finished in.*' "$out.txt" | head -1)"
  done
done
span_counters end >"$RAW/spans-end.env"

# ---------------------------------------------------------------- 3. instructions per request (callgrind)
instr_phase() { # TAG: the client sidecar under callgrind, sampling $SAMPLING
  local tag=$1 cg=$TMP/cg/cg-$1.out i vg
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
  wait_ok "$C" "http://127.0.0.1:$ADMIN/ready" 120 || die "client sidecar under valgrind not ready: $(tail -5 "$TMP/weft-c.log")"
  wait_sampling 60 || die "the sidecars (the client's under valgrind) do not apply trace sampling $SAMPLING"
  wait_ok "$C" "http://$CLUSTER_IP/" 60 || die "no answer through the sidecar under valgrind"
  { echo "sampling=$SAMPLING"; span_counters before; } >"$RAW/instr-$tag.spans"
  in_c timeout -k 5 600 h2load --h1 -n "$INSTR_N" -c 8 "http://$CLUSTER_IP/" >"$RAW/instr-$tag.txt" 2>&1 || true
  sleep 2  # the last span batch (1 s timer) goes out
  span_counters after >>"$RAW/instr-$tag.spans"
  vg=$(pgrep -f "callgrind-out-file=$cg" | head -1 || true)
  [[ -n $vg ]] && kill -INT "$vg" 2>/dev/null || true
  for ((i = 0; i < 100; i++)); do [[ -s $cg ]] && break; sleep 0.3; done
  sleep 2
  stop_bg weft-c
  callgrind_annotate "$cg" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}' >"$RAW/instr-$tag.total" || true
  cp "$cg" "$RAW/callgrind-$tag.out" 2>/dev/null || true  # bench/callgrind-diff.py RAW/callgrind-unsampled.out RAW/callgrind-sampled.out
  log "instructions ($tag): $(cat "$RAW/instr-$tag.total") for $INSTR_N requests ($(grep -o '[0-9]* succeeded' "$RAW/instr-$tag.txt" || echo '? succeeded'))"
}
if ((DO_INSTR)); then
  meta instr_requests "$INSTR_N"
  use_sampling 1.0
  instr_phase sampled
  SAMPLING=0
  write_mesh  # the client sidecar is down: instr_phase waits until the new one applies it
  instr_phase unsampled
  # Tracing off (`--trace-intake off`): what sampling 0 costs against no tracing at all.
  TRACE_INTAKE=off instr_phase off
fi
meta loadavg_end "$(cut -d' ' -f1-3 /proc/loadavg)"

# ---------------------------------------------------------------- report
python3 - "$RESULTS" <<'PY' | tee "$RESULTS/report.md"
import glob, os, re, statistics, sys

results = sys.argv[1]
raw = os.path.join(results, "raw")
SETUPS = ("direct", "weft-off", "weft-sampled", "weft-null", "weft-unsampled")
LABELS = {"direct": "direct", "weft-off": "weft, tracing off", "weft-sampled": "weft, sampling 1.0",
          "weft-null": "weft, sampling 1.0, discarding intake", "weft-unsampled": "weft, sampling 0"}
WEFT = ("weft-off", "weft-sampled", "weft-null", "weft-unsampled")


def kv(path):
    out = {}
    if os.path.exists(path):
        for line in open(path):
            if "=" in line:
                k, v = line.rstrip("\n").split("=", 1)
                out[k] = v
    return out


def num(x):
    try:
        return float(x)
    except (TypeError, ValueError):
        return None


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def fmt(x, digits=2, unit=""):
    return "?" if x is None else ("{:,.%df}" % digits).format(x) + unit


def pct(x):
    return "?" if x is None else "{:+.1%}".format(x)


def percentile(values, q):
    if not values:
        return None
    values = sorted(values)
    return values[max(0, min(len(values) - 1, int(round(q * (len(values) - 1)))))]


def rnum(path):
    return int(re.search(r"-r(\d+)\.", path).group(1))


def wrk(path):
    text = open(path, errors="replace").read()
    m = re.search(r"Requests/sec:\s+([0-9.]+)", text)
    n = re.search(r"(\d+) requests in", text)
    errors = 0
    for pat in (r"Non-2xx or 3xx responses: (\d+)", r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)"):
        for g in re.findall(pat, text):
            errors += sum(int(x) for x in (g if isinstance(g, tuple) else (g,)))
    return (float(m.group(1)) if m else None), (int(n.group(1)) if n else None), errors


def h2load_requests(path):
    m = re.search(r"requests: (\d+) total, \d+ started, \d+ done, (\d+) succeeded", open(path, errors="replace").read())
    return int(m.group(2)) if m else None


m = kv(os.path.join(results, "meta.env"))
dirty = m.get("git_dirty", "0")
print("## Per-request tracing cost (`bench/tracing.sh`), %s, %s cores, load %s → %s, git %s%s\n" % (
    m.get("date", "?"), m.get("cpus", "?"), m.get("loadavg_start", "?"), m.get("loadavg_end", "?"), m.get("git", "?"),
    "" if dirty in ("", "0") else " (+%s changed files under Sources/)" % dirty))
print("client → sidecar → mesh TLS → sidecar → nginx; weft-sampled: MeshConfig tracing.sampling 1.0 (a CLIENT and a "
      "SERVER span per request, exported to weft-control's OTLP intake); weft-null: the same, exported to a "
      "discarding intake (nginx on the node); weft-unsampled: sampling 0; weft-off: both "
      "sidecars with --trace-intake off; both sidecars restarted before every weft round, a wrk round after 2 s of "
      "the same load not measured; direct: no proxy. "
      "%s s per round, %s repeats interleaved, medians of the repeats.\n" % (m.get("duration"), m.get("repeats")))

# 1. throughput
res = {}
for cfg in SETUPS:
    rounds = {}
    errs = 0
    for path in glob.glob(os.path.join(raw, "wrk-%s-r*.txt" % cfg)):
        v, _, e = wrk(path)
        rounds[rnum(path)] = v
        errs += e
    if rounds:
        res[cfg] = (med(rounds.values()), errs, rounds)
BASE = "weft-off" if "weft-off" in res else "weft-unsampled"
base = res.get(BASE, (None,))[0]
print("Throughput (wrk, 1 thread, 32 keep-alive connections):\n")
print("| setup | rps (median) | × %s | errors | rounds |" % BASE)
print("|---|---:|---:|---:|---|")
for cfg in [c for c in SETUPS if c in res]:
    v, errs, rounds = res[cfg]
    ratio = None if v is None or not base else v / base
    print("| %s | %s | %s | %d | %s |" % (LABELS[cfg], fmt(v, 0), fmt(ratio, 3), errs,
                                         ", ".join(fmt(rounds[k], 0) for k in sorted(rounds))))
def cost_line(what, a, b):
    if a not in res or b not in res:
        return
    s, u = res[a], res[b]
    cost = None if s[0] is None or not u[0] else 1 - s[0] / u[0]
    per_round = [1 - s[2][k] / u[2][k] for k in sorted(s[2]) if s[2].get(k) and u[2].get(k)]
    print("\n%s (1 − %s/%s): **%s** of the medians; per round: %s." % (
        what, a, b, "?" if cost is None else "{:.1%}".format(cost),
        ", ".join("{:.1%}".format(x) for x in per_round) or "?"))


cost_line("Cost of tracing every request against tracing off", "weft-sampled", "weft-off")
cost_line("The sidecars' own part (their spans to a discarding intake) against tracing off", "weft-null",
          "weft-off")
cost_line("Cost of tracing every request against sampling 0", "weft-sampled", "weft-unsampled")
cost_line("Cost of sampling 0 against tracing off", "weft-unsampled", "weft-off")
print()

# 2. latency
rate = int(m.get("rate", "1000"))
rows = {}
for cfg in SETUPS:
    p50s, p99s, counts, fails = [], [], [], 0
    for path in sorted(glob.glob(os.path.join(raw, "rate%d-%s-r*.log" % (rate, cfg)))):
        ok, bad = [], 0
        for line in open(path):
            parts = line.split()
            if len(parts) < 3:
                continue
            if parts[1] == "200":
                ok.append(int(parts[2]))
            else:
                bad += 1
        p50s.append(percentile(ok, 0.50))
        p99s.append(percentile(ok, 0.99))
        counts.append(len(ok))
        fails += bad
    if counts:
        rows[cfg] = (med(p50s), med(p99s), med(counts), fails)
LBASE = "weft-off" if "weft-off" in rows else "weft-unsampled"
print("Latency at %s req/s over 4 keep-alive connections (h2load --h1 --rps, per-request log); added = setup − "
      "%s:\n" % ("{:,}".format(rate), LBASE))
print("| setup | p50 ms | p99 ms | added p50 ms | added p99 ms | requests (median) | failed |")
print("|---|---:|---:|---:|---:|---:|---:|")
u50, u99 = rows.get(LBASE, (None, None))[:2]
for cfg in [c for c in SETUPS if c in rows]:
    p50, p99, n, fails = rows[cfg]
    a50 = None if p50 is None or u50 is None else (p50 - u50) / 1000
    a99 = None if p99 is None or u99 is None else (p99 - u99) / 1000
    print("| %s | %s | %s | %s | %s | %s | %d |" % (
        LABELS[cfg], fmt(p50 and p50 / 1000, 3), fmt(p99 and p99 / 1000, 3),
        "—" if cfg == LBASE else fmt(a50, 3), "—" if cfg == LBASE else fmt(a99, 3),
        fmt(n, 0), fails))
print()

# 4. span counters
KEYS = (("client_exported", "client exported"), ("client_queue_full", "client dropped queue_full"),
        ("client_export_failed", "client dropped export_failed"), ("server_exported", "server exported"),
        ("server_queue_full", "server dropped queue_full"), ("server_export_failed", "server dropped export_failed"),
        ("control_received", "weft-control received"))


def deltas(d):
    out = {}
    for k, _ in KEYS + (("control_rejected", ""),):
        b, a = num(d.get("before_" + k)), num(d.get("after_" + k))
        out[k] = None if a is None else a - (b or 0)
    return out


print("Spans per round (counter deltas from 2 s after the round to before it; requests: answered by the load "
      "generator, h2load's without its 1 s warm-up, whose spans are counted):\n")
print("| load | setup | round | sampling | requests | " + " | ".join(label for _, label in KEYS) + " |")
print("|---|---|---:|---:|---:|" + "---:|" * len(KEYS))
for part, label in (("wrk", "wrk"), ("rate", "%s req/s" % "{:,}".format(rate))):
    for cfg in WEFT:
        for path in sorted(glob.glob(os.path.join(raw, "spans-%s-%s-r*.env" % (part, cfg))), key=rnum):
            r = rnum(path)
            d = kv(path)
            if part == "wrk":
                p = os.path.join(raw, "wrk-%s-r%d.txt" % (cfg, r))
                n = wrk(p)[1] if os.path.exists(p) else None
            else:
                p = os.path.join(raw, "rate%d-%s-r%d.txt" % (rate, cfg, r))
                n = h2load_requests(p) if os.path.exists(p) else None
            dl = deltas(d)
            print("| %s | %s | %d | %s | %s | %s |" % (label, LABELS[cfg], r, d.get("sampling", "?"), fmt(n, 0),
                                                      " | ".join(fmt(dl[k], 0) for k, _ in KEYS)))
# The sidecars restart before every weft round (their counters with them): totals are the
# rounds' sums; weft-control's counters run through.
sums = {}
for path in glob.glob(os.path.join(raw, "spans-*-weft-*-r*.env")):
    for k, v in deltas(kv(path)).items():
        if v is not None:
            sums[k] = sums.get(k, 0) + v
end = kv(os.path.join(raw, "spans-end.env"))
if sums:
    print("\nOver the rounds of parts 1 and 2: the sidecars exported %s (client) and %s (server) spans (to weft-control "
          "or the discarding intake), dropped %s "
          "(queue_full) and %s (export_failed); weft-control received %s in all, rejected %s." % (
              fmt(sums.get("client_exported"), 0), fmt(sums.get("server_exported"), 0),
              fmt((sums.get("client_queue_full") or 0) + (sums.get("server_queue_full") or 0), 0),
              fmt((sums.get("client_export_failed") or 0) + (sums.get("server_export_failed") or 0), 0),
              fmt(num(end.get("end_control_received")), 0), fmt(num(end.get("end_control_rejected")), 0)))
print()

# CPU time over the same intervals
hz = num(m.get("clk_tck")) or 100.0
cpu_rows = []
for part, label in (("wrk", "wrk"), ("rate", "%s req/s" % "{:,}".format(rate))):
    for cfg in WEFT:
        for path in sorted(glob.glob(os.path.join(raw, "spans-%s-%s-r*.env" % (part, cfg))), key=rnum):
            r, d = rnum(path), kv(path)
            t0, t1 = num(d.get("before_time")), num(d.get("after_time"))
            if t0 is None or t1 is None or t1 <= t0:
                continue
            if part == "wrk":
                p = os.path.join(raw, "wrk-%s-r%d.txt" % (cfg, r))
                n = wrk(p)[1] if os.path.exists(p) else None
            else:
                p = os.path.join(raw, "rate%d-%s-r%d.txt" % (rate, cfg, r))
                n = h2load_requests(p) if os.path.exists(p) else None
                n = None if n is None else n + rate  # the 1 s warm-up
            sec = {}
            for who in ("client", "server", "control"):
                a, b = num(d.get("after_%s_cpu" % who)), num(d.get("before_%s_cpu" % who))
                sec[who] = None if a is None or b is None else (a - b) / hz
            known = [v for v in sec.values() if v is not None]
            total = sum(known) if len(known) == 3 else None
            cells = ["{:.0%}".format(v / (t1 - t0)) if v is not None else "?" for v in sec.values()]
            per = [fmt(v * 1e6 / n, 1) if v is not None and n else "?" for v in list(sec.values()) + [total]]
            cpu_rows.append("| %s | %s | %d | %s | %s |" % (label, LABELS[cfg], r, " | ".join(cells), " | ".join(per)))
if cpu_rows:
    print("CPU time over the same intervals (utime+stime from /proc, the round and its 2 s settle), as a share of one "
          "core and per request (1,000 req/s rounds: with the ≈1,000 warm-up requests; the load generator and nginx "
          "not counted):\n")
    print("| load | setup | round | client sidecar | server sidecar | weft-control | client µs/req | server µs/req | "
          "weft-control µs/req | together µs/req |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    print("\n".join(cpu_rows))
    print()

# 3. instructions
n = int(m.get("instr_requests", "0") or 0)
totals = {}
for tag in ("sampled", "unsampled", "off"):
    path = os.path.join(raw, "instr-%s.total" % tag)
    if os.path.exists(path):
        text = open(path).read().strip()
        totals[tag] = int(text) if text.isdigit() else None
if n and totals:
    print("Instructions, client sidecar, whole process (callgrind; start-up, identity and config included in both), "
          "%s requests on 8 keep-alive connections to the Service (their handshakes included), then 2 s for the last "
          "span batch:\n" % "{:,}".format(n))
    print("| sampling | instructions | per request | requests succeeded | spans exported (client) | dropped |")
    print("|---|---:|---:|---:|---:|---:|")
    for tag, label in (("sampled", "1.0"), ("unsampled", "0"), ("off", "tracing off (--trace-intake off)")):
        if tag not in totals:
            continue
        t = totals[tag]
        p = os.path.join(raw, "instr-%s.txt" % tag)
        ok = h2load_requests(p) if os.path.exists(p) else None
        dl = deltas(kv(os.path.join(raw, "instr-%s.spans" % tag)))
        dropped = None if dl["client_queue_full"] is None else dl["client_queue_full"] + (dl["client_export_failed"] or 0)
        print("| %s | %s | %s | %s | %s | %s |" % (label, fmt(t, 0), fmt(t and t / n, 0), fmt(ok, 0),
                                                   fmt(dl["client_exported"], 0), fmt(dropped, 0)))
    if totals.get("sampled") and totals.get("unsampled"):
        print("\nSampling every request adds **%s instructions per request** in the client sidecar (%s)." % (
            fmt((totals["sampled"] - totals["unsampled"]) / n, 0),
            "{:+.1%}".format(totals["sampled"] / totals["unsampled"] - 1)))
    if totals.get("unsampled") and totals.get("off"):
        print("\nSampling 0 against tracing off: **%s instructions per request** (%s)." % (
            fmt((totals["unsampled"] - totals["off"]) / n, 0),
            "{:+.2%}".format(totals["unsampled"] / totals["off"] - 1)))
PY
log "report: ${RESULTS#"$ROOT"/}/report.md"
