import W3CTraceContext
import WeftTelemetry
import XCTest

@testable import WeftProxy

/// The span clock and context of one request: sampling decisions, the context carried on,
/// the time split and retried attempts. Times are given, not measured.
final class ExchangeSpanTests: XCTestCase {
    private var random = LoopRandom(seed: 7)
    private let ms: UInt64 = 1_000_000

    private func incoming(_ header: String) -> IncomingTrace? {
        IncomingTrace.extract { $0 == "traceparent" ? header : nil }
    }

    private func attributes(_ span: SpanRecord) -> [String: SpanRecord.Value] {
        Dictionary(span.attributes, uniquingKeysWith: { a, _ in a })
    }

    private func int(_ span: SpanRecord, _ key: String) -> Int64? {
        if case .int(let value)? = attributes(span)[key] { return value }
        return nil
    }

    func testSamplingFollowsTheCallerAndTheRatio() {
        let now = LoopContext.now()
        XCTAssertNil(ExchangeSpan.start(incoming: nil, sampler: TraceSampler(ratio: 0), random: &random, at: now))
        let unsampledCaller = incoming("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00")
        XCTAssertNil(
            ExchangeSpan.start(incoming: unsampledCaller, sampler: TraceSampler(ratio: 1), random: &random, at: now),
            "the caller said no: its context passes on untouched")

        let fresh = ExchangeSpan.start(incoming: nil, sampler: TraceSampler(ratio: 1), random: &random, at: now)!
        XCTAssertTrue(fresh.isSampled)
        XCTAssertNil(fresh.parentSpanID)
        XCTAssertEqual(fresh.traceparent, "00-\(fresh.traceID)-\(fresh.spanID)-01")

        let sampledCaller = incoming("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
        let continued = ExchangeSpan.start(
            incoming: sampledCaller, sampler: TraceSampler(ratio: 0), random: &random, at: now)!
        XCTAssertTrue(continued.isSampled, "a sampled caller is followed even at sampling 0")
        XCTAssertEqual("\(continued.traceID)", "0af7651916cd43dd8448eb211c80319c")
        XCTAssertEqual("\(continued.parentSpanID!)", "b7ad6b7169203331")
        XCTAssertNotEqual(continued.spanID, continued.parentSpanID)
        XCTAssertEqual(
            continued.headerLines, "traceparent: 00-0af7651916cd43dd8448eb211c80319c-\(continued.spanID)-01\r\n")
    }

    func testAnUnsampledTraceStillCarriesItsDecision() {
        // Sampling 1e-9: practically every new trace is not sampled, and says so downstream.
        var unsampled: ExchangeSpan?
        for _ in 0..<10 {
            let span = ExchangeSpan.start(
                incoming: nil, sampler: TraceSampler(ratio: 1e-9), random: &random, at: LoopContext.now())!
            if !span.isSampled { unsampled = span }
        }
        let span = try! XCTUnwrap(unsampled)
        XCTAssertTrue(span.traceparent.hasSuffix("-00"))
        let sink = RecordingSink()
        span.finish(at: LoopContext.now(), name: "GET", kind: .client, error: nil, into: sink) { _ in }
        XCTAssertTrue(sink.spans.isEmpty, "an unsampled request records nothing")
    }

    func testB3IsContinuedInItsOwnForm() {
        let single = IncomingTrace.extract { $0 == "b3" ? "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1" : nil }
        let span = ExchangeSpan.start(incoming: single, sampler: TraceSampler(ratio: 0), random: &random, at: 1)!
        XCTAssertEqual("\(span.traceID)", "80f198ee56343ba864fe8b2a57d3eff7")
        XCTAssertEqual(
            span.headerLines,
            "traceparent: 00-80f198ee56343ba864fe8b2a57d3eff7-\(span.spanID)-01\r\n"
                + "b3: 80f198ee56343ba864fe8b2a57d3eff7-\(span.spanID)-1\r\n")
        let multi = IncomingTrace.extract { name in
            ["x-b3-traceid": "463ac35c9f6413ad", "x-b3-spanid": "a2fb4a1d1a96d312", "x-b3-sampled": "1"][name]
        }
        let padded = ExchangeSpan.start(incoming: multi, sampler: TraceSampler(ratio: 0), random: &random, at: 1)!
        XCTAssertEqual("\(padded.traceID)", "0000000000000000463ac35c9f6413ad")
        XCTAssertTrue(padded.headerLines.contains("x-b3-spanid: \(padded.spanID)\r\n"))
        XCTAssertTrue(
            padded.headerLines.contains("x-b3-parentspanid: a2fb4a1d1a96d312\r\n"),
            "the carried span's parent is the caller's span, never itself")
        XCTAssertFalse(padded.headerLines.contains("x-b3-parentspanid: \(padded.spanID)"))
        XCTAssertEqual(
            padded.headerFields.map { "\($0.0): \($0.1)\r\n" }.joined(), padded.headerLines,
            "HTTP/2 carries the same fields as HTTP/1")
        // A hop upstream added traceparent beside B3: W3C wins, and B3 is still carried on.
        let both = incoming("00-80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-01")
        let echoed = ExchangeSpan.start(
            incoming: both, b3: .b3Single, sampler: TraceSampler(ratio: 0), random: &random, at: 1)!
        XCTAssertTrue(echoed.headerLines.hasSuffix("b3: 80f198ee56343ba864fe8b2a57d3eff7-\(echoed.spanID)-1\r\n"))
    }

    func testTheFourPartsAddUpToTheDuration() {
        let start = LoopContext.now()
        let span = ExchangeSpan.start(incoming: nil, sampler: TraceSampler(ratio: 1), random: &random, at: start)!
        span.attemptBegan(at: start + 1 * ms, endpoint: "10.0.0.2:8080")
        span.requestSent(at: start + 3 * ms, connect: 1 * ms, tls: ms / 2)
        let sink = RecordingSink()
        span.finish(at: start + 33 * ms + 700, name: "GET", kind: .client, error: nil, into: sink) { $0.add("a", "b") }
        let emitted = sink.spans
        XCTAssertEqual(emitted.count, 1)
        XCTAssertEqual(attributes(emitted[0])["a"], .string("b"))
        let record = emitted[0]
        XCTAssertEqual(int(record, "weft.duration.connect"), 1000)
        XCTAssertEqual(int(record, "weft.duration.tls"), 500)
        XCTAssertEqual(int(record, "weft.duration.upstream"), 30_000)
        XCTAssertEqual(int(record, "weft.duration.proxy"), 1500)
        XCTAssertEqual(record.endUnixNano - record.startUnixNano, 33 * ms + 700)
        let parts = ["proxy", "connect", "tls", "upstream"].compactMap { int(record, "weft.duration.\($0)") }
        XCTAssertEqual(parts.reduce(0, +), Int64((33 * ms + 700) / 1000))
        XCTAssertNil(int(record, "weft.retry_count"), "one attempt: no attempt spans, no count")
        XCTAssertEqual(record.kind, .client)
        XCTAssertFalse(record.isError)
    }

    func testThePartsAddUpWhenEveryPartRoundsDown() {
        let start = LoopContext.now()
        let span = ExchangeSpan.start(incoming: nil, sampler: TraceSampler(ratio: 1), random: &random, at: start)!
        span.attemptBegan(at: start + 10, endpoint: nil)
        span.requestSent(at: start + 2_000_000, connect: 999_999, tls: 999_999)
        let sink = RecordingSink()
        span.finish(at: start + 5_999_999, name: "GET", kind: .client, error: nil, into: sink) { _ in }
        let record = sink.spans[0]
        let parts = ["proxy", "connect", "tls", "upstream"].compactMap { int(record, "weft.duration.\($0)") }
        XCTAssertEqual(parts, [2, 999, 999, 3999], "rounded down; proxy takes what is left")
        XCTAssertEqual(parts.reduce(0, +), 5999, "the duration's whole microseconds")
    }

    func testARetriedRequestHasAChildPerAttempt() {
        let start = LoopContext.now()
        let span = ExchangeSpan.start(incoming: nil, sampler: TraceSampler(ratio: 1), random: &random, at: start)!
        span.attemptBegan(at: start, endpoint: "10.0.0.2:8080")
        span.requestSent(at: start + 1 * ms, connect: 0, tls: 0)
        XCTAssertEqual(span.traceparent, "00-\(span.traceID)-\(span.spanID)-01", "the first attempt carries the span")
        span.attemptRetried(at: start + 5 * ms, status: 503, failure: "status", random: &random)
        let secondCarried = span.traceparent
        XCTAssertFalse(secondCarried.contains("\(span.spanID)"), "a retry carries an id of its own")
        span.attemptBegan(at: start + 6 * ms, endpoint: "10.0.0.3:8080")
        span.requestSent(at: start + 6 * ms, connect: 0, tls: 0)
        let sink = RecordingSink()
        span.finish(at: start + 10 * ms, name: "GET", nameSuffix: "web", kind: .client, error: nil, into: sink) { _ in
        }
        let emitted = sink.spans
        XCTAssertEqual(emitted.count, 3)
        XCTAssertEqual(emitted.map(\.name), ["GET web", "GET attempt 1", "GET attempt 2"])
        let client = emitted[0]
        XCTAssertEqual(int(client, "weft.retry_count"), 1)
        XCTAssertEqual(int(client, "weft.duration.upstream"), 8000, "4 ms of the first attempt, 4 of the second")
        let attempts = Array(emitted[1...])
        XCTAssertEqual(attempts.map(\.parentSpanID), [client.spanID, client.spanID])
        XCTAssertNotEqual(attempts[0].spanID, client.spanID)
        XCTAssertTrue(secondCarried.contains("\(attempts[1].spanID)"), "the callee's span hangs from attempt 2")
        XCTAssertEqual(int(attempts[0], "http.response.status_code"), 503)
        XCTAssertTrue(attempts[0].isError)
        XCTAssertEqual(int(attempts[0], "weft.duration.upstream"), 4000)
        XCTAssertEqual(attempts[1].endUnixNano - attempts[1].startUnixNano, 4 * ms)
        if case .string(let endpoint)? = attributes(attempts[1])["weft.endpoint"] {
            XCTAssertEqual(endpoint, "10.0.0.3:8080")
        } else {
            XCTFail("attempt 2 names its endpoint")
        }
    }
}

/// Keeps the spans it is given, as `SpanRecord`s.
private final class RecordingSink: SpanSink {
    var spans: [SpanRecord] = []

