import NIOCore
import NIOEmbedded
import NIOHPACK
import WeftProtocol
import XCTest

@testable import WeftProxy

/// resolve → route → backend → endpoint, as both drivers use it.
final class OutboundPlannerTests: XCTestCase {
    typealias F = MeshFixture

    private func context(_ mesh: MeshFixture, namespace: String = "demo") throws -> LoopContext {
        let loop = EmbeddedEventLoop()
        let context = LoopContext(eventLoop: loop, discoveryTimeout: .seconds(1))
        context.random = LoopRandom(seed: 7)
        context.install(try mesh.snapshot(namespace: namespace))
        return context
    }

    private func plan(
        _ context: LoopContext, to ip: String, port: Int = 80, path: String = "/", headers: [(String, String)] = []
    )
        -> PlanOutcome
    {
        var binding = OutboundBinding(key: AddressKey(ip: ip, port: port)!)
        var hpack: HPACKHeaders = [":method": "GET", ":path": path, ":scheme": "http", ":authority": "x"]
        for (n, v) in headers { hpack.add(name: n, value: v) }
        return context.plan(&binding, request: HPACKRequestHeadView(headers: hpack))
    }

    private func endpoint(_ outcome: PlanOutcome) -> String? {
        if case .forward(let attempt) = outcome { return attempt.endpoint.target.address.ipAddress }
        return nil
    }

    private func answer(_ outcome: PlanOutcome) -> (Int, ProxyErrorKind)? {
        if case .answer(let answer) = outcome { return (answer.status, answer.kind) }
        return nil
    }

    func testAServiceWithoutRoutesBalancesOverItsReadyEndpointsAtTheirTargetPort() throws {
        var mesh = F()
        mesh.service(
            "demo/web", clusterIP: "10.97.0.1", endpoints: ["10.230.0.1", "10.230.0.2"], notReady: ["10.230.0.3"])
        let context = try context(mesh)
        var seen = Set<String>()
        for _ in 0..<100 {
            let outcome = plan(context, to: "10.97.0.1")
            guard case .forward(let attempt) = outcome else { return XCTFail("\(outcome)") }
            XCTAssertEqual(attempt.endpoint.target.address.port, 8080)
            seen.insert(attempt.endpoint.target.address.ipAddress!)
        }
        XCTAssertEqual(seen, ["10.230.0.1", "10.230.0.2"], "a not-ready endpoint gets nothing")
    }

    func testUnknownDestinationsPassThroughUnlessRegistryOnly() throws {
        var mesh = F()
        mesh.service("demo/web", clusterIP: "10.97.0.1", endpoints: ["10.230.0.1"])
        var context = try self.context(mesh)
        guard case .passthrough = plan(context, to: "192.0.2.1") else { return XCTFail() }
        guard case .passthrough = plan(context, to: "10.97.0.1", port: 81) else { return XCTFail("port must match") }
        guard case .passthrough = plan(context, to: "10.230.0.1", port: 8080) else {
            return XCTFail("a pod IP goes to that pod; routes do not apply")
        }
        mesh.config.mesh!.outboundPolicy = "REGISTRY_ONLY"
        context = try self.context(mesh)
        XCTAssertEqual(answer(plan(context, to: "192.0.2.1"))?.0, 502)
        XCTAssertEqual(answer(plan(context, to: "192.0.2.1"))?.1, .registryOnly)
        guard case .passthrough = plan(context, to: "10.230.0.1", port: 8080) else {
            return XCTFail("a mesh endpoint is in the registry")
        }
        guard case .passthrough = plan(context, to: "10.230.0.1", port: 7000) else {
            return XCTFail("a mesh pod is in the registry at any port")
        }
    }

    func testErrorAnswersForNoRuleNoEndpointsAndMissingBackends() throws {
        var mesh = F()
        mesh.service(
            "demo/web", clusterIP: "10.97.0.1", endpoints: [],
            routes: [
                F.route(
                    "demo/r",
                    [
                        F.rule([F.path("PathPrefix", "/empty")], [("demo/empty", 1)]),
                        F.rule([F.path("PathPrefix", "/missing")], [("demo/nope", 1)]),
                        F.rule([F.path("PathPrefix", "/none")], []),
                    ])
            ])
        mesh.service("demo/empty", clusterIP: "10.97.0.2", endpoints: [], notReady: ["10.230.0.9"])
        let context = try context(mesh)
        XCTAssertEqual(answer(plan(context, to: "10.97.0.1", path: "/other"))?.1, .noRoute)
        XCTAssertEqual(answer(plan(context, to: "10.97.0.1", path: "/other"))?.0, 404)
        XCTAssertEqual(answer(plan(context, to: "10.97.0.1", path: "/empty"))?.0, 503)
        XCTAssertEqual(answer(plan(context, to: "10.97.0.1", path: "/missing"))?.1, .unresolvedBackend)
        XCTAssertEqual(answer(plan(context, to: "10.97.0.1", path: "/missing"))?.0, 500)
        XCTAssertEqual(answer(plan(context, to: "10.97.0.1", path: "/none"))?.0, 500)
    }

