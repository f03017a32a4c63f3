#!/usr/bin/env bash
# bench/run.sh — Weft sidecar benchmark: direct vs weft-proxy vs haproxy vs nginx.
#
# Usage: sudo bench/run.sh [--quick] [--no-h2] [--no-instr] [--no-refs-instr] [-h|--help]
#
# Builds its own topology (two network namespaces joined by a veth pair):
#   client netns  10.212.0.1/24  wrk, h2load, weft-proxy (+ its iptables capture),
#                                haproxy on 127.0.0.1:8001 (h2: 8004), nginx proxy on 127.0.0.1:8002
#   server netns  10.212.0.2/24  nginx: :80 HTTP/1.1, :8080 h2c, body "hello\n"
# Every load is bounded in count and time and targets only loopback or the two
# namespace addresses above.  Everything (namespaces, processes, iptables rules,
# temp files) is removed on exit, error or Ctrl-C.
#
# Progress goes to stderr; the Markdown report goes to stdout and, with the raw
# outputs, to bench/results/<UTC timestamp>/ (gitignored).  A full run takes
# about 5 minutes, --quick (3 s, 1 repeat, 5000 counted requests) under one.
# WEFT_PROXY_BIN=bench/mock-weft-proxy.py exercises the weft path without the
# real binary (a slow Python relay: only for testing this script).
#
# Environment overrides (defaults: full run / --quick):
#   BENCH_DURATION        seconds per measured load            10 / 3
#   BENCH_WARMUP          seconds of warm-up before each load  2 / 1
#   BENCH_REPEATS         repeats per configuration            3 / 1
#   BENCH_CONNECTIONS     wrk connections (1 wrk thread)       32
#   BENCH_H2_CONNECTIONS  h2load connections                   32
#   BENCH_H2_STREAMS      h2load max concurrent streams / conn 10
#   BENCH_INSTR_REQUESTS  requests for the instructions count  20000 / 5000
#   BENCH_INSTR_CONNECTIONS  connections for that              8
#   BENCH_INSTR_BUDGET    seconds the counted run may take     40
#                         (the count is lowered to fit, from the warm-up rate)
#   BENCH_INSTR_METHOD    auto | callgrind | perf              auto
#   BENCH_INSTR_REFS      also count haproxy and nginx (1/0)   1
#   WEFT_PROXY_BIN        weft-proxy binary                    <repo>/.build/release/weft-proxy
#   WEFT_UID              uid the proxy runs as (excluded from capture)  2102
#   WEFT_INIT_ARGS        extra args for `weft-proxy init`     (none)
#   WEFT_CLEANUP_ARGS     args for the cleanup call            --cleanup
#   WEFT_RUN_ARGS         args after `weft-proxy run`          --threads 1 --admin-port 15000
#   WEFT_ADMIN_PORT       admin port polled for /ready         15000
#   WEFT_OUTBOUND_PORT    capture port (to check the counters) 15001
set -Eeuo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)

usage() { sed -n '2,/^set -Eeuo/p' "${BASH_SOURCE[0]}" | sed '$d' | sed 's/^# \{0,1\}//'; }

QUICK=0 DO_H2=1 DO_INSTR=1
while (($#)); do
  case $1 in
    --quick) QUICK=1 ;;
    --no-h2) DO_H2=0 ;;
    --no-instr) DO_INSTR=0 ;;
    --no-refs-instr) BENCH_INSTR_REFS=0 ;;
    -h | --help) usage; exit 0 ;;
    *) echo "run.sh: unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done

if ((QUICK)); then d_dur=3 d_warm=1 d_rep=1 d_instr=5000; else d_dur=10 d_warm=2 d_rep=3 d_instr=20000; fi
DURATION=${BENCH_DURATION:-$d_dur}
WARMUP=${BENCH_WARMUP:-$d_warm}
REPEATS=${BENCH_REPEATS:-$d_rep}
CONNS=${BENCH_CONNECTIONS:-32}
H2_CONNS=${BENCH_H2_CONNECTIONS:-32}
H2_STREAMS=${BENCH_H2_STREAMS:-10}
INSTR_REQUESTS=${BENCH_INSTR_REQUESTS:-$d_instr}
INSTR_CONNS=${BENCH_INSTR_CONNECTIONS:-8}
INSTR_METHOD=${BENCH_INSTR_METHOD:-auto}
INSTR_REFS=${BENCH_INSTR_REFS:-1}
INSTR_IDLE_SECS=3
INSTR_WARMUP=300
INSTR_BUDGET=${BENCH_INSTR_BUDGET:-40}
WEFT_BIN=${WEFT_PROXY_BIN:-$ROOT/.build/release/weft-proxy}
WEFT_UID=${WEFT_UID:-2102}
WEFT_INIT_ARGS=${WEFT_INIT_ARGS:-}
WEFT_CLEANUP_ARGS=${WEFT_CLEANUP_ARGS:---cleanup}
WEFT_ADMIN_PORT=${WEFT_ADMIN_PORT:-15000}
WEFT_RUN_ARGS=${WEFT_RUN_ARGS:---threads 1 --admin-port $WEFT_ADMIN_PORT}
WEFT_OUTBOUND_PORT=${WEFT_OUTBOUND_PORT:-15001}

for v in DURATION WARMUP REPEATS CONNS H2_CONNS H2_STREAMS INSTR_REQUESTS INSTR_CONNS INSTR_BUDGET WEFT_UID; do
  [[ ${!v} =~ ^[0-9]+$ ]] || { echo "run.sh: $v must be a non-negative integer (got '${!v}')" >&2; exit 2; }
