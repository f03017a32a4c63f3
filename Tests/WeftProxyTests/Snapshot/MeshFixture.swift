import WeftProtocol

@testable import WeftProxy

/// Builds `AppliedConfig`s for snapshot and planner tests: Services with one port 80 →
/// 8080 named `http`, their endpoints, and HTTPRoutes.
struct MeshFixture {
    var config = AppliedConfig(
        version: 1, generation: 1,
        mesh: MeshSettings(
            trustDomain: "cluster.local", mtls: "PERMISSIVE",
            retryBudget: RetryBudgetSettings(ratio: 0.2, minRetriesPerSecond: 10, windowMs: 10_000),
            traceSampling: 1, outboundPolicy: "ALLOW_ANY"))

    /// Adds a Service `key` (namespace/name) at `clusterIP`, port 80 → 8080 (`http`);
    /// `endpoints` nil means not subscribed (its routes and endpoints not received).
    mutating func service(
        _ key: String, clusterIP: String, endpoints: [String]? = [], notReady: [String] = [],
        routes: [RouteEntry] = [], ports: [ServicePortEntry]? = nil
    ) {
        let name = String(key.split(separator: "/")[1])
        let namespace = String(key.split(separator: "/")[0])
        config.services[key] = ServiceEntry(
            key: key, clusterIPs: [clusterIP],
            hosts: ["\(name).\(namespace).svc.cluster.local", "\(name).\(namespace).svc", "\(name).\(namespace)"],
            ports: ports ?? [
                ServicePortEntry(
                    name: "http", port: 80, targetPort: 8080, targetPortName: nil, protocol: "TCP", appProtocol: nil)
            ])
        guard let endpoints else { return }
        config.routes[key] = RouteSet(service: key, routes: routes)
        config.endpoints[key] = EndpointSet(
            service: key,
            endpoints: endpoints.map { Self.endpoint($0, ready: true) }
                + notReady.map { Self.endpoint($0, ready: false) })
    }

    static func endpoint(_ address: String, ready: Bool, port: Int = 8080) -> EndpointEntry {
        EndpointEntry(
            address: address, ports: [EndpointPortEntry(name: "http", port: port, appProtocol: nil)], ready: ready,
            serving: ready, terminating: false, identity: nil, zone: nil)
    }

    static func route(
        _ name: String, port: Int? = nil, _ rules: [RouteRuleEntry]
    ) -> RouteEntry {
        RouteEntry(name: name, port: port, hostnames: nil, rules: rules)
    }

    static func rule(
        _ matches: [RouteMatchEntry], _ backends: [(String, Int)], name: String? = nil
    ) -> RouteRuleEntry {
        RouteRuleEntry(
            matches: matches, backends: backends.map { BackendEntry(service: $0.0, port: 80, weight: $0.1) },
            requestTimeoutMs: nil, backendRequestTimeoutMs: nil, retry: nil, name: name)
    }

    static func path(
        _ type: String, _ value: String, method: String? = nil, headers: [ValueMatchEntry]? = nil,
        query: [ValueMatchEntry]? = nil
    ) -> RouteMatchEntry {
        RouteMatchEntry(pathType: type, path: value, headers: headers, queryParams: query, method: method)
    }

    func snapshot(namespace: String = "demo") throws -> MeshSnapshot {
        try MeshSnapshotCompiler.compile(config, namespace: namespace)
    }
}
