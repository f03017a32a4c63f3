import WeftProtocol
import XCTest

@testable import WeftProxy

final class MeshSnapshotCompilerTests: XCTestCase {
    typealias F = MeshFixture

    func testClusterIPsAndHostsIndexServicePorts() throws {
        var mesh = F()
        mesh.service("demo/web", clusterIP: "10.97.0.1", endpoints: nil)
        mesh.service("other/api", clusterIP: "fd00::1", endpoints: ["10.230.0.1"])
        let snapshot = try mesh.snapshot()
        let web = try XCTUnwrap(snapshot.servicePortByAddress[AddressKey(ip: "10.97.0.1", port: 80)!])
        XCTAssertEqual(snapshot.servicePorts[web].service, "demo/web")
        guard case .awaitingDiscovery = snapshot.servicePorts[web].state else { return XCTFail("not subscribed yet") }
        XCTAssertNil(snapshot.servicePortByAddress[AddressKey(ip: "10.97.0.1", port: 81)!])
        XCTAssertNotNil(snapshot.servicePortByAddress[AddressKey(ip: "fd00::1", port: 80)!])
        XCTAssertEqual(snapshot.servicePortByHost[HostPort(host: "web", port: 80)], web, "short name in its namespace")
        XCTAssertNil(snapshot.servicePortByHost[HostPort(host: "api", port: 80)], "no short name across namespaces")
        XCTAssertNotNil(snapshot.servicePortByHost[HostPort(host: "api.other.svc.cluster.local", port: 80)])
        XCTAssertTrue(snapshot.endpointAddresses.contains(AddressKey(ip: "10.230.0.1", port: 0)!))
    }

    func testHTTP1TransportReachesTheSnapshot() throws {
        var mesh = F()
        XCTAssertFalse(try mesh.snapshot().multiplexesHTTP1, "absent: pooled HTTP/1.1")
        mesh.config.mesh?.http1Transport = "HTTP1"
        XCTAssertFalse(try mesh.snapshot().multiplexesHTTP1)
        mesh.config.mesh?.http1Transport = "HTTP2"
        XCTAssertTrue(try mesh.snapshot().multiplexesHTTP1)
    }

    func testBackendsWithoutEndpointsAreSubscribed() throws {
        var mesh = F()
        mesh.service(
            "demo/web", clusterIP: "10.97.0.1", endpoints: [],
            routes: [F.route("demo/r", [F.rule([], [("demo/v1", 1), ("demo/gone", 1)])])])
        mesh.service("demo/v1", clusterIP: "10.97.0.2", endpoints: nil)
        let snapshot = try mesh.snapshot()
        XCTAssertEqual(snapshot.missingServices, ["demo/v1"], "an unknown Service is unresolved, not subscribed")
        let gone = snapshot.backends.first { $0.service == "demo/gone" }
        guard case .unresolved(let reason)? = gone?.resolution else { return XCTFail() }
        XCTAssertEqual(reason, "Service demo/gone does not exist")
    }

    func testRoutesTheProxyCannotApplyAreRefusedWithACode() throws {
        for (match, code, field) in [
            (
                F.path("RegularExpression", "/(unclosed"), ConfigRefusal.Code.invalidRegex,
                "routes[demo/r].rules[0].matches[0].path"
            ),
            (F.path("Exact", "relative"), .invalidRoute, "routes[demo/r].rules[0].matches[0].path"),
            (F.path("Glob", "/x"), .invalidRoute, "routes[demo/r].rules[0].matches[0].path.type"),
        ] {
            var mesh = F()
            mesh.service("demo/web", clusterIP: "10.97.0.1", routes: [F.route("demo/r", [F.rule([match], [])])])
            XCTAssertThrowsError(try mesh.snapshot()) { error in
                let refusal = error as! ConfigRefusal
                XCTAssertEqual(refusal.code, code)
                XCTAssertTrue(refusal.reason.hasPrefix(field), refusal.reason)
            }
        }
    }
}

extension MeshSnapshotCompilerTests {
    func testServicesMerelyInTheIndexAreNotSubscribed() throws {
        var mesh = F()
        mesh.service("demo/web", clusterIP: "10.97.0.1", endpoints: ["10.230.0.1"])
        mesh.service("demo/idle", clusterIP: "10.97.0.2", endpoints: nil)
        XCTAssertEqual(try mesh.snapshot().missingServices, [])
    }
}

extension MeshSnapshotCompilerTests {
    func testFiltersTheProxyCannotApplyAreRefusedNamingTheFilter() throws {
        for (filter, field) in [
            (RouteFilterEntry(type: "Teleport"), "routes[demo/r].rules[0].filters[0].type"),
            (
                RouteFilterEntry(type: "URLRewrite", pathType: "ReplaceSome", path: "/x"),
                "routes[demo/r].rules[0].filters[0].pathType"
            ),
            (
                RouteFilterEntry(type: "RequestRedirect", statusCode: 200),
                "routes[demo/r].rules[0].filters[0].statusCode"
            ),
        ] {
            var mesh = F()
            var rule = F.rule([], [])
            rule.filters = [filter]
            mesh.service("demo/web", clusterIP: "10.97.0.1", routes: [F.route("demo/r", [rule])])
            XCTAssertThrowsError(try mesh.snapshot()) { error in
                let refusal = error as! ConfigRefusal
                XCTAssertEqual(refusal.code, .invalidRoute)
                XCTAssertTrue(refusal.reason.hasPrefix(field), refusal.reason)
            }
        }
    }
}