done
((DURATION >= 1 && DURATION <= 600)) || { echo "run.sh: duration must be 1..600 s" >&2; exit 2; }
((REPEATS >= 1 && REPEATS <= 20)) || { echo "run.sh: repeats must be 1..20" >&2; exit 2; }
((CONNS >= 1 && CONNS <= 1000 && H2_CONNS >= 1 && H2_CONNS <= 1000)) || { echo "run.sh: connections must be 1..1000" >&2; exit 2; }
((INSTR_REQUESTS >= 1 && INSTR_REQUESTS <= 1000000)) || { echo "run.sh: instr requests must be 1..1000000" >&2; exit 2; }
[[ $INSTR_METHOD =~ ^(auto|callgrind|perf)$ ]] || { echo "run.sh: BENCH_INSTR_METHOD must be auto, callgrind or perf" >&2; exit 2; }
((INSTR_CONNS >= 1 && INSTR_CONNS <= INSTR_REQUESTS)) || { echo "run.sh: instr connections must be 1..requests" >&2; exit 2; }

SERVER_IP=10.212.0.2
CLIENT_IP=10.212.0.1
HAPROXY_PORT=8001
HAPROXY_CAPTURE_PORT=8003
HAPROXY_H2_PORT=8004
HAPROXY_UID=2103 # haproxy drops to this uid, so the capture rule can skip its own traffic
NGINX_PROXY_PORT=8002

# fds 7/8 keep the script's own stdout/stderr: a trap can fire while a
# function's output is redirected into a raw result file.
exec 7>&1 8>&2
log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&8; }
die() { log "ERROR: $*"; exit 1; }

# ---------------------------------------------------------------- preflight
((EUID == 0)) || die "needs root for network namespaces and iptables: sudo bench/run.sh"

