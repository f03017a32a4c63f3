import XCTest

@testable import WeftProxy

/// Failure accrual, backoff and the probe, with a fake clock.
final class EndpointHealthTests: XCTestCase {
    private let second: UInt64 = 1_000_000_000

    func testConsecutiveFailuresEject() {
        var health = EndpointHealth()
        for _ in 0..<(EndpointHealth.threshold - 1) { XCTAssertFalse(health.failed(now: 0)) }
        health.succeeded()  // a success resets the count
        for _ in 0..<(EndpointHealth.threshold - 1) { XCTAssertFalse(health.failed(now: 0)) }
        XCTAssertTrue(health.failed(now: 0))
        XCTAssertTrue(health.isEjected)
        XCTAssertFalse(health.isEligible(now: second / 2))
    }

    func testProbeAfterBackoffThenHealthyOnSuccess() {
        var health = ejected(at: 0)
        XCTAssertTrue(health.isEligible(now: second), "backoff of 1 s ended: probing")
        health.requestStarted()
        XCTAssertFalse(health.isEligible(now: second), "one probe at a time")
        health.succeeded()
        XCTAssertEqual(health.state, .healthy(consecutiveFailures: 0))
        XCTAssertTrue(health.isEligible(now: second))
    }

    func testFailedProbesDoubleTheBackoffUpToTheMaximum() {
        var health = ejected(at: 0)
        var now: UInt64 = 0
        var backoffs: [UInt64] = []
        for _ in 0..<8 {
            guard case .ejected(let until, _) = health.state else { return XCTFail("\(health.state)") }
            backoffs.append((until - now) / second)
            now = until
            XCTAssertTrue(health.isEligible(now: now))
            health.requestStarted()
            XCTAssertTrue(health.failed(now: now))
        }
        XCTAssertEqual(backoffs, [1, 2, 4, 8, 16, 32, 60, 60])
    }

    func testAbandonedProbeFreesTheSlot() {
        var health = ejected(at: 0)
        XCTAssertTrue(health.isEligible(now: second))
        health.requestStarted()
        health.abandoned()
        XCTAssertTrue(health.isEligible(now: second))
    }

    func testFailureOfARequestSentBeforeTheEjectionChangesNothing() {
        var health = ejected(at: 0)
        let before = health.state
        XCTAssertFalse(health.failed(now: 0))
        XCTAssertEqual(health.state, before)
    }

    private func ejected(at now: UInt64) -> EndpointHealth {
        var health = EndpointHealth()
        for _ in 0..<EndpointHealth.threshold { health.failed(now: now) }
        return health
    }
}
