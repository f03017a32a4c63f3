#!/usr/bin/env bash
# bench/control.sh — control-plane benchmark (issue 4): config propagation and memory
# per connected proxy, with N simulated sidecars from one load process.
#
# Usage: bench/control.sh [--no-build] [--quick] [--no-record] [-h|--help]
#
# For each N in BENCH_CONTROL_NS (1000 10000), BENCH_CONTROL_REPEATS times, interleaved
# (1000 10000 1000 10000 ...): start a fresh weft-control on loopback (standalone mode:
# a temp CA from `weftctl ca init`, a token file, a generated config folder with 10
# Services load/svc-0..9 that every sidecar subscribes to and 100 other Services), run
# weft-control-load (bench/control-load) with N connections, then stop weft-control.
# The load tool does hello/identity/config per connection with 200 handshakes in flight,
# then BENCH_CONTROL_ROUNDS times rewrites load/svc-0's EndpointSlice file (temp file
# renamed into place) and times, per connection, from just before the write until it
# received and acked the delta carrying the new endpoints. weft-control's VmRSS is read
# before any connection and once all N have acked their config; per proxy =
# (connected - before) / N. While the connections are still open it runs
# `weftctl check` and reads weft_control_push_latency_seconds from /metrics.
#
# No root needed; everything listens on 127.0.0.1 only. Processes it starts are stopped
# on exit, error or Ctrl-C. A full run (2 x 2 runs) takes 2-3 minutes after the build.
# The report goes to stdout and is appended to BENCHMARKS.md as a subsection (unless
# --no-record; move it under "Control plane" if other sections follow); raw
# JSON and logs are kept in bench/results/control-<UTC time>/ (gitignored).
#
# Environment:
#   BENCH_CONTROL_NS       connection counts to run                "1000 10000"
#   BENCH_CONTROL_REPEATS  runs per N (medians are quoted)         2 (1 with --quick)
#   BENCH_CONTROL_ROUNDS   change rounds per run                   5 (2 with --quick)
#   BENCH_CONTROL_THREADS  event-loop threads of weft-control      2
#   BENCH_LOAD_THREADS     event-loop threads of the load tool     2
#   BENCH_CONTROL_PORT     first push port (each run uses the next pair)  25100
#   WEFT_CONTROL_BIN       the weft-control under test (A/B runs)  .build/release/weft-control
#   BENCH_CONTROL_PROBE    shell command run while all N are connected, e.g.
#                          'pmap -x $CONTROL_PID' (output: bench/results/.../n<N>-run<i>.probe)
#   BENCH_CONTROL_BEFORE_LOAD  shell command run once weft-control is ready, before the
#                          load (e.g. attach a profiler to $CONTROL_PID)
set -Eeuo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
usage() { sed -n '2,/^set -Eeuo/p' "${BASH_SOURCE[0]}" | sed '$d' | sed 's/^# \{0,1\}//'; }

BUILD=1 QUICK=0 RECORD=1
while (($#)); do
  case $1 in
    --no-build) BUILD=0 ;;
    --quick) QUICK=1 ;;
    --no-record) RECORD=0 ;;
    -h | --help) usage; exit 0 ;;
    *) echo "control.sh: unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
if ((QUICK)); then d_rep=1 d_rounds=2; else d_rep=2 d_rounds=5; fi
NS=${BENCH_CONTROL_NS:-1000 10000}
REPEATS=${BENCH_CONTROL_REPEATS:-$d_rep}
ROUNDS=${BENCH_CONTROL_ROUNDS:-$d_rounds}
CP_THREADS=${BENCH_CONTROL_THREADS:-2}
LOAD_THREADS=${BENCH_LOAD_THREADS:-2}
PORT=${BENCH_CONTROL_PORT:-25100}

