import NIOCore
import WeftProtocol
import XCTest

@testable import WeftProxy

/// What the proxy accepts and refuses from the control plane; a refusal leaves the
/// previous config untouched (the caller keeps it and nacks).
final class ConfigApplierTests: XCTestCase {
    private let mesh = MeshSettings(
        trustDomain: "cluster.local", mtls: "PERMISSIVE",
        retryBudget: RetryBudgetSettings(ratio: 0.2, minRetriesPerSecond: 10, windowMs: 10_000), traceSampling: 1,
        outboundPolicy: "ALLOW_ANY")

    private func service(_ key: String, ip: String = "10.96.0.10") -> ServiceEntry {
        ServiceEntry(key: key, clusterIPs: [ip], hosts: [], ports: [])
    }

    private func route(path: String, type: String = "RegularExpression") -> RouteSet {
        RouteSet(
            service: "demo/web",
            routes: [
                RouteEntry(
                    name: "demo/web", port: 80, hostnames: nil,
                    rules: [
                        RouteRuleEntry(
                            matches: [
                                RouteMatchEntry(pathType: type, path: path, headers: nil, queryParams: nil, method: nil)
                            ],
                            backends: [], requestTimeoutMs: nil, backendRequestTimeoutMs: nil, retry: nil)
                    ])
            ])
    }

    private func base() throws -> AppliedConfig {
        try ConfigApplier.apply(
            ConfigPush(
                version: 1, nonce: "n1", generation: 1,
                snapshot: ConfigSet(mesh: mesh, services: [service("demo/web")], routes: [route(path: "^/api/.*$")])))
    }

    func testConfigReplacesEverything() throws {
        let config = try base()
        XCTAssertEqual(config.version, 1)
        XCTAssertEqual(Array(config.services.keys), ["demo/web"])
        XCTAssertEqual(config.routes["demo/web"]?.routes.count, 1)
    }

    func testConfigWithoutMeshIsRefused() {
        XCTAssertThrowsError(
            try ConfigApplier.apply(ConfigPush(version: 1, nonce: "n", generation: 1, snapshot: ConfigSet()))
        ) { error in
            XCTAssertTrue("\(error)".contains("snapshot.mesh"), "\(error)")
        }
    }

    func testDeltaRemovesThenUpserts() throws {
        let delta = DeltaPush(
            version: 2, base: 1, nonce: "n2", generation: 2,
            upserts: ConfigSet(services: [service("demo/api", ip: "10.96.0.11")]),
            removals: ConfigKeys(services: ["demo/web"], routes: ["demo/web"]))
        let config = try ConfigApplier.apply(delta, to: base())
        XCTAssertEqual(config.version, 2)
        XCTAssertEqual(config.generation, 2)
        XCTAssertEqual(Array(config.services.keys), ["demo/api"])
        XCTAssertTrue(config.routes.isEmpty)
    }

    func testWorkloadsIndexTheMeshedPodsAndTheirIdentityOnlyOffTheSidecarsPorts() throws {
        let web = "spiffe://cluster.local/ns/demo/sa/web"
        var config = try ConfigApplier.apply(
            ConfigPush(
                version: 1, nonce: "n1", generation: 1,
                snapshot: ConfigSet(
                    mesh: mesh, probes: [ProbeEntry(port: 8080, path: "/healthz", method: "GET")],
                    workloads: [WorkloadEntry(ip: "10.230.0.2", identity: web)])))
        XCTAssertEqual(config.probes.map(\.path), ["/healthz"])
        let snapshot = try MeshSnapshotCompiler.compile(config, namespace: "demo")
        XCTAssertEqual(snapshot.meshIdentity(ofAddress: try SocketAddress(ipAddress: "10.230.0.2", port: 8080)), web)
        XCTAssertNil(
            snapshot.meshIdentity(ofAddress: try SocketAddress(ipAddress: "10.230.0.2", port: 15000)),
            "the sidecar's admin port is never captured: plaintext")
        XCTAssertNil(snapshot.meshIdentity(ofAddress: try SocketAddress(ipAddress: "10.230.0.3", port: 8080)))
        config = try ConfigApplier.apply(
            DeltaPush(
                version: 2, base: 1, nonce: "n2", generation: 2, upserts: ConfigSet(),
                removals: ConfigKeys(workloads: ["10.230.0.2"])), to: config)
        XCTAssertTrue(config.workloads.isEmpty)
        XCTAssertThrowsError(
            try ConfigApplier.apply(
                DeltaPush(
                    version: 3, base: 2, nonce: "n3", generation: 3,
                    upserts: ConfigSet(workloads: [WorkloadEntry(ip: "web-0", identity: web)]), removals: ConfigKeys()),
                to: config)
        ) { error in
            XCTAssertEqual("\(error)", "invalid_address: workloads[web-0]: not an IP address")
        }
    }

