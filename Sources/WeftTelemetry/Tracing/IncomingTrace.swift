import W3CTraceContext

/// The trace context a request arrived with, in whichever format it came (issue 12):
/// W3C `traceparent`/`tracestate` (parsed by swift-w3c-trace-context), or B3, single
/// header (`b3`) or multi header (`X-B3-TraceId`, `X-B3-SpanId`, `X-B3-Sampled`,
/// `X-B3-Flags`). A request carrying none starts a trace.
///
/// When several are present W3C wins, then B3 single, then B3 multi (what OpenTelemetry's
/// composite propagators do). A malformed context is ignored as if absent: the request
/// then starts a trace of its own, and is never refused for it.
public struct IncomingTrace: Sendable, Equatable {
    public enum Format: String, Sendable {
        case w3c
        case b3Single = "b3"
        case b3Multi = "b3multi"
    }

    public let traceID: TraceID
    /// The caller's span: the parent of the span this hop records.
    public let parentSpanID: SpanID
    /// The caller's decision: true (sampled), false (not), nil (none: B3 may defer it).
    public let sampled: Bool?
    /// W3C `tracestate`, passed on untouched (nil when absent or empty).
    public let traceState: String?
    public let format: Format

    public init(traceID: TraceID, parentSpanID: SpanID, sampled: Bool?, traceState: String?, format: Format) {
        self.traceID = traceID
        self.parentSpanID = parentSpanID
        self.sampled = sampled
        self.traceState = traceState
        self.format = format
    }

    /// Reads the context from a request's fields; `field` returns a field's value by its
    /// lowercase name (the first, for a repeated field), or nil.
    public static func extract(_ field: (String) -> String?) -> IncomingTrace? {
        if let parent = field("traceparent"), let trace = w3c(parent, state: field("tracestate")) {
            return trace
        }
        if let single = field("b3"), let trace = b3Single(single) {
            return trace
        }
        if let traceID = field("x-b3-traceid"), let spanID = field("x-b3-spanid") {
            return b3Multi(
                traceID: traceID, spanID: spanID, sampled: field("x-b3-sampled"), flags: field("x-b3-flags"))
        }
        return nil
    }

    /// `traceparent`. Version 00 is exactly 55 characters; a later version (not `ff`) is
    /// read by its first 55 as if it were 00, when what follows starts with `-` (W3C Trace
    /// Context, "Versioning of traceparent").
    public static func w3c(_ parent: String, state: String?) -> IncomingTrace? {
        var value = parent.trimmingSpaces()
        let utf8 = Array(value.utf8)
        guard utf8.count >= 55 else { return nil }
        let isVersion00 = utf8[0] == 0x30 && utf8[1] == 0x30
        if isVersion00 {
            guard utf8.count == 55 else { return nil }
        } else {
            guard !(utf8[0] == 0x66 && utf8[1] == 0x66), utf8.count == 55 || utf8[55] == 0x2D else { return nil }
            value = String(decoding: [0x30, 0x30] + utf8[2..<55], as: UTF8.self)
        }
        guard let context = try? TraceContext(traceParentHeaderValue: value, traceStateHeaderValue: nil) else {
            return nil
        }
        let trimmedState = state?.trimmingSpaces()
        return IncomingTrace(
            traceID: context.traceID, parentSpanID: context.spanID, sampled: context.flags.contains(.sampled),
            traceState: trimmedState?.isEmpty == false ? trimmedState : nil, format: .w3c)
    }

    /// `b3: {TraceId}-{SpanId}[-{SamplingState}[-{ParentSpanId}]]`. A bare sampling state
    /// (`b3: 0`, `b3: 1`, `b3: d`) carries no ids: it is not a context to continue.
    public static func b3Single(_ value: String) -> IncomingTrace? {
        let parts = value.trimmingSpaces().split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count >= 2, parts.count <= 4 else { return nil }
        var sampled: Bool?
        if parts.count >= 3 {
            switch parts[2] {
            case "1", "d": sampled = true
            case "0": sampled = false
            default: return nil
            }
        }
        if parts.count == 4 { guard spanID(parts[3]) != nil else { return nil } }
        guard let trace = traceID(parts[0]), let span = spanID(parts[1]) else { return nil }
        return IncomingTrace(traceID: trace, parentSpanID: span, sampled: sampled, traceState: nil, format: .b3Single)
    }

    /// `X-B3-TraceId` (16 or 32 hex digits), `X-B3-SpanId`, `X-B3-Sampled` (`1`/`0`, or
    /// `true`/`false` from old tracers) and `X-B3-Flags: 1` (debug: sampled).
    public static func b3Multi(traceID trace: String, spanID span: String, sampled: String?, flags: String?)
        -> IncomingTrace?
    {
        guard let traceID = traceID(Substring(trace.trimmingSpaces())),
            let spanID = spanID(Substring(span.trimmingSpaces()))
        else { return nil }
        var decision: Bool?
        switch sampled?.trimmingSpaces().lowercased() {
        case "1", "true": decision = true
        case "0", "false": decision = false
        case nil: decision = nil
        default: return nil
        }
        if flags?.trimmingSpaces() == "1" { decision = true }
        return IncomingTrace(
            traceID: traceID, parentSpanID: spanID, sampled: decision, traceState: nil, format: .b3Multi)
    }

    /// A B3 trace id: 32 hex digits, or 16 (a 64-bit id, left-padded with zeros); not all zero.
    static func traceID(_ text: Substring) -> TraceID? {
        guard text.utf8.count == 32 || text.utf8.count == 16, let bytes = Hex.bytes(text) else { return nil }
        let padded = [UInt8](repeating: 0, count: 16 - bytes.count) + bytes
        guard padded.contains(where: { $0 != 0 }) else { return nil }
        return TraceID(
            bytes: (
                padded[0], padded[1], padded[2], padded[3], padded[4], padded[5], padded[6], padded[7],
                padded[8], padded[9], padded[10], padded[11], padded[12], padded[13], padded[14], padded[15]
            ))
    }

    /// A span id: 16 hex digits, not all zero.
    static func spanID(_ text: Substring) -> SpanID? {
        guard text.utf8.count == 16, let b = Hex.bytes(text), b.contains(where: { $0 != 0 }) else { return nil }
        return SpanID(bytes: (b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]))
    }
}

extension String {
    /// Without leading and trailing spaces and tabs (optional whitespace around a field value).
    fileprivate func trimmingSpaces() -> String {
        let utf8 = self.utf8
        // Values come trimmed from the proxies' parsers: no new string then.
        if let first = utf8.first, let last = utf8.last, first != 0x20, first != 0x09, last != 0x20, last != 0x09 {
            return self
        }
        guard let start = utf8.firstIndex(where: { $0 != 0x20 && $0 != 0x09 }) else { return "" }
        let end = utf8.lastIndex(where: { $0 != 0x20 && $0 != 0x09 })!
        return String(self[start...end])
    }
}
