import NIOCore
import W3CTraceContext
import WeftTelemetry

/// The per-route metrics of one (route, rule, backend) on one event loop: requests by
/// status class (registry counters, shared by every loop: the registry hands each the same
/// handles) and latency (`LatencyCounts`, this loop's own). Labels come from the config
/// (route `namespace/name`, the rule's name or index, the backend Service
/// `namespace/name:port`), never from a request, so the label set is bounded by the config.
/// Made when a loop installs a snapshot naming new labels, not per request.
final class RouteMetrics {
    let labels: RouteMetricLabels
    private let requests: [Counter]  // by status class
    let latency = LatencyCounts()

    init(registry: PrometheusCollectorRegistry, labels: RouteMetricLabels) {
        self.labels = labels
        let requestName = MetricNameDescriptor(
            metricName: "weft_route_requests", unitName: "total",
            helpText: "Outbound requests by HTTPRoute, rule and backend, and response status class.")
        requests = Telemetry.StatusClass.allCases.map { status in
            registry.makeCounter(
                descriptor: requestName, labels: labels.prometheus + [("status_class", status.label)])
        }
    }

    func record(status: Int, nanoseconds: UInt64, span: ExchangeSpan? = nil) {
        requests[Telemetry.statusClass(status).rawValue - 1].increment()
        latency.record(nanoseconds: nanoseconds, span: span)
    }
}

/// A route metric's labels, fixed when the snapshot is compiled. A Service port without
/// an HTTPRoute has route and rule "".
struct RouteMetricLabels: Sendable, Hashable {
    let route: String
    let rule: String
    let backend: String

    var prometheus: [(String, String)] {
        [("direction", "outbound"), ("route", route), ("rule", rule), ("backend", backend)]
    }
}

/// A latency histogram kept by one event loop, with no lock: the loop counts its requests
/// into memory of its own, and `/metrics` collects every loop's counts on that loop (as
/// `/debug/endpoints` does) and writes their sum (`LatencyExposition`).
///
/// swift-prometheus' Histogram takes a lock and compares every one of its 15 `Duration`
/// (128-bit) bounds per record, ~600 instructions a request; this compares 64-bit
/// nanoseconds up to the first bound that holds, ~30.
final class LatencyCounts {
    /// `Telemetry.latencyBuckets` in nanoseconds.
    static let bounds: [UInt64] = Telemetry.latencyBuckets.map { bound in
        let (seconds, attoseconds) = bound.components
        return UInt64(seconds) * 1_000_000_000 + UInt64(attoseconds / 1_000_000_000)
    }

    /// Requests per bucket, not cumulative: `counts[i]` took more than `bounds[i - 1]` and at
    /// most `bounds[i]`; the last counts those above every bound.
    private let counts: UnsafeMutableBufferPointer<UInt64>
    private let bounds: UnsafeMutableBufferPointer<UInt64>
    private(set) var sum: UInt64 = 0
    private(set) var count: UInt64 = 0

    init() {
        let n = Self.bounds.count
        counts = .allocate(capacity: n + 1)
        counts.initialize(repeating: 0)
        bounds = .allocate(capacity: n)
        _ = bounds.initialize(from: Self.bounds)
    }

    deinit {
        counts.deallocate()
        bounds.deallocate()
    }

    /// Counts a request; a sampled span's request becomes its bucket's exemplar.
    func record(nanoseconds: UInt64, span: ExchangeSpan? = nil) {
        let index = bucket(of: nanoseconds)
        counts[index] &+= 1
        sum &+= nanoseconds
        count &+= 1
        if let span, span.isSampled { keepExemplar(span, nanoseconds: nanoseconds, bucket: index) }
    }

    @inline(__always)
    private func bucket(of nanoseconds: UInt64) -> Int {
        var index = 0
        while index < bounds.count && nanoseconds > bounds[index] { index += 1 }
        return index
    }

    /// The last traced request of each bucket (OpenMetrics exemplars: a slow bucket links to
    /// a trace). Made on the first traced request.
    private(set) var exemplars: [Exemplar?] = []

    /// Ids kept as they are: written as hex only when `/metrics` is asked for OpenMetrics
    /// (formatting them per traced request cost about 2,500 instructions).
    struct Exemplar: Sendable {
        let traceID: TraceID
        let spanID: SpanID
        let nanoseconds: UInt64
        /// When it was recorded, Unix nanoseconds.
        let unixNano: UInt64
    }

    private func keepExemplar(_ span: ExchangeSpan, nanoseconds: UInt64, bucket: Int) {
        if exemplars.isEmpty { exemplars = Array(repeating: nil, count: counts.count) }
        exemplars[bucket] = Exemplar(
            traceID: span.traceID, spanID: span.spanID, nanoseconds: nanoseconds,
            unixNano: span.startUnixNano &+ nanoseconds)
    }

    /// The counts now, cumulative as Prometheus writes them (the last is `count`).
    var cumulative: [UInt64] {
        var running: UInt64 = 0
        return counts.map { value in
            running &+= value
            return running
        }
    }
}

/// Writes loop-kept latency histograms in the Prometheus text format, summed over loops.
enum LatencyExposition {
    struct Series: Sendable {
        var labels: [(String, String)]
        /// Cumulative, one per bound and the last for +Inf.
        var buckets: [UInt64]
        var sumNanoseconds: UInt64
        /// Per bucket (empty: none kept).
        var exemplars: [LatencyCounts.Exemplar?] = []
    }

