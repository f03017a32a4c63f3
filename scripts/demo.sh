#!/usr/bin/env bash
# The local mesh demo: a control plane and two "pods" (network namespaces joined by
# veths), each pod with the sidecar's redirect rules (`weft-proxy init`) and the sidecar
# (`weft-proxy run` as UID 2102) connected to the control plane, which gives each its
# SPIFFE identity and its config. nginx serves in pod B; curl in pod A calls it. Every
# byte passes both sidecars; the demo shows their metrics, `weftctl check` and
# `weftctl config`, and a config change reaching the sidecars. Needs root; cleans up
# after itself.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "demo.sh needs root (it creates network namespaces and iptables rules)" >&2; exit 1; }
for tool in ip iptables-restore nginx curl setpriv; do
  command -v "$tool" >/dev/null || { echo "missing $tool: run scripts/install-deps.sh first" >&2; exit 1; }
done

echo "== building weft-proxy, weft-control and weftctl (release)"
BIN=$(scripts/build-release.sh 2> >(tail -n 1 >&2))
DIR=$(dirname "$BIN")
CTL="$DIR/weftctl"

A="weft-demo-a-$$" B="weft-demo-b-$$" C="weft-demo-cp-$$" WORK=$(mktemp -d)
cleanup() {
  set +e
  [ -n "${PIDS:-}" ] && kill $PIDS 2>/dev/null && wait $PIDS 2>/dev/null
  ip netns del "$A" 2>/dev/null; ip netns del "$B" 2>/dev/null; ip netns del "$C" 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT INT TERM
PIDS=""

echo "== the mesh CA (weftctl ca init) and a bootstrap token"
"$CTL" ca init --out "$WORK/ca" | sed 's/^/   /'
head -c 24 /dev/urandom | base64 >"$WORK/token"
chmod 0644 "$WORK/token" "$WORK/ca/bundle.crt"; chmod 0755 "$WORK"
cp -r control-plane/config "$WORK/config"

echo "== pods: $A (client-0, 10.211.0.1) and $B (web-0, 10.211.0.2); control plane $C"
ip netns add "$A"; ip netns add "$B"; ip netns add "$C"
link() {  # link NS1 IP1 NS2 IP2: a veth pair between two namespaces
  local x="w$RANDOM" y="w$RANDOM"
  ip link add "$x" type veth peer name "$y"
  ip link set "$x" netns "$1"; ip link set "$y" netns "$3"
  ip -n "$1" addr add "$2/24" dev "$x"; ip -n "$3" addr add "$4/24" dev "$y"
  ip -n "$1" link set "$x" up; ip -n "$3" link set "$y" up
  LINK_A="$x" LINK_B="$y"
}
link "$A" 10.211.0.1 "$B" 10.211.0.2
# A stand-in for kube-proxy: web's ClusterIP 10.96.0.10 lives on pod B.
ip -n "$B" addr add 10.96.0.10/32 dev "$LINK_B"; ip -n "$A" route add 10.96.0.10/32 dev "$LINK_A"
link "$A" 10.214.0.1 "$C" 10.214.0.3
link "$B" 10.215.0.2 "$C" 10.215.0.3
for ns in "$A" "$B" "$C"; do ip -n "$ns" link set lo up; done

echo "== weft-control in $C (config: control-plane/config, pushes on :15012, API on :15014)"
ip netns exec "$C" "$DIR/weft-control" --config "$WORK/config" --ca "$WORK/ca" --token-file "$WORK/token" \
  >"$WORK/control.log" 2>&1 &
PIDS="$PIDS $!"
for _ in $(seq 100); do ip netns exec "$C" curl -fs -o /dev/null http://127.0.0.1:15014/ready && break; sleep 0.1; done

echo "== weft-proxy init (redirect rules) in both pods"
for ns in "$A" "$B"; do ip netns exec "$ns" "$BIN" init >/dev/null; done
ip netns exec "$A" iptables -t nat -S | grep WEFT | sed 's/^/   /'

echo "== weft-proxy run in both pods, as UID 2102, connected to the control plane"
run_proxy() {  # run_proxy NS CONTROL_IP POD SERVICE_ACCOUNT IP APP
  mkdir -p "$WORK/cache-$3"; chown 2102:2102 "$WORK/cache-$3"
  POD_LABELS="app=$6" ip netns exec "$1" setpriv --reuid=2102 --regid=2102 --clear-groups "$BIN" run \
    --control-plane "$2:15012" --token-file "$WORK/token" --trust-bundle "$WORK/ca/bundle.crt" \
    --cache-dir "$WORK/cache-$3" --pod-name "$3" --pod-namespace demo --service-account "$4" --pod-ip "$5" \
    >"$WORK/$3.log" 2>&1 &
  PIDS="$PIDS $!"
}
run_proxy "$A" 10.214.0.3 client-0 client 10.211.0.1 client
run_proxy "$B" 10.215.0.3 web-0 web 10.211.0.2 web
cat >"$WORK/nginx.conf" <<NGINX
worker_processes 1; daemon off; pid $WORK/nginx.pid; error_log $WORK/nginx.err;
events { worker_connections 256; }
http {
  access_log off;
  client_body_temp_path $WORK/b; proxy_temp_path $WORK/p; fastcgi_temp_path $WORK/f;
  uwsgi_temp_path $WORK/u; scgi_temp_path $WORK/s;
  server { listen 80; listen 8080 http2;
    location / { return 200 "hello from pod B, served by nginx\n"; } }
}
NGINX
ip netns exec "$B" nginx -c "$WORK/nginx.conf" & PIDS="$PIDS $!"
for ns in "$A" "$B"; do
  for _ in $(seq 100); do ip netns exec "$ns" curl -fs -o /dev/null http://127.0.0.1:15000/ready && break; sleep 0.1; done
  echo "   $ns sidecar: $(ip netns exec "$ns" curl -s http://127.0.0.1:15000/ready)"
done
sleep 0.3

echo "== curl in pod A -> http://10.211.0.2/ (HTTP/1.1, through both sidecars)"
ip netns exec "$A" curl -sS -i http://10.211.0.2/ | sed 's/^/   /'
echo "== curl --http2-prior-knowledge in pod A -> http://10.211.0.2:8080/"
ip netns exec "$A" curl -sS --http2-prior-knowledge http://10.211.0.2:8080/ | sed 's/^/   /'
echo "== curl in pod A -> http://10.96.0.10/ (Service web's ClusterIP: pod A's sidecar subscribes to demo/web)"
ip netns exec "$A" curl -sS http://10.96.0.10/ | sed 's/^/   /'
echo "== 200 requests on one keep-alive connection (curl with 200 URLs)"
urls=(); for _ in $(seq 200); do urls+=(http://10.211.0.2/); done
ip netns exec "$A" curl -s "${urls[@]}" >"$WORK/bodies"
echo "   $(grep -c 'hello from pod B' "$WORK/bodies") of 200 answered"

show() {
  ip netns exec "$1" curl -s http://127.0.0.1:15000/metrics \
    | grep -E '^weft_(connections_total|requests_total|tcp_read_bytes_total)' | grep -v ' 0$' | sed 's/^/   /'
}
echo "== pod A sidecar (outbound) metrics"; show "$A"
echo "== pod B sidecar (inbound) metrics"; show "$B"
sleep 0.3
echo "== weftctl check"
ip netns exec "$C" "$CTL" check | sed 's/^/   /'
echo "== weftctl config client-0 (what the control plane sent pod A's sidecar)"
ip netns exec "$C" "$CTL" config client-0 | sed 's/^/   /'
echo "== a config change: a second endpoint for demo/web (reaches pod A's sidecar as a delta)"
sed '/^endpoints:$/a - addresses: [10.211.0.5]\n  conditions: {ready: true}' "$WORK/config/services.yaml" >"$WORK/services.new"
mv "$WORK/services.new" "$WORK/config/services.yaml"
sleep 1
ip netns exec "$C" "$CTL" check | sed 's/^/   /'
ip netns exec "$C" "$CTL" config client-0 | grep endpoint | sed 's/^/   /'
echo "== a bad config change is rejected; the last good config stays in force"
printf 'apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: bad, namespace: demo}\nspec:\n  parentRefs: [{group: \"\", kind: Service, name: web}]\n  rules: [{backendRefs: [{name: web, port: 80, weight: -1}]}]\n' >"$WORK/config/bad.yaml"
sleep 1
ip netns exec "$C" "$CTL" check | sed 's/^/   /' || true
rm "$WORK/config/bad.yaml"
echo "== another pod cannot stop a sidecar: POST /shutdown from pod A to pod B's admin port"
ip netns exec "$A" curl -s -X POST -w '   (HTTP %{http_code})\n' http://10.211.0.2:15000/shutdown | sed 's/^/   /'
echo "== graceful drain: POST /shutdown to pod A's sidecar, from its own pod (loopback)"
ip netns exec "$A" curl -s -X POST http://127.0.0.1:15000/shutdown | sed 's/^/   /'
sleep 0.5
echo "== done: the demo removes its namespaces and processes on exit"
