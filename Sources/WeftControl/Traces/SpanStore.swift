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
///   fixed cost per fragment, per span and per trace for its slot and fields). Past the
///   limit, the oldest traces (by first arrival) go first; a trace that grows larger than
///   the whole limit is dropped, rather than every other trace evicted for it.
/// - **Index**: each trace keeps what its summary needs (services, root span, start, end,
///   span count, error) as spans arrive; listing filters and orders the traces, and makes
///   summaries for those it returns.
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
        /// The root span's name and service: the latest span without a parent, or until one
        /// arrives, the trace's first span.
        public var rootName: String?
        public var rootService: String?
        public var services: [String]
        public var startTimeUnixNano: UInt64
        public var durationNanos: UInt64
        public var spanCount: Int
        /// Any span's status is ERROR.
        public var error: Bool
    }

    /// A kept trace. Most traces the sidecars send come as one span per export (a request's
    /// CLIENT and SERVER spans come from two sidecars), so its first two fragments and
    /// services are held inline, and arrays for more are made only when more come: a
    /// request's trace costs its two fragments and itself, not nine allocations.
    ///
    /// A class, so the traces' dictionary holds a pointer a trace: its slots stay small
    /// (a probe, a deletion's shift and a resize move 8 bytes, not 176), and a trace is
    /// changed where it is. Only touched under the store's lock.
    final class Trace {
        /// Encoded `ResourceSpans`, one per export that carried spans of this trace.
        var fragment: [UInt8] = []
        var secondFragment: [UInt8] = []
        var moreFragments: [[UInt8]] = []
        var bytes = 0
        /// Its entry in the store's first-arrival order.
        var serial: UInt64 = 0
        var start: UInt64 = .max
        var end: UInt64 = 0
        var spanCount = 0
        var error = false
        /// The root span's name and service: the latest span without a parent, or until
        /// one arrives, the first span.
        var rootName: String?
        var rootService: String?
        var service: String?
        var secondService: String?
        var moreServices: [String] = []

        var fragments: [[UInt8]] {
            [fragment] + (secondFragment.isEmpty ? [] : [secondFragment]) + moreFragments
        }

        var services: [String] { [service, secondService].compactMap { $0 } + moreServices }

        func has(service name: String) -> Bool {
            service == name || secondService == name || moreServices.contains(name)
        }

        func summary(_ key: TraceKey) -> Summary {
            Summary(
                traceId: key.hex, rootName: rootName, rootService: rootService, services: services,
                startTimeUnixNano: start, durationNanos: end >= start ? end - start : 0, spanCount: spanCount,
                error: error)
        }

        enum Held {
            case added(isNew: Bool)
            /// The piece would take the trace past `limit`: it was not taken, and the trace
            /// is to be dropped.
            case tooLarge
        }

        /// Takes the piece unless the trace would then be charged more than `limit`.
        func take(_ piece: Piece, notes: ArraySlice<SpanNote>, names: [String], limit: Int) -> Held {
            let isNew = bytes == 0
            guard bytes + piece.cost <= limit else { return .tooLarge }
            take(piece, notes: notes, names: names)
            return .added(isNew: isNew)
        }

        /// Takes an export's fragment of this trace and notes its spans.
        /// - Parameter names: the export's span names (`SpanNote.name` indexes them).
        func take(_ piece: Piece, notes: ArraySlice<SpanNote>, names: [String]) {
            if bytes == 0 {
                fragment = piece.fragment
            } else {
                if secondFragment.isEmpty {
                    secondFragment = piece.fragment
                } else {
                    moreFragments.append(piece.fragment)
                }
            }
            bytes += piece.cost
            if let name = piece.service, !has(service: name) {
                if service == nil {
                    service = name
                } else if secondService == nil {
                    secondService = name
                } else {
                    moreServices.append(name)
                }
            }
            for span in notes {
                spanCount += 1
                start = min(start, span.start)
                end = max(end, span.end)
                if span.isError { error = true }
                if span.parent == nil || rootName == nil {
                    rootName = span.name >= 0 ? names[Int(span.name)] : ""
                    rootService = piece.service
                }
            }
        }
    }

    private struct State {
        var traces: [TraceKey: Trace] = [:]
        /// First-arrival order, oldest at `head`; evicted keys are skipped.
        /// A trace dropped for its size leaves its entry: if its id comes again, the new trace
        /// has a serial of its own, and the old entry does not evict it.
        var order: [(key: TraceKey, serial: UInt64)] = []
        var head = 0
        var serial: UInt64 = 0
        var bytes = 0
        var evicted = 0
    }

    /// Fixed costs beyond the encoded bytes, charged generously: an allocation's header and
    /// slack per fragment, per span, and a trace's dictionary slot, summary and order entry.
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

    /// What the summary needs of a span (no reference: copied as it is grouped).
    struct SpanNote {
        let id: UInt64
        let parent: UInt64?
        /// Index of its name among the export's names; -1: none.
        let name: Int32
        let start: UInt64
        let end: UInt64
        let isError: Bool
    }

    /// One resource's spans of one trace, from one export: its fragment, what it is
    /// charged, and where its spans' notes are.
    struct Piece {
        let key: TraceKey
        let fragment: [UInt8]
        let cost: Int
        let service: String?
        let notes: Range<Int>
    }

    /// Adds an export's spans, grouped by trace; spans without a valid trace or span id
    /// (16 and 8 bytes, not all zero) are rejected and counted. Each export's spans of a
    /// trace are kept as one fragment, made of slices of the export (`OTLPWire.fragment`).
    @discardableResult
    func add(_ wire: OTLPWire) -> Outcome {
        var outcome = Outcome()
        let bytes = wire.bytes
        // Split each ResourceSpans by trace, outside the lock, into flat arrays: a dictionary
        // of arrays per trace cost more than the rest of the intake.
        var pieces: [Piece] = []
        var notes: [SpanNote] = []
        // Span names, one string per distinct name in the export (notes hold indices).
        var nameIndex: [ArraySlice<UInt8>: Int32] = [:]
        var names: [String] = []
        var lastName: (range: Range<Int>, index: Int32)?
        var members: [(scope: Int, span: Int)] = []
        for resource in wire.resources {
            let service = resource.serviceName.map { String(decoding: bytes[$0], as: UTF8.self) }
            // The resource's spans in order, each trace's chained (`next`) from its first.
            let spanCount = resource.scopes.reduce(0) { $0 + $1.spans.count }
            var entries: [(key: TraceKey, scope: Int, span: Int, note: SpanNote)] = []
            entries.reserveCapacity(spanCount)
            var next: [Int] = []
            next.reserveCapacity(spanCount)
            var groups: [(first: Int, last: Int)] = []
            var groupOf: [TraceKey: Int] = [:]
            groupOf.reserveCapacity(spanCount)
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
                    var name: Int32 = -1
                    if let range = span.name {
                        let slice = bytes[range]
                        // Spans in a row mostly share their name: compared before it is hashed.
                        if let last = lastName, bytes[last.range].elementsEqual(slice) {
                            name = last.index
                        } else if let known = nameIndex[slice] {
                            name = known
                        } else {
                            name = Int32(names.count)
                            nameIndex[slice] = name
                            names.append(String(decoding: slice, as: UTF8.self))
                        }
                        lastName = (range, name)
                    }
                    let note = SpanNote(
                        id: Self.id64(bytes[spanID]), parent: parent, name: name, start: span.start, end: span.end,
                        isError: span.isError)
                    let index = entries.count
                    entries.append((key, scopeIndex, spanIndex, note))
                    next.append(-1)
                    if let group = groupOf[key] {
                        next[groups[group].last] = index
                        groups[group].last = index
                    } else {
                        groupOf[key] = groups.count
                        groups.append((index, index))
                    }
                    outcome.accepted += 1
                }
            }
            for group in groups {
                members.removeAll(keepingCapacity: true)
                let first = notes.count
                var index = group.first
                while index >= 0 {
                    members.append((entries[index].scope, entries[index].span))
                    notes.append(entries[index].note)
                    index = next[index]
                }
                let fragment = wire.fragment(resource, members: members)
                let cost = fragment.count + Self.perFragmentBytes + members.count * Self.perSpanBytes
                pieces.append(
                    Piece(
                        key: entries[group.first].key, fragment: fragment, cost: cost, service: service,
                        notes: first..<notes.count))
            }
        }
        state.withLock { state in
            // Traces of this export found larger than the whole limit: their other pieces go too.
            var refused: Set<TraceKey> = []
            for piece in pieces {
                if !refused.isEmpty && refused.contains(piece.key) { continue }
                // One lookup: the trace, made empty for a new key.
                let trace = Self.slot(&state.traces[piece.key, default: Trace()])
                switch trace.take(piece, notes: notes[piece.notes], names: names, limit: limit - Self.perTraceBytes) {
                case .added(let isNew):
                    state.bytes += piece.cost + (isNew ? Self.perTraceBytes : 0)
                    if isNew {
                        state.serial += 1
                        trace.serial = state.serial
                        state.order.append((piece.key, state.serial))
                    }
                case .tooLarge:
                    // A trace made for this piece holds nothing and was never charged.
                    if let dropped = state.traces.removeValue(forKey: piece.key), dropped.bytes > 0 {
                        state.bytes -= dropped.bytes + Self.perTraceBytes
                    }
                    refused.insert(piece.key)
                }
            }
            Self.evict(&state, limit: limit)
        }
        return outcome
    }

    /// The trace an inout dictionary access yields: `slot(&traces[key, default: Trace()])`
    /// finds or inserts with one lookup (a method called on a class through the subscript
    /// would only read it).
    private static func slot(_ trace: inout Trace) -> Trace { trace }

    private static func id64(_ id: ArraySlice<UInt8>) -> UInt64 {
        id.prefix(8).reduce(0) { $0 << 8 | UInt64($1) }
    }

    private static func evict(_ state: inout State, limit: Int) {
        while state.bytes > limit, state.head < state.order.count {
            let (key, serial) = state.order[state.head]
            state.head += 1
            if let index = state.traces.index(forKey: key), state.traces.values[index].serial == serial {
                let trace = state.traces.remove(at: index).value
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
        // Filtered by what the traces hold, under the lock; ordered outside it (the intake
        // waits on the lock); summaries made for those returned (a trace evicted between
        // the two is left out).
        var matches: [(key: TraceKey, start: UInt64, duration: UInt64)] = state.withLock { state in
            var matches: [(key: TraceKey, start: UInt64, duration: UInt64)] = []
            for (key, trace) in state.traces {
                let duration = trace.end >= trace.start ? trace.end - trace.start : 0
                guard service.map({ trace.has(service: $0) }) ?? true, duration >= minDurationNanos,
                    status == nil || (status == "error") == trace.error
                else { continue }
                matches.append((key, trace.start, duration))
            }
            return matches
        }
        switch order {
        case .recent: matches.sort { $0.start > $1.start }
        case .slowest: matches.sort { $0.duration > $1.duration }
        }
        let chosen = matches.prefix(max(0, limit)).map(\.key)
        return state.withLock { state in chosen.compactMap { state.traces[$0]?.summary($0) } }
    }

    /// What the store holds: traces, charged bytes, traces evicted so far.
    var usage: (traces: Int, bytes: Int, evicted: Int) {
        state.withLock { ($0.traces.count, $0.bytes, $0.evicted) }
    }
}