    func add(_ span: SpanHeader, attributes: (inout SpanAttributes) -> Void) {
        var kept = SpanAttributes.collecting()
        attributes(&kept)
        spans.append(
            SpanRecord(
                traceID: span.traceID, spanID: span.spanID, parentSpanID: span.parentSpanID,
                traceState: span.traceState, name: span.nameSuffix.map { "\(span.name) \($0)" } ?? span.name,
                kind: span.kind, startUnixNano: span.startUnixNano, endUnixNano: span.endUnixNano,
                attributes: kept.collected, links: span.link.map { [$0] } ?? [], isError: span.isError,
                statusMessage: span.statusMessage))
    }
}

/// The pod's inbound requests in flight, and the links inferred from them.
final class InflightRequestsTests: XCTestCase {
    private let trace = TraceID(bytes: (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16))
    private let first = SpanID(bytes: (1, 1, 1, 1, 1, 1, 1, 1))
    private let second = SpanID(bytes: (2, 2, 2, 2, 2, 2, 2, 2))

    func testOnlyASoleRequestIsInferred() {
        let inflight = InflightRequests()
        XCTAssertNil(inflight.sole(), "none in flight: nothing to link to")
        inflight.arrive()
        inflight.enter(trace: trace, span: first)
        XCTAssertEqual(inflight.sole()?.span, first)
        inflight.arrive()
        inflight.enter(trace: trace, span: second)
        XCTAssertNil(inflight.sole(), "two in flight: a link is never invented")
        inflight.leave(span: first)
        inflight.depart()
        XCTAssertEqual(inflight.sole()?.span, second)
        inflight.arrive()  // an unsampled request arrives: not traced, but served too
        XCTAssertNil(inflight.sole(), "one traced and one untraced in flight: nothing inferred")
        inflight.depart()
        XCTAssertEqual(inflight.sole()?.span, second)
        inflight.leave(span: second)
        inflight.leave(span: second)
        inflight.depart()
        XCTAssertEqual(inflight.count, 0)
        XCTAssertNil(inflight.sole())
    }

    func testACallWithoutContextJoinsTheRequestItServes() {
        var random = LoopRandom(seed: 3)
        let span = ExchangeSpan.start(
            incoming: nil, serving: (trace, first), sampler: TraceSampler(ratio: 0), random: &random, at: 1)!
        XCTAssertTrue(span.isSampled, "the served request was sampled")
        XCTAssertEqual(span.traceID, trace)
        XCTAssertEqual(span.parentSpanID, first)
        let sink = RecordingSink()
        span.finish(at: 2, name: "GET", kind: .client, error: nil, into: sink) { _ in }
        XCTAssertEqual(sink.spans.first?.links.first?.spanID, first)
        XCTAssertEqual(
            sink.spans.first?.attributes.first { $0.0 == "weft.link.inferred" }?.1, .bool(true),
            "marked as inferred")
    }
}
