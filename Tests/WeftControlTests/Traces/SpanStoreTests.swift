import Foundation
import WeftOTLP
import XCTest

@testable import WeftControl

/// Builds OTLP export requests for the trace store and intake tests.
enum OTLPFixture {
    static func id(_ seed: UInt8, count: Int) -> Data { Data((0..<count).map { UInt8($0) &+ seed | 1 }) }

    static func span(
        trace: UInt8, span: UInt8, parent: UInt8? = nil, name: String = "GET /", start: UInt64 = 1_000,
        end: UInt64 = 2_000, error: Bool = false, padding: Int = 0
    ) -> Opentelemetry_Proto_Trace_V1_Span {
        var s = Opentelemetry_Proto_Trace_V1_Span()
        s.traceID = id(trace, count: 16)
        s.spanID = id(span, count: 8)
        if let parent { s.parentSpanID = id(parent, count: 8) }
        s.name = name
        s.startTimeUnixNano = start
        s.endTimeUnixNano = end
        if error { s.status.code = .error }
        if padding > 0 {
            var attribute = Opentelemetry_Proto_Common_V1_KeyValue()
            attribute.key = "padding"
            attribute.value.stringValue = String(repeating: "x", count: padding)
            s.attributes = [attribute]
        }
        return s
    }

    static func request(service: String, _ spans: [Opentelemetry_Proto_Trace_V1_Span])
        -> Opentelemetry_Proto_Collector_Trace_V1_ExportTraceServiceRequest
    {
        var resource = Opentelemetry_Proto_Trace_V1_ResourceSpans()
        var attribute = Opentelemetry_Proto_Common_V1_KeyValue()
        attribute.key = "service.name"
        attribute.value.stringValue = service
        resource.resource.attributes = [attribute]
        var scope = Opentelemetry_Proto_Trace_V1_ScopeSpans()
        scope.spans = spans
        resource.scopeSpans = [scope]
        var request = Opentelemetry_Proto_Collector_Trace_V1_ExportTraceServiceRequest()
        request.resourceSpans = [resource]
        return request
    }

    static func hex(_ data: Data) -> String { data.map { String(format: "%02x", $0) }.joined() }
}

final class SpanStoreTests: XCTestCase {
    typealias F = OTLPFixture

    func testSpansOfOneTraceFromSeveralExportsAreKeptTogetherWithASummary() throws {
        let store = SpanStore(limit: 1 << 20)
        // The inbound hop arrives first (from another sidecar), then the outbound root.
        store.add(
            F.request(
                service: "web", [F.span(trace: 1, span: 2, parent: 1, name: "GET /api", start: 1_500, end: 31_000)]))
        store.add(F.request(service: "client", [F.span(trace: 1, span: 1, name: "GET web", start: 1_000, end: 32_000)]))
        store.add(F.request(service: "other", [F.span(trace: 9, span: 3, start: 50_000, end: 51_000, error: true)]))
        let traceID = F.hex(F.id(1, count: 16))
        let kept = try XCTUnwrap(store.trace(traceID))
        XCTAssertEqual(kept.flatMap { $0.scopeSpans.flatMap(\.spans) }.map(\.name), ["GET /api", "GET web"])
        let summary = try XCTUnwrap(store.list().first { $0.traceId == traceID })
        XCTAssertEqual(summary.rootName, "GET web", "the span without a parent is the root")
        XCTAssertEqual(summary.rootService, "client")
        XCTAssertEqual(Set(summary.services), ["web", "client"])
        XCTAssertEqual(summary.spanCount, 2)
        XCTAssertEqual(summary.startTimeUnixNano, 1_000)
        XCTAssertEqual(summary.durationNanos, 31_000)
        XCTAssertFalse(summary.error)
        XCTAssertNil(store.trace(String(repeating: "ab", count: 16)))
        XCTAssertNil(store.trace("not-an-id"))
    }

