#!/bin/sh
# The init container's entry point: install the Pod's redirect rules, then exit.
# Runs as root with NET_ADMIN and NET_RAW; flags are passed through, e.g.
#   weft-init --exclude-inbound-ports 22 --exclude-outbound-cidrs 169.254.169.254/32
exec /usr/local/bin/weft-proxy init "$@"
