#!/usr/bin/env bash
# The one release build of weft-proxy that the demo, the end-to-end tests and the
# benchmarks use: the Swift runtime linked statically (fewer resident pages, no dynamic
# symbol binding) and exclusivity checks off in every module, dependencies included
# (they cost ~10% of the proxy's instructions; see docs/ARCHITECTURE.md, Decisions).
# Prints the binary's path.
set -euo pipefail
cd "$(dirname "$0")/.."
swift build -c release --product weft-proxy --static-swift-stdlib \
  -Xswiftc -enforce-exclusivity=unchecked >&2
echo "$PWD/.build/release/weft-proxy"
