import NIOCore
import XCTest

@testable import WeftProxy

final class ExchangeRetryTests: XCTestCase {
    private let policy = RetryPolicy(attempts: 2, codes: [503], backoffMs: 25)

    func testRetriesTheRouteCodesUpToItsAttempts() {
        var retry = ExchangeRetry(policy: policy)
        XCTAssertEqual(retry.decide(status: 500, requestComplete: true) { true }, .noRetry, "500 is not in codes")
        XCTAssertEqual(
            retry.decide(status: 503, requestComplete: true) { true }, .retry(backoff: .milliseconds(25), attempt: 1))
        XCTAssertEqual(
            retry.decide(status: nil, requestComplete: true) { true }, .retry(backoff: .milliseconds(25), attempt: 2))
        XCTAssertEqual(retry.decide(status: 503, requestComplete: true) { true }, .attemptsExhausted)
    }

    func testTheBudgetIsAskedLastAndItsRefusalIsReported() {
        var retry = ExchangeRetry(policy: policy)
        var asked = 0
        XCTAssertEqual(
            retry.decide(status: 404, requestComplete: true) {
                asked += 1; return true
            }, .noRetry)
        XCTAssertEqual(asked, 0, "no withdrawal for a failure the policy does not retry")
        XCTAssertEqual(
            retry.decide(status: 503, requestComplete: true) {
                asked += 1; return false
            }, .budgetExhausted)
        XCTAssertEqual(retry.retries, 0)
    }

    func testABodyLargerThanTheReplayBufferIsNeverRetried() {
        var retry = ExchangeRetry(policy: policy)
        XCTAssertTrue(retry.keep(bodyBytes: ExchangeRetry.replayLimit))
        XCTAssertFalse(retry.keep(bodyBytes: 1))
        XCTAssertFalse(retry.isReplayable)
        XCTAssertEqual(retry.decide(status: 503, requestComplete: true) { true }, .noRetry)
        var incomplete = ExchangeRetry(policy: policy)
        XCTAssertEqual(incomplete.decide(status: 503, requestComplete: false) { true }, .noRetry)
    }
}

extension ExchangeRetryTests {
    func testTrailersOnlyGRPCStatusesAreRetriedByTheirOwnCodes() {
        var retry = ExchangeRetry(policy: RetryPolicy(attempts: 1, codes: [], backoffMs: 0, grpcCodes: [14]))
        XCTAssertEqual(retry.decide(status: 200, grpcStatus: 13, requestComplete: true) { true }, .noRetry)
        XCTAssertEqual(
            retry.decide(status: 200, grpcStatus: 14, requestComplete: true) { true },
            .retry(backoff: .zero, attempt: 1))
    }
}
