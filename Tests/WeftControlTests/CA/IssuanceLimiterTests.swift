import XCTest

@testable import WeftControl

/// The token buckets with a fake clock (nanoseconds passed in).
final class IssuanceLimiterTests: XCTestCase {
    private let second: UInt64 = 1_000_000_000

    func testBurstThenOneTokenPerPeriod() {
        var limiter = IssuanceLimiter(
            perPod: .init(burst: 2, secondsPerToken: 5), perSource: .init(burst: 100, secondsPerToken: 1))
        let t0 = 100 * second
        XCTAssertNil(limiter.admit(pod: "demo/a", source: "10.0.0.1", nowNanoseconds: t0))
        XCTAssertNil(limiter.admit(pod: "demo/a", source: "10.0.0.1", nowNanoseconds: t0))
        let refused = limiter.admit(pod: "demo/a", source: "10.0.0.1", nowNanoseconds: t0)
        XCTAssertEqual(refused?.retryAfterSeconds, 5)
        XCTAssertEqual(refused?.key, "pod demo/a")
        // 4 s later the token is not back yet (1 s to go); at 5 s it is, and only one.
        XCTAssertEqual(
            limiter.admit(pod: "demo/a", source: "10.0.0.1", nowNanoseconds: t0 + 4 * second)?.retryAfterSeconds, 1)
        XCTAssertNil(limiter.admit(pod: "demo/a", source: "10.0.0.1", nowNanoseconds: t0 + 5 * second))
        XCTAssertNotNil(limiter.admit(pod: "demo/a", source: "10.0.0.1", nowNanoseconds: t0 + 5 * second))
        // Long idle refills to the burst, not beyond it.
        let later = t0 + 1000 * second
        XCTAssertNil(limiter.admit(pod: "demo/a", source: "10.0.0.1", nowNanoseconds: later))
        XCTAssertNil(limiter.admit(pod: "demo/a", source: "10.0.0.1", nowNanoseconds: later))
        XCTAssertNotNil(limiter.admit(pod: "demo/a", source: "10.0.0.1", nowNanoseconds: later))
    }

    func testSourceLimitCoversManyPodsAndARefusalTakesNothing() {
        var limiter = IssuanceLimiter(
            perPod: .init(burst: 10, secondsPerToken: 1), perSource: .init(burst: 3, secondsPerToken: 1))
        let t0 = 10 * second
        for i in 0..<3 { XCTAssertNil(limiter.admit(pod: "demo/p\(i)", source: "10.0.0.9", nowNanoseconds: t0)) }
        let refused = limiter.admit(pod: "demo/p3", source: "10.0.0.9", nowNanoseconds: t0)
        XCTAssertEqual(refused?.key, "address 10.0.0.9")
        // The refusal did not spend p3's pod token: from another address it is admitted.
        XCTAssertNil(limiter.admit(pod: "demo/p3", source: "10.0.0.10", nowNanoseconds: t0))
    }

    func testTableForgetsFullBuckets() {
        var limiter = IssuanceLimiter(
            perPod: .init(burst: 2, secondsPerToken: 1), perSource: .init(burst: 2, secondsPerToken: 1), maxKeys: 10)
        for i in 0..<10 { _ = limiter.admit(pod: "demo/p\(i)", source: "10.0.0.\(i)", nowNanoseconds: second) }
        XCTAssertEqual(limiter.keysHeld.pods, 10)
        // Later, every bucket is full again: the 11th key prunes them.
        _ = limiter.admit(pod: "demo/new", source: "10.0.1.1", nowNanoseconds: 100 * second)
        XCTAssertEqual(limiter.keysHeld.pods, 1)
        XCTAssertEqual(limiter.keysHeld.sources, 1)
    }
}
