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
/// (`appendSpan`), into a batch; `exportRequest` wraps a batch in the request. A span is
/// measured first (`Size`) and then written once, front to back, into space reserved at
/// the batch's end: protobuf puts each message's length before it, and measuring first
/// spares moving bytes to insert lengths (which cost more than the rest of a span's
/// encoding).
public enum OTLPSpanWriter {
    /// Appends `span` to `batch` as field 2 (`spans`) of a `ScopeSpans` message.
    public static func appendSpan(_ span: SpanRecord, to batch: inout [UInt8]) {
        let content = Size.span(span)
        let total = Size.field(content)
        let start = batch.count
        batch.append(contentsOf: repeatElement(0, count: total))
        batch.withUnsafeMutableBufferPointer { buffer in
            var out = Writer(buffer.baseAddress! + start)
            out.tag(2, wire: 2)
            out.varint(UInt64(content))
            out.span(span)
            assert(out.pointer == buffer.baseAddress! + start + total)
        }
    }

    /// An `ExportTraceServiceRequest` of one resource and one scope holding the spans of
    /// `batch` (as `appendSpan` wrote them).
    public static func exportRequest(
        resource: [(String, SpanRecord.Value)], scopeName: String, scopeVersion: String, batch: [UInt8]
    ) -> [UInt8] {
        let resourceContent = resource.reduce(0) { $0 + Size.field(Size.keyValue($1.0, $1.1)) }
        let scopeContent = Size.string(scopeName) + Size.string(scopeVersion)
        let scopeSpansContent = Size.field(scopeContent) + batch.count
        let resourceSpansContent = Size.field(resourceContent) + Size.field(scopeSpansContent)
        let total = Size.field(resourceSpansContent)
        var out = [UInt8](repeating: 0, count: total)
        out.withUnsafeMutableBufferPointer { buffer in
            var w = Writer(buffer.baseAddress!)
            w.tag(1, wire: 2)
            w.varint(UInt64(resourceSpansContent))
            w.tag(1, wire: 2)
            w.varint(UInt64(resourceContent))
            for (key, value) in resource { w.keyValue(1, key, value) }
            w.tag(2, wire: 2)
            w.varint(UInt64(scopeSpansContent))
            w.tag(1, wire: 2)
            w.varint(UInt64(scopeContent))
            w.string(1, scopeName)
            w.string(2, scopeVersion)
            batch.withUnsafeBufferPointer { w.raw(UnsafeRawBufferPointer($0)) }
            assert(w.pointer == buffer.baseAddress! + total)
        }
        return out
    }

    // MARK: - Sizes

    /// Encoded sizes, in bytes. Every field number here is below 16: a tag is one byte.
    enum Size {
        static func varint(_ value: UInt64) -> Int {
            value < 0x80 ? 1 : (70 - value.leadingZeroBitCount) / 7
        }

        /// A length-delimited field (tag, length, content).
        static func field(_ content: Int) -> Int { 1 + varint(UInt64(content)) + content }

        static func string(_ text: String) -> Int { field(text.utf8.count) }

        static func anyValue(_ value: SpanRecord.Value) -> Int {
            switch value {
            case .string(let text): return string(text)
            case .bool: return 2
            case .int(let number): return 1 + varint(UInt64(bitPattern: number))
            }
        }

        static func keyValue(_ key: String, _ value: SpanRecord.Value) -> Int {
            string(key) + field(anyValue(value))
        }

        static func span(_ span: SpanRecord) -> Int {
            var size = field(16) + field(8) + string(span.name) + 2 + 9 + 9
            if let state = span.traceState, !state.isEmpty { size += string(state) }
            if span.parentSpanID != nil { size += field(8) }
            for (key, value) in span.attributes { size += field(keyValue(key, value)) }
            for link in span.links { size += field(self.link(link)) }
            if span.isError { size += field(status(span)) }
            return size
        }