    func testSplitFollowsWeights() throws {
        var mesh = F()
        mesh.service(
            "demo/web", clusterIP: "10.97.0.1", endpoints: [],
            routes: [F.route("demo/split", [F.rule([], [("demo/v1", 90), ("demo/v2", 10)])])])
        mesh.service("demo/v1", clusterIP: "10.97.0.2", endpoints: ["10.230.0.1"])
        mesh.service("demo/v2", clusterIP: "10.97.0.3", endpoints: ["10.230.0.2"])
        let context = try context(mesh)
        var v2 = 0
        for _ in 0..<10_000 where endpoint(plan(context, to: "10.97.0.1")) == "10.230.0.2" { v2 += 1 }
        XCTAssertEqual(Double(v2) / 10_000, 0.1, accuracy: 0.015)
    }

    func testAnUnsubscribedServiceWaitsAndWakesOnTheNextSnapshot() throws {
        var mesh = F()
        mesh.service("demo/web", clusterIP: "10.97.0.1", endpoints: nil)
        let context = try context(mesh)
        guard case .awaitDiscovery = plan(context, to: "10.97.0.1") else { return XCTFail() }
        var woke: [Bool] = []
        context.waitForDiscovery(until: .now() + .seconds(5)) { woke.append($0) }
        mesh.service("demo/web", clusterIP: "10.97.0.1", endpoints: ["10.230.0.1"])
        context.install(try mesh.snapshot())
        XCTAssertEqual(woke, [true])
        XCTAssertEqual(endpoint(plan(context, to: "10.97.0.1")), "10.230.0.1")
    }

    func testADiscoveryWaitEndsAtItsDeadline() throws {
        let loop = EmbeddedEventLoop()
        let context = LoopContext(eventLoop: loop, discoveryTimeout: .seconds(1))
        var woke: [Bool] = []
        context.waitForDiscovery(until: loop.now + .milliseconds(100)) { woke.append($0) }
        loop.advanceTime(by: .milliseconds(50))
        XCTAssertEqual(woke, [])
        // EmbeddedEventLoop's clock is its own: run the timer by advancing it.
        loop.advanceTime(by: .seconds(1))
        XCTAssertEqual(woke, [false])
    }

    func testEndpointsKeepTheirLoadAcrossSnapshots() throws {
        var mesh = F()
        mesh.service("demo/web", clusterIP: "10.97.0.1", endpoints: ["10.230.0.1"])
        let context = try context(mesh)
        guard case .forward(let first) = plan(context, to: "10.97.0.1") else { return XCTFail() }
        first.endpoint.requestStarted()
        mesh.service("demo/web", clusterIP: "10.97.0.1", endpoints: ["10.230.0.1", "10.230.0.2"])
        context.install(try mesh.snapshot())
        XCTAssertTrue(
            context.balancers[0].endpoints.contains { $0 === first.endpoint }, "the same endpoint object stays")
        XCTAssertEqual(first.endpoint.load.pending, 1)
    }

    func testConsumerRoutesApplyToTheirNamespaceOnly() throws {
        var mesh = F()
        mesh.service(
            "other/api", clusterIP: "10.97.0.1", endpoints: ["10.230.0.1"],
            routes: [
                F.route("other/producer", [F.rule([], [("other/api-v1", 1)])]),
                F.route("demo/consumer", [F.rule([], [("other/api-v2", 1)])]),
                F.route("elsewhere/consumer", [F.rule([], [("other/api-v3", 1)])]),
            ])
        mesh.service("other/api-v1", clusterIP: "10.97.0.2", endpoints: ["10.230.0.2"])
        mesh.service("other/api-v2", clusterIP: "10.97.0.3", endpoints: ["10.230.0.3"])
        mesh.service("other/api-v3", clusterIP: "10.97.0.4", endpoints: ["10.230.0.4"])
        XCTAssertEqual(endpoint(plan(try context(mesh, namespace: "demo"), to: "10.97.0.1")), "10.230.0.3")
        XCTAssertEqual(endpoint(plan(try context(mesh, namespace: "third"), to: "10.97.0.1")), "10.230.0.2")
        XCTAssertEqual(endpoint(plan(try context(mesh, namespace: "other"), to: "10.97.0.1")), "10.230.0.2")
    }

