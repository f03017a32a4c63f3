#!/usr/bin/env bash
# The local mesh demo. A "node" (a network namespace with a bridge) runs the control plane,
# weft-control; each "pod" is a network namespace on that bridge with only a default route
# via the node, and no kube-proxy: a Service's ClusterIP is reached only through the
# client's sidecar. Pods A (client-0) and B (web-0) get the sidecar's redirect rules
# (`weft-proxy init`) and the sidecar (`weft-proxy run` as UID 2102), connected to the
# control plane, which gives each its SPIFFE identity and its config. nginx serves in pod
# B; curl in pod A calls it through both sidecars; the demo shows their metrics,
# `weftctl check` and `weftctl config`, and config changes reaching the sidecars. Then the
# mesh at work, with the end-to-end suite's Python backend (Tests/e2e/mesh_fixtures.py)
# in three more pods: a 90/10 traffic split, retries absorbing a flaky backend, a route
# timeout, and a request mirror, each with the sidecar metric that shows it; then the
# identities: pods A and B talk over mesh TLS, and a call from a pod without a sidecar is
# denied by the AuthorizationPolicy, with the explanation.
#
# Needs root; removes the namespaces and processes it made when it exits, also after a
# failure or Ctrl-C. WEFT_DEMO_SKIP_BUILD=1 skips scripts/build-release.sh and uses the
# binaries already in .build/release (or beside WEFT_PROXY_BIN, if set).
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "demo.sh needs root (it creates network namespaces and iptables rules)" >&2; exit 1; }
for tool in ip iptables-restore nginx curl setpriv python3; do
  command -v "$tool" >/dev/null || { echo "missing $tool: run scripts/install-deps.sh first" >&2; exit 1; }
done
python3 -c 'import h2' 2>/dev/null || { echo "missing python package h2: run scripts/install-deps.sh first" >&2; exit 1; }
unset http_proxy https_proxy all_proxy no_proxy HTTP_PROXY HTTPS_PROXY ALL_PROXY NO_PROXY

if [ "${WEFT_DEMO_SKIP_BUILD:-0}" = 1 ]; then
  BIN=${WEFT_PROXY_BIN:-$PWD/.build/release/weft-proxy}
  echo "== using the binaries in $(dirname "$BIN") (WEFT_DEMO_SKIP_BUILD=1)"
else
  echo "== building weft-proxy, weft-control and weftctl (release)"
  BIN=$(scripts/build-release.sh 2> >(tail -n 1 >&2))
fi
DIR=$(dirname "$BIN")
CTL="$DIR/weftctl"
for b in "$BIN" "$DIR/weft-control" "$CTL"; do
  [ -x "$b" ] || { echo "missing $b: run scripts/build-release.sh" >&2; exit 1; }
done

