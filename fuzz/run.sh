#!/usr/bin/env bash
# Builds the libFuzzer harnesses, then runs each one for a bounded time:
#
# - http1, detect: the pure HTTP/1 scanner and the protocol detector, built with swiftc
#   (not SwiftPM: the sanitizers apply to these few files only, and the harness does not
#   pull in NIO);
# - control, yaml: the control protocol's frame decoder and messages (NIOCore), and the
#   YAML manifests to the mesh model and its validation (Yams), which need packages: built
#   by SwiftPM from fuzz/Package.swift, which depends on the root package by path, with the
#   sanitizer flags on this build's command line only (the root package's own builds are
#   unchanged). A cold build of both took 2.6 minutes on 2 cores (108 s + 50 s).
#
#   fuzz/run.sh                       # 60 s per target
#   FUZZ_SECONDS=300 fuzz/run.sh      # longer
#   FUZZ_TARGETS=detect fuzz/run.sh   # one target
#   FUZZ_TARGETS="control yaml" fuzz/run.sh
#
# Each run first replays fuzz/regressions/<target>/, then fuzzes from the committed seeds
# in fuzz/corpus/<target>/ (new inputs go to .build-fuzz/corpus/<target>/, so the seeds
# stay small). A crash is written to fuzz-artifacts/ and makes the script exit non-zero.
#
# To reproduce a crash: .build-fuzz/<target>-fuzz fuzz-artifacts/<file>. Once fixed, copy
# the input to fuzz/regressions/<target>/ under a name that says what it broke:
# The unit tests replay that folder through the same invariants in `swift test`
# (FuzzRegressionTests, ControlFuzzRegressionTests, YAMLFuzzRegressionTests).
set -euo pipefail
cd "$(dirname "$0")/.."

FUZZ_SECONDS=${FUZZ_SECONDS:-60}
FUZZ_TARGETS=${FUZZ_TARGETS:-"http1 detect control yaml"}
SWIFTC=${SWIFTC:-swiftc}
SWIFT=${SWIFT:-swift}
OUT=.build-fuzz
ARTIFACTS=fuzz-artifacts
# Swift's own crash backtracer reads the stack in a way AddressSanitizer reports as a
# second error, hiding the first; libFuzzer and ASan print what is needed.
export SWIFT_BACKTRACE=enable=no

# Only the pure files: the NIO handlers in the same folders (HTTP1ProxyHandler,
# HTTP1UpstreamConnection, HTTP1UpstreamPool, ProtocolDetectHandler) stay out.
PURE=(
    Sources/WeftProxy/Forward/HTTP1/HTTP1Head.swift
    Sources/WeftProxy/Forward/HTTP1/HTTP1ParseError.swift
    Sources/WeftProxy/Forward/HTTP1/HTTP1HeadParser.swift
    Sources/WeftProxy/Forward/HTTP1/HTTP1BodyTracker.swift
    Sources/WeftProxy/Detect/ProtocolDetector.swift
)
# The invariants live with the unit tests, which replay fuzz/regressions/ through them.
SUPPORT=Tests/WeftProxyTests/Fuzz

# The harnesses that need packages (fuzz/Package.swift). Every module of this build, NIO and
# Yams included, gets coverage and AddressSanitizer; -parse-as-library because the harness
# has no top-level code (libFuzzer's driver is the entry point).
SPM_SCRATCH=$OUT/spm
SPM_FLAGS=(
    -c release
    -Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library -Xswiftc -g -Xswiftc -use-ld=lld
)

build() {
    local target=$1 invariants=$2 harness=$3
    echo "== building $target"
    "$SWIFTC" -sanitize=fuzzer,address -parse-as-library -O -g -module-name WeftFuzz -use-ld=lld \
        "${PURE[@]}" "$SUPPORT/FuzzBuffers.swift" "$SUPPORT/$invariants" "fuzz/$harness" \
        -o "$OUT/$target-fuzz"
}

build_spm() {
    local target=$1 product=$2
    echo "== building $target (SwiftPM: fuzz/Package.swift, log: $OUT/$target-build.log)"
    local status=0
    "$SWIFT" build --package-path fuzz --scratch-path "$SPM_SCRATCH" --product "$product" "${SPM_FLAGS[@]}" \
        >"$OUT/$target-build.log" 2>&1 || status=$?
    if [ "$status" -ne 0 ]; then
        grep -E "error|warning: unable" "$OUT/$target-build.log" | head -n 20 || tail -n 20 "$OUT/$target-build.log"
        return "$status"
    fi
    tail -n 1 "$OUT/$target-build.log"
    local bin
    bin=$("$SWIFT" build --package-path fuzz --scratch-path "$SPM_SCRATCH" "${SPM_FLAGS[@]}" --show-bin-path)
    ln -sf "$bin/$product" "$OUT/$target-fuzz"
}

run() {
    local target=$1 max_len=$2
    local binary=$OUT/$target-fuzz work=$OUT/corpus/$target
    mkdir -p "$work"
    local regressions=(fuzz/regressions/"$target"/*)
    if [ -e "${regressions[0]}" ]; then
        echo "== $target: replaying ${#regressions[@]} regression inputs"
        local replay=0
        "$binary" "${regressions[@]}" >"$OUT/$target-regressions.log" 2>&1 || replay=$?
        if [ "$replay" -ne 0 ]; then
            grep -E "^Running:|invariant|ERROR" "$OUT/$target-regressions.log" | tail -n 3
            echo "== $target: a regression input fails again (log: $OUT/$target-regressions.log)"
            return "$replay"
        fi
    fi
    echo "== $target: fuzzing for ${FUZZ_SECONDS}s (log: $OUT/$target.log)"
    local status=0
    "$binary" "$work" "fuzz/corpus/$target" \
        -max_total_time="$FUZZ_SECONDS" -max_len="$max_len" -timeout=10 -rss_limit_mb=2048 \
        -dict="fuzz/$target.dict" -artifact_prefix="$ARTIFACTS/$target-" -print_final_stats=1 \
        >"$OUT/$target.log" 2>&1 || status=$?
    grep -E "^#[0-9]+[[:space:]]+(INITED|DONE)|^(SUMMARY|stat::number_of_executed_units|stat::peak_rss)|invariant|ERROR|Fatal|Test unit written" \
        "$OUT/$target.log" || true
    return "$status"
}

mkdir -p "$OUT" "$ARTIFACTS"
failed=()
for target in $FUZZ_TARGETS; do
    case $target in
    http1) build http1 HTTP1FuzzInvariants.swift HTTP1Fuzz.swift && run http1 4096 || failed+=(http1) ;;
    detect) build detect DetectFuzzInvariants.swift DetectFuzz.swift && run detect 17000 || failed+=(detect) ;;
    control) build_spm control ControlFuzz && run control 4096 || failed+=(control) ;;
    yaml) build_spm yaml YAMLFuzz && run yaml 4096 || failed+=(yaml) ;;
    *) echo "unknown target $target" >&2; exit 2 ;;
    esac
done
if [ ${#failed[@]} -gt 0 ]; then
    echo "FAILED: ${failed[*]} (new crash inputs, if any, are in $ARTIFACTS/)" >&2
    exit 1
fi
echo "no crashes"
