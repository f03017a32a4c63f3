#!/usr/bin/env bash
# The one release build of weft-proxy, weft-control and weftctl that the demo, the
# end-to-end tests and the benchmarks use (all three land in .build/release/): the Swift runtime linked statically (fewer resident pages, no dynamic
# symbol binding) and exclusivity checks off in every module, dependencies included
# (they cost ~10% of the proxy's instructions; see docs/ARCHITECTURE.md, Decisions).
# Prints weft-proxy's path; the other two are beside it.
set -euo pipefail
cd "$(dirname "$0")/.."
for product in weft-proxy weft-control weftctl; do
  swift build -c release --product "$product" --static-swift-stdlib \
    -Xswiftc -enforce-exclusivity=unchecked >&2
done
echo "$PWD/.build/release/weft-proxy"