missing=()
need() { command -v "$1" >/dev/null 2>&1 || missing+=("$1 (apt: $2)"); }
need ip iproute2; need wrk wrk; need nginx nginx-light; need haproxy haproxy
need curl curl; need python3 python3; need timeout coreutils; need flock util-linux
((DO_H2)) && need h2load nghttp2-client
if ((DO_INSTR)); then need h2load nghttp2-client; fi
if ((${#missing[@]})); then
  log "missing tools: ${missing[*]}"
  die "install them: apt-get install -y wrk haproxy nginx-light nghttp2-client iproute2 iptables valgrind curl"
fi

exec 9>/run/lock/weft-bench.lock
flock -n 9 || die "another bench/run.sh is running (lock /run/lock/weft-bench.lock)"

ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

ID=$$
NS_C=weftb-c-$ID
NS_S=weftb-s-$ID
VETH_C=wbc$ID
VETH_S=wbs$ID
declare -A PIDS=()
FG_PID=
WEFT_RULES=0
CLEANED=0
NETNS_MADE=0
TMP=
STAMP=$(date -u +%Y%m%d-%H%M%S)
RESULTS=$HERE/results/$STAMP
# cleanup() is defined below; bash looks it up only when a trap fires.
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT TERM HUP
trap 'log "failed at line $LINENO: $BASH_COMMAND"' ERR

TMP=$(mktemp -d /tmp/weft-bench.XXXXXX)
chmod 755 "$TMP"
RAW=$RESULTS/raw
mkdir -p "$RAW"
META=$RESULTS/meta.env
: >"$META"
meta() { printf '%s=%s\n' "$1" "$2" >>"$META"; }
note() { log "note: $*"; printf 'note=%s\n' "$*" >>"$META"; }


# ---------------------------------------------------------------- process helpers
# start_bg NAME CMD... : start in the background, log to $TMP/NAME.log, remember pid.
# CMD must be an external command that execs its way to the server (ip netns
# exec, setpriv, valgrind and bash -c 'exec' all do), so that the pid is the
# server's own: never a shell function, which would leave the pid of a subshell.
start_bg() {
  local name=$1; shift
  [[ $(type -t "$1") == file ]] || die "start_bg: $1 is not an external command"
  "$@" >"$TMP/$name.log" 2>&1 &
  PIDS[$name]=$!
}

alive() { [[ -n ${1:-} ]] && kill -0 "$1" 2>/dev/null; }

# run_fg CMD... : run a bounded foreground step (wrk, h2load, ...) as a
# background job + wait, so that Ctrl-C/TERM interrupt the wait at once and the
# trap can kill it (bash defers traps while a true foreground child runs, and
# `timeout` moves its child out of the terminal's process group).
run_fg() {
  "$@" &
  FG_PID=$!
  local rc=0
  wait "$FG_PID" || rc=$?
  FG_PID=
  return "$rc"
}

# stop_bg NAME : TERM, wait up to 5 s, then KILL.
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

# wait_http NS URL TIMEOUT_S [PID] [CURL_OPTS...] : until the URL answers 200.
wait_http() {
  local ns=$1 url=$2 secs=$3 pid=${4:-} i code
  shift 4 || shift $#
  for ((i = 0; i < secs * 5; i++)); do
    code=$(ip netns exec "$ns" curl -s -o /dev/null -w '%{http_code}' --max-time 1 "$@" "$url" 2>/dev/null) || true
    [[ $code == 200 ]] && return 0
    if [[ -n $pid ]] && ! alive "$pid"; then return 1; fi
    sleep 0.2
  done
  return 1
}

# wait_port_free PORT... : until nothing listens on these TCP ports in the client netns.
wait_port_free() {
  local i p busy
  for ((i = 0; i < 50; i++)); do
    busy=0
    for p in "$@"; do
      [[ -n $(ip netns exec "$NS_C" ss -Hltn "sport = :$p" 2>/dev/null) ]] && busy=1
    done
    ((busy)) || return 0
    sleep 0.2
  done
  return 1
}

weft_rules_on() {
  WEFT_RULES=1
  # shellcheck disable=SC2086
  in_c "$WEFT_BIN" init $WEFT_INIT_ARGS >>"$TMP/weft-init.log" 2>&1
}

weft_rules_off() {
  # shellcheck disable=SC2086
  in_c "$WEFT_BIN" init $WEFT_CLEANUP_ARGS >>"$TMP/weft-init.log" 2>&1 || note "weft-proxy init $WEFT_CLEANUP_ARGS exited non-zero"
  # Belt and braces: the client netns is ours alone, so anything left in its nat
  # table would capture the direct/haproxy/nginx runs too.
  if in_c iptables -t nat -S 2>/dev/null | grep -qE -- '^-A |^-N '; then
    note "nat rules left in the client netns after '$WEFT_BIN init $WEFT_CLEANUP_ARGS'; flushed by run.sh"
    in_c iptables -t nat -F 2>/dev/null || true
    in_c iptables -t nat -X 2>/dev/null || true
  fi
  WEFT_RULES=0
}

# Packets (= new connections) that hit a REDIRECT to the outbound port; -1 if
# iptables shows no such rule (e.g. rules written with nft directly).
weft_captured() {
  in_c iptables -t nat -L -n -v -x 2>/dev/null |
    awk -v p="redir ports $WEFT_OUTBOUND_PORT" 'index($0, p) && $3 == "REDIRECT" { n++; s += $1 } END { print (n ? s : -1) }' || true
}

cleanup() {
  local rc=$?
  trap - EXIT INT TERM HUP ERR
  set +e
  exec 1>&7 2>&8
  ((CLEANED)) && exit "$rc"
  CLEANED=1
  log "cleaning up"
  if ((WEFT_RULES)) && [[ -x $WEFT_BIN ]]; then weft_rules_off; fi
  local name ns p
  if [[ -n $FG_PID ]]; then kill -TERM "$FG_PID" 2>/dev/null; wait "$FG_PID" 2>/dev/null; fi
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
    rm -rf "$TMP"
  fi
  exit "$rc"
}
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

meta date "$(date -u '+%Y-%m-%d %H:%M UTC')"
meta host "$(hostname)"
meta cpus "$(nproc)"
meta duration "$DURATION"
meta warmup "$WARMUP"
meta repeats "$REPEATS"
meta conns "$CONNS"
meta h2_conns "$H2_CONNS"
meta h2_streams "$H2_STREAMS"
meta results_rel "${RESULTS#"$ROOT"/}"
meta loadavg_start "$(cut -d' ' -f1-3 /proc/loadavg)"
{
  set +o pipefail
  echo "wrk: $(wrk --version 2>&1 | head -1)"
  echo "nginx: $(nginx -v 2>&1)"
  echo "haproxy: $(haproxy -v 2>&1 | head -1)"
  command -v h2load >/dev/null && echo "h2load: $(h2load --version 2>&1 | head -1)"
  command -v valgrind >/dev/null && echo "valgrind: $(valgrind --version 2>&1)"
  echo "kernel: $(uname -r)"
  echo "weft-proxy: $WEFT_BIN $( [[ -x $WEFT_BIN ]] && stat -c '%y %s bytes' "$WEFT_BIN")"
  echo "git: $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo none)"
} >"$RESULTS/versions.txt" 2>&1 || true
set -o pipefail

# Common nginx bits: everything under $TMP, nothing in /var.
nginx_common() {
  local dir=$1
  mkdir -p "$dir"
  cat <<EOF
worker_processes 1;
daemon off;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections 4096; }
EOF
}
nginx_http_common() {
  local dir=$1
  cat <<EOF
    access_log off;
    keepalive_requests 1000000;
    keepalive_timeout 300s;
    default_type text/plain;
    client_body_temp_path $dir/body;
    proxy_temp_path $dir/proxy;
    fastcgi_temp_path $dir/fastcgi;
    uwsgi_temp_path $dir/uwsgi;
    scgi_temp_path $dir/scgi;
EOF
}

# Backend nginx in the server netns.
{
  nginx_common "$TMP/ngs"
  echo "http {"
  nginx_http_common "$TMP/ngs"
  cat <<EOF
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
} >"$TMP/nginx-server.conf"
in_s nginx -t -q -p "$TMP/ngs" -c "$TMP/nginx-server.conf" -e "$TMP/ngs/error.log" 2>"$TMP/nginx-server-test.log" ||
  die "nginx server config invalid: $(cat "$TMP/nginx-server-test.log")"
start_bg nginx-server ip netns exec "$NS_S" nginx -p "$TMP/ngs" -c "$TMP/nginx-server.conf" -e "$TMP/ngs/error.log"
wait_http "$NS_C" "http://$SERVER_IP/" 15 "${PIDS[nginx-server]}" || die "backend nginx did not come up: $(tail -5 "$TMP/nginx-server.log")"
wait_http "$NS_C" "http://$SERVER_IP:8080/" 15 "${PIDS[nginx-server]}" --http2-prior-knowledge || die "backend nginx h2c did not come up"
log "backend nginx up"

# haproxy: mode http, 1 thread, keep-alive both sides, http-reuse always.
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
# The same proxy behind the same kind of iptables REDIRECT the sidecar gets, so the
# capture's kernel cost can be told apart from the proxy's own cost.
frontend fe_capture
    bind 127.0.0.1:$HAPROXY_CAPTURE_PORT
    default_backend be
backend be
    server s1 $SERVER_IP:80
# HTTP/2 both sides (h2c prior knowledge), the baseline for the h2load runs.
frontend fe_h2
    bind 127.0.0.1:$HAPROXY_H2_PORT proto h2
    default_backend be_h2
backend be_h2
    server s2 $SERVER_IP:8080 proto h2
EOF
# Under callgrind haproxy must keep the uid it starts with (callgrind_control reaches it).
grep -vE '^[[:space:]]+(uid|gid) ' "$TMP/haproxy.conf" >"$TMP/haproxy-instr.conf"
haproxy -c -q -f "$TMP/haproxy.conf" >"$TMP/haproxy-test.log" 2>&1 || die "haproxy config invalid: $(cat "$TMP/haproxy-test.log")"

# nginx as keep-alive reverse proxy.
{
  nginx_common "$TMP/ngp"
  echo "http {"
  nginx_http_common "$TMP/ngp"
  cat <<EOF
    upstream backend {
        server $SERVER_IP:80;
        keepalive 64;
        keepalive_requests 1000000;
    }
    server {
        listen 127.0.0.1:$NGINX_PROXY_PORT backlog=4096;
        location / {
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
}
EOF
} >"$TMP/nginx-proxy.conf"
in_c nginx -t -q -p "$TMP/ngp" -c "$TMP/nginx-proxy.conf" -e "$TMP/ngp/error.log" 2>"$TMP/nginx-proxy-test.log" ||
  die "nginx proxy config invalid: $(cat "$TMP/nginx-proxy-test.log")"

start_haproxy() { start_bg haproxy ip netns exec "$NS_C" haproxy -db -f "$TMP/haproxy.conf"; }
start_nginx_proxy() { start_bg nginx-proxy ip netns exec "$NS_C" nginx -p "$TMP/ngp" -c "$TMP/nginx-proxy.conf" -e "$TMP/ngp/error.log"; }

start_haproxy
start_nginx_proxy
wait_http "$NS_C" "http://127.0.0.1:$HAPROXY_PORT/" 15 "${PIDS[haproxy]}" || die "haproxy did not come up: $(tail -5 "$TMP/haproxy.log")"
wait_http "$NS_C" "http://127.0.0.1:$NGINX_PROXY_PORT/" 15 "${PIDS[nginx-proxy]}" || die "nginx proxy did not come up: $(tail -5 "$TMP/nginx-proxy.log")"
log "haproxy and nginx proxy up"

# ---------------------------------------------------------------- weft-proxy
mkdir -p "$TMP/weft"
chmod 1777 "$TMP/weft"
WEFT=0
start_weft() { # run as WEFT_UID in the client netns, cwd $TMP/weft
  # shellcheck disable=SC2086
  start_bg weft bash -c 'cd "$1" && shift && exec "$@"' _ "$TMP/weft" \
    ip netns exec "$NS_C" setpriv --reuid="$WEFT_UID" --regid="$WEFT_UID" --clear-groups \
    "$WEFT_BIN" run $WEFT_RUN_ARGS
}
WEFT_READY_URL=http://127.0.0.1:$WEFT_ADMIN_PORT/ready

if [[ ! -e $WEFT_BIN ]]; then
  note "weft-proxy binary not found at $WEFT_BIN: ran direct, haproxy and nginx only (set WEFT_PROXY_BIN or build it)"
  meta weft_status "missing ($WEFT_BIN)"
  meta skip_weft "not run (binary missing)"
elif [[ ! -x $WEFT_BIN ]]; then
  note "$WEFT_BIN is not executable: ran direct, haproxy and nginx only"
  meta weft_status "not executable"
  meta skip_weft "not run (binary not executable)"
elif ! command -v iptables >/dev/null || ! command -v setpriv >/dev/null; then
  note "iptables or setpriv missing (apt-get install -y iptables util-linux): weft-proxy not run"
  meta weft_status "not run (iptables/setpriv missing)"
  meta skip_weft "not run (iptables/setpriv missing)"
elif ! setpriv --reuid="$WEFT_UID" --regid="$WEFT_UID" --clear-groups test -x "$WEFT_BIN"; then
  note "uid $WEFT_UID cannot execute $WEFT_BIN (directory permissions?): weft-proxy not run"
  meta weft_status "not run (uid $WEFT_UID cannot execute it)"
  meta skip_weft "not run (uid $WEFT_UID cannot execute binary)"
else
  start_weft
  if wait_http "$NS_C" "$WEFT_READY_URL" 30 "${PIDS[weft]}"; then
    WEFT=1
    sleep 3  # idle: start-up's code pages are let go 1 s after /ready (StartupPages)
    WEFT_PID=${PIDS[weft]}
    WEFT_COMM=$(basename "$WEFT_BIN"); WEFT_COMM=${WEFT_COMM:0:15}
    [[ $(cat "/proc/$WEFT_PID/comm" 2>/dev/null) == "$WEFT_COMM" ]] ||
      note "pid $WEFT_PID is '$(cat "/proc/$WEFT_PID/comm" 2>/dev/null)', not $WEFT_COMM: memory figures may be wrong"
    meta mem_weft_idle_kb "$(awk '/^VmRSS:/ {print $2}' "/proc/$WEFT_PID/status")"
    meta weft_status "$WEFT_BIN ($(stat -c '%y' "$WEFT_BIN" | cut -d. -f1))"
    log "weft-proxy ready (pid $WEFT_PID)"
    # Sanity: capture works end to end.
    weft_rules_on || note "'$WEFT_BIN init $WEFT_INIT_ARGS' exited non-zero: $(tail -2 "$TMP/weft-init.log" | tr '\n' ' ')"
    in_c iptables -t nat -S >"$RESULTS/weft-nat-rules.txt" 2>&1 || true
    body=$(in_c curl -s --max-time 3 "http://$SERVER_IP/" 2>/dev/null) || true
    captured=$(weft_captured)
    nft_redirect=unknown
    if command -v nft >/dev/null; then
      in_c nft list ruleset >"$RESULTS/weft-nft-ruleset.txt" 2>&1 || true
      if grep -qE "redirect to :?$WEFT_OUTBOUND_PORT\b" "$RESULTS/weft-nft-ruleset.txt"; then nft_redirect=yes; else nft_redirect=no; fi
    fi
    weft_rules_off
    if [[ $captured == -1 && $nft_redirect == no ]]; then
      note "after '$WEFT_BIN init $WEFT_INIT_ARGS' the client netns has no REDIRECT to :$WEFT_OUTBOUND_PORT (iptables or nft); weft-proxy runs skipped"
      meta weft_status "init installed no capture rule"
      meta skip_weft "no capture rule"
      WEFT=0
      stop_bg weft
    elif [[ $body == hello && $captured == 0 ]]; then
      note "weft capture is not active: the sanity request reached nginx without hitting the REDIRECT to :$WEFT_OUTBOUND_PORT (rules: weft-nat-rules.txt); weft-proxy runs skipped"
      meta weft_status "capture not active"
      meta skip_weft "capture not active"
      WEFT=0
      stop_bg weft
    elif [[ $body != hello ]]; then
      note "request through weft capture did not return 'hello' (got '${body:0:60}'); weft-proxy runs skipped. See logs/weft*.log"
      meta weft_status "failed sanity check"
      meta skip_weft "failed sanity check"
      WEFT=0
      stop_bg weft
    elif ((captured < 0)); then
      note "no iptables REDIRECT to :$WEFT_OUTBOUND_PORT visible after init (nft-only rules?): capture of the weft runs is not verified"
    fi
  else
    note "weft-proxy did not become ready on $WEFT_READY_URL within 30 s: $(tail -3 "$TMP/weft.log" | tr '\n' ' ')"
    meta weft_status "did not become ready"
    meta skip_weft "not ready"
    stop_bg weft
  fi
fi

# Idle memory as deployed: a second weft-proxy connected to a weft-control (on the client
# netns' loopback, default config, a CA made here), holding its identity and config. The
# capture-only proxy above skips the TLS, X.509 and JSON code a real sidecar runs.
CONTROL_BIN=$(dirname "$WEFT_BIN")/weft-control
CTL_BIN=$(dirname "$WEFT_BIN")/weftctl
if ((WEFT)) && [[ -x $CONTROL_BIN && -x $CTL_BIN ]]; then
  mkdir -p "$TMP/cp/cache"
  "$CTL_BIN" ca init --out "$TMP/cp/ca" >"$TMP/cp-ca.log" 2>&1
  head -c 24 /dev/urandom | base64 >"$TMP/cp/token"
  chmod 0755 "$TMP/cp"; chmod 0644 "$TMP/cp/token" "$TMP/cp/ca/bundle.crt"; chown "$WEFT_UID" "$TMP/cp/cache"
  start_bg control ip netns exec "$NS_C" "$CONTROL_BIN" --config "$ROOT/control-plane/config" --ca "$TMP/cp/ca" \
    --token-file "$TMP/cp/token" --host 127.0.0.1 --push-port 25012 --http-port 25014
  if wait_http "$NS_C" http://127.0.0.1:25014/ready 15 "${PIDS[control]}"; then
    start_bg weft-cp ip netns exec "$NS_C" setpriv --reuid="$WEFT_UID" --regid="$WEFT_UID" --clear-groups \
      "$WEFT_BIN" run --threads 1 --admin-port 25000 --outbound-port 25001 --inbound-port 25006 \
      --control-plane 127.0.0.1:25012 --token-file "$TMP/cp/token" --trust-bundle "$TMP/cp/ca/bundle.crt" \
      --cache-dir "$TMP/cp/cache" --pod-name client-0 --pod-namespace demo --service-account client \
      --pod-ip "$CLIENT_IP"
    if wait_http "$NS_C" http://127.0.0.1:25000/ready 30 "${PIDS[weft-cp]}"; then
      sleep 3
      meta mem_weft_idle_cp_kb "$(awk '/^VmRSS:/ {print $2}' "/proc/${PIDS[weft-cp]}/status")"
    else
      note "weft-proxy with a control plane did not become ready: $(tail -3 "$TMP/weft-cp.log" | tr '\n' ' ')"
    fi
    stop_bg weft-cp
  else
    note "weft-control did not become ready: $(tail -3 "$TMP/control.log" | tr '\n' ' ')"
  fi
  stop_bg control
fi

# Reference idle memory: haproxy process and the nginx proxy's worker.
nginx_worker() { pgrep -P "$(cat "$TMP/ngp/nginx.pid" 2>/dev/null || echo 0)" 2>/dev/null | head -1; }
kb() { awk -v k="$2:" '$1 == k {print $2}' "/proc/$1/status" 2>/dev/null; }
[[ $(cat "/proc/${PIDS[haproxy]}/comm" 2>/dev/null) == haproxy ]] || note "haproxy pid ${PIDS[haproxy]} is not haproxy: its memory figure is wrong"
meta mem_haproxy_idle_kb "$(kb "${PIDS[haproxy]}" VmRSS)"
NGW=$(nginx_worker)
[[ -n $NGW ]] && meta mem_nginx_idle_kb "$(kb "$NGW" VmRSS)"

# ---------------------------------------------------------------- throughput (wrk)
url_for() {
  case $1 in
    direct | weft | haproxy-capture) echo "http://$SERVER_IP:80/" ;;
    haproxy) echo "http://127.0.0.1:$HAPROXY_PORT/" ;;
    nginx) echo "http://127.0.0.1:$NGINX_PROXY_PORT/" ;;
  esac
}

