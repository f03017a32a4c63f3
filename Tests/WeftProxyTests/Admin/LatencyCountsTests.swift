import NIOEmbedded
import WeftTelemetry
import XCTest

@testable import WeftProxy

/// The loop-kept latency histograms: bucket edges as Prometheus means them (`le`: at
/// most), counts summed over loops, and the text format.
final class LatencyCountsTests: XCTestCase {
    func testBoundsAreTheTelemetryBucketsInNanoseconds() {
        XCTAssertEqual(LatencyCounts.bounds.first, 500_000)
        XCTAssertEqual(LatencyCounts.bounds[1], 1_000_000)
        XCTAssertEqual(LatencyCounts.bounds.last, 30_000_000_000)
    }

    func testAValueOnABoundCountsInThatBucket() {
        let counts = LatencyCounts()
        counts.record(nanoseconds: 500_000)  // le 0.0005
        counts.record(nanoseconds: 500_001)  // le 0.001
        counts.record(nanoseconds: 0)  // le 0.0005
        counts.record(nanoseconds: 31_000_000_000)  // +Inf only
        let cumulative = counts.cumulative
        XCTAssertEqual(cumulative.count, LatencyCounts.bounds.count + 1)
        XCTAssertEqual(Array(cumulative.prefix(3)), [2, 3, 3])
        XCTAssertEqual(cumulative[cumulative.count - 2], 3, "30 s holds all but the slowest")
        XCTAssertEqual(cumulative.last, 4)
        XCTAssertEqual(counts.count, 4)
        XCTAssertEqual(counts.sum, 31_001_000_001)
    }

    func testSeriesOfEveryLoopAreSummedAndWrittenAsOneFamily() {
        let labels = [("direction", "outbound"), ("route", "demo/r"), ("rule", "0"), ("backend", "demo/w:80")]
        let one = LatencyCounts()
        one.record(nanoseconds: 2_000_000)
        let other = LatencyCounts()
        other.record(nanoseconds: 400_000)
        let series = [one, other].map {
            LatencyExposition.Series(labels: labels, buckets: $0.cumulative, sumNanoseconds: $0.sum)
        }
        let text = LatencyExposition.render(name: "weft_x_seconds", help: "Help.", series: series)
        let lines = text.split(separator: "\n").map(String.init)
        XCTAssertEqual(lines[0], "# HELP weft_x_seconds Help.")
        XCTAssertEqual(lines[1], "# TYPE weft_x_seconds histogram")
        let prefix = #"weft_x_seconds_bucket{direction="outbound",route="demo/r",rule="0",backend="demo/w:80","#
        XCTAssertEqual(lines[2], prefix + #"le="0.0005"} 1"#)
        XCTAssertEqual(lines[4], prefix + #"le="0.002"} 2"#)
        XCTAssertTrue(lines.contains(prefix + #"le="+Inf"} 2"#), text)
        XCTAssertTrue(lines.contains(where: { $0.hasPrefix("weft_x_seconds_sum{") && $0.hasSuffix(" 0.0024") }), text)
        XCTAssertTrue(lines.contains(where: { $0.hasPrefix("weft_x_seconds_count{") && $0.hasSuffix(" 2") }), text)
        XCTAssertEqual(lines.count, 2 + LatencyCounts.bounds.count + 1 + 2, "one series: the loops' are summed")
        XCTAssertEqual(LatencyExposition.render(name: "weft_x_seconds", help: "Help.", series: []), "")
    }

    func testLabelValuesAreEscaped() {
        XCTAssertEqual(LatencyExposition.escaped(#"a"b\c"# + "\n"), #"a\"b\\c\n"#)
    }
}

/// Exemplars: a traced request's span on the bucket that counted it, written only in
/// OpenMetrics.
final class LatencyExemplarTests: XCTestCase {
    func testATracedRequestBecomesItsBucketsExemplar() throws {
        var random = LoopRandom(seed: 1)
        let span = try XCTUnwrap(
            ExchangeSpan.start(incoming: nil, sampler: TraceSampler(ratio: 1), random: &random, at: 1))
        let metrics = RouteMetrics(
            registry: PrometheusCollectorRegistry(), labels: RouteMetricLabels(route: "demo/r", rule: "0", backend: "b")
        )
        metrics.record(status: 200, nanoseconds: 3_000_000)  // untraced: no exemplar
        metrics.record(status: 200, nanoseconds: 40_000_000, span: span)
        let series = [
            LatencyExposition.Series(
                labels: metrics.labels.prometheus, buckets: metrics.latency.cumulative,
                sumNanoseconds: metrics.latency.sum, exemplars: metrics.latency.exemplars)
        ]
        let open = LatencyExposition.render(name: "h", help: "x", series: series, exemplars: true)
        let marked = open.split(separator: "\n").filter { $0.contains(" # {") }
        XCTAssertEqual(marked.count, 1, open)
        XCTAssertTrue(
            marked[0].hasPrefix(
                "h_bucket{direction=\"outbound\",route=\"demo/r\",rule=\"0\",backend=\"b\",le=\"0.05\"} 2 # {trace_id=\"\(span.traceID)\",span_id=\"\(span.spanID)\"} 0.04 "
            ),
            String(marked[0]))
        let plain = LatencyExposition.render(name: "h", help: "x", series: series)
        XCTAssertFalse(plain.contains("#  {") || plain.contains(" # {"), "Prometheus text carries none")
    }

    /// `weft_request_duration_seconds` (every request, both directions, by protocol) is kept
    /// per loop too, so it carries exemplars: an inbound request's SERVER span, which the
    /// route histograms (outbound only) never see.
    func testTheDirectionHistogramsCarryExemplars() throws {
        var random = LoopRandom(seed: 2)
        let span = try XCTUnwrap(
            ExchangeSpan.start(incoming: nil, sampler: TraceSampler(ratio: 1), random: &random, at: 1))
        let loop = LoopContext(eventLoop: EmbeddedEventLoop(), discoveryTimeout: .seconds(1))
        loop.requestLatency(.inbound, .grpc).record(nanoseconds: 2_000_000, span: span)
        loop.requestLatency(.outbound, .http1).record(nanoseconds: 2_000_000)
        let series = loop.latencySeries().requests
        XCTAssertEqual(series.count, 6, "every direction and protocol, counted or not")
        let text = LatencyExposition.render(name: "h", help: "x", series: series, exemplars: true)
        let marked = text.split(separator: "\n").filter { $0.contains(" # {") }
        XCTAssertEqual(marked.count, 1, text)
        XCTAssertTrue(
            marked[0].hasPrefix(
                "h_bucket{direction=\"inbound\",protocol=\"grpc\",le=\"0.002\"} 1 # {trace_id=\"\(span.traceID)\","),
            String(marked[0]))
        XCTAssertTrue(text.contains("h_count{direction=\"outbound\",protocol=\"http1\"} 1\n"), text)
        XCTAssertTrue(text.contains("h_count{direction=\"outbound\",protocol=\"http2\"} 0\n"), text)
    }
}
