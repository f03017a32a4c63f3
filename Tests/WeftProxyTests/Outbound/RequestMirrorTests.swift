import NIOCore
import NIOEmbedded
import NIOHPACK
import WeftProtocol
import XCTest

@testable import WeftProxy

/// RequestMirror: compiled into the rule, drawn per request by its percent, and bounded
/// per loop (copies in flight, body size).
final class RequestMirrorTests: XCTestCase {
    typealias F = MeshFixture

    private func mirroredMesh(percent: Int? = nil, mirrorEndpoints: [String]? = ["10.230.0.9"]) -> MeshFixture {
        var mesh = F()
        var rule = F.rule([], [("demo/web", 1)])
        rule.filters = [
            RouteFilterEntry(
                type: "RequestMirror", mirror: BackendEntry(service: "demo/shadow", port: nil, weight: 1),
                percent: percent)
        ]
        mesh.service(
            "demo/web", clusterIP: "10.97.0.1", endpoints: ["10.230.0.1"], routes: [F.route("demo/r", [rule])])
        mesh.service("demo/shadow", clusterIP: "10.97.0.2", endpoints: mirrorEndpoints)
        return mesh
    }

    private func context(_ mesh: MeshFixture) throws -> LoopContext {
        let context = LoopContext(eventLoop: EmbeddedEventLoop(), discoveryTimeout: .seconds(1))
        context.random = LoopRandom(seed: 3)
        context.install(try mesh.snapshot())
        return context
    }

    private func forward(_ context: LoopContext) throws -> PlannedAttempt {
        var binding = OutboundBinding(key: AddressKey(ip: "10.97.0.1", port: 80)!)
        let head: HPACKHeaders = [":method": "POST", ":path": "/", ":scheme": "http", ":authority": "web"]
        guard case .forward(let attempt) = context.plan(&binding, request: HPACKRequestHeadView(headers: head)) else {
            throw XCTSkip("not forwarded")
        }
        return attempt
    }

    func testTheMirrorIsCompiledIntoTheRuleAtTheRoutesPort() throws {
        let context = try context(mirroredMesh())
        let attempt = try forward(context)
        let mirrors = try XCTUnwrap(attempt.filters?.mirrors)
        XCTAssertEqual(mirrors.count, 1)
        XCTAssertEqual(mirrors[0].percent, 100)
        XCTAssertEqual(mirrors[0].target, "demo/shadow:80", "no port: the port the route is for")
        XCTAssertEqual(context.snapshot.backends[mirrors[0].backend].service, "demo/shadow")
        XCTAssertEqual(attempt.endpoint.target.address.ipAddress, "10.230.0.1", "the real request is unchanged")
    }

    func testAMirrorTargetNotYetFetchedIsSubscribed() throws {
        XCTAssertEqual(try mirroredMesh(mirrorEndpoints: nil).snapshot().missingServices, ["demo/shadow"])
        XCTAssertEqual(try mirroredMesh(percent: 0, mirrorEndpoints: nil).snapshot().missingServices, [])
    }

    func testAPercentOutOfRangeIsRefusedNamingTheField() {
        XCTAssertThrowsError(try mirroredMesh(percent: 101).snapshot()) { error in
            let refusal = error as! ConfigRefusal
            XCTAssertEqual(refusal.code, .invalidRoute)
            XCTAssertEqual(refusal.reason, "routes[demo/r].rules[0].filters[0].percent: 101 is not 0-100")
        }
        var mesh = mirroredMesh()
        mesh.config.routes["demo/web"]!.routes[0].rules[0].filters = [RouteFilterEntry(type: "RequestMirror")]
        XCTAssertThrowsError(try mesh.snapshot()) { error in
            XCTAssertEqual((error as! ConfigRefusal).code, .missingField)
        }
    }

    func testEachRequestDrawsTheMirrorByItsPercent() throws {
        let context = try context(mirroredMesh(percent: 25))
        let plans = try XCTUnwrap(try forward(context).filters?.mirrors)
        var drawn = 0
        for _ in 0..<4000 where context.drawMirrors(plans, requestTimeoutMs: nil) != nil { drawn += 1 }
        XCTAssertEqual(Double(drawn) / 4000, 0.25, accuracy: 0.03)
        let none = try self.context(mirroredMesh(percent: 0))
        for _ in 0..<100 { XCTAssertNil(none.drawMirrors(try forward(none).filters!.mirrors, requestTimeoutMs: nil)) }
    }