    /// Adds series with equal labels (one per loop) together, in the order first seen.
    static func merged(_ series: [Series]) -> [Series] {
        var order: [String] = []
        var byKey: [String: Series] = [:]
        for one in series {
            let key = one.labels.map { "\($0.0)=\($0.1)" }.joined(separator: "\u{0}")
            if var existing = byKey[key] {
                for i in existing.buckets.indices where i < one.buckets.count { existing.buckets[i] &+= one.buckets[i] }
                existing.sumNanoseconds &+= one.sumNanoseconds
                // Per bucket, the most recent of the loops' exemplars.
                if existing.exemplars.isEmpty {
                    existing.exemplars = one.exemplars
                } else {
                    for (i, exemplar) in one.exemplars.enumerated() where i < existing.exemplars.count {
                        if let exemplar, exemplar.unixNano > existing.exemplars[i]?.unixNano ?? 0 {
                            existing.exemplars[i] = exemplar
                        }
                    }
                }
                byKey[key] = existing
            } else {
                order.append(key)
                byKey[key] = one
            }
        }
        return order.map { byKey[$0]! }
    }

    /// - Parameter exemplars: OpenMetrics: each bucket's exemplar, when kept, follows its
    ///   count (`# {trace_id="…",span_id="…"} seconds timestamp`).
    static func render(name: String, help: String, series: [Series], exemplars: Bool = false) -> String {
        guard !series.isEmpty else { return "" }
        var out = "# HELP \(name) \(help)\n# TYPE \(name) histogram\n"
        let bounds = Telemetry.latencyBuckets.map(\.bucketRepresentation) + ["+Inf"]
        for one in merged(series) {
            let labels = one.labels.map { "\($0.0)=\"\(escaped($0.1))\"" }.joined(separator: ",")
            for (index, (bound, count)) in zip(bounds, one.buckets).enumerated() {
                out += "\(name)_bucket{\(labels),le=\"\(bound)\"} \(count)"
                if exemplars, index < one.exemplars.count, let exemplar = one.exemplars[index] {
                    let value = Duration.nanoseconds(Int64(clamping: exemplar.nanoseconds)).bucketRepresentation
                    let seconds = exemplar.unixNano / 1_000_000_000
                    let millis = (exemplar.unixNano / 1_000_000) % 1000
                    let fraction = String(millis + 1000).dropFirst()
                    out +=
                        " # {trace_id=\"\(exemplar.traceID)\",span_id=\"\(exemplar.spanID)\"} \(value) \(seconds).\(fraction)"
                }
                out += "\n"
            }
            let sum = Duration.nanoseconds(Int64(clamping: one.sumNanoseconds)).bucketRepresentation
            out += "\(name)_sum{\(labels)} \(sum)\n"
            out += "\(name)_count{\(labels)} \(one.buckets.last ?? 0)\n"
        }
        return out
    }

    /// A label value as the text format wants it: backslash, quote and newline escaped.
    static func escaped(_ value: String) -> String {
        var out = ""
        for character in value {
            switch character {
            case "\\": out += "\\\\"
            case "\"": out += "\\\""
            case "\n": out += "\\n"
            default: out.append(character)
            }
        }
        return out
    }
}

extension LatencyExposition.Series {
    init(labels: [(String, String)], _ latency: LatencyCounts) {
        self.init(
            labels: labels, buckets: latency.cumulative, sumNanoseconds: latency.sum, exemplars: latency.exemplars)
    }
}

extension LoopContext {
    /// This loop's latency counts, for `/metrics`: per route, and per direction and protocol.
    func latencySeries() -> (routes: [LatencyExposition.Series], requests: [LatencyExposition.Series]) {
        let routes = allRouteMetrics.map { LatencyExposition.Series(labels: $0.labels.prometheus, $0.latency) }
        var requests: [LatencyExposition.Series] = []
        for direction in [TrafficDirection.outbound, .inbound] {
            for proto in RequestProtocol.allCases {
                requests.append(
                    LatencyExposition.Series(
                        labels: [("direction", direction.rawValue), ("protocol", proto.rawValue)],
                        requestLatency(direction, proto)))
            }
        }
        return (routes, requests)
    }

    /// `weft_request_duration_seconds` and `weft_route_request_duration_seconds`, collected
    /// from every loop of `pools` and summed; with exemplars for OpenMetrics.
    static func latencyText(
        pools: UpstreamPools, group: EventLoopGroup, on loop: EventLoop, exemplars: Bool = false
    ) -> EventLoopFuture<String> {
        let parts = group.makeIterator().map { member in
            let context = pools.pools(for: member).mesh
            return member.submit { context.latencySeries() }
        }
        return EventLoopFuture.whenAllSucceed(parts, on: loop).map { loops in
            LatencyExposition.render(
                name: "weft_request_duration_seconds", help: "Time from a request's head to the end of its response.",
                series: loops.flatMap(\.requests), exemplars: exemplars)
                + LatencyExposition.render(
                    name: "weft_route_request_duration_seconds",
                    help:
                        "Time from an outbound request's head to the end of its response, by route, rule and backend.",
                    series: loops.flatMap(\.routes), exemplars: exemplars)
        }
    }
}

@available(*, unavailable)
extension RouteMetrics: Sendable {}

@available(*, unavailable)
extension LatencyCounts: Sendable {}
