#!/usr/bin/env bash
# Installs what building, testing, the demo and the benchmarks need (Debian 12, root).
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
apt_packages=(
  iptables iproute2 util-linux procps psmisc     # netns, redirect rules, setpriv
  curl nginx-light haproxy wrk nghttp2-client    # real peers and load generators
  prometheus                                     # promtool check metrics
  socat netcat-openbsd openssl tcpdump           # raw sockets, TLS peers, packet captures in tests
  valgrind linux-perf                            # instructions per request
  python3-pip
  chromium                                       # headless browser: the trace page test (test_trace_page.py)
  libstdc++-12-dev                               # linked statically (scripts/build-release.sh)
)
missing=()
for p in "${apt_packages[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# Python peers for the end-to-end tests (gRPC, WebSocket) and the test runner.
python3 -m pip install -q --disable-pip-version-check --root-user-action=ignore \
  pytest pytest-timeout grpcio websockets h2 \
  opentelemetry-sdk opentelemetry-exporter-otlp-proto-http \
  prometheus-client   # h2: raw HTTP/2 frames; OTel: an app's spans; prometheus-client: OpenMetrics' parser