    func testTheCopysTimeoutIsTheRoutesWhenShorter() {
        XCTAssertEqual(RequestMirror.timeout(requestTimeoutMs: nil), RequestMirror.timeout)
        XCTAssertEqual(RequestMirror.timeout(requestTimeoutMs: 250), .milliseconds(250))
        XCTAssertEqual(RequestMirror.timeout(requestTimeoutMs: 60_000), RequestMirror.timeout)
    }

    func testCopiesInFlightAreBoundedPerLoop() throws {
        let context = try context(mirroredMesh())
        let plans = try XCTUnwrap(try forward(context).filters?.mirrors)
        let copy = try XCTUnwrap(context.drawMirrors(plans, requestTimeoutMs: nil))
        var begun: [LoopEndpoint] = []
        for _ in 0..<(RequestMirror.maxInFlight + 5) {
            context.beginMirror(plans[0], serial: copy.serial) { begun.append($0) }
        }
        XCTAssertEqual(begun.count, RequestMirror.maxInFlight, "past the cap, copies are dropped")
        XCTAssertEqual(begun[0].target.address.ipAddress, "10.230.0.9")
        context.endMirror(begun[0], startedAt: LoopContext.now(), result: .completed, failed: false)
        context.beginMirror(plans[0], serial: copy.serial) { begun.append($0) }
        XCTAssertEqual(begun.count, RequestMirror.maxInFlight + 1, "a slot freed is taken again")
    }

    func testACopyDrawnUnderAnOlderSnapshotFindsItsBackendAgain() throws {
        var mesh = mirroredMesh()
        let context = try context(mesh)
        let plans = try XCTUnwrap(try forward(context).filters?.mirrors)
        let copy = try XCTUnwrap(context.drawMirrors(plans, requestTimeoutMs: nil))
        // A new Service sorted first: every backend index moves.
        mesh.service("demo/aaa", clusterIP: "10.97.0.3", endpoints: ["10.230.0.7"])
        context.install(try mesh.snapshot())
        var sent: [String?] = []
        context.beginMirror(plans[0], serial: copy.serial) { sent.append($0.target.address.ipAddress) }
        XCTAssertEqual(sent, ["10.230.0.9"], "found by Service and port, not by its old index")
    }

    func testACopyWaitsForItsBackendsFirstEndpoints() throws {
        let loop = EmbeddedEventLoop()
        let context = LoopContext(eventLoop: loop, discoveryTimeout: .seconds(1))
        context.install(try mirroredMesh(mirrorEndpoints: nil).snapshot())
        let plans = try XCTUnwrap(try forward(context).filters?.mirrors)
        let copy = try XCTUnwrap(context.drawMirrors(plans, requestTimeoutMs: nil))
        var sent: [String?] = []
        context.beginMirror(plans[0], serial: copy.serial) { sent.append($0.target.address.ipAddress) }
        XCTAssertEqual(sent, [], "waits for the mirror's endpoints")
        XCTAssertEqual(context.mirrorsInFlight, 1, "a waiting copy holds its slot (and its body) against the bound")
        context.install(try mirroredMesh().snapshot())
        XCTAssertEqual(sent, ["10.230.0.9"], "sent once they arrive")

        context.install(try mirroredMesh(mirrorEndpoints: nil).snapshot())
        let late = try XCTUnwrap(context.drawMirrors(plans, requestTimeoutMs: nil))
        context.beginMirror(plans[0], serial: late.serial) { sent.append($0.target.address.ipAddress) }
        loop.advanceTime(by: .seconds(2))
        XCTAssertEqual(sent.count, 1, "not sent when they do not arrive within the discovery timeout")
        XCTAssertEqual(context.mirrorsInFlight, 1, "only the copy sent holds a slot")
    }

    func testABodyOverTheLimitTurnsTheCopyOff() {
        var copy = MirrorCopy(plans: [], serial: 1, timeout: .seconds(1))
        let chunk = ByteBuffer(repeating: 0x61, count: 16 * 1024)
        for _ in 0..<4 { copy.append(chunk) }
        XCTAssertFalse(copy.isTooLarge, "64 KiB fits")
        XCTAssertEqual(copy.body.count, 4)
        copy.append(ByteBuffer(bytes: [0x62]))
        XCTAssertTrue(copy.isTooLarge)
        XCTAssertTrue(copy.body.isEmpty, "what was kept is let go")
    }
}
