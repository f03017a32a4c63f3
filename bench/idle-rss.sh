#!/usr/bin/env bash
# Idle RSS of weft-proxy, two ways, on loopback (no namespaces, no root needed):
#   capture-only   `weft-proxy run` with no control plane;
#   with-CP        `weft-proxy run` holding identity and config from a weft-control
#                  (default config, a CA made here), as a deployed sidecar does.
# Each start is measured IDLE_SECS after /ready; starts alternate, STARTS of each.
# Both are measured twice: as run (start-up's code pages let go 1 s after /ready,
# StartupPages) and with --no-release-startup-pages ("kept").
# Prints one line per start and the medians.
#
# Usage: bench/idle-rss.sh [release dir]   (default .build/release)
#        STARTS=5 IDLE_SECS=2 bench/idle-rss.sh
#        DROP_CACHES=1 bench/idle-rss.sh   (as root: page cache dropped before each start)
set -euo pipefail
cd "$(dirname "$0")/.."
REL=${1:-$PWD/.build/release}
STARTS=${STARTS:-3}
IDLE_SECS=${IDLE_SECS:-3}
BASE=${PORT_BASE:-26000}
T=$(mktemp -d)
PIDS=()
cleanup() {
  set +e
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
  rm -rf "$T"
}
trap cleanup EXIT INT TERM

wait_ready() { # url pid
  for _ in $(seq 150); do
    curl -sf -o /dev/null "$1" && return 0
    kill -0 "$2" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}
rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
median() { sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : int((a[NR/2]+a[NR/2+1])/2)}'; }

"$REL/weftctl" ca init --out "$T/ca" >/dev/null
head -c 24 /dev/urandom | base64 >"$T/token"
"$REL/weft-control" --config "$PWD/control-plane/config" --ca "$T/ca" --token-file "$T/token" \
  --host 127.0.0.1 --push-port $((BASE + 12)) --http-port $((BASE + 14)) >"$T/control.log" 2>&1 &
PIDS+=($!)
wait_ready "http://127.0.0.1:$((BASE + 14))/ready" "${PIDS[0]}" || { echo "weft-control did not start:"; tail -3 "$T/control.log"; exit 1; }

measure() { # mode [kept]
  local mode=$1 args=() pid label=$1
  if [[ ${2:-} == kept ]]; then args+=(--no-release-startup-pages); label="$1-kept"; fi
  [[ -n ${DROP_CACHES:-} ]] && { sync; echo 3 >/proc/sys/vm/drop_caches; }
  if [[ $mode == with-CP ]]; then
    rm -rf "$T/cache"; mkdir -p "$T/cache"
    args+=(--control-plane "127.0.0.1:$((BASE + 12))" --token-file "$T/token" --trust-bundle "$T/ca/bundle.crt"
      --cache-dir "$T/cache" --pod-name client-0 --pod-namespace demo --service-account client --pod-ip 127.0.0.1)
  fi
  "$REL/weft-proxy" run --threads 1 --admin-host 127.0.0.1 --admin-port $((BASE + 20)) \
    --outbound-port $((BASE + 21)) --inbound-port $((BASE + 26)) --no-ipv6 ${args[@]+"${args[@]}"} >"$T/proxy.log" 2>&1 &
  pid=$!
  if ! wait_ready "http://127.0.0.1:$((BASE + 20))/ready" "$pid"; then
    echo "weft-proxy ($mode) did not become ready:" >&2; tail -3 "$T/proxy.log" >&2
    kill -9 "$pid" 2>/dev/null; return 1
  fi
  sleep "$IDLE_SECS"
  rss_kb "$pid" >>"$T/$label"
  echo "$label: $(rss_kb "$pid") kB" >&2
  kill "$pid"; wait "$pid" 2>/dev/null || true
}

for _ in $(seq "$STARTS"); do
  measure capture-only; measure with-CP; measure capture-only kept; measure with-CP kept
done
echo "idle VmRSS medians over $STARTS starts: capture-only $(median <"$T/capture-only") kB, with-CP $(median <"$T/with-CP") kB;" \
  "start-up pages kept: capture-only $(median <"$T/capture-only-kept") kB, with-CP $(median <"$T/with-CP-kept") kB"