    func testPoliciesAndProbesTheProxyCannotApplyAreRefused() throws {
        let badBlock = PolicyEntry(
            key: "demo/p", action: "ALLOW",
            rules: [
                PolicyRule(
                    from: [PolicyPeer(identities: nil, namespaces: nil, serviceAccounts: nil, ipBlocks: ["10.0.0/8"])],
                    to: nil)
            ])
        for (set, reason) in [
            (
                ConfigSet(mesh: mesh, policies: [badBlock]),
                "invalid_setting: policies[demo/p].rules[0].from[0].ipBlocks[0]: \"10.0.0/8\" is not a CIDR"
            ),
            (
                ConfigSet(mesh: mesh, probes: [ProbeEntry(port: 0, path: "/x", method: "GET")]),
                "invalid_setting: probes[0]: port 0, path \"/x\" is not a probe"
            ),
        ] {
            // Applied, then compiled into the snapshot (as the control client does): refused.
            XCTAssertThrowsError(
                try MeshSnapshotCompiler.compile(
                    try ConfigApplier.apply(ConfigPush(version: 1, nonce: "n", generation: 1, snapshot: set)),
                    namespace: "demo")
            ) { error in
                XCTAssertEqual("\(error)", reason)
            }
        }
    }

    func testBaseMismatchIsRefused() throws {
        let delta = DeltaPush(
            version: 3, base: 2, nonce: "n3", generation: 2, upserts: ConfigSet(), removals: ConfigKeys())
        XCTAssertThrowsError(try ConfigApplier.apply(delta, to: base())) { error in
            XCTAssertEqual((error as? ConfigRefusal)?.code, .baseMismatch)
            XCTAssertTrue("\(error)".hasPrefix("base_mismatch: base mismatch"), "\(error)")
        }
    }

    func testRefusals() throws {
        let cases: [(ConfigSet, String)] = [
            (ConfigSet(routes: [route(path: "([")]), "routes[demo/web].rules[0].matches[0].path"),
            (ConfigSet(services: [service("demo/x", ip: "10.0.0.300")]), "services[demo/x].clusterIPs"),
            (
                ConfigSet(endpoints: [
                    EndpointSet(
                        service: "demo/web",
                        endpoints: [
                            EndpointEntry(
                                address: "web-0", ports: [], ready: true, serving: true, terminating: false,
                                identity: nil,
                                zone: nil)
                        ])
                ]), "endpoints[demo/web]"
            ),
            (ConfigSet(policies: [PolicyEntry(key: "demo/p", action: "MAYBE", rules: [])]), "policies[demo/p].action"),
            (
                ConfigSet(
                    mesh: MeshSettings(
                        trustDomain: "cluster.local", mtls: "SOMETIMES", retryBudget: mesh.retryBudget,
                        traceSampling: 1,
                        outboundPolicy: "ALLOW_ANY")), "mesh.mtls"
            ),
            (
                ConfigSet(
                    mesh: MeshSettings(
                        trustDomain: "cluster.local", mtls: "STRICT", retryBudget: mesh.retryBudget,
                        traceSampling: 1, outboundPolicy: "ALLOW_ANY", http1Transport: "h2c")), "mesh.http1Transport"
            ),
        ]
        let current = try base()
        for (upserts, field) in cases {
            let delta = DeltaPush(
                version: 2, base: 1, nonce: "n2", generation: 2, upserts: upserts, removals: ConfigKeys())
            XCTAssertThrowsError(try ConfigApplier.apply(delta, to: current), field) { error in
                XCTAssertTrue((error as! ConfigRefusal).reason.hasPrefix(field), "\(error) should name \(field)")
            }
        }
        XCTAssertEqual(current, try base(), "the config in force is a value; refusals never touch it")
    }
}
