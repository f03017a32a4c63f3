import NIOCore
import WeftCore
import WeftProtocol
import WeftProxy
import XCTest

@testable import WeftControl

/// The per-proxy push logic: what a config and a delta carry, and that applying the
/// pushes with the proxy's own applier gives exactly the config a fresh proxy would get.
final class ProxySessionTests: XCTestCase {
    private let allocator = ByteBufferAllocator()

    private func session(labels: [String: String] = ["app": "web"], subscriptions: [String] = ["demo/web"])
        -> ProxySession
    {
        ProxySession(
            id: "s1",
            node: Node(pod: "web-0", namespace: "demo", serviceAccount: "web", ip: "10.211.0.2", labels: labels),
            identity: SPIFFEID(namespace: "demo", serviceAccount: "web"), labels: labels, connectedAt: "t",
            certificateNotAfter: "t", subscriptions: subscriptions)
    }

    private func decode(_ buffer: ByteBuffer?) throws -> ServerMessage {
        let buffer = try XCTUnwrap(buffer, "expected a push")
        return try ServerMessage.decode(buffer)
    }

    private func config(_ buffer: ByteBuffer?) throws -> ConfigPush {
        guard case .config(let push) = try decode(buffer) else { throw XCTSkip("not a config") }
        return push
    }

    private func delta(_ buffer: ByteBuffer?) throws -> DeltaPush {
        let message = try decode(buffer)
        guard case .delta(let push) = message else {
            XCTFail("expected a delta, got \(message.type)")
            throw CancellationError()
        }
        return push
    }

    func testConfigCarriesIndexSelectedPoliciesAndSubscribedDestinations() throws {
        var s = session()
        let push = try config(s.fullConfig(MeshFixtures.mesh(generation: 1), allocator: allocator))
        XCTAssertEqual(push.version, 1)
        XCTAssertEqual(push.generation, 1)
        XCTAssertEqual(push.nonce, "s1-1")
        XCTAssertEqual(push.snapshot.services?.map(\.key), ["demo/api", "demo/web"])
        XCTAssertEqual(push.snapshot.policies?.map(\.key), ["demo/allow-client"])
        XCTAssertEqual(push.snapshot.routes?.map(\.service), ["demo/web"])
        XCTAssertEqual(push.snapshot.endpoints?.map(\.service), ["demo/web"], "api is not subscribed")
        XCTAssertEqual(push.snapshot.mesh?.trustDomain, "cluster.local")
    }

    func testPoliciesFollowThePodsLabels() throws {
        var s = session(labels: ["app": "client"])
        let push = try config(s.fullConfig(MeshFixtures.mesh(generation: 1), allocator: allocator))
        XCTAssertEqual(push.snapshot.policies ?? [], [], "the policy selects app=web only")
    }

    func testDeltaCarriesOnlyTheChangedSubscribedEndpoints() throws {
        var s = session()
        let g1 = MeshFixtures.mesh(generation: 1)
        _ = s.fullConfig(g1, allocator: allocator)
        let g2 = MeshFixtures.mesh(generation: 2, web: ["10.211.0.2", "10.211.0.3"], previous: g1)
        let push = try delta(s.update(to: g2, allocator: allocator))
        XCTAssertEqual(push.base, 1)
        XCTAssertEqual(push.version, 2)
        XCTAssertEqual(push.generation, 2)
        XCTAssertEqual(push.upserts.endpoints?.first?.endpoints.map(\.address), ["10.211.0.2", "10.211.0.3"])
        XCTAssertNil(push.upserts.routes, "routes did not change")
        XCTAssertNil(push.upserts.services, "the index did not change")
        XCTAssertNil(push.upserts.mesh)
        XCTAssertTrue(push.removals.isEmpty)
    }

    func testAChangeToAnUnsubscribedDestinationSendsNothing() throws {
        var s = session()
        let g1 = MeshFixtures.mesh(generation: 1)
        _ = s.fullConfig(g1, allocator: allocator)
        let g2 = MeshFixtures.mesh(generation: 2, api: ["10.211.0.8"], previous: g1)
        XCTAssertNil(s.update(to: g2, allocator: allocator))
        // …and the next change still deltas from generation 2.
        let g3 = MeshFixtures.mesh(generation: 3, api: ["10.211.0.8"], webTimeoutMs: 2000, previous: g2)
        let push = try delta(s.update(to: g3, allocator: allocator))
        XCTAssertEqual(push.base, 1)
        XCTAssertEqual(push.upserts.routes?.first?.routes.first?.rules.first?.requestTimeoutMs, 2000)
    }