A="weft-demo-a-$$" B="weft-demo-b-$$" C="weft-demo-cp-$$"
V1="weft-demo-v1-$$" V2="weft-demo-v2-$$" API="weft-demo-api-$$"
NODE_IP=10.211.0.254
NAMESPACES=() PIDS=""
WORK=$(mktemp -d)
cleanup() {
  set +e
  trap - EXIT INT TERM
  if [ -n "$PIDS" ]; then
    kill $PIDS 2>/dev/null
    for _ in $(seq 50); do kill -0 $PIDS 2>/dev/null || break; sleep 0.1; done
    kill -KILL $PIDS 2>/dev/null
    wait $PIDS 2>/dev/null
  fi
  for ns in "${NAMESPACES[@]}"; do ip netns del "$ns" 2>/dev/null; done
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
# Every curl below gives up in time, whatever ~/.curlrc says.
printf 'connect-timeout = 5\nmax-time = 15\n' >"$WORK/.curlrc"; export CURL_HOME=$WORK

echo "== the mesh CA (weftctl ca init) and a bootstrap token"
"$CTL" ca init --out "$WORK/ca" | sed 's/^/   /'
head -c 24 /dev/urandom | base64 >"$WORK/token"
chmod 0644 "$WORK/token" "$WORK/ca/bundle.crt"; chmod 0755 "$WORK"
cp -r control-plane/config "$WORK/config"
if ! setpriv --reuid=2102 --regid=2102 --clear-groups test -x "$BIN"; then  # not reachable for UID 2102
  cp "$BIN" "$WORK/weft-proxy"; chmod 0755 "$WORK/weft-proxy"; BIN="$WORK/weft-proxy"
fi

echo "== the node $C (a bridge, $NODE_IP/24, and the control plane) and its pods, each with only a default route:"
echo "   $A (client-0, 10.211.0.1) and $B (web-0, 10.211.0.2)"
for ns in "$C" "$A" "$B" "$V1" "$V2" "$API"; do
  NAMESPACES+=("$ns"); ip netns add "$ns"; ip -n "$ns" link set lo up
done
ip -n "$C" link add br0 type bridge
ip -n "$C" addr add "$NODE_IP/24" dev br0
ip -n "$C" link set br0 up
# No route for the ClusterIPs (10.96.0.0/16) anywhere: what the sidecar does not send to an
# endpoint gets "network unreachable" from the node.
ip netns exec "$C" sysctl -qw net.ipv4.ip_forward=1
join() {  # join NS IP: the pod's eth0, a veth whose peer is a port of the node's bridge
  local port="v${2##*.}"
  ip -n "$C" link add "$port" type veth peer name eth0 netns "$1"
  ip -n "$C" link set "$port" master br0 up
  ip -n "$1" addr add "$2/24" dev eth0
  ip -n "$1" link set eth0 up
  ip -n "$1" route add default via "$NODE_IP"
}
join "$A" 10.211.0.1; join "$B" 10.211.0.2
join "$V1" 10.211.0.11; join "$V2" 10.211.0.12; join "$API" 10.211.0.13

backend() {  # backend NS POD: the e2e suite's backend, BACKEND_SERVER in Tests/e2e/mesh_fixtures.py
  # (read, not imported: no test dependencies): HTTP on :8080, JSON answers naming POD;
  # /flaky/<pct> answers 503 to pct% of requests, /delay/<ms> sleeps first, /counts
  ip netns exec "$1" python3 -c 'import ast, sys
tree = ast.parse(open("Tests/e2e/mesh_fixtures.py").read())
exec(next(n.value.value for n in tree.body if isinstance(n, ast.Assign) and getattr(n.targets[0], "id", "") == "BACKEND_SERVER"))' \
    "$2" 8080,8081 7000 >"$WORK/$2.log" 2>&1 &
  PIDS="$PIDS $!"
}
backend "$V1" web-v1-0; backend "$V2" web-v2-0; backend "$API" api-0

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
run_proxy "$A" "$NODE_IP" client-0 client 10.211.0.1 client
run_proxy "$B" "$NODE_IP" web-0 web 10.211.0.2 web
cat >"$WORK/nginx.conf" <<NGINX
worker_processes 1; daemon off; pid $WORK/nginx.pid; error_log $WORK/nginx.err;
events { worker_connections 256; }
http {
  access_log off;
  client_body_temp_path $WORK/b; proxy_temp_path $WORK/p; fastcgi_temp_path $WORK/f;
  uwsgi_temp_path $WORK/u; scgi_temp_path $WORK/s;
  server { listen 80; listen 8080; listen 8081 http2;
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
echo "== curl --http2-prior-knowledge in pod A -> http://10.211.0.2:8081/"
ip netns exec "$A" curl -sS --http2-prior-knowledge http://10.211.0.2:8081/ | sed 's/^/   /'
echo "== curl in pod A -> http://10.96.0.10/ (Service web's ClusterIP: no route leads there; pod A's"
echo "   sidecar subscribes to demo/web and sends the request to its endpoint 10.211.0.2:8080)"
ip netns exec "$A" curl -sS http://10.96.0.10/ | sed 's/^/   /'
echo "== 200 requests on one keep-alive connection (curl with 200 URLs)"
urls=(); for _ in $(seq 200); do urls+=(http://10.211.0.2/); done
timeout --foreground 60 ip netns exec "$A" curl -s "${urls[@]}" >"$WORK/bodies" || true
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

acked() {  # acked GEN: the config in force is valid, newer than generation GEN, and every sidecar acked it
  ip netns exec "$C" python3 - "$1" <<'PY'
import json, sys, urllib.request
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
get = lambda path: json.load(opener.open("http://127.0.0.1:15014/api/v1/" + path, timeout=2))
status, proxies = get("status"), get("proxies")
ok = (status["config"]["state"] == "valid" and status["config"]["generation"] > int(sys.argv[1])
      and not status["proxies"]["behind"] and all(p["ackedVersion"] == p["version"] for p in proxies))
sys.exit(0 if ok else 1)
PY
}
generation() {
  ip netns exec "$C" curl -s http://127.0.0.1:15014/api/v1/status | python3 -c 'import json, sys; print(json.load(sys.stdin)["config"]["generation"])'
}
wait_acked() {  # wait_acked GEN (at most 10 s)
  for _ in $(seq 50); do acked "$1" && return 0; sleep 0.2; done
  echo "   the config was not accepted and acked by every sidecar within 10 s:" >&2
  ip netns exec "$C" "$CTL" check >&2 || true
  return 1
}
put() {  # put FILE: stdin becomes $WORK/config/FILE at once; waits until the sidecars acked it
  local gen; gen=$(generation)
  cat >"$WORK/put.tmp"; mv "$WORK/put.tmp" "$WORK/config/$1"
  wait_acked "$gen"
}

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
wait_acked 0

# ---------------------------------------------------------------- the mesh at work --
metrics() { ip netns exec "$A" curl -s http://127.0.0.1:15000/metrics; }
mark() { metrics >"$WORK/metrics.before"; }
since() {  # since SERIES...: pod A's sidecar metric lines, with their change since `mark`
  local first="   sidecar:"
  for s in "$@"; do
    metrics | awk -v s="$s" -v lead="$first" 'NR == FNR { if ($1 == s) b = $2; next }
      $1 == s { printf "%s %s %d (+%d)\n", lead, s, $2, $2 - b; found = 1 }
      END { if (!found) printf "%s %s 0\n", lead, s }' "$WORK/metrics.before" -
    first="           "
  done
}
burst() {  # burst N URL: N requests from pod A, one curl on one keep-alive connection
  local urls=(); for _ in $(seq "$1"); do urls+=("$2"); done
  echo "   \$ curl http://${2#http://}   x $1 (pod A; one connection)"
  timeout --foreground 60 ip netns exec "$A" curl -s -w '\n%{http_code}\n' "${urls[@]}" >"$WORK/burst" || true
}
statuses() {  # "200 x 161, 503 x 39: 19.5% failed" for the last burst
  grep -xE '[0-9]{3}' "$WORK/burst" | sort | uniq -c | awk '
    { n += $1; if ($2 != 200) bad += $1; s = s (s ? ", " : "") $2 " x " $1 }
    END { printf "%s: %.1f%% failed", s, n ? 100 * bad / n : 0 }'
}
route() {  # route FILE NAME SERVICE RULES: an HTTPRoute on a Service (shown, then applied)
  { printf 'apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: %s, namespace: demo}\n' "$2"
    printf 'spec:\n  parentRefs: [{group: "", kind: Service, name: %s, port: 80}]\n  rules:\n' "$3"
    printf '%s\n' "$4"; } >"$WORK/route.yaml"
  sed 's/^/   | /' "$WORK/route.yaml"
  put "$1" <"$WORK/route.yaml"
}
svc() {  # svc NAME CLUSTER_IP POD POD_IP: a Service with one Pod, port 80 -> 8080
  cat <<YAML
apiVersion: v1
kind: Service
metadata: {name: $1, namespace: demo, labels: {app: $1}}
spec:
  type: ClusterIP
  clusterIP: $2
  clusterIPs: [$2]
  selector: {app: $1}
  ports: [{name: http, port: 80, targetPort: 8080, protocol: TCP}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: $1-1, namespace: demo, labels: {kubernetes.io/service-name: $1}}
addressType: IPv4
ports: [{name: http, port: 8080, protocol: TCP}]
endpoints:
- addresses: [$4]
  conditions: {ready: true, serving: true, terminating: false}
  targetRef: {kind: Pod, name: $3, namespace: demo}
---
apiVersion: v1
kind: Pod
metadata: {name: $3, namespace: demo, labels: {app: $1}}
spec: {serviceAccountName: $1}
status: {phase: Running, podIP: $4, podIPs: [{ip: $4}], conditions: [{type: Ready, status: "True"}]}
YAML
}

echo
echo "== the mesh at work. Three more Services, one pod each running a Python backend without a sidecar:"
echo "   web-v1 10.96.0.11 (pod web-v1-0, 10.211.0.11), web-v2 10.96.0.12 (web-v2-0, 10.211.0.12),"
echo "   api 10.96.0.20 (api-0, 10.211.0.13). Everything below is done by pod A's sidecar alone."
for pod in web-v1-0:10.211.0.11 web-v2-0:10.211.0.12 api-0:10.211.0.13; do
  for _ in $(seq 50); do ip netns exec "$C" curl -fs -o /dev/null "http://${pod#*:}:8080/counts" && continue 2; sleep 0.2; done
  echo "backend ${pod%:*} (${pod#*:}:8080) is not answering; its log:" >&2; tail -n 20 "$WORK/${pod%:*}.log" >&2; exit 1
done
{ svc web-v1 10.96.0.11 web-v1-0 10.211.0.11; echo ---
  svc web-v2 10.96.0.12 web-v2-0 10.211.0.12; echo ---
  svc api 10.96.0.20 api-0 10.211.0.13; } | put more-services.yaml
echo "   config generation $(generation), acked by both sidecars"

echo "== 1. traffic split: Service web's route (routes.yaml) now sends 90% to web-v1, 10% to web-v2"
route routes.yaml web web '  - backendRefs:
    - {name: web-v1, port: 80, weight: 90}
    - {name: web-v2, port: 80, weight: 10}'
mark
burst 200 http://10.96.0.10/split
echo "   answered by: $(grep -o '"pod": "[^"]*"' "$WORK/burst" | cut -d'"' -f4 | sort | uniq -c \
  | awk '{ printf "%s%s %d (%.1f%%)", (NR > 1 ? ", " : ""), $2, $1, $1 / 2 }')"
echo "   the backends' own count of /split: $(for ip in 10.211.0.11 10.211.0.12; do
  ip netns exec "$C" curl -s "http://$ip:8080/counts" \
    | python3 -c 'import json, sys; d = json.load(sys.stdin); print("%s %d" % (d["pod"], d["counts"].get("/split", 0)), end="  ")'
  done)"
since 'weft_requests_total{direction="outbound",protocol="http1",status_class="2xx"}'

echo "== 2. retries absorb a flaky backend: api-0 answers /flaky/20 with 503 to 20% of requests"
echo "   a) Service api without a route: no retries"
mark
burst 200 http://10.96.0.20/flaky/20
echo "   $(statuses)"
since 'weft_requests_total{direction="outbound",protocol="http1",status_class="5xx"}' \
      'weft_retries_total{direction="outbound",reason="status"}'
echo "   b) an HTTPRoute for Service api that retries 503s"
route api.yaml api api '  - backendRefs: [{name: api, port: 80}]
    retry: {codes: [503], attempts: 2}'
mark
burst 200 http://10.96.0.20/flaky/20
echo "   $(statuses) (a request fails only if all 3 tries do: 0.2^3 = 0.8%)"
echo "   answered 200 only on a retry: $(awk '
    /"weft-retry-attempt": "[0-9]+"/ { match($0, /"weft-retry-attempt": "[0-9]+"/); a = substr($0, RSTART + 23, RLENGTH - 24); next }
    /^[0-9][0-9][0-9]$/ { if ($0 == "200" && a != "") n[a]++ }
    { a = "" }
    END { printf "%d on the 1st, %d on the 2nd", n["1"], n["2"] }' "$WORK/burst") (api-0 saw weft-retry-attempt: 1 or 2)"
since 'weft_requests_total{direction="outbound",protocol="http1",status_class="5xx"}' \
      'weft_retries_total{direction="outbound",reason="status"}' \
      'weft_retry_budget_exhausted_total{direction="outbound"}'

echo "== 3. a timeout: api-0 answers /delay/2000 after 2 s; a route on /delay allows 300ms"
route api-slow.yaml api-slow api '  - matches: [{path: {type: PathPrefix, value: /delay}}]
    timeouts: {request: 300ms}
    backendRefs: [{name: api, port: 80}]'
mark
echo "   \$ curl -i http://10.96.0.20/delay/2000"
ip netns exec "$A" curl -sS -i -w '\n(answered after %{time_total} s)\n' http://10.96.0.20/delay/2000 \
  | tr -d '\r' | sed 's/^/   /'
echo "   \$ curl http://10.96.0.20/delay/100"
ip netns exec "$A" curl -sS -o /dev/null -w '   %{http_code} after %{time_total} s\n' http://10.96.0.20/delay/100
since 'weft_errors_total{direction="outbound",error="upstream_timeout"}' \
      'weft_requests_total{direction="outbound",protocol="http1",status_class="5xx"}'

echo "== 4. a mirror: Service web's route now answers from web-v1 and copies every request to web-v2"
route routes.yaml web web '  - filters:
    - type: RequestMirror
      requestMirror: {backendRef: {name: web-v2, port: 80}}
    backendRefs: [{name: web-v1, port: 80}]'
mark
burst 50 http://10.96.0.10/mirror
sleep 0.5
echo "   answered by: $(grep -o '"pod": "[^"]*"' "$WORK/burst" | cut -d'"' -f4 | sort | uniq -c \
  | awk '{ printf "%s%s %d", (NR > 1 ? ", " : ""), $2, $1 }')"
echo "   the backends' own count of /mirror (web-v2-0's answers were dropped by the sidecar): $(
  for ip in 10.211.0.11 10.211.0.12; do
  ip netns exec "$C" curl -s "http://$ip:8080/counts" \
    | python3 -c 'import json, sys; d = json.load(sys.stdin); print("%s %d" % (d["pod"], d["counts"].get("/mirror", 0)), end="  ")'
  done)"
since 'weft_mirror_requests_total{direction="outbound",result="completed"}'
echo

echo "== 5. identities: pods A and B run sidecars (their Pods list the weft-proxy container), so every"
echo "   call between them above went over mesh TLS 1.3, each sidecar proving its SPIFFE ID"
ip netns exec "$A" curl -s http://127.0.0.1:15000/config | python3 -c 'import json, sys
i = json.load(sys.stdin)["identity"]; print("   pod A (client-0) is %s, certificate valid until %s" % (i["spiffeId"], i["notAfter"]))'
ip netns exec "$B" curl -s http://127.0.0.1:15000/config | python3 -c 'import json, sys
i = json.load(sys.stdin)["identity"]; print("   pod B (web-0)    is %s, certificate valid until %s" % (i["spiffeId"], i["notAfter"]))'
ip netns exec "$B" curl -s http://127.0.0.1:15000/metrics \
  | grep -E '^weft_(connections_total\{direction="inbound",protocol="tls"\}|authz_decisions_total)' | grep -v ' 0$' \
  | sed 's/^/   pod B sidecar: /'
echo "   \$ weftctl authz web-0 --from demo/client --port 8080 --method GET --path /"
ip netns exec "$C" "$CTL" authz web-0 --from demo/client --port 8080 --method GET --path / | sed 's/^/   /'
echo "== a denied call, explained: pod web-v1-0 has no sidecar (no identity) and calls pod B directly"
echo "   \$ curl -i http://10.211.0.2:8080/ (in pod web-v1-0)"
ip netns exec "$V1" curl -sS -i http://10.211.0.2:8080/ | tr -d '\r' | sed 's/^/   /'
echo
echo "   \$ weftctl authz web-0 --from demo/intruder --port 8080 --method GET --path /admin"
ip netns exec "$C" "$CTL" authz web-0 --from demo/intruder --port 8080 --method GET --path /admin \
  | sed 's/^/   /' || true
echo "   the kubelet's readiness probe (GET /healthz on 8080, declared in web-0's Pod) passes in plaintext:"
ip netns exec "$V1" curl -sS -o /dev/null -w '   GET /healthz from web-v1-0: %{http_code}\n' http://10.211.0.2:8080/healthz
echo

echo "== 6. traces: every request above was traced, one span per hop, exported by the sidecars to"
echo "   weft-control's OTLP intake (:4318); curl from pod A to pod B with a traceparent of its own:"
ip netns exec "$A" curl -sS -o /dev/null -w '   %{http_code} after %{time_total} s\n' \
  -H 'traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01' http://10.211.0.2:8080/
sleep 1.5  # the sidecars send their spans every second
echo "   \$ weftctl trace 4bf92f3577b34da6a3ce929d0e0e4736"
ip netns exec "$C" "$CTL" trace 4bf92f3577b34da6a3ce929d0e0e4736 | sed 's/^/   /' || true
echo

echo "== another pod cannot stop a sidecar: POST /shutdown from pod A to pod B's admin port"
ip netns exec "$A" curl -s -X POST -w '   (HTTP %{http_code})\n' http://10.211.0.2:15000/shutdown | sed 's/^/   /'
echo "== graceful drain: POST /shutdown to pod A's sidecar, from its own pod (loopback)"
ip netns exec "$A" curl -s -X POST http://127.0.0.1:15000/shutdown | sed 's/^/   /'
sleep 0.5
echo "== last, the slowest request of the whole demo, hop by hop: where did its time go?"
echo "   \$ weftctl trace --slowest"
ip netns exec "$C" "$CTL" trace --slowest | sed 's/^/   /' || true
echo "   the trace page (recent and slowest traces, each hop's split drawn): http://127.0.0.1:15014/traces"
echo "   in the node namespace ($C); WEFT_DEMO_HOLD=1 keeps the demo up here to look at it"
echo "   (ip netns exec $C curl -s http://127.0.0.1:15014/traces), Ctrl-C ends it"
if [[ ${WEFT_DEMO_HOLD:-0} == 1 ]]; then
  echo "== holding (WEFT_DEMO_HOLD=1): the control plane and pod B stay up; Ctrl-C to end"
  while sleep 60; do :; done
fi
echo "== done: the demo removes its namespaces and processes on exit"
