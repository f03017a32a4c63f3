import W3CTraceContext
import XCTest

@testable import WeftProxy

/// Trace and span ids drawn from the loop's generator: its next numbers, big-endian, as
/// swift-w3c-trace-context's `random(using:)` lays them out.
final class LoopRandomIDTests: XCTestCase {
    func testIDsAreTheGeneratorsNextNumbersBigEndian() {
        var reference = LoopRandom(seed: 7)
        var random = LoopRandom(seed: 7)
        XCTAssertEqual(random.traceID(), TraceID.random(using: &reference))
        XCTAssertEqual(random.spanID(), SpanID.random(using: &reference))
        // The generators stay in step: each id took as many numbers as the library's.
        XCTAssertEqual(random.next(), reference.next())
    }

    func testIDsDiffer() {
        var random = LoopRandom(seed: 1)
        let traces = (0..<1000).map { _ in random.traceID() }
        let spans = (0..<1000).map { _ in random.spanID() }
        XCTAssertEqual(Set(traces.map(\.description)).count, 1000)
        XCTAssertEqual(Set(spans.map(\.description)).count, 1000)
        XCTAssertFalse(traces.contains(.null))
    }
}