    func testARouteWithAPortAppliesToThatPortOnly() throws {
        var mesh = F()
        let ports = [80, 81].map {
            ServicePortEntry(
                name: "p\($0)", port: $0, targetPort: 8080, targetPortName: nil, protocol: "TCP", appProtocol: nil)
        }
        mesh.service(
            "demo/web", clusterIP: "10.97.0.1", endpoints: [],
            routes: [F.route("demo/r", port: 80, [F.rule([], [("demo/v2", 1)])])], ports: ports)
        mesh.config.endpoints["demo/web"] = EndpointSet(
            service: "demo/web",
            endpoints: [
                EndpointEntry(
                    address: "10.230.0.1",
                    ports: [
                        EndpointPortEntry(name: "p80", port: 8080, appProtocol: nil),
                        EndpointPortEntry(name: "p81", port: 8081, appProtocol: nil),
                    ], ready: true, serving: true, terminating: false, identity: nil, zone: nil)
            ])
        mesh.service("demo/v2", clusterIP: "10.97.0.2", endpoints: ["10.230.0.2"])
        let context = try context(mesh)
        XCTAssertEqual(endpoint(plan(context, to: "10.97.0.1", port: 80)), "10.230.0.2")
        guard case .forward(let attempt) = plan(context, to: "10.97.0.1", port: 81) else { return XCTFail() }
        XCTAssertEqual(attempt.endpoint.target.address.ipAddress, "10.230.0.1")
        XCTAssertEqual(attempt.endpoint.target.address.port, 8081, "the endpoint port named like the Service port")
    }
}

extension OutboundPlannerTests {
    private func plan(_ context: LoopContext, to ip: String, port: Int = 80, authority: String) -> PlanOutcome {
        var binding = OutboundBinding(key: AddressKey(ip: ip, port: port)!)
        let hpack: HPACKHeaders = [":method": "GET", ":path": "/", ":scheme": "http", ":authority": authority]
        return context.plan(&binding, request: HPACKRequestHeadView(headers: hpack))
    }

    func testAHostNamingAServiceRoutesRequestsToDestinationsOutsideTheMesh() throws {
        var mesh = F()
        mesh.service("demo/web", clusterIP: "10.97.0.1", endpoints: ["10.230.0.1"])
        mesh.config.mesh!.outboundPolicy = "REGISTRY_ONLY"
        let context = try context(mesh)
        for authority in ["web", "web.demo", "web.demo.svc.cluster.local.", "WEB.demo:80"] {
            XCTAssertEqual(endpoint(plan(context, to: "192.0.2.1", authority: authority)), "10.230.0.1", authority)
        }
        XCTAssertEqual(answer(plan(context, to: "192.0.2.1", authority: "web.demo:81"))?.1, .registryOnly)
        XCTAssertEqual(answer(plan(context, to: "192.0.2.1", authority: "example.org"))?.1, .registryOnly)
        guard case .passthrough = plan(context, to: "10.230.0.1", port: 8080, authority: "web") else {
            return XCTFail("a pod IP gets the request as is, whatever its Host")
        }
    }
}

extension OutboundPlannerTests {
    func testTheLoopReportsTheServicesRequestsUsedAcrossInstalls() throws {
        var mesh = F()
        mesh.service(
            "demo/web", clusterIP: "10.97.0.1", endpoints: [],
            routes: [F.route("demo/r", [F.rule([], [("demo/v1", 1)])])])
        mesh.service("demo/v1", clusterIP: "10.97.0.2", endpoints: ["10.230.0.1"])
        mesh.service("demo/idle", clusterIP: "10.97.0.3", endpoints: ["10.230.0.2"])
        let context = try context(mesh)
        XCTAssertEqual(context.takeUsedServices(), [])
        _ = plan(context, to: "10.97.0.1")
        context.install(try mesh.snapshot())  // usage before an install is kept
        XCTAssertEqual(context.takeUsedServices(), ["demo/web", "demo/v1"], "the route's backend counts as used")
        XCTAssertEqual(context.takeUsedServices(), [])
    }
}

extension OutboundPlannerTests {
    func testARetryIsNotChargedToAnotherSnapshotsServicePort() throws {
        var mesh = F()
        mesh.service("demo/web", clusterIP: "10.97.0.1", endpoints: ["10.230.0.1"])
        let context = try context(mesh)
        guard case .forward(let attempt) = plan(context, to: "10.97.0.1") else { return XCTFail() }
        XCTAssertTrue(context.withdrawRetry(servicePort: attempt.servicePort, serial: attempt.serial))
        // The config changes (here the Service goes): the index may now name another port.
        mesh.config.services["demo/web"] = nil
        context.install(try mesh.snapshot())
        XCTAssertFalse(context.withdrawRetry(servicePort: attempt.servicePort, serial: attempt.serial))
    }

    func testOptionsStarTakesTheImplicitRule() throws {
        var mesh = F()
        mesh.service("demo/web", clusterIP: "10.97.0.1", endpoints: ["10.230.0.1"])
        let context = try context(mesh)
        XCTAssertEqual(endpoint(plan(context, to: "10.97.0.1", path: "*")), "10.230.0.1")
    }
}

extension MeshSnapshotCompilerTests {
    func testWeightZeroBackendsAreNotSubscribed() throws {
        var mesh = F()
        mesh.service(
            "demo/web", clusterIP: "10.97.0.1", endpoints: [],
            routes: [F.route("demo/r", [F.rule([], [("demo/v1", 1), ("demo/off", 0)])])])
        mesh.service("demo/v1", clusterIP: "10.97.0.2", endpoints: nil)
        mesh.service("demo/off", clusterIP: "10.97.0.3", endpoints: nil)
        XCTAssertEqual(try mesh.snapshot().missingServices, ["demo/v1"])
    }
}
