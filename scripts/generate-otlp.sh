#!/usr/bin/env bash
# scripts/generate-otlp.sh — regenerates Sources/WeftOTLP/*.pb.swift, the OTLP trace
# messages (issue 12), from opentelemetry-proto. The output is committed: builds and CI
# never run this (swift-protobuf's plugin takes minutes to build).
#
# Usage: scripts/generate-otlp.sh OTLP_PROTO_CHECKOUT
#   OTLP_PROTO_CHECKOUT  a clone of github.com/open-telemetry/opentelemetry-proto; the tag
#                        in OTLP_TAG (default v1.9.0) is read from it with `git show`.
# Needs protoc (apt: protobuf-compiler) and git. protoc-gen-swift is built from
# swift-protobuf at PROTOBUF_VERSION (default 1.39.0, the version Package.swift resolves)
# into .build-protoc-gen-swift/ unless PROTOC_GEN_SWIFT names one.
set -Eeuo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SRC=${1:?usage: scripts/generate-otlp.sh OTLP_PROTO_CHECKOUT}
TAG=${OTLP_TAG:-v1.9.0}
VERSION=${PROTOBUF_VERSION:-1.39.0}
command -v protoc >/dev/null || { echo "generate-otlp: protoc missing (apt: protobuf-compiler)" >&2; exit 1; }
PLUGIN=${PROTOC_GEN_SWIFT:-}
if [[ -z $PLUGIN ]]; then
  BUILD=$ROOT/.build-protoc-gen-swift
  if [[ ! -x $BUILD/.build/release/protoc-gen-swift ]]; then
    rm -rf "$BUILD"
    git clone -q --branch "$VERSION" https://github.com/apple/swift-protobuf.git "$BUILD"
    (cd "$BUILD" && swift build -c release --product protoc-gen-swift)
  fi
  PLUGIN=$BUILD/.build/release/protoc-gen-swift
fi
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
FILES=(
  opentelemetry/proto/common/v1/common.proto
  opentelemetry/proto/resource/v1/resource.proto
  opentelemetry/proto/trace/v1/trace.proto
  opentelemetry/proto/collector/trace/v1/trace_service.proto
)
for f in "${FILES[@]}"; do
  mkdir -p "$WORK/$(dirname "$f")"
  git -C "$SRC" show "$TAG:$f" >"$WORK/$f"
done
OUT=$ROOT/Sources/WeftOTLP
rm -f "$OUT"/*.pb.swift
# The gRPC service in trace_service.proto generates nothing here (no gRPC plugin): only
# its request and response messages, which OTLP/HTTP carries.
protoc --plugin=protoc-gen-swift="$PLUGIN" -I "$WORK" \
  --swift_opt=Visibility=Public --swift_opt=FileNaming=PathToUnderscores \
  --swift_out="$OUT" "${FILES[@]}"
echo "generated from opentelemetry-proto $TAG with swift-protobuf $VERSION:"
ls "$OUT"/*.pb.swift
