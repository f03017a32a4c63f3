import WeftCore
import XCTest

final class MeshConfigTests: XCTestCase {
    func testDecodes() throws {
        guard case .meshConfig(let c) = Fixtures.decodeClean(Fixtures.meshConfig).first else { return XCTFail() }
        XCTAssertEqual(c.metadata?.name, "mesh")
        XCTAssertEqual(c.trustDomain, "example.org")
        XCTAssertEqual(c.clusterDomain, "cluster.local")
        XCTAssertEqual(c.mtlsMode, .strict)
        XCTAssertEqual(c.http1Transport, .http2)
        XCTAssertEqual(c.retryBudget, .init(ratio: 0.25, minRetriesPerSecond: 5, window: .seconds(30)))
        XCTAssertEqual(c.tracing.sampling, 0.5)
        XCTAssertEqual(c.outboundPolicy, .registryOnly)
    }

    func testDefaultsMatchDesign() throws {
        guard
            case .meshConfig(let c) = Fixtures.decodeClean(
                "apiVersion: weft.dev/v1alpha1\nkind: MeshConfig\nmetadata: {name: mesh}\n"
            ).first
        else { return XCTFail() }
        XCTAssertEqual(c.trustDomain, "cluster.local")
        XCTAssertEqual(c.mtlsMode, .permissive)
        XCTAssertEqual(c.http1Transport, .http1, "chosen by measurement: BENCHMARKS.md, HTTP/1 between sidecars")
        XCTAssertEqual(MeshConfig.default.http1Transport, .http1)
        XCTAssertEqual(c.retryBudget, .init(ratio: 0.2, minRetriesPerSecond: 10, window: .seconds(10)))
        XCTAssertEqual(c.tracing.sampling, 1.0)
        XCTAssertEqual(c.outboundPolicy, .allowAny)
        let d = MeshConfig.default
        XCTAssertNil(d.metadata)
        XCTAssertEqual(
            [d.trustDomain, d.clusterDomain, d.mtlsMode.rawValue, d.outboundPolicy.rawValue],
            [c.trustDomain, c.clusterDomain, c.mtlsMode.rawValue, c.outboundPolicy.rawValue])
    }

    func testIntegerRatioIsANumber() throws {
        let yaml =
            "apiVersion: weft.dev/v1alpha1\nkind: MeshConfig\nmetadata: {name: m}\nspec:\n  retryBudget: {ratio: 1}\n"
        guard case .meshConfig(let c) = Fixtures.decodeClean(yaml).first else { return XCTFail() }
        XCTAssertEqual(c.retryBudget.ratio, 1)
    }

    func testValidationErrors() {
        let yaml = """
            apiVersion: weft.dev/v1alpha1
            kind: MeshConfig
            metadata: {name: mesh}
            spec:
              trustDomain: Cluster_Local
              mtls: {mode: OFF, http1Transport: H3}
              retryBudget:
                ratio: 1.5
                minRetriesPerSecond: -1
                window: 0s
              tracing: {sampling: "all"}
              outboundPolicy: DENY
            """
        XCTAssertEqual(
            Fixtures.errors(yaml, file: "mesh.yaml"),
            [
                "mesh.yaml: document 1: spec.trustDomain: must be a lowercase DNS name such as cluster.local, got \"Cluster_Local\"",
                "mesh.yaml: document 1: spec.mtls.mode: must be a string, got a boolean OFF (quote it)",
                "mesh.yaml: document 1: spec.mtls.http1Transport: must be one of HTTP1, HTTP2, got \"H3\"",
                "mesh.yaml: document 1: spec.retryBudget.ratio: must be between 0 and 1, got 1.5",
                "mesh.yaml: document 1: spec.retryBudget.minRetriesPerSecond: must be ≥ 0, got -1",
                "mesh.yaml: document 1: spec.retryBudget.window: must be longer than 0s",
                "mesh.yaml: document 1: spec.tracing.sampling: must be a number, got \"all\"",
                "mesh.yaml: document 1: spec.outboundPolicy: must be one of ALLOW_ANY, REGISTRY_ONLY, got \"DENY\"",
            ])
    }
}