log() { printf '[control-bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
for v in REPEATS ROUNDS CP_THREADS LOAD_THREADS PORT; do
  [[ ${!v} =~ ^[0-9]+$ ]] || die "$v must be a non-negative integer (got '${!v}')"
done
for n in $NS; do
  if ! [[ $n =~ ^[0-9]+$ ]] || ((n < 1 || n > 19000)); then die "N must be 1..19000 (got $n)"; fi
done
if ! command -v curl >/dev/null || ! command -v python3 >/dev/null; then die "needs curl and python3"; fi

BIN=$ROOT/.build/release
STAMP=$(date -u +%Y%m%d-%H%M%S)
RESULTS=$HERE/results/control-$STAMP
mkdir -p "$RESULTS"
TMP=$(mktemp -d /tmp/weft-control-bench.XXXXXX)
CP_PID='' LOAD_PID=''

stop_pid() { # pid: SIGTERM, up to 10 s, then SIGKILL
  local pid=$1 i
  [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 100; i++)); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}
cleanup() {
  stop_pid "$LOAD_PID"; LOAD_PID=
  stop_pid "$CP_PID"; CP_PID=
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT TERM HUP

# ------------------------------------------------------------------ build
if ((BUILD)); then
  log "building release binaries (scripts/build-release.sh) and weft-control-load"
  "$ROOT/scripts/build-release.sh" >/dev/null
fi
if ((BUILD)) || [[ ! -x $BIN/weft-control-load ]]; then
  (cd "$ROOT" && swift build -c release --product weft-control-load --static-swift-stdlib \
    -Xswiftc -enforce-exclusivity=unchecked >&2)
fi
for b in weft-control weftctl weft-control-load; do
  [[ -x $BIN/$b ]] || die "$BIN/$b is missing: run without --no-build"
done
CONTROL_BIN=${WEFT_CONTROL_BIN:-$BIN/weft-control}
[[ -x $CONTROL_BIN ]] || die "WEFT_CONTROL_BIN=$CONTROL_BIN is not executable"

# The kernel allows at most the hard limit; each side needs N sockets.
HARD=$(ulimit -Hn)
ulimit -n "$HARD"
for n in $NS; do ((n + 100 <= HARD)) || die "N=$n needs more than the open-files hard limit $HARD"; done

# ------------------------------------------------------------------ fixtures
"$BIN/weftctl" ca init --out "$TMP/ca" --trust-domain cluster.local >/dev/null
head -c 24 /dev/urandom | base64 >"$TMP/token"
CONFIG=$TMP/config
mkdir -p "$CONFIG"
cat >"$CONFIG/mesh.yaml" <<'EOF'
apiVersion: weft.dev/v1alpha1
kind: MeshConfig
metadata:
  name: mesh
spec:
  trustDomain: cluster.local
  mtls:
    mode: STRICT
  outboundPolicy: ALLOW_ANY
EOF
service() { # namespace name clusterIP
  cat <<EOF
---
apiVersion: v1
kind: Service
metadata:
  name: $2
  namespace: $1
spec:
  type: ClusterIP
  clusterIP: $3
  clusterIPs: [$3]
  selector: {app: $2}
  ports:
  - {name: http, port: 80, targetPort: 8080, protocol: TCP, appProtocol: http}
EOF
}
slice() { # namespace service sliceName address...
  local ns=$1 svc=$2 name=$3 a
  shift 3
  cat <<EOF
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: $name
  namespace: $ns
  labels: {kubernetes.io/service-name: $svc}
addressType: IPv4
ports:
- {name: http, port: 8080, protocol: TCP, appProtocol: http}
endpoints:
EOF
  for a in "$@"; do
    printf -- '- addresses: [%s]\n  conditions: {ready: true, serving: true, terminating: false}\n' "$a"
  done
}
{
  for i in $(seq 0 9); do
    service load "svc-$i" "10.96.1.$((i + 1))"
    ((i == 0)) || slice load "svc-$i" "svc-$i-bench" "10.212.$i.1" "10.212.$i.2" "10.212.$i.3"
  done
  for i in $(seq 0 99); do
    service "team-$((i / 10))" "app-$i" "10.96.$((2 + i / 200)).$((i % 200 + 1))"
    slice "team-$((i / 10))" "app-$i" "app-$i-abc" "10.214.$((i / 200)).$((i % 200 + 1))" "10.215.$((i / 200)).$((i % 200 + 1))"
  done
} >"$CONFIG/services.yaml"
# The file weft-control-load rewrites every round (same shape as its own template).
slice load svc-0 svc-0-bench 10.212.0.1 10.212.0.2 10.212.0.3 | sed 1d >"$CONFIG/svc-0-endpoints.yaml"

# ------------------------------------------------------------------ runs
run_one() { # N index
  local n=$1 idx=$2 push=$((PORT + 2 * $2)) http=$((PORT + 2 * $2 + 1)) out=$RESULTS/n$1-run$2 i
  # Each run starts from the same endpoint set.
  slice load svc-0 svc-0-bench 10.212.0.1 10.212.0.2 10.212.0.3 | sed 1d >"$CONFIG/svc-0-endpoints.yaml"
  "$CONTROL_BIN" --config "$CONFIG" --ca "$TMP/ca" --token-file "$TMP/token" --host 127.0.0.1 \
    --push-port "$push" --http-port "$http" --threads "$CP_THREADS" >"$out.control.log" 2>&1 &
  CP_PID=$!
  for ((i = 0; i < 100; i++)); do
    curl -sf "http://127.0.0.1:$http/ready" >/dev/null 2>&1 && break
    kill -0 "$CP_PID" 2>/dev/null || die "weft-control exited: $(tail -3 "$out.control.log")"
    sleep 0.1
  done
  curl -sf "http://127.0.0.1:$http/ready" >/dev/null || die "weft-control not ready after 10 s"
  log "N=$n run $idx: weft-control pid $CP_PID ready (VmRSS $(awk '/VmRSS/{print $2}' /proc/$CP_PID/status) kB); loading"
  [[ -z ${BENCH_CONTROL_BEFORE_LOAD:-} ]] || (export CONTROL_PID=$CP_PID; eval "$BENCH_CONTROL_BEFORE_LOAD") >"$out.before" 2>&1
  local after="$BIN/weftctl check --control-plane 127.0.0.1:$http | grep 'proxies connected';"
  after+=" curl -s http://127.0.0.1:$http/metrics | grep '^weft_control_push_latency_seconds.*delta'"
  [[ -z ${BENCH_CONTROL_PROBE:-} ]] || after+="; CONTROL_PID=$CP_PID; { $BENCH_CONTROL_PROBE; } >$out.probe 2>&1"
  timeout 300 "$BIN/weft-control-load" --host 127.0.0.1 --port "$push" --connections "$n" --concurrency 200 \
    --threads "$LOAD_THREADS" --trust-bundle "$TMP/ca/bundle.crt" --token-file "$TMP/token" \
    --change-file "$CONFIG/svc-0-endpoints.yaml" --change-service load/svc-0 --rounds "$ROUNDS" \
    --control-pid "$CP_PID" --run-after "$after" --json-out "$out.json" >"$out.txt" 2>"$out.load.log" &
  LOAD_PID=$!
  wait "$LOAD_PID" || log "N=$n run $idx: the load tool reported an incomplete run (see $out.txt)"
  LOAD_PID=
  grep -E 'connect phase|propagation|VmRSS|proxies connected|nacks' "$out.txt" | sed 's/^/    /' >&2 || true
  stop_pid "$CP_PID"
  CP_PID=
}

idx=0
for ((r = 1; r <= REPEATS; r++)); do
  for n in $NS; do
    idx=$((idx + 1))
    run_one "$n" "$idx"
  done
done

# ------------------------------------------------------------------ report
COMMAND="bench/control.sh${*:+ $*}"
[[ "$NS" == "1000 10000" ]] || COMMAND="BENCH_CONTROL_NS=\"$NS\" $COMMAND"
python3 "$HERE/control_report.py" "$RESULTS" "$REPEATS" "$ROUNDS" "$COMMAND" | tee "$RESULTS/report.md"
if ((RECORD)); then
  { echo; cat "$RESULTS/report.md"; } >>"$ROOT/BENCHMARKS.md"
  log "appended to BENCHMARKS.md"
fi
log "raw results in $RESULTS"