wrk_slot() { # wrk_slot CONFIG ROUND
  local cfg=$1 r=$2 url out rps
  url=$(url_for "$cfg")
  out=$RAW/wrk-$cfg-r$r.txt
  if ((WARMUP > 0)); then
    run_fg timeout -k 5 $((WARMUP + 20)) ip netns exec "$NS_C" wrk -t1 -c"$CONNS" -d"${WARMUP}s" --timeout 5s "$url" >/dev/null 2>&1 || true
  fi
  if ! run_fg timeout -k 5 $((DURATION + 30)) ip netns exec "$NS_C" \
    wrk -t1 -c"$CONNS" -d"${DURATION}s" --timeout 5s --latency -s "$HERE/wrk_report.lua" "$url" >"$out" 2>&1; then
    note "wrk $cfg round $r exited non-zero (see raw/$(basename "$out"))"
  fi
  rps=$(sed -n 's/.*"rps":\([0-9.]*\).*/\1/p' "$out")
  log "wrk  round $r/$REPEATS  $(printf '%-8s' "$cfg") ${rps:-?} req/s"
}

CONFIGS=(direct)
((WEFT)) && CONFIGS+=(weft)
CONFIGS+=(haproxy haproxy-capture nginx)
log "throughput: ${CONFIGS[*]} × $REPEATS, interleaved"
for ((r = 1; r <= REPEATS; r++)); do
  for cfg in "${CONFIGS[@]}"; do
    if [[ $cfg == weft ]]; then
      weft_rules_on || note "weft-proxy init exited non-zero in round $r"
      wrk_slot weft "$r"
      c=$(weft_captured)
      ((c < 0 || c >= CONNS)) || note "round $r: only $c connections were captured by the REDIRECT to :$WEFT_OUTBOUND_PORT (expected >= $CONNS)"
      weft_rules_off
    elif [[ $cfg == haproxy-capture ]]; then
      capture_rule=(OUTPUT -p tcp -d "$SERVER_IP" --dport 80 -m owner ! --uid-owner "$HAPROXY_UID" -j REDIRECT --to-ports "$HAPROXY_CAPTURE_PORT")
      in_c iptables -t nat -A "${capture_rule[@]}"
      wrk_slot "$cfg" "$r"
      in_c iptables -t nat -D "${capture_rule[@]}" || in_c iptables -t nat -F OUTPUT
    else
      wrk_slot "$cfg" "$r"
    fi
  done
