import W3CTraceContext

/// One finished span, as a sidecar records it (issue 12): what OTLP's `Span` message
/// carries, in the few shapes a proxy hop needs. `OTLPSpanWriter` encodes it.
public struct SpanRecord: Sendable {
    /// OTLP `Span.SpanKind`.
    public enum Kind: UInt8, Sendable {
        case `internal` = 1
        case server = 2
        case client = 3
    }

    /// An attribute value: OTLP `AnyValue`'s string, int and bool.
    public enum Value: Sendable, Equatable {
        case string(String)
        case int(Int64)
        case bool(Bool)
    }

    /// A link to another span (OTLP `Span.Link`), with its attributes.
    public struct Link: Sendable {
        public let traceID: TraceID
        public let spanID: SpanID
        public let attributes: [(String, Value)]

        public init(traceID: TraceID, spanID: SpanID, attributes: [(String, Value)]) {
            self.traceID = traceID
            self.spanID = spanID
            self.attributes = attributes
        }
    }

    public var traceID: TraceID
    public var spanID: SpanID
    public var parentSpanID: SpanID?
    /// W3C `tracestate`, as the request carried it.
    public var traceState: String?
    public var name: String
    public var kind: Kind
    public var startUnixNano: UInt64
    public var endUnixNano: UInt64
    public var attributes: [(String, Value)]
    public var links: [Link]
    /// OTLP status ERROR (with `statusMessage`) when true; UNSET otherwise.
    public var isError: Bool
    public var statusMessage: String?

    public init(
        traceID: TraceID, spanID: SpanID, parentSpanID: SpanID?, traceState: String? = nil, name: String, kind: Kind,
        startUnixNano: UInt64, endUnixNano: UInt64, attributes: [(String, Value)] = [], links: [Link] = [],
        isError: Bool = false, statusMessage: String? = nil
    ) {
        self.traceID = traceID
        self.spanID = spanID
        self.parentSpanID = parentSpanID
        self.traceState = traceState
        self.name = name
        self.kind = kind
        self.startUnixNano = startUnixNano
        self.endUnixNano = endUnixNano
        self.attributes = attributes
        self.links = links
        self.isError = isError
        self.statusMessage = statusMessage
    }
}
