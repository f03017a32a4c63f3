#!/usr/bin/env bash
# The test command: unit tests, bounded fuzzing, and the end-to-end suite in network
# namespaces (needs root: it creates namespaces, veths and iptables rules, and deletes them).
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== unit tests"
swift build --build-tests 2>&1 | tail -n 1
swift test --skip-build 2>&1 | tail -n 5

echo "== fuzzing (bounded)"
FUZZ_SECONDS="${FUZZ_SECONDS:-30}" fuzz/run.sh

echo "== end-to-end (network namespaces, real peers)"
BIN=$(scripts/build-release.sh 2> >(tail -n 1 >&2))
WEFT_PROXY_BIN="$BIN" python3 -m pytest -q -p no:cacheprovider Tests/e2e