done

if ((WEFT)) && alive "${PIDS[weft]}"; then
  meta mem_weft_peak_wrk_kb "$(kb "${PIDS[weft]}" VmHWM)"
elif ((WEFT)); then
  note "weft-proxy died during the wrk runs: $(tail -3 "$TMP/weft.log" | tr '\n' ' ')"
  WEFT=0
fi
meta mem_haproxy_peak_kb "$(kb "${PIDS[haproxy]}" VmHWM)"
NGW=$(nginx_worker)
[[ -n $NGW ]] && meta mem_nginx_peak_kb "$(kb "$NGW" VmHWM)"

# ---------------------------------------------------------------- HTTP/2 (h2load, h2c prior knowledge)
h2_slot() { # h2_slot CONFIG ROUND
  local cfg=$1 r=$2 out rps warm=() url="http://$SERVER_IP:8080/"
  [[ $cfg == haproxy ]] && url="http://127.0.0.1:$HAPROXY_H2_PORT/"
  out=$RAW/h2-$cfg-r$r.txt
  ((WARMUP > 0)) && warm=(--warm-up-time="$WARMUP")
  if ! run_fg timeout -k 5 $((DURATION + WARMUP + 30)) ip netns exec "$NS_C" \
    h2load -t1 -c"$H2_CONNS" -m"$H2_STREAMS" -D "$DURATION" "${warm[@]}" "$url" >"$out" 2>&1; then
    note "h2load $cfg round $r exited non-zero (see raw/$(basename "$out"))"
  fi
  rps=$(sed -n 's/^finished in [^,]*, \([0-9.]*\) req\/s.*/\1/p' "$out")
  log "h2   round $r/$REPEATS  $(printf '%-8s' "$cfg") ${rps:-?} req/s"
}
if ((DO_H2)); then
  H2CONF=(direct)
  ((WEFT)) && H2CONF+=(weft)
  H2CONF+=(haproxy)
  ((WEFT)) || meta skip_h2_weft "$(grep '^skip_weft=' "$META" | cut -d= -f2- || echo 'not run')"
  log "HTTP/2: ${H2CONF[*]} × $REPEATS, interleaved"
  for ((r = 1; r <= REPEATS; r++)); do
    for cfg in "${H2CONF[@]}"; do
      if [[ $cfg == weft ]]; then
        weft_rules_on || note "weft-proxy init exited non-zero (h2 round $r)"
        h2_slot weft "$r"
        weft_rules_off
      else
        h2_slot "$cfg" "$r"
      fi
    done
  done
  if ((WEFT)) && alive "${PIDS[weft]}"; then
    meta mem_weft_peak_all_kb "$(kb "${PIDS[weft]}" VmHWM)"
  elif ((WEFT)); then
    note "weft-proxy died during the h2load runs: $(tail -3 "$TMP/weft.log" | tr '\n' ' ')"
  fi
