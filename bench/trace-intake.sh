#!/usr/bin/env bash
# bench/trace-intake.sh — the control plane's OTLP span intake (issue 12): spans per
# second into the trace store on one event-loop thread, and memory per 10,000 traces.
#
# Usage: bench/trace-intake.sh [-h|--help]
#
# weft-control runs on 127.0.0.1 (no root, loopback only) with --threads 1 and no
# per-client rate limit (--otlp-rate-limit 0: the load is one client), a CA from
# `weftctl ca init` and control-plane/config. The load (bench/trace_intake_load.py, the
# OpenTelemetry Python protobuf classes) sends OTLP/HTTP protobuf exports of 10 traces x
# 10 spans (8 attributes each, fresh random ids), made before the clock starts.
#   1. throughput: BENCH_REPEATS runs of BENCH_DURATION seconds on 4 keep-alive
#      connections; spans accepted per second, and weft-control's CPU time over the run
#      (utime+stime from /proc), so spans per CPU-second (the load shares the 2 cores).
#   2. memory: a fresh weft-control (--trace-memory 1GB, nothing evicted) receives exactly
#      10,000 traces of 10 spans; VmRSS before and after, and the store's own charge
#      (weft_control_trace_store_bytes).
# Report (Markdown) on stdout; raw output in bench/results/trace-intake-<UTC time>/.
#
# Environment: BENCH_DURATION (10), BENCH_REPEATS (3), WEFT_RELEASE_DIR (.build/release).
set -Eeuo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
case ${1:-} in -h | --help) sed -n '2,/^set -Eeuo/p' "${BASH_SOURCE[0]}" | sed '$d' | sed 's/^# \{0,1\}//'; exit 0 ;; "") ;; *)
  echo "trace-intake.sh: unknown argument $1" >&2; exit 2 ;; esac
DURATION=${BENCH_DURATION:-10} REPEATS=${BENCH_REPEATS:-3}
REL=${WEFT_RELEASE_DIR:-$ROOT/.build/release}
for b in weft-control weftctl; do [[ -x $REL/$b ]] || { echo "$REL/$b missing (scripts/build-release.sh)" >&2; exit 1; }; done
python3 -c "import opentelemetry.proto.trace.v1.trace_pb2" 2>/dev/null ||
  { echo "pip: opentelemetry-proto missing (scripts/install-deps.sh)" >&2; exit 1; }
TMP=$(mktemp -d /tmp/weft-trace-intake.XXXXXX)
RESULTS=$HERE/results/trace-intake-$(date -u +%Y%m%d-%H%M%S)
mkdir -p "$RESULTS"
PID=""
cleanup() { [[ -n $PID ]] && kill "$PID" 2>/dev/null; wait 2>/dev/null; rm -rf "$TMP"; }
trap cleanup EXIT
log() { printf '[trace-intake %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
"$REL/weftctl" ca init --out "$TMP/ca" >/dev/null
head -c 24 /dev/urandom | base64 >"$TMP/token"
cp -r "$ROOT/control-plane/config" "$TMP/config"
PUSH=25301 HTTP=25302 OTLP=25303
start() { # MEMORY
  "$REL/weft-control" --config "$TMP/config" --ca "$TMP/ca" --token-file "$TMP/token" --host 127.0.0.1 \
    --push-port $PUSH --http-port $HTTP --otlp-port $OTLP --threads 1 --trace-memory "$1" \
    --otlp-rate-limit 0 >"$TMP/control.log" 2>&1 &
  PID=$!
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$HTTP/ready" >/dev/null && return 0; sleep 0.1; done
  echo "weft-control not ready: $(tail -3 "$TMP/control.log")" >&2; exit 1
}
stop() { kill "$PID"; wait "$PID" 2>/dev/null || true; PID=""; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
metric() { curl -s "http://127.0.0.1:$HTTP/metrics" | awk -v m="$1" '$1 == m {print $2}'; }

HZ=$(getconf CLK_TCK)
throughput() { # NAME TRACES SPANS: fills rates and percpu
  rates=() percpu=()
  for r in $(seq "$REPEATS"); do
    t0=$(cpu_ticks "$PID")
    out=$(python3 "$HERE/trace_intake_load.py" --port $OTLP --seconds "$DURATION" --connections 4 \
      --traces "$2" --spans "$3")
    t1=$(cpu_ticks "$PID")
    echo "$out" >"$RESULTS/throughput-$1-r$r.json"
    read -r rate cpu < <(python3 -c "import json,sys; d=json.loads(sys.argv[1]); c=(int(sys.argv[3])-int(sys.argv[2]))/float(sys.argv[4]); print(round(d['spans']/d['seconds']), round(d['spans']/c) if c else 0)" "$out" "$t0" "$t1" "$HZ")
    rates+=("$rate") percpu+=("$cpu")
    log "run $r ($1): $out; $rate spans/s, $cpu spans per CPU-second of weft-control"
  done
}
log "throughput: $REPEATS x ${DURATION}s, apps' shape (10 traces x 10 spans an export)"
start 256MB
throughput apps 10 10
apps_rates=("${rates[@]}") apps_percpu=("${percpu[@]}")
stored=$(metric weft_control_trace_store_traces) evicted=$(metric weft_control_traces_evicted)
stop
log "throughput: $REPEATS x ${DURATION}s, sidecars' shape (512 one-span traces an export)"
start 256MB
throughput sidecars 512 1
stop

log "memory: 10,000 traces of 10 spans"
start 1GB
sleep 1
rss0=$(awk '/^VmRSS:/ {print $2}' "/proc/$PID/status")
python3 "$HERE/trace_intake_load.py" --port $OTLP --total-traces 10000 --connections 2 >"$RESULTS/memory.json"
sleep 1
rss1=$(awk '/^VmRSS:/ {print $2}' "/proc/$PID/status")
traces=$(metric weft_control_trace_store_traces) charged=$(metric weft_control_trace_store_bytes)
stop

med() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
cat <<MD
#### Span intake (\`bench/trace-intake.sh\`), $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, git $(git -C "$ROOT" rev-parse --short HEAD)

OTLP/HTTP protobuf exports (8 attributes a span), 4 keep-alive connections, weft-control
on one event-loop thread; ${REPEATS} runs of ${DURATION} s per shape: as apps send (10
traces x 10 spans an export) and as sidecars do (512 traces of one span: the CLIENT and
SERVER spans of a request come from two sidecars).

| measure | median | runs |
|---|---:|---|
| spans accepted per second, apps' shape | $(med "${apps_rates[@]}") | ${apps_rates[*]} |
| spans per CPU-second of weft-control, apps' shape | $(med "${apps_percpu[@]}") | ${apps_percpu[*]} |
| spans accepted per second, sidecars' shape | $(med "${rates[@]}") | ${rates[*]} |
| spans per CPU-second of weft-control, sidecars' shape | $(med "${percpu[@]}") | ${percpu[*]} |

Store after the runs (256MB budget): ${stored:-?} traces kept, ${evicted:-?} evicted.

Memory, 10,000 traces of 10 spans (100,000 spans) into a fresh weft-control: VmRSS
${rss0} kB → ${rss1} kB, **$(( (rss1 - rss0) / 1024 )) MB per 10,000 traces**; the store
charged itself $(python3 -c "print(round(float('${charged:-0}')/1048576))") MB for ${traces:-?} traces.
MD
