import NIOCore
import NIOEmbedded
import NIOHPACK
import WeftProtocol
import XCTest

@testable import WeftProxy

/// The attempts of one request, as both drivers keep them: the first attempt's
/// bookkeeping, connect failures, retries under the policy and budget, and each attempt's
/// outcome reported to its endpoint once.
final class ExchangeAttemptsTests: XCTestCase {
    typealias F = MeshFixture

    private func context(retry: RetryEntry?) throws -> LoopContext {
        var mesh = F()
        var rule = F.rule([], [("demo/web", 1)])
        rule.retry = retry
        mesh.service(
            "demo/web", clusterIP: "10.97.0.1", endpoints: ["10.230.0.1", "10.230.0.2", "10.230.0.3", "10.230.0.4"],
            routes: [F.route("demo/r", [rule])])
        let context = LoopContext(eventLoop: EmbeddedEventLoop(), discoveryTimeout: .seconds(1))
        context.random = LoopRandom(seed: 11)
        context.install(try mesh.snapshot())
        return context
    }

    private func plan(_ context: LoopContext, avoiding: LoopEndpoint? = nil) throws -> PlannedAttempt {
        var binding = OutboundBinding(key: AddressKey(ip: "10.97.0.1", port: 80)!)
        let head: HPACKHeaders = [":method": "GET", ":path": "/", ":scheme": "http", ":authority": "web"]
        guard
            case .forward(let attempt) = context.plan(
                &binding, request: HPACKRequestHeadView(headers: head), avoiding: avoiding)
        else { throw XCTSkip("not forwarded") }
        return attempt
    }

    func testOnlyTheFirstAttemptTakesThePolicyAndEachEndpointIsSettledOnce() throws {
        let mesh = try context(retry: RetryEntry(attempts: 2, codes: [503], backoffMs: 0))
        var attempts = ExchangeAttempts()
        XCTAssertFalse(attempts.hasBegun)
        let first = try plan(mesh)
        XCTAssertTrue(attempts.begin(first, mesh: mesh))
        XCTAssertEqual(first.endpoint.load.pending, 1)
        XCTAssertNotNil(attempts.retry)
        attempts.settle(.succeeded)
        attempts.settle(.failed)
        XCTAssertEqual(first.endpoint.load.pending, 0)
        XCTAssertEqual(first.endpoint.health.state, .healthy(consecutiveFailures: 0), "the second settle is ignored")
        XCTAssertFalse(attempts.begin(try plan(mesh), mesh: mesh), "a later attempt is not the first")
    }

    func testConnectFailuresGoToAnotherEndpointUpToThree() throws {
        let mesh = try context(retry: nil)
        var attempts = ExchangeAttempts()
        var avoided: [LoopEndpoint] = []
        var avoiding: LoopEndpoint?
        for _ in 0..<ExchangeAttempts.maxConnects {
            let attempt = try plan(mesh, avoiding: avoiding)
            if let avoiding { XCTAssertFalse(attempt.endpoint === avoiding) }
            attempts.begin(attempt, mesh: mesh)
            avoiding = attempts.connectFailed()
            if let avoiding { avoided.append(avoiding) }
            XCTAssertEqual(attempt.endpoint.load.pending, 0, "a failed connect is settled")
        }
        XCTAssertEqual(avoided.count, ExchangeAttempts.maxConnects - 1, "the third failure fails the request")
        XCTAssertNil(avoiding)
    }

    func testRetriesFollowThePolicyAndResetTheConnectFailures() throws {
        let mesh = try context(retry: RetryEntry(attempts: 1, codes: [503], backoffMs: 25))
        let metrics = ProxyMetrics().outbound
        var attempts = ExchangeAttempts()
        let first = try plan(mesh)
        attempts.begin(first, mesh: mesh)
        XCTAssertNil(
            attempts.retryAfterFailure(
                status: 500, requestComplete: true, reason: .status, metrics: metrics, mesh: mesh),
            "500 is not among the codes")
        XCTAssertEqual(first.endpoint.load.pending, 1, "no retry: the driver settles it")
        XCTAssertNil(
            attempts.retryAfterFailure(
                status: 503, requestComplete: false, reason: .status, metrics: metrics, mesh: mesh),
            "a request not sent whole is not replayed")
        let retry = try XCTUnwrap(
            attempts.retryAfterFailure(
                status: 503, requestComplete: true, reason: .status, metrics: metrics, mesh: mesh))
        XCTAssertEqual(retry.backoff, .milliseconds(25))
        XCTAssertEqual(retry.attempt, 1)
        XCTAssertTrue(retry.avoiding === first.endpoint)
        XCTAssertEqual(first.endpoint.load.pending, 0, "the failed attempt is settled")
        XCTAssertEqual(attempts.retries, 1)
        let second = try plan(mesh, avoiding: retry.avoiding)
        attempts.begin(second, mesh: mesh)
        XCTAssertNotNil(attempts.connectFailed(), "a retry has its own connect attempts")
        attempts.begin(try plan(mesh), mesh: mesh)
        XCTAssertNil(
            attempts.retryAfterFailure(
                status: 503, requestComplete: true, reason: .status, metrics: metrics, mesh: mesh),
            "one retry allowed")
    }

    func testResetAbandonsAnUnsettledAttempt() throws {
        let mesh = try context(retry: nil)
        var attempts = ExchangeAttempts()
        let attempt = try plan(mesh)
        attempts.begin(attempt, mesh: mesh)
        attempts.reset()
        XCTAssertEqual(attempt.endpoint.load.pending, 0)
        XCTAssertFalse(attempts.hasBegun)
        XCTAssertNil(attempts.endpoint)
    }
}
