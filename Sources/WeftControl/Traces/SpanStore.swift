import Synchronization
import WeftOTLP
import WeftTelemetry

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// Recent traces, kept in memory the control plane bounds (`--trace-memory`), for the
/// trace API and `weftctl trace` (issue 12).
///
/// - Spans are grouped by trace id as they arrive, from sidecars and from apps alike;
///   each export's spans of one trace are kept with their resource.
/// - **Kept encoded**: a trace holds its fragments as protobuf bytes (decoded again only
///   when read): decoded SwiftProtobuf spans took about 1.7 KB each (8 attributes), the
///   encoded form a fifth of that (bench/trace-intake.sh).
/// - **Bounded**: every kept trace is charged what it holds (its fragments' bytes, plus a
///   fixed cost per fragment, per span and per trace for the arrays, sets and summary).
///   Past the limit, the oldest traces (by first arrival) go first; a trace larger than
///   the whole limit is not kept.
/// - **Index**: each trace keeps a summary (services, root span, start, duration, span
///   count, error) updated as spans arrive; listing filters and sorts the summaries.
public final class SpanStore: Sendable {
    /// A trace id as two integers (cheap to hash).
    struct TraceKey: Hashable, Sendable {
        let high: UInt64
        let low: UInt64

        init?(_ id: some Collection<UInt8>) {
            guard id.count == 16, id.contains(where: { $0 != 0 }) else { return nil }
            var high: UInt64 = 0
            var low: UInt64 = 0
            for (index, byte) in id.enumerated() {
                if index < 8 { high = high << 8 | UInt64(byte) } else { low = low << 8 | UInt64(byte) }
            }
            self.high = high
            self.low = low
        }

        init?(hex: String) {
            guard hex.utf8.count == 32, let bytes = Hex.bytes(hex) else { return nil }
            self.init(bytes)
        }

        var hex: String {
            Hex.text(
                withUnsafeBytes(of: high.bigEndian) { Array($0) } + withUnsafeBytes(of: low.bigEndian) { Array($0) })
        }
    }

    /// What the list shows of a trace.
    public struct Summary: Sendable, Encodable, Equatable {
        public var traceId: String
        /// The root span's name and service (the span whose parent is not in the trace).
        public var rootName: String?
        public var rootService: String?
        public var services: [String]
        public var startTimeUnixNano: UInt64
        public var durationNanos: UInt64
        public var spanCount: Int
        /// Any span's status is ERROR.
        public var error: Bool
    }

    struct Trace {
        /// Encoded `ResourceSpans`, one per export that carried spans of this trace.
        var fragments: [[UInt8]] = []
        var bytes = 0
        var summary: Summary
        /// The trace's span ids, to find its root.
        var spanIDs: Set<UInt64> = []
    }

    private struct State {
        var traces: [TraceKey: Trace] = [:]
        /// First-arrival order, oldest at `head`; evicted keys are skipped.
        var order: [TraceKey] = []
        var head = 0
        var bytes = 0
        var evicted = 0
    }

    /// Fixed costs beyond the encoded bytes: an array's header and allocation, a span id
    /// in the set, a trace's dictionary slot, summary and order entry.
    static let perFragmentBytes = 64
    static let perSpanBytes = 48
    static let perTraceBytes = 512

    public let limit: Int
    private let state = Mutex(State())

    /// - Parameter limit: the bytes all kept traces may be charged, e.g. 64 MB.
    public init(limit: Int) {
        self.limit = limit
    }

    /// What an export added: spans kept, and spans rejected with the first reason.
    struct Outcome: Equatable {
        var accepted = 0
        var rejected = 0
        var reason = ""
    }

    /// Adds an export's spans (a decoded request: encoded, then read as `OTLPWire`).
    @discardableResult
    func add(_ request: Opentelemetry_Proto_Collector_Trace_V1_ExportTraceServiceRequest) -> Outcome {
        guard let bytes: [UInt8] = try? request.serializedBytes(), let wire = try? OTLPWire(bytes) else {
            return Outcome()
        }
        return add(wire)
    }

    /// What the summary needs of a span.
    private struct SpanNote {
        let id: UInt64
        let parent: UInt64?
        let name: Range<Int>?
        let start: UInt64
        let end: UInt64
        let isError: Bool
    }

