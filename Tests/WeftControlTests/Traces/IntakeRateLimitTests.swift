import XCTest

@testable import WeftControl

/// The intake's per-client token buckets, on a clock the test moves.
final class IntakeRateLimitTests: XCTestCase {
    private let second: UInt64 = 1_000_000_000

    func testAClientGetsItsBurstThenItsRate() {
        let limit = IntakeRateLimit(rate: 10)  // burst 20
        var now: UInt64 = 5 * second
        let admitted = (0..<25).filter { _ in limit.admit("10.0.0.1", now: now) }.count
        XCTAssertEqual(admitted, 20, "a burst of twice the rate")
        XCTAssertFalse(limit.admit("10.0.0.1", now: now))
        now += second / 2
        XCTAssertEqual((0..<10).filter { _ in limit.admit("10.0.0.1", now: now) }.count, 5, "10 a second: 5 in 0.5 s")
        now += 60 * second
        XCTAssertEqual(
            (0..<30).filter { _ in limit.admit("10.0.0.1", now: now) }.count, 20, "refilled to the burst, no more")
    }

    func testOneClientsFloodLeavesTheOthersServed() {
        let limit = IntakeRateLimit(rate: 1, burst: 2)
        for _ in 0..<1000 { _ = limit.admit("10.0.0.66", now: second) }
        XCTAssertFalse(limit.admit("10.0.0.66", now: second))
        XCTAssertTrue(limit.admit("10.0.0.2", now: second))
        XCTAssertTrue(limit.admit("10.0.0.3", now: second))
    }

    func testZeroIsNoLimit() {
        let limit = IntakeRateLimit(rate: 0)
        XCTAssertTrue((0..<10_000).allSatisfy { _ in limit.admit("10.0.0.1", now: 0) })
        XCTAssertEqual(limit.clients, 0, "no bucket is kept")
    }

    func testTheBucketsKeptAreBounded() {
        let limit = IntakeRateLimit(rate: 1, burst: 1, maxClients: 100)
        for i in 0..<1000 { _ = limit.admit("10.0.\(i / 256).\(i % 256)", now: UInt64(i)) }
        XCTAssertLessThanOrEqual(limit.clients, 100)
        // The newest client's bucket is kept: it has spent its one token.
        XCTAssertFalse(limit.admit("10.0.3.231", now: 999))
    }
}