    func testATraceOfManyExportsKeepsEveryFragmentAndService() throws {
        // Past the two fragments and services a trace holds inline: a third, a fourth, and a
        // service seen twice; the first span is the root until one without a parent comes.
        let store = SpanStore(limit: 1 << 20)
        store.add(F.request(service: "db", [F.span(trace: 4, span: 5, parent: 4, name: "SELECT", start: 30, end: 40)]))
        let traceID = F.hex(F.id(4, count: 16))
        XCTAssertEqual(store.list().first?.rootName, "SELECT", "the first span, until a root comes")
        store.add(F.request(service: "api", [F.span(trace: 4, span: 4, parent: 3, name: "GET /q", start: 20, end: 50)]))
        store.add(F.request(service: "db", [F.span(trace: 4, span: 6, parent: 4, name: "INSERT", start: 41, end: 45)]))
        store.add(F.request(service: "web", [F.span(trace: 4, span: 3, name: "GET /", start: 10, end: 60)]))
        store.add(
            F.request(service: "cache", [F.span(trace: 4, span: 7, parent: 3, name: "GET k", start: 11, end: 12)]))
        let kept = try XCTUnwrap(store.trace(traceID))
        XCTAssertEqual(
            kept.flatMap { $0.scopeSpans.flatMap(\.spans) }.map(\.name),
            ["SELECT", "GET /q", "INSERT", "GET /", "GET k"])
        let summary = try XCTUnwrap(store.list().first)
        XCTAssertEqual(summary.rootName, "GET /")
        XCTAssertEqual(summary.rootService, "web")
        XCTAssertEqual(summary.services, ["db", "api", "web", "cache"])
        XCTAssertEqual(summary.spanCount, 5)
        XCTAssertEqual(summary.durationNanos, 50)
        XCTAssertEqual(store.list(service: "cache").count, 1)
    }

    func testListFiltersAndOrders() {
        let store = SpanStore(limit: 1 << 20)
        store.add(F.request(service: "web", [F.span(trace: 1, span: 1, start: 1_000, end: 5_000)]))
        store.add(F.request(service: "web", [F.span(trace: 2, span: 2, start: 2_000, end: 90_000, error: true)]))
        store.add(F.request(service: "api", [F.span(trace: 3, span: 3, start: 3_000, end: 4_000)]))
        XCTAssertEqual(store.list().map(\.startTimeUnixNano), [3_000, 2_000, 1_000], "newest first")
        XCTAssertEqual(store.list(order: .slowest).first?.durationNanos, 88_000)
        XCTAssertEqual(store.list(service: "web").count, 2)
        XCTAssertEqual(store.list(service: "nobody").count, 0)
        XCTAssertEqual(store.list(minDurationNanos: 10_000).map(\.durationNanos), [88_000])
        XCTAssertEqual(store.list(status: "error").count, 1)
        XCTAssertEqual(store.list(status: "ok").count, 2)
        XCTAssertEqual(store.list(limit: 1).count, 1)
    }

    func testSpansWithInvalidIDsAreRejectedAndTheRestKept() {
        let store = SpanStore(limit: 1 << 20)
        var zeroTrace = F.span(trace: 1, span: 1)
        zeroTrace.traceID = Data(count: 16)
        var shortSpan = F.span(trace: 2, span: 2)
        shortSpan.spanID = Data([1, 2, 3])
        let outcome = store.add(F.request(service: "web", [zeroTrace, shortSpan, F.span(trace: 3, span: 3)]))
        XCTAssertEqual(outcome.accepted, 1)
        XCTAssertEqual(outcome.rejected, 2)
        XCTAssertTrue(outcome.reason.contains("traceId must be 16 bytes"), outcome.reason)
        XCTAssertEqual(store.usage.traces, 1)
    }

