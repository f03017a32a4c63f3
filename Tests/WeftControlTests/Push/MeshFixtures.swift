import WeftCore
import WeftProtocol

@testable import WeftControl

/// Wire-level meshes for push tests, built without YAML so each test states exactly what
/// differs between generations.
enum MeshFixtures {
    static let settings = MeshSettings(
        trustDomain: "cluster.local", mtls: "PERMISSIVE",
        retryBudget: RetryBudgetSettings(ratio: 0.2, minRetriesPerSecond: 10, windowMs: 10_000), traceSampling: 1,
        outboundPolicy: "ALLOW_ANY")

    static func service(_ key: String, ip: String) -> ServiceEntry {
        let parts = key.split(separator: "/")
        return ServiceEntry(
            key: key, clusterIPs: [ip], hosts: ["\(parts[1]).\(parts[0]).svc.cluster.local"],
            ports: [
                ServicePortEntry(
                    name: "http", port: 80, targetPort: 8080, targetPortName: nil, protocol: "TCP", appProtocol: nil)
            ])
    }

    static func endpoints(_ key: String, _ addresses: [String]) -> EndpointSet {
        EndpointSet(
            service: key,
            endpoints: addresses.map {
                EndpointEntry(
                    address: $0, ports: [EndpointPortEntry(name: "http", port: 8080, appProtocol: nil)], ready: true,
                    serving: true, terminating: false, identity: "spiffe://cluster.local/ns/demo/sa/web", zone: nil)
            })
    }

    static func routes(_ key: String, timeoutMs: Int) -> RouteSet {
        RouteSet(
            service: key,
            routes: [
                RouteEntry(
                    name: key, port: 80, hostnames: nil,
                    rules: [
                        RouteRuleEntry(
                            matches: [
                                RouteMatchEntry(
                                    pathType: "PathPrefix", path: "/", headers: nil, queryParams: nil, method: nil)
                            ],
                            backends: [BackendEntry(service: key, port: 80, weight: 1)], requestTimeoutMs: timeoutMs,
                            backendRequestTimeoutMs: nil, retry: nil)
                    ])
            ])
    }

    static func policy(_ key: String, namespace: String = "demo", app: String) -> PolicySelection {
        PolicySelection(
            namespace: namespace, selector: LabelSelector(matchLabels: ["app": app], matchExpressions: []),
            entry: PolicyEntry(
                key: key, action: "ALLOW",
                rules: [
                    PolicyRule(
                        from: [
                            PolicyPeer(
                                identities: ["spiffe://cluster.local/ns/demo/sa/client"], namespaces: nil,
                                serviceAccounts: nil)
                        ],
                        to: nil)
                ]))
    }

    /// Generation `generation` of a small mesh: two services (web, api), web's endpoints
    /// and routes as given, and a policy for app=web pods.
    static func mesh(
        generation: Int, web: [String] = ["10.211.0.2"], api: [String] = ["10.211.0.9"], webTimeoutMs: Int = 1000,
        extraService: Bool = false, policyApp: String = "web", mtls: String = "PERMISSIVE",
        workloads: [WorkloadEntry] = [], previous: CompiledMesh? = nil
    ) -> CompiledMesh {
        var services = [service("demo/web", ip: "10.96.0.10"), service("demo/api", ip: "10.96.0.11")]
        if extraService { services.append(service("demo/extra", ip: "10.96.0.12")) }
        var mesh = settings
        mesh.mtls = mtls
        return CompiledMesh(
            generation: generation, mesh: mesh, services: services,
            routes: [routes("demo/web", timeoutMs: webTimeoutMs)],
            endpoints: [endpoints("demo/web", web), endpoints("demo/api", api)],
            policies: [policy("demo/allow-client", app: policyApp)],
            pods: [
                "demo/web-0": KnownPod(serviceAccount: "web", labels: ["app": "web"]),
                "demo/client-0": KnownPod(serviceAccount: "client", labels: ["app": "client"]),
            ], workloads: workloads, previous: previous)
    }
}