    /// Adds an export's spans, grouped by trace; spans without a valid trace or span id
    /// (16 and 8 bytes, not all zero) are rejected and counted. Each export's spans of a
    /// trace are kept as one fragment, made of slices of the export (`OTLPWire.fragment`).
    @discardableResult
    func add(_ wire: OTLPWire) -> Outcome {
        var outcome = Outcome()
        let bytes = wire.bytes
        // Split each ResourceSpans by trace, outside the lock.
        var byTrace: [TraceKey: [(fragment: [UInt8], cost: Int, service: String?, spans: [SpanNote])]] = [:]
        for resource in wire.resources {
            var perTrace: [TraceKey: (notes: [SpanNote], members: [(scope: Int, span: Int)])] = [:]
            for (scopeIndex, scope) in resource.scopes.enumerated() {
                for (spanIndex, span) in scope.spans.enumerated() {
                    guard let traceID = span.traceID, let key = TraceKey(bytes[traceID]), let spanID = span.spanID,
                        spanID.count == 8, bytes[spanID].contains(where: { $0 != 0 })
                    else {
                        outcome.rejected += 1
                        if outcome.reason.isEmpty {
                            let name = span.name.map { String(decoding: bytes[$0], as: UTF8.self) } ?? ""
                            outcome.reason = "span \"\(name)\": traceId must be 16 bytes and spanId 8, not all zero"
                        }
                        continue
                    }
                    let parent = span.parentSpanID.flatMap { $0.isEmpty ? nil : Self.id64(bytes[$0]) }
                    let note = SpanNote(
                        id: Self.id64(bytes[spanID]), parent: parent, name: span.name, start: span.start,
                        end: span.end, isError: span.isError)
                    perTrace[key, default: ([], [])].notes.append(note)
                    perTrace[key]!.members.append((scopeIndex, spanIndex))
                    outcome.accepted += 1
                }
            }
            let service = resource.serviceName.map { String(decoding: bytes[$0], as: UTF8.self) }
            for (key, trace) in perTrace {
                let fragment = wire.fragment(resource, members: trace.members)
                let cost = fragment.count + Self.perFragmentBytes + trace.notes.count * Self.perSpanBytes
                byTrace[key, default: []].append((fragment, cost, service, trace.notes))
            }
        }
        state.withLock { state in
            for (key, fragments) in byTrace {
                let cost = fragments.reduce(0) { $0 + $1.cost }
                if state.traces[key] == nil {
                    guard cost + Self.perTraceBytes <= limit else { continue }
                    state.traces[key] = Trace(
                        summary: Summary(
                            traceId: key.hex, rootName: nil, rootService: nil, services: [], startTimeUnixNano: .max,
                            durationNanos: 0, spanCount: 0, error: false))
                    state.order.append(key)
                    state.bytes += Self.perTraceBytes
                }
                var trace = state.traces[key]!
                for fragment in fragments {
                    Self.note(fragment.spans, service: fragment.service, bytes: bytes, in: &trace)
                    trace.fragments.append(fragment.fragment)
                }
                trace.bytes += cost
                state.traces[key] = trace
                state.bytes += cost
            }
            Self.evict(&state, limit: limit)
        }
        return outcome
    }

    private static func note(_ spans: [SpanNote], service: String?, bytes: [UInt8], in trace: inout Trace) {
        if let service, !trace.summary.services.contains(service) { trace.summary.services.append(service) }
        var end =
            trace.summary.durationNanos == 0 && trace.summary.spanCount == 0
            ? 0 : trace.summary.startTimeUnixNano &+ trace.summary.durationNanos
        for span in spans {
            trace.summary.spanCount += 1
            trace.spanIDs.insert(span.id)
            trace.summary.startTimeUnixNano = min(trace.summary.startTimeUnixNano, span.start)
            end = max(end, span.end)
            if span.isError { trace.summary.error = true }
            // The root: a span without a parent, or, until one arrives, the earliest
            // span whose parent is not (yet) here.
            let isRoot = span.parent == nil
            if isRoot || trace.summary.rootName == nil {
                if isRoot || !trace.spanIDs.contains(span.parent!) {
                    trace.summary.rootName = span.name.map { String(decoding: bytes[$0], as: UTF8.self) } ?? ""
                    trace.summary.rootService = service
                }
            }
        }
        trace.summary.durationNanos = end >= trace.summary.startTimeUnixNano ? end - trace.summary.startTimeUnixNano : 0
    }

    private static func id64(_ id: ArraySlice<UInt8>) -> UInt64 {
        id.prefix(8).reduce(0) { $0 << 8 | UInt64($1) }
    }

    private static func evict(_ state: inout State, limit: Int) {
        while state.bytes > limit, state.head < state.order.count {
            let key = state.order[state.head]
            state.head += 1
            if let trace = state.traces.removeValue(forKey: key) {
                state.bytes -= trace.bytes + perTraceBytes
                state.evicted += 1
            }
        }
        // Drop the evicted prefix once it is half the array.
        if state.head > 1024 && state.head * 2 > state.order.count {
            state.order.removeFirst(state.head)
            state.head = 0
        }
    }

    /// A trace's spans as OTLP `resourceSpans`, or nil when it is not (or no longer) kept.
    func trace(_ hexID: String) -> [Opentelemetry_Proto_Trace_V1_ResourceSpans]? {
        guard let key = TraceKey(hex: hexID.lowercased()),
            let fragments = state.withLock({ $0.traces[key]?.fragments })
        else { return nil }
        return fragments.compactMap { try? Opentelemetry_Proto_Trace_V1_ResourceSpans(serializedBytes: $0) }
    }

    public enum Order: String, Sendable { case recent, slowest }

    /// Summaries, newest first (or slowest first), filtered by service (any span's
    /// resource), minimum duration and status (`error` or `ok`).
    func list(
        service: String? = nil, minDurationNanos: UInt64 = 0, status: String? = nil, order: Order = .recent,
        limit: Int = 20
    ) -> [Summary] {
        var matches: [Summary] = state.withLock { state in
            state.traces.values.map(\.summary).filter { summary in
                (service.map { summary.services.contains($0) } ?? true)
                    && summary.durationNanos >= minDurationNanos
                    && (status == nil || (status == "error") == summary.error)
            }
        }
        switch order {
        case .recent: matches.sort { $0.startTimeUnixNano > $1.startTimeUnixNano }
        case .slowest: matches.sort { $0.durationNanos > $1.durationNanos }
        }
        return Array(matches.prefix(max(0, limit)))
    }

    /// What the store holds: traces, charged bytes, traces evicted so far.
    var usage: (traces: Int, bytes: Int, evicted: Int) {
        state.withLock { ($0.traces.count, $0.bytes, $0.evicted) }
    }
}
