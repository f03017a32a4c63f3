import XCTest

@testable import WeftProxy

/// PeakEWMA, power of two choices and the loop's generator, with a fake clock and a
/// seeded generator.
final class BalanceTests: XCTestCase {
    private let ms: UInt64 = 1_000_000

    func testANewEndpointIsTriedFirstButNotFlooded() {
        var ewma = PeakEWMA(now: 0)
        XCTAssertEqual(ewma.cost(now: 0), 0, "untried and idle: picked whenever drawn")
        ewma.start()
        XCTAssertEqual(ewma.cost(now: 0), PeakEWMA.defaultRTTNanoseconds * 2, "its first request out: the default RTT")
        ewma.finish(rttNanoseconds: 3 * ms, now: 3 * ms)
        XCTAssertEqual(ewma.estimate, Double(3 * ms), "the first sample is the estimate")
    }

    func testPeakIsTakenAtOnceAndDecaysSlowly() {
        var ewma = PeakEWMA(now: 0)
        ewma.start()
        ewma.finish(rttNanoseconds: 500 * ms, now: 500 * ms)
        XCTAssertEqual(ewma.estimate, Double(500 * ms), "a slow sample is the new estimate at once")
        // Fast samples pull it down over seconds (τ = 10 s), not at once.
        ewma.start()
        ewma.finish(rttNanoseconds: 10 * ms, now: 1500 * ms)
        XCTAssertGreaterThan(ewma.estimate, Double(400 * ms))
        ewma.start()
        ewma.finish(rttNanoseconds: 10 * ms, now: 31_500 * ms)
        XCTAssertLessThan(ewma.estimate, Double(40 * ms))
    }

    func testCostGrowsWithRequestsInFlight() {
        var ewma = PeakEWMA(now: 0)
        ewma.start()
        ewma.finish(rttNanoseconds: 30 * ms, now: 0)
        let idle = ewma.cost(now: 0)
        ewma.start()
        ewma.start()
        XCTAssertEqual(ewma.cost(now: 0), idle * 3)
        ewma.abandon()
        XCTAssertEqual(ewma.pending, 1)
        ewma.abandon()
        ewma.abandon()
        XCTAssertEqual(ewma.pending, 0, "never below zero")
    }

    func testPickIsAlwaysTwoDistinctCandidates() {
        var random = LoopRandom(seed: 7)
        var seen = Set<[Int]>()
        for _ in 0..<2000 {
            var asked: [Int] = []
            _ = PowerOfTwoChoices.pick(count: 3, using: &random) {
                asked.append($0); return 1
            }
            XCTAssertEqual(asked.count, 2)
            XCTAssertNotEqual(asked[0], asked[1])
            seen.insert(asked)
        }
        XCTAssertEqual(seen.count, 6, "every ordered pair of 3 candidates comes up")
        XCTAssertNil(PowerOfTwoChoices.pick(count: 0, using: &random) { _ in 0 })
        XCTAssertEqual(PowerOfTwoChoices.pick(count: 1, using: &random) { _ in 0 }, 0)
    }

    /// A slow and a fast endpoint: the fast one takes most requests, the slow one is not
    /// starved of probes.
    func testFastEndpointGetsMostRequests() {
        var random = LoopRandom(seed: 42)
        var endpoints = [PeakEWMA(now: 0), PeakEWMA(now: 0)]
        let latency: [UInt64] = [5 * ms, 80 * ms]
        var picks = [0, 0]
        var now: UInt64 = 0
        for _ in 0..<2000 {
            now += 10 * ms
            let chosen = PowerOfTwoChoices.pick(count: 2, using: &random) { endpoints[$0].cost(now: now) }!
            picks[chosen] += 1
            endpoints[chosen].start()
            endpoints[chosen].finish(rttNanoseconds: latency[chosen], now: now + latency[chosen])
        }
        XCTAssertGreaterThan(picks[0], 1800, "\(picks)")
        XCTAssertGreaterThan(picks[1], 0, "\(picks)")
    }

    func testSeededGeneratorRepeatsAndSpreads() {
        var a = LoopRandom(seed: 1)
        var b = LoopRandom(seed: 1)
        XCTAssertEqual((0..<8).map { _ in a.next() }, (0..<8).map { _ in b.next() })
        var c = LoopRandom(seed: 0)
        var buckets = [Int](repeating: 0, count: 10)
        for _ in 0..<10_000 { buckets[Int(c.next(upperBound: UInt64(10)))] += 1 }
        XCTAssertTrue(buckets.allSatisfy { (900...1100).contains($0) }, "\(buckets)")
    }
}
