# Sourced by bench/routed.sh and bench/profile-routed.sh: the mesh a routed benchmark
# runs on, and the checks that the client's sidecar holds it.
#
# routed_config DIR CLIENT_IP SERVER_IP MESH_YAML
#   Writes DIR/mesh.yaml (a copy of MESH_YAML, the demo's MeshConfig: retry budget on)
#   and DIR/bench.yaml:
#   - Pods client-0 (demo, sa client, CLIENT_IP: the sidecar's pod, so weft-control
#     issues its identity) and web-0 (demo, sa web, SERVER_IP: nginx, no sidecar);
#   - Service demo/web, ClusterIP $ROUTED_CLUSTER_IP (10.99.0.10), ports http 80 -> 80
#     and h2c 8080 -> 8080, and an EndpointSlice that lists SERVER_IP;
#   - HTTPRoute demo/web (parentRef web port 80) and demo/web-h2c (port 8080): each ten
#     rules that a request for / does not match, all ahead of the last rule in
#     precedence (six Exact paths, four longer PathPrefixes), then PathPrefix / to web
#     at that port. ROUTED_RETRY=1 gives the last rule HTTPRoute's `retry` (502/503, 2
#     attempts, 100ms) and `timeouts` (10s/3s) as in control-plane/config/routes.yaml.
#
# routed_config_ok JSON_FILE SERVER_IP : exit 0 when the sidecar's admin /config (in
#   JSON_FILE) holds identity, the Service, subscription demo/web, both routes and an
#   endpoint SERVER_IP; else prints what is missing.
ROUTED_CLUSTER_IP=${ROUTED_CLUSTER_IP:-10.99.0.10}
ROUTED_CLUSTER_CIDR=10.99.0.0/16

routed_route() { # NAME PORT
  local name=$1 port=$2 extra=""
  if [[ ${ROUTED_RETRY:-0} == 1 ]]; then
    extra="
    timeouts: {request: 10s, backendRequest: 3s}
    retry: {codes: [502, 503], attempts: 2, backoff: 100ms}"
  fi
  cat <<EOF
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: $name, namespace: demo}
spec:
  parentRefs:
  - {group: "", kind: Service, name: web, port: $port}
  rules:
  - matches: [{path: {type: Exact, value: /api/v1/users}}]
    backendRefs: [{name: web, port: $port}]
  - matches: [{path: {type: Exact, value: /api/v1/orders}}]
    backendRefs: [{name: web, port: $port}]
  - matches: [{path: {type: Exact, value: /api/v2/users}}]
    backendRefs: [{name: web, port: $port}]
  - matches: [{path: {type: Exact, value: /healthz}}]
    backendRefs: [{name: web, port: $port}]
  - matches: [{path: {type: Exact, value: /readyz}}]
    backendRefs: [{name: web, port: $port}]
  - matches: [{path: {type: Exact, value: /login}}]
    backendRefs: [{name: web, port: $port}]
  - matches: [{path: {type: PathPrefix, value: /static}}]
    backendRefs: [{name: web, port: $port}]
  - matches: [{path: {type: PathPrefix, value: /assets/img}}]
    backendRefs: [{name: web, port: $port}]
  - matches: [{path: {type: PathPrefix, value: /admin}}]
    backendRefs: [{name: web, port: $port}]
  - matches: [{path: {type: PathPrefix, value: /v2/catalog}}]
    backendRefs: [{name: web, port: $port}]
  - matches: [{path: {type: PathPrefix, value: /}}]
    backendRefs: [{name: web, port: $port, weight: 1}]$extra
EOF
}

routed_config() {
  local dir=$1 cip=$2 sip=$3 mesh=$4
  mkdir -p "$dir"
  cp "$mesh" "$dir/mesh.yaml"
  {
    cat <<EOF
# written by bench/routed-config.sh
apiVersion: v1
kind: Pod
metadata: {name: client-0, namespace: demo, labels: {app: client}}
spec: {serviceAccountName: client}
status:
  phase: Running
  podIP: $cip
  podIPs: [{ip: $cip}]
  conditions: [{type: Ready, status: "True"}]
---
apiVersion: v1
kind: Pod
metadata: {name: web-0, namespace: demo, labels: {app: web}}
spec: {serviceAccountName: web}
status:
  phase: Running
  podIP: $sip
  podIPs: [{ip: $sip}]
  conditions: [{type: Ready, status: "True"}]
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: demo, labels: {app: web}}
spec:
  type: ClusterIP
  clusterIP: $ROUTED_CLUSTER_IP
  clusterIPs: [$ROUTED_CLUSTER_IP]
  selector: {app: web}
  ports:
  - {name: http, port: 80, targetPort: 80, protocol: TCP, appProtocol: http}
  - {name: h2c, port: 8080, targetPort: 8080, protocol: TCP}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: web-bench
  namespace: demo
  labels: {kubernetes.io/service-name: web}
addressType: IPv4
ports:
- {name: http, port: 80, protocol: TCP, appProtocol: http}
- {name: h2c, port: 8080, protocol: TCP}
endpoints:
- addresses: [$sip]
  conditions: {ready: true, serving: true, terminating: false}
  targetRef: {kind: Pod, name: web-0, namespace: demo}
  nodeName: node-1
---
EOF
    routed_route web 80
    echo "---"
    routed_route web-h2c 8080
  } >"$dir/bench.yaml"
  chmod 0755 "$dir"
  chmod 0644 "$dir"/*.yaml
}

routed_config_ok() {
  python3 - "$1" "$2" <<'PY'
import json, sys
path, ip = sys.argv[1], sys.argv[2]
try:
    with open(path) as f:
        v = json.load(f)
except (OSError, ValueError) as e:
    print("no /config JSON: %s" % e)
    sys.exit(1)
c = v.get("config") or {}
missing = []
if not v.get("identity"):
    missing.append("identity")
if "demo/web" not in (c.get("services") or {}):
    missing.append("service demo/web")
if "demo/web" not in (v.get("subscriptions") or []):
    missing.append("subscription demo/web")
routes = json.dumps((c.get("routes") or {}).get("demo/web"))
for name in ("demo/web", "demo/web-h2c"):
    if '"name": "%s"' % name not in routes:
        missing.append("route demo/%s" % name)
if ('"%s"' % ip) not in json.dumps((c.get("endpoints") or {}).get("demo/web")):
    missing.append("endpoint %s of demo/web" % ip)
if missing:
    print("missing: " + ", ".join(missing))
    sys.exit(1)
PY
}