        static func link(_ link: SpanRecord.Link) -> Int {
            link.attributes.reduce(field(16) + field(8)) { $0 + field(keyValue($1.0, $1.1)) }
        }

        static func status(_ span: SpanRecord) -> Int {
            var size = 2  // code
            if let message = span.statusMessage, !message.isEmpty { size += string(message) }
            return size
        }
    }

    // MARK: - Writing

    /// Writes into space already measured and reserved.
    struct Writer {
        private(set) var pointer: UnsafeMutablePointer<UInt8>

        init(_ pointer: UnsafeMutablePointer<UInt8>) { self.pointer = pointer }

        mutating func span(_ span: SpanRecord) {
            bytes(1, span.traceID.bytes)
            bytes(2, span.spanID.bytes)
            if let state = span.traceState, !state.isEmpty { string(3, state) }
            if let parent = span.parentSpanID { bytes(4, parent.bytes) }
            string(5, span.name)
            tag(6, wire: 0)
            varint(UInt64(span.kind.rawValue))
            fixed64(7, span.startUnixNano)
            fixed64(8, span.endUnixNano)
            for (key, value) in span.attributes { keyValue(9, key, value) }
            for link in span.links {
                tag(13, wire: 2)
                varint(UInt64(Size.link(link)))
                bytes(1, link.traceID.bytes)
                bytes(2, link.spanID.bytes)
                for (key, value) in link.attributes { keyValue(4, key, value) }
            }
            if span.isError {
                tag(15, wire: 2)
                varint(UInt64(Size.status(span)))
                if let message = span.statusMessage, !message.isEmpty { string(2, message) }
                tag(3, wire: 0)
                byte(2)  // STATUS_CODE_ERROR
            }
        }

        mutating func keyValue(_ field: UInt8, _ key: String, _ value: SpanRecord.Value) {
            tag(field, wire: 2)
            varint(UInt64(Size.keyValue(key, value)))
            string(1, key)
            tag(2, wire: 2)
            varint(UInt64(Size.anyValue(value)))
            switch value {
            case .string(let text):
                string(1, text)
            case .bool(let flag):
                tag(2, wire: 0)
                byte(flag ? 1 : 0)
            case .int(let number):
                tag(3, wire: 0)
                varint(UInt64(bitPattern: number))
            }
        }

        mutating func string(_ field: UInt8, _ text: String) {
            tag(field, wire: 2)
            varint(UInt64(text.utf8.count))
            var text = text
            text.withUTF8 { raw(UnsafeRawBufferPointer($0)) }
        }

        mutating func bytes(_ field: UInt8, _ id: SpanID.Bytes) {
            tag(field, wire: 2)
            byte(8)
            withUnsafeBytes(of: id) { raw($0) }
        }

        mutating func bytes(_ field: UInt8, _ id: TraceID.Bytes) {
            tag(field, wire: 2)
            byte(16)
            withUnsafeBytes(of: id) { raw($0) }
        }

        mutating func fixed64(_ field: UInt8, _ value: UInt64) {
            tag(field, wire: 1)
            withUnsafeBytes(of: value.littleEndian) { raw($0) }
        }

        mutating func raw(_ bytes: UnsafeRawBufferPointer) {
            guard let base = bytes.baseAddress, bytes.count > 0 else { return }
            UnsafeMutableRawPointer(pointer).copyMemory(from: base, byteCount: bytes.count)
            pointer += bytes.count
        }

        mutating func tag(_ field: UInt8, wire: UInt8) { byte(field << 3 | wire) }

        mutating func byte(_ value: UInt8) {
            pointer.pointee = value
            pointer += 1
        }

        mutating func varint(_ value: UInt64) {
            var value = value
            while value >= 0x80 {
                byte(UInt8(truncatingIfNeeded: value) | 0x80)
                value >>= 7
            }
            byte(UInt8(value))
        }
    }
}
