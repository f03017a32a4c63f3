import W3CTraceContext

/// Writes OTLP's trace messages (opentelemetry-proto v1.9.0, `ExportTraceServiceRequest`)
/// in protobuf's wire format, for the sidecar's span export.
///
/// Why not SwiftProtobuf and the generated `WeftOTLP` types, as the control plane uses:
/// the sidecar writes one message shape and never reads one, and SwiftProtobuf's runtime
/// with the generated types would add megabytes of code to a sidecar that idles at a few
/// (docs/ARCHITECTURE.md, "Traces in the sidecar"). The unit tests decode what this writes
/// with those generated types, so the two cannot drift apart silently.
///
/// Spans are encoded as they finish, each as a complete `ScopeSpans.spans` field
/// (`appendSpan`), into a batch; `exportRequest` wraps a batch in the request.
public enum OTLPSpanWriter {
    /// Appends `span` to `batch` as field 2 (`spans`) of a `ScopeSpans` message.
    public static func appendSpan(_ span: SpanRecord, to batch: inout [UInt8]) {
        nested(2, in: &batch) { out in
            bytes(1, span.traceID.bytes, in: &out)
            bytes(2, span.spanID.bytes, in: &out)
            if let state = span.traceState, !state.isEmpty { string(3, state, in: &out) }
            if let parent = span.parentSpanID { bytes(4, parent.bytes, in: &out) }
            string(5, span.name, in: &out)
            tag(6, wire: 0, in: &out)
            varint(UInt64(span.kind.rawValue), in: &out)
            fixed64(7, span.startUnixNano, in: &out)
            fixed64(8, span.endUnixNano, in: &out)
            for (key, value) in span.attributes { keyValue(9, key, value, in: &out) }
            for link in span.links {
                nested(13, in: &out) { out in
                    bytes(1, link.traceID.bytes, in: &out)
                    bytes(2, link.spanID.bytes, in: &out)
                    for (key, value) in link.attributes { keyValue(4, key, value, in: &out) }
                }
            }
            if span.isError {
                nested(15, in: &out) { out in
                    if let message = span.statusMessage, !message.isEmpty { string(2, message, in: &out) }
                    tag(3, wire: 0, in: &out)
                    varint(2, in: &out)  // STATUS_CODE_ERROR
                }
            }
        }
    }

    /// An `ExportTraceServiceRequest` of one resource and one scope holding the spans of
    /// `batch` (as `appendSpan` wrote them).
    public static func exportRequest(
        resource: [(String, SpanRecord.Value)], scopeName: String, scopeVersion: String, batch: [UInt8]
    ) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(batch.count + 256)
        nested(1, in: &out) { out in
            nested(1, in: &out) { out in
                for (key, value) in resource { keyValue(1, key, value, in: &out) }
            }
            nested(2, in: &out) { out in
                nested(1, in: &out) { out in
                    string(1, scopeName, in: &out)
                    string(2, scopeVersion, in: &out)
                }
                out.append(contentsOf: batch)
            }
        }
        return out
    }

    // MARK: - Wire format

    private static func keyValue(_ field: UInt32, _ key: String, _ value: SpanRecord.Value, in out: inout [UInt8]) {
        nested(field, in: &out) { out in
            string(1, key, in: &out)
            nested(2, in: &out) { out in
                switch value {
                case .string(let text): string(1, text, in: &out)
                case .bool(let flag):
                    tag(2, wire: 0, in: &out)
                    varint(flag ? 1 : 0, in: &out)
                case .int(let number):
                    tag(3, wire: 0, in: &out)
                    varint(UInt64(bitPattern: number), in: &out)
                }
            }
        }
    }

    /// A length-delimited field whose content `body` writes. The content is written in
    /// place, then its length is inserted before it: messages here are small.
    private static func nested(_ field: UInt32, in out: inout [UInt8], _ body: (inout [UInt8]) -> Void) {
        tag(field, wire: 2, in: &out)
        let start = out.count
        body(&out)
        var length: [UInt8] = []
        varint(UInt64(out.count - start), in: &length)
        out.insert(contentsOf: length, at: start)
    }

    private static func string(_ field: UInt32, _ text: String, in out: inout [UInt8]) {
        tag(field, wire: 2, in: &out)
        varint(UInt64(text.utf8.count), in: &out)
        out.append(contentsOf: text.utf8)
    }

    private static func bytes(
        _ field: UInt32, _ value: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8), in out: inout [UInt8]
    ) {
        tag(field, wire: 2, in: &out)
        out.append(8)
        out.append(contentsOf: [value.0, value.1, value.2, value.3, value.4, value.5, value.6, value.7])
    }

    private static func bytes(
        _ field: UInt32,
        _ v: (
            UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8,
            UInt8
        ),
        in out: inout [UInt8]
    ) {
        tag(field, wire: 2, in: &out)
        out.append(16)
        out.append(contentsOf: [
            v.0, v.1, v.2, v.3, v.4, v.5, v.6, v.7, v.8, v.9, v.10, v.11, v.12, v.13, v.14, v.15,
        ])
    }

    private static func fixed64(_ field: UInt32, _ value: UInt64, in out: inout [UInt8]) {
        tag(field, wire: 1, in: &out)
        for shift in stride(from: 0, to: 64, by: 8) { out.append(UInt8(truncatingIfNeeded: value >> UInt64(shift))) }
    }

    private static func tag(_ field: UInt32, wire: UInt32, in out: inout [UInt8]) {
        varint(UInt64(field << 3 | wire), in: &out)
    }

    private static func varint(_ value: UInt64, in out: inout [UInt8]) {
        var value = value
        while value >= 0x80 {
            out.append(UInt8(truncatingIfNeeded: value) | 0x80)
            value >>= 7
        }
        out.append(UInt8(value))
    }
}