    func testIndexMeshAndPolicyChangesReachEveryProxy() throws {
        var s = session(subscriptions: [])
        let g1 = MeshFixtures.mesh(generation: 1)
        _ = s.fullConfig(g1, allocator: allocator)
        let g2 = MeshFixtures.mesh(generation: 2, extraService: true, policyApp: "other", mtls: "STRICT", previous: g1)
        let push = try delta(s.update(to: g2, allocator: allocator))
        XCTAssertEqual(push.upserts.services?.map(\.key), ["demo/extra"])
        XCTAssertEqual(push.upserts.mesh?.mtls, "STRICT")
        XCTAssertEqual(push.removals.policies, ["demo/allow-client"], "the policy no longer selects this pod")
    }

    func testTheWorkloadIndexReachesEveryProxyAndDeltasCarryItsChanges() throws {
        var s = session(subscriptions: [])
        let web = WorkloadEntry(ip: "10.211.0.2", identity: "spiffe://cluster.local/ns/demo/sa/web")
        let api = WorkloadEntry(ip: "10.211.0.9", identity: "spiffe://cluster.local/ns/demo/sa/api")
        let g1 = MeshFixtures.mesh(generation: 1, workloads: [web])
        XCTAssertEqual(try config(s.fullConfig(g1, allocator: allocator)).snapshot.workloads, [web])
        let g2 = MeshFixtures.mesh(generation: 2, workloads: [api], previous: g1)
        let push = try delta(s.update(to: g2, allocator: allocator))
        XCTAssertEqual(push.upserts.workloads, [api])
        XCTAssertEqual(push.removals.workloads, ["10.211.0.2"])
        let g3 = MeshFixtures.mesh(generation: 3, workloads: [api], previous: g2)
        XCTAssertNil(s.update(to: g3, allocator: allocator), "nothing changed")
    }

    func testHandshakeFailureReportsRecordWhenTheyGrew() {
        var s = session()
        XCTAssertNil(s.status.tlsFailures)
        s.record(TLSFailureReport(inbound: 1, outbound: 0, last: "a"), at: "t1")
        s.record(TLSFailureReport(inbound: 1, outbound: 0, last: "a"), at: "t2")
        XCTAssertEqual(s.status.tlsFailuresGrewAt, "t1", "the same count again did not grow")
        s.record(TLSFailureReport(inbound: 1, outbound: 2, last: "b"), at: "t3")
        XCTAssertEqual(s.status.tlsFailures, TLSFailureReport(inbound: 1, outbound: 2, last: "b"))
        XCTAssertEqual(s.status.tlsFailuresGrewAt, "t3")
    }

    func testASkippedGenerationGetsAWholeConfig() throws {
        var s = session()
        let g1 = MeshFixtures.mesh(generation: 1)
        _ = s.fullConfig(g1, allocator: allocator)
        let g2 = MeshFixtures.mesh(generation: 2, web: ["10.211.0.3"], previous: g1)
        let g3 = MeshFixtures.mesh(generation: 3, web: ["10.211.0.4"], previous: g2)
        let push = try config(s.update(to: g3, allocator: allocator))
        XCTAssertEqual(push.version, 2)
        XCTAssertEqual(push.snapshot.endpoints?.first?.endpoints.map(\.address), ["10.211.0.4"])
    }

    func testAcksAndNacks() throws {
        var s = session()
        let g1 = MeshFixtures.mesh(generation: 1)
        _ = s.fullConfig(g1, allocator: allocator)
        guard case .acked(_, let isDelta) = s.ack(Ack(version: 1, nonce: "s1-1")) else {
            return XCTFail("the ack matches the config")
        }
        XCTAssertFalse(isDelta)
        XCTAssertEqual(s.status.ackedVersion, 1)
        XCTAssertEqual(s.status.ackedGeneration, 1)
        guard case .unknown = s.ack(Ack(version: 1, nonce: "s1-1")) else { return XCTFail("acked twice") }
        guard case .unknown = s.ack(Ack(version: 7, nonce: "s1-7")) else { return XCTFail("never sent") }

        // A refused delta: the next push is a whole config, sent at once.
        let g2 = MeshFixtures.mesh(generation: 2, web: ["10.211.0.3"], previous: g1)
        _ = try delta(s.update(to: g2, allocator: allocator))
        guard case .resendConfig = s.nack(Nack(version: 2, nonce: "s1-2", error: "base mismatch")) else {
            return XCTFail("a refused delta asks for a config")
        }
        XCTAssertTrue(s.isAwaitingFullConfig)
        XCTAssertEqual(s.status.lastNack, "base mismatch")
        let resent = try config(s.fullConfig(g2, allocator: allocator))
        XCTAssertEqual(resent.version, 3)

        // A refused config: nothing until the mesh changes, then a whole config again.
        guard case .awaitChange = s.nack(Nack(version: 3, nonce: "s1-3", error: "bad regex")) else {
            return XCTFail("a refused config waits for a change")
        }
        XCTAssertNil(s.update(to: g2, allocator: allocator), "same generation: nothing to send")
        let g3 = MeshFixtures.mesh(generation: 3, web: ["10.211.0.4"], previous: g2)
        XCTAssertEqual(try config(s.update(to: g3, allocator: allocator)).version, 4)
        guard case .unknown = s.nack(Nack(version: 2, nonce: "s1-2", error: "late")) else {
            return XCTFail("version 2 was answered already")
        }
    }