else
  meta h2 skipped
fi

# The throughput instances are done; the instruction counts start their own.
stop_bg weft
stop_bg haproxy
stop_bg nginx-proxy

# ---------------------------------------------------------------- instructions per request
# Each proxy is started under callgrind (or perf stat -p, where the CPU exposes
# the counter), warmed up, then: zero counters, idle INSTR_IDLE_SECS, dump
# (idle rate); zero, h2load --h1 -n N, dump.  per request =
# (load - idle_rate * load_secs) / succeeded requests.
now() { date +%s.%N; }
h2_ok() { sed -n 's/^requests: .* \([0-9]*\) succeeded.*/\1/p' "$1"; }
cg_total() { # cg_total FILE: event total of one callgrind dump
  awk '/^totals:/ {t = $2} /^summary:/ {s = $2} END {print (t != "" ? t : (s != "" ? s : ""))}' "$1" 2>/dev/null
}

instr_measure() { # instr_measure KEY RUNAS_UID READY_URL TARGET_URL PORTS -- START_CMD...
  local key=$1 runas=$2 ready=$3 target=$4 ports=$5 pid t0 t1 idle load lsecs isecs ok f wrate n
  shift 6
  local dir=$TMP/cg-$key as=()
  [[ -n $runas ]] && as=(setpriv --reuid="$runas" --regid="$runas" --clear-groups)
  # shellcheck disable=SC2086
  wait_port_free $ports || { note "instructions: port(s) $ports still busy, $key skipped"; return 1; }
  start_bg "instr-$key" "$@"
  pid=${PIDS[instr-$key]}
  if ! wait_http "$NS_C" "$ready" 90 "$pid"; then
    note "instructions: $key did not become ready under $INSTR_METHOD: $(tail -3 "$TMP/instr-$key.log" | tr '\n' ' ')"
    stop_bg "instr-$key"
    return 1
  fi
  if [[ $key == weft ]]; then weft_rules_on || true; fi
  # Warm-up, which also calibrates: the measured count is cut down so that the
  # counted run takes about INSTR_BUDGET seconds at most at the warm-up rate.
  run_fg timeout -k 5 120 ip netns exec "$NS_C" h2load --h1 -n "$INSTR_WARMUP" -c "$INSTR_CONNS" "$target" >"$RAW/instr-$key-warmup.txt" 2>&1 || true
  wrate=$(sed -n 's/^finished in [^,]*, \([0-9.]*\) req\/s.*/\1/p' "$RAW/instr-$key-warmup.txt")
  if [[ -z $wrate || $(h2_ok "$RAW/instr-$key-warmup.txt") != "$INSTR_WARMUP" ]]; then
    note "instructions: warm-up requests through $key failed (see raw/instr-$key-warmup.txt)"
    if [[ $key == weft ]]; then weft_rules_off; fi
    stop_bg "instr-$key"
    return 1
  fi
  n=$(python3 -c "print(max($INSTR_CONNS * 20, min($INSTR_REQUESTS, int($wrate * $INSTR_BUDGET))))")
  ((n < INSTR_REQUESTS)) && log "instr $key: ${wrate%.*} req/s under $INSTR_METHOD, counting $n requests instead of $INSTR_REQUESTS"
  if [[ $INSTR_METHOD == callgrind ]]; then
    # The valgrind pid is the one in the name of the output file it opened.
    f=$(ls "$dir/$key".*.out 2>/dev/null | head -1)
    if [[ -n $f ]]; then pid=${f%.out}; pid=${pid##*.}; fi
    # Every dump holds the cost since the previous dump (callgrind's "zero" did
    # not reset the first interval here), so: dump 1 = start-up + warm-up
    # (discarded), dump 2 = idle baseline, dump 3 = the measured requests.
    # vgdb must run as the valgrind process's own uid (it cannot talk to
    # another uid's valgrind here, even as root).
    cgc() { run_fg timeout 60 "${as[@]}" callgrind_control --vgdb-prefix="$dir/vgdb" "$@" >>"$TMP/callgrind-control.log" 2>&1 || true; }
    cgc -d "$pid"
    t0=$(now); sleep "$INSTR_IDLE_SECS"; cgc -d "$pid"; t1=$(now)
    isecs=$(python3 -c "print($t1-$t0)")
    t0=$(now)
    run_fg timeout -k 5 $((INSTR_BUDGET * 3 + 30)) ip netns exec "$NS_C" h2load --h1 -n "$n" -c "$INSTR_CONNS" "$target" >"$RAW/instr-$key.txt" 2>&1 || true
    cgc -d "$pid"; t1=$(now)
    lsecs=$(python3 -c "print($t1-$t0)")
    idle=$(cg_total "$(ls "$dir/$key".*.out.2 2>/dev/null | head -1)")
    load=$(cg_total "$(ls "$dir/$key".*.out.3 2>/dev/null | head -1)")
    cp "$dir/$key".*.out.[23] "$RAW/" 2>/dev/null || true
  else # perf (untested here: this VM's PMU does not expose instructions)
    t0=$(now)
    perf stat -x, -e instructions:u -p "$pid" -o "$RAW/instr-$key-idle.perf" -- sleep "$INSTR_IDLE_SECS" >/dev/null 2>&1 || true
    t1=$(now); isecs=$(python3 -c "print($t1-$t0)")
    perf stat -x, -e instructions:u -p "$pid" -o "$RAW/instr-$key-load.perf" >/dev/null 2>&1 &
    local perf_pid=$!
    sleep 0.5
    t0=$(now)
    run_fg timeout -k 5 $((INSTR_BUDGET * 3 + 30)) ip netns exec "$NS_C" h2load --h1 -n "$n" -c "$INSTR_CONNS" "$target" >"$RAW/instr-$key.txt" 2>&1 || true
    t1=$(now)
    kill -INT "$perf_pid" 2>/dev/null || true
    wait "$perf_pid" 2>/dev/null || true
    lsecs=$(python3 -c "print($t1-$t0+0.5)")
    idle=$(awk -F, '/instructions/ {print $1}' "$RAW/instr-$key-idle.perf" 2>/dev/null)
    load=$(awk -F, '/instructions/ {print $1}' "$RAW/instr-$key-load.perf" 2>/dev/null)
  fi
  if [[ $key == weft ]]; then
    f=$(weft_captured)
    ((f < 0 || f >= INSTR_CONNS)) || note "instructions: only $f connections were captured during the weft count (expected >= $INSTR_CONNS)"
    weft_rules_off
  fi
  ok=$(h2_ok "$RAW/instr-$key.txt")
  stop_bg "instr-$key"
  if [[ ! $idle =~ ^[0-9]+$ || ! $load =~ ^[0-9]+$ ]]; then
    note "instructions: could not read counts for $key (idle='$idle' load='$load'); see logs/callgrind-control.log"
    return 1
  fi
  meta "instr_${key}_idle" "$idle"
  meta "instr_${key}_idle_secs" "$isecs"
  meta "instr_${key}_load" "$load"
  meta "instr_${key}_load_secs" "$lsecs"
  meta "instr_${key}_ok" "${ok:-0}"
  meta "instr_${key}_n" "$n"
  log "instr $key: $load instructions for ${ok:-0} requests in ${lsecs%.*}s (idle: $idle in ${isecs%.*}s)"
}

if ((DO_INSTR)); then
  if [[ $INSTR_METHOD == auto ]]; then
    if command -v perf >/dev/null && perf stat -x, -e instructions:u true 2>&1 | grep -qE '^[0-9]+,'; then
      INSTR_METHOD=perf
    else
      INSTR_METHOD=callgrind
    fi
  fi
  if [[ $INSTR_METHOD == callgrind ]] && ! command -v callgrind_control >/dev/null; then
    note "valgrind missing (apt-get install -y valgrind): instructions/request not measured"
    DO_INSTR=0
  fi
fi
if ((DO_INSTR)); then
  for k in haproxy nginx weft; do mkdir -p "$TMP/cg-$k"; done
  chown "$WEFT_UID:$WEFT_UID" "$TMP/cg-weft"
  meta instr_requests "$INSTR_REQUESTS"
  meta instr_conns "$INSTR_CONNS"
  if [[ $INSTR_METHOD == callgrind ]]; then
    meta instr_method "callgrind, user-space instructions"
    VG() { echo valgrind --tool=callgrind --vgdb-prefix="$TMP/cg-$1/vgdb" --callgrind-out-file="$TMP/cg-$1/$1.%p.out"; }
  else
    meta instr_method "perf stat -e instructions:u"
    VG() { :; }
  fi
  log "instructions per request ($INSTR_METHOD, $INSTR_REQUESTS requests)"
  if ((INSTR_REFS)); then
    # shellcheck disable=SC2046
    instr_measure haproxy "" "http://127.0.0.1:$HAPROXY_PORT/" "http://127.0.0.1:$HAPROXY_PORT/" "$HAPROXY_PORT" -- \
      ip netns exec "$NS_C" $(VG haproxy) haproxy -db -f "$TMP/haproxy-instr.conf" || true
    # shellcheck disable=SC2046
    instr_measure nginx "" "http://127.0.0.1:$NGINX_PROXY_PORT/" "http://127.0.0.1:$NGINX_PROXY_PORT/" "$NGINX_PROXY_PORT" -- \
      ip netns exec "$NS_C" $(VG nginx) nginx -g 'master_process off;' -p "$TMP/ngp" -c "$TMP/nginx-proxy.conf" -e "$TMP/ngp/error.log" || true
  fi
  if ((WEFT)); then
    # Debian 12's valgrind 3.19 cannot run the Swift binary as built: it aborts
    # on DWARF 5 debug info ("unhandled dwarf2 abbrev form code 0x25") and then
    # crashes in libdispatch's sigsuspend (read-only mask). So callgrind runs a
    # copy without debug info (same code, symbols kept) with a tiny preload
    # that hands sigsuspend a writable mask. Neither touches the request path.
    WEFT_CG_BIN=$WEFT_BIN
    WEFT_CG_ENV=()
    if [[ $INSTR_METHOD == callgrind ]]; then
      if command -v objcopy >/dev/null &&
        objcopy --strip-debug "$WEFT_BIN" "$TMP/weft/$(basename "$WEFT_BIN")" 2>>"$TMP/instr-weft-prep.log"; then
        WEFT_CG_BIN=$TMP/weft/$(basename "$WEFT_BIN")
        chmod 755 "$WEFT_CG_BIN"
      else
        note "instructions: could not strip debug info from a copy of weft-proxy (binutils' objcopy); valgrind 3.19 may refuse the binary"
      fi
      if command -v cc >/dev/null &&
        cc -shared -fPIC -O2 -o "$TMP/weft/sigsuspend-shim.so" "$HERE/valgrind-sigsuspend-shim.c" -ldl 2>>"$TMP/instr-weft-prep.log"; then
        chmod 755 "$TMP/weft/sigsuspend-shim.so"
        WEFT_CG_ENV=(env LD_PRELOAD="$TMP/weft/sigsuspend-shim.so")
      else
        note "instructions: could not build bench/valgrind-sigsuspend-shim.c (no cc?); valgrind 3.19 may crash in libdispatch"
      fi
    fi
    # shellcheck disable=SC2046,SC2086
    instr_measure weft "$WEFT_UID" "$WEFT_READY_URL" "http://$SERVER_IP:80/" "$WEFT_ADMIN_PORT $WEFT_OUTBOUND_PORT" -- \
      bash -c 'cd "$1" && shift && exec "$@"' _ "$TMP/weft" \
      ip netns exec "$NS_C" setpriv --reuid="$WEFT_UID" --regid="$WEFT_UID" --clear-groups \
      "${WEFT_CG_ENV[@]}" $(VG weft) "$WEFT_CG_BIN" run $WEFT_RUN_ARGS || meta skip_instr_weft "— (failed, see notes)"
  else
    meta skip_instr_weft "not run"
  fi
else
  meta instr skipped
fi

meta loadavg_end "$(cut -d' ' -f1-3 /proc/loadavg)"
note "load average at start $(grep '^loadavg_start=' "$META" | cut -d= -f2-), at end $(cut -d' ' -f1-3 /proc/loadavg)"
python3 "$HERE/report.py" "$RESULTS"
