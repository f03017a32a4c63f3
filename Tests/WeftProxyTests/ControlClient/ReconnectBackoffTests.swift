import XCTest

@testable import WeftProxy

final class ReconnectBackoffTests: XCTestCase {
    /// A deterministic generator (SplitMix64), so draws are repeatable.
    struct SeededRandom: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    func testUpperBoundDoublesFromHalfASecondToThirtySeconds() {
        let bounds = (0..<9).map { ReconnectBackoff.upperBound(retry: $0) }
        XCTAssertEqual(
            bounds,
            [.milliseconds(500), .seconds(1), .seconds(2), .seconds(4), .seconds(8), .seconds(16), .seconds(30),
             .seconds(30), .seconds(30)])
        XCTAssertEqual(ReconnectBackoff.upperBound(retry: 10_000), .seconds(30))
    }

    func testDelaysStayWithinTheirRetrysWindowAndAreJittered() {
        var random = SeededRandom(state: 42)
        var backoff = ReconnectBackoff()
        var seen: [Int: Set<Duration>] = [:]
        for round in 0..<200 {
            backoff = ReconnectBackoff()
            for retry in 0..<8 {
                let delay = backoff.delay(afterSessionOf: .milliseconds(5), using: &random)
                XCTAssertGreaterThanOrEqual(delay, .milliseconds(100), "round \(round) retry \(retry)")
                XCTAssertLessThanOrEqual(delay, ReconnectBackoff.upperBound(retry: retry), "round \(round) retry \(retry)")
                seen[retry, default: []].insert(delay)
            }
        }
        // Full jitter: many different delays per retry, and the late ones reach past 16 s.
        for retry in 0..<8 { XCTAssertGreaterThan(seen[retry]!.count, 50, "retry \(retry)") }
        XCTAssertTrue(seen[7]!.contains { $0 > .seconds(16) })
    }

    func testOnlyALongSessionStartsTheCountOver() {
        var random = SeededRandom(state: 7)
        var backoff = ReconnectBackoff()
        for _ in 0..<5 { _ = backoff.delay(afterSessionOf: .seconds(1), using: &random) }
        XCTAssertEqual(backoff.retries, 5)
        // A control plane that accepts and then drops within 30 s does not reset it.
        _ = backoff.delay(afterSessionOf: .seconds(29), using: &random)
        XCTAssertEqual(backoff.retries, 6)
        // A session that lasted 30 s does: the next delay is drawn from the first window.
        let delay = backoff.delay(afterSessionOf: .seconds(30), using: &random)
        XCTAssertEqual(backoff.retries, 1)
        XCTAssertLessThanOrEqual(delay, .milliseconds(500))
    }
}