    func testANackOlderThanTheLatestConfigIsStale() throws {
        var s = session()
        let g1 = MeshFixtures.mesh(generation: 1)
        _ = s.fullConfig(g1, allocator: allocator)
        let g3 = MeshFixtures.mesh(generation: 3, previous: MeshFixtures.mesh(generation: 2, previous: g1))
        XCTAssertEqual(try config(s.update(to: g3, allocator: allocator)).version, 2)
        guard case .stale = s.nack(Nack(version: 1, nonce: "s1-1", error: "late")) else {
            return XCTFail("config 2 supersedes config 1")
        }
        XCTAssertFalse(s.isAwaitingFullConfig)
    }

    func testSubscribeAndUnsubscribe() throws {
        var s = session(subscriptions: [])
        let g1 = MeshFixtures.mesh(generation: 1)
        _ = s.fullConfig(g1, allocator: allocator)
        let sub = try delta(s.subscribe(["demo/web", "demo/missing"], mesh: g1, allocator: allocator))
        XCTAssertEqual(sub.base, 1)
        XCTAssertEqual(sub.upserts.routes?.map(\.service), ["demo/missing", "demo/web"])
        XCTAssertEqual(sub.upserts.endpoints?.first { $0.service == "demo/missing" }?.endpoints, [])
        XCTAssertEqual(s.status.subscriptions, ["demo/missing", "demo/web"])
        let again = try delta(s.subscribe(["demo/web"], mesh: g1, allocator: allocator))
        XCTAssertEqual(again.upserts.endpoints?.map(\.service), ["demo/web"], "re-subscribing answers again")
        let unsub = try delta(s.unsubscribe(["demo/web", "demo/never"], mesh: g1, allocator: allocator))
        XCTAssertEqual(unsub.removals.routes, ["demo/web"])
        XCTAssertEqual(unsub.removals.endpoints, ["demo/web"])
        XCTAssertEqual(s.status.subscriptions, ["demo/missing"])
    }

    /// The strongest check: a proxy that applies every push in order holds exactly what a
    /// proxy connecting fresh at the last generation is given.
    func testDeltasApplyToTheSameConfigAFreshProxyGets() throws {
        var live = session(subscriptions: ["demo/web"])
        var generations = [MeshFixtures.mesh(generation: 1)]
        var applied = try ConfigApplier.apply(config(live.fullConfig(generations[0], allocator: allocator)))
        let steps: [(Int, CompiledMesh) -> CompiledMesh] = [
            { g, p in MeshFixtures.mesh(generation: g, web: ["10.211.0.3"], previous: p) },
            { g, p in MeshFixtures.mesh(generation: g, web: ["10.211.0.3"], extraService: true, previous: p) },
            { g, p in
                MeshFixtures.mesh(generation: g, web: ["10.211.0.5", "10.211.0.6"], webTimeoutMs: 50, previous: p)
            },
            { g, p in MeshFixtures.mesh(generation: g, web: [], policyApp: "none", mtls: "STRICT", previous: p) },
        ]
        for (index, step) in steps.enumerated() {
            let next = step(index + 2, generations.last!)
            generations.append(next)
            if let frame = live.update(to: next, allocator: allocator) {
                switch try decode(frame) {
                case .delta(let push): applied = try ConfigApplier.apply(push, to: applied)
                case .config(let push): applied = try ConfigApplier.apply(push)
                default: XCTFail("unexpected push")
                }
            }
            if index == 1 {
                let sub = try delta(live.subscribe(["demo/api"], mesh: next, allocator: allocator))
                applied = try ConfigApplier.apply(sub, to: applied)
            }
        }
        var fresh = session(subscriptions: ["demo/api", "demo/web"])
        let expected = try ConfigApplier.apply(config(fresh.fullConfig(generations.last!, allocator: allocator)))
        XCTAssertEqual(applied.services, expected.services)
        XCTAssertEqual(applied.policies, expected.policies)
        XCTAssertEqual(applied.routes, expected.routes)
        XCTAssertEqual(applied.endpoints, expected.endpoints)
        XCTAssertEqual(applied.mesh, expected.mesh)
        XCTAssertEqual(applied.generation, expected.generation)
    }
}
