#!/usr/bin/env bash
# The one release build of weft-proxy, weft-control and weftctl that the demo, the
# end-to-end tests and the benchmarks use (all three land in .build/release/).
# Prints weft-proxy's path; the other two are beside it. Arguments, if any, name the
# products to build (the container images build only theirs).
#
# - The Swift runtime is linked statically (fewer resident pages, no dynamic symbol
#   binding).
# - Exclusivity checks are off in every module, dependencies included (they cost ~10%
#   of the proxy's instructions; docs/ARCHITECTURE.md, Decisions).
# - Every function gets its own section (-function-sections for Swift,
#   -ffunction-sections for C and C++), so the linker can lay out the text by
#   scripts/link/weft-proxy.order (the functions a deployed sidecar runs, hottest
#   first; regenerate with bench/order-file.sh) and scripts/link/text-layout.ld. The
#   code a sidecar runs then sits in a few MB instead of being spread over 19 MB, and
#   idle RSS drops by about 10 MB (BENCHMARKS.md, "Link order"). The lld flags
#   themselves are in Package.swift (executableLinking).
# - libstdc++ (the Swift runtime and BoringSSL are C++) is linked statically too: of its
#   2 MB shared library a sidecar mapped ~0.9 MB for the few functions it calls. Every
#   -lstdc++ on the link line finds .build/link/libstdc++.so first, a one-line linker
#   script naming the toolchain's libstdc++.a (package libstdc++-12-dev).
set -euo pipefail
cd "$(dirname "$0")/.."
LINK=$PWD/scripts/link
stdcxx_dir=$PWD/.build/link
clang=$(dirname "$(readlink -f "$(command -v swift)")")/clang
stdcxx=$("$clang" -print-file-name=libstdc++.a 2>/dev/null || true)
stdcxx_flags=()
if [[ $stdcxx == /* && -f $stdcxx ]]; then
  mkdir -p "$stdcxx_dir"
  echo "INPUT($stdcxx)" >"$stdcxx_dir/libstdc++.so"
  stdcxx_flags=(-Xlinker "-L$stdcxx_dir")
else
  echo "build-release: no libstdc++.a (apt-get install libstdc++-12-dev); linking libstdc++ dynamically" >&2
fi
flags=(
  --static-swift-stdlib
  -Xswiftc -enforce-exclusivity=unchecked
  -Xswiftc -Xfrontend -Xswiftc -function-sections
  -Xcc -ffunction-sections -Xcxx -ffunction-sections
  -Xlinker "--symbol-ordering-file=$LINK/weft-proxy.order" -Xlinker --no-warn-symbol-ordering
  -Xlinker -T -Xlinker "$LINK/text-layout.ld"
  ${stdcxx_flags[@]+"${stdcxx_flags[@]}"}
)
products=("$@")
((${#products[@]})) || products=(weft-proxy weft-control weftctl)
for product in "${products[@]}"; do
  swift build -c release --product "$product" "${flags[@]}" >&2
done
echo "$PWD/.build/release/weft-proxy"