    func testTheStoreStaysWithinItsLimitEvictingTheOldestTraces() {
        let limit = 200_000
        let store = SpanStore(limit: limit)
        for index in 0..<2_000 {
            let seed = UInt8(truncatingIfNeeded: index)
            var span = F.span(trace: seed, span: 1, start: UInt64(index), end: UInt64(index) + 10, padding: 100)
            // Distinct trace ids beyond 256: the index in the first bytes.
            span.traceID.replaceSubrange(0..<2, with: [UInt8(index >> 8), UInt8(index & 0xFF)])
            store.add(F.request(service: "web", [span]))
            XCTAssertLessThanOrEqual(store.usage.bytes, limit)
        }
        let usage = store.usage
        XCTAssertGreaterThan(usage.evicted, 0)
        XCTAssertEqual(usage.traces + usage.evicted, 2_000)
        let kept = store.list(limit: 1000).map(\.startTimeUnixNano)
        XCTAssertEqual(kept.min(), UInt64(2_000 - usage.traces), "the oldest went first")
        XCTAssertEqual(kept.max(), 1_999)
    }

    func testATraceLargerThanTheWholeLimitIsNotKept() {
        let store = SpanStore(limit: 10_000)
        store.add(F.request(service: "web", [F.span(trace: 1, span: 1, padding: 50_000)]))
        XCTAssertEqual(store.usage.traces, 0)
        XCTAssertEqual(store.usage.bytes, 0)
    }

    func testATraceThatGrowsPastTheWholeLimitIsDroppedAndTheOthersStay() {
        // Its first span fits; its next would take it past the whole limit: it goes, and
        // its later spans in the same export with it, rather than every other trace
        // evicted to make room for it.
        let store = SpanStore(limit: 10_000)
        for trace in 2...4 { store.add(F.request(service: "web", [F.span(trace: UInt8(trace), span: 1)])) }
        store.add(F.request(service: "web", [F.span(trace: 1, span: 1, padding: 3_000)]))
        XCTAssertEqual(store.usage.traces, 4)
        store.add(F.request(service: "db", [F.span(trace: 1, span: 2, parent: 1, padding: 7_000)]))
        XCTAssertNil(store.trace(F.hex(F.id(1, count: 16))), "the trace past the limit is dropped")
        XCTAssertEqual(store.usage.traces, 3, "the others stay")
        store.add(F.request(service: "db", [F.span(trace: 1, span: 3, parent: 1)]))
        XCTAssertEqual(store.usage.traces, 4, "its next span starts it again, small")
        XCTAssertEqual(Set(store.list().map(\.spanCount)), [1])
        XCTAssertLessThanOrEqual(store.usage.bytes, 10_000)
    }

    /// A trace dropped for its size, whose id comes again, is a new trace: the oldest go
    /// first, and the dropped one's place in the order does not evict the new one early.
    func testATraceStartedAgainAfterItWasDroppedIsEvictedInItsNewTurn() {
        let store = SpanStore(limit: 10_000)
        store.add(F.request(service: "web", [F.span(trace: 1, span: 1, start: 1)]))
        store.add(F.request(service: "web", [F.span(trace: 1, span: 2, parent: 1, padding: 12_000)]))
        XCTAssertEqual(store.usage.traces, 0, "dropped for its size")
        // Trace 2 large enough that evicting it makes room for any one filler below.
        store.add(F.request(service: "web", [F.span(trace: 2, span: 1, start: 2, padding: 2_000)]))
        store.add(F.request(service: "web", [F.span(trace: 1, span: 3, start: 3)]))
        // Fill the store until it evicts: trace 2 is the oldest, then the new trace 1.
        var next: UInt8 = 10
        while store.usage.evicted == 0 {
            store.add(F.request(service: "web", [F.span(trace: next, span: 1, start: UInt64(next), padding: 500)]))
            next += 1
        }
        XCTAssertEqual(store.usage.evicted, 1)
        XCTAssertNil(store.trace(F.hex(F.id(2, count: 16))), "the oldest went first")
        XCTAssertNotNil(store.trace(F.hex(F.id(1, count: 16))), "not the one started again after it")
    }
}
