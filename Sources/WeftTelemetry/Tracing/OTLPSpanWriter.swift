import W3CTraceContext

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

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
/// (`appendSpan`), into a batch; `exportRequest` wraps a batch in the request. Protobuf
/// puts each message's length before it. The sidecar writes a span in one pass into room
/// at the batch's end, leaving three bytes for its length and moving the content back by
/// what the length did not need (`writeOnce`); a span that does not fit its room is
/// measured first (`Size`) and then written into space reserved for it (`measure`,
/// `write`). Either way the bytes are the same, canonical protobuf.
public enum OTLPSpanWriter {
    /// Appends `span` to `batch` as field 2 (`spans`) of a `ScopeSpans` message.
    public static func appendSpan(_ span: SpanRecord, to batch: inout [UInt8]) {
        let header = SpanHeader(span)
        let attributes = span.attributes
        let fill: (inout SpanAttributes) -> Void = { out in
            for (key, value) in attributes { out.addAny(key, value) }
        }
        let (total, content) = measure(header, attributes: fill)
        let start = batch.count
        batch.append(contentsOf: repeatElement(0, count: total))
        batch.withUnsafeMutableBufferPointer { buffer in
            let written = write(header, content: content, attributes: fill, to: buffer.baseAddress! + start)
            assert(written == total)
        }
    }

    /// The bytes `write` takes for a span (as a `ScopeSpans.spans` field), and its
    /// content's (the length `write` needs). Runs `attributes` to measure them.
    public static func measure(_ span: SpanHeader, attributes: (inout SpanAttributes) -> Void) -> (
        total: Int, content: Int
    ) {
        var measured = SpanAttributes(mode: .measure)
        attributes(&measured)
        let content = Size.span(span) + measured.size
        return (Size.field(content), content)
    }

    /// Writes a span measured by `measure` (which gave `content`) at `pointer`, running
    /// `attributes` again to write them; returns the bytes written.
    @discardableResult
    public static func write(
        _ span: SpanHeader, content: Int, attributes: (inout SpanAttributes) -> Void,
        to pointer: UnsafeMutablePointer<UInt8>
    ) -> Int {
        var out = Writer(pointer)
        out.tag(2, wire: 2)
        out.varint(UInt64(content))
        out.spanHead(span)
        var writing = SpanAttributes(mode: .write, writer: out)
        attributes(&writing)
        out = writing.writer!
        out.spanTail(span)
        return pointer.distance(to: out.pointer)
    }

    /// Writes a span in one pass into `capacity` bytes at `pointer`, as `write` does after
    /// `measure`; returns the bytes written, or nil when it did not fit (then measure, and
    /// `write`). Protobuf puts the span's length first: three bytes are left for it, and
    /// the content moves back by what the length did not need (a span is hundreds of
    /// bytes: a short move, where measuring first ran every attribute twice).
    public static func writeOnce(
        _ span: SpanHeader, attributes: (inout SpanAttributes) -> Void, to pointer: UnsafeMutablePointer<UInt8>,
        capacity: Int
    ) -> Int? {
        let lengthRoom = 3  // up to 2 MiB, far above a span's largest
        let content = pointer + 1 + lengthRoom
        guard capacity >= 1 + lengthRoom + Size.span(span) else { return nil }
        // The attributes are checked against what the head and tail leave.
        var out = Writer(content, end: pointer + capacity - Size.tail(span))
        out.spanHead(span)
        var writing = SpanAttributes(mode: .write, writer: out)
        attributes(&writing)
        out = writing.writer!
        guard !out.overflowed else { return nil }
        var tail = Writer(out.pointer)  // its room was kept
        tail.spanTail(span)
        out = tail
        let length = content.distance(to: out.pointer)
        let lengthSize = Size.varint(UInt64(length))
        guard lengthSize <= lengthRoom else { return nil }
        if lengthSize < lengthRoom { memmove(pointer + 1 + lengthSize, content, length) }
        var head = Writer(pointer)
        head.tag(2, wire: 2)
        head.varint(UInt64(length))
        return 1 + lengthSize + length
    }

    /// An `ExportTraceServiceRequest` of one resource and one scope holding the spans of
    /// `batch` (as `appendSpan` wrote them).
    public static func exportRequest(
        resource: [(String, SpanRecord.Value)], scopeName: String, scopeVersion: String, batch: [UInt8]
    ) -> [UInt8] {
        exportEnvelope(resource: resource, scopeName: scopeName, scopeVersion: scopeVersion, batchLength: batch.count)
            + batch
    }

    /// The start of an `ExportTraceServiceRequest` of one resource and one scope whose
    /// spans, `batchLength` bytes as `appendSpan` or `write` made them, follow it: the
    /// request is the envelope, then the batch (sent as two parts, never joined).
    public static func exportEnvelope(
        resource: [(String, SpanRecord.Value)], scopeName: String, scopeVersion: String, batchLength: Int
    ) -> [UInt8] {
        let resourceContent = resource.reduce(0) { $0 + Size.field(Size.keyValue($1.0, $1.1)) }
        let scopeContent = Size.string(scopeName) + Size.string(scopeVersion)
        let scopeSpansContent = Size.field(scopeContent) + batchLength
        let resourceSpansContent = Size.field(resourceContent) + Size.field(scopeSpansContent)
        let total = Size.field(resourceSpansContent) - batchLength
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

        /// A span's content but its attributes.
        static func span(_ span: SpanHeader) -> Int {
            var size = field(16) + field(8) + field(nameLength(span)) + 2 + 9 + 9
            if let state = span.traceState, !state.isEmpty { size += string(state) }
            if span.parentSpanID != nil { size += field(8) }
            return size + tail(span)
        }

        /// The fields after a span's attributes (`Writer.spanTail`).
        static func tail(_ span: SpanHeader) -> Int {
            var size = 0
            if let link = span.link { size += field(self.link(link)) }
            if span.isError { size += field(status(span)) }
            return size
        }

        /// The name's bytes: the name, and its suffix after a space.
        static func nameLength(_ span: SpanHeader) -> Int {
            span.name.utf8.count + (span.nameSuffix.map { 1 + $0.utf8.count } ?? 0)
        }

        static func link(_ link: SpanRecord.Link) -> Int {
            link.attributes.reduce(field(16) + field(8)) { $0 + field(keyValue($1.0, $1.1)) }
        }

        static func status(_ span: SpanHeader) -> Int {
            var size = 2  // code
            if let message = span.statusMessage, !message.isEmpty { size += string(message) }
            return size
        }
    }

    // MARK: - Writing

    /// Writes into space already measured and reserved; or, given an `end`, checks each
    /// attribute against it (`writeOnce`), and once one does not fit writes no more.
    public struct Writer {
        private(set) var pointer: UnsafeMutablePointer<UInt8>
        private let end: UnsafeMutablePointer<UInt8>?
        private(set) var overflowed = false

        init(_ pointer: UnsafeMutablePointer<UInt8>, end: UnsafeMutablePointer<UInt8>? = nil) {
            self.pointer = pointer
            self.end = end
        }

        /// Whether `count` more bytes fit (always, when measured first).
        @inline(__always)
        mutating func fits(_ count: Int) -> Bool {
            guard let end else { return true }
            if overflowed || pointer.distance(to: end) < count {
                overflowed = true
                return false
            }
            return true
        }

        /// A span's fields before its attributes.
        mutating func spanHead(_ span: SpanHeader) {
            bytes(1, span.traceID.bytes)
            bytes(2, span.spanID.bytes)
            if let state = span.traceState, !state.isEmpty { string(3, state) }
            if let parent = span.parentSpanID { bytes(4, parent.bytes) }
            if let suffix = span.nameSuffix {
                tag(5, wire: 2)
                varint(UInt64(Size.nameLength(span)))
                text(span.name)
                byte(0x20)
                text(suffix)
            } else {
                string(5, span.name)
            }
            tag(6, wire: 0)
            varint(UInt64(span.kind.rawValue))
            fixed64(7, span.startUnixNano)
            fixed64(8, span.endUnixNano)
        }

        /// A span's fields after its attributes.
        mutating func spanTail(_ span: SpanHeader) {
            if let link = span.link {
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
            guard fits(Size.field(Size.keyValue(key, value))) else { return }
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

        /// A `KeyValue` whose key is static and value a string, int or bool.
        mutating func keyValue(_ field: UInt8, _ key: StaticString, string value: String) {
            let valueField = Size.string(value)
            guard keyValueHead(field, key, valueField: valueField) else { return }
            string(1, value)
        }

        mutating func keyValue(_ field: UInt8, _ key: StaticString, int value: Int64) {
            let number = UInt64(bitPattern: value)
            guard keyValueHead(field, key, valueField: 1 + Size.varint(number)) else { return }
            tag(3, wire: 0)
            varint(number)
        }

        mutating func keyValue(_ field: UInt8, _ key: StaticString, bool value: Bool) {
            guard keyValueHead(field, key, valueField: 2) else { return }
            tag(2, wire: 0)
            byte(value ? 1 : 0)
        }

        /// Copies attributes encoded before, when they fit.
        mutating func encoded(_ bytes: UnsafeRawBufferPointer) {
            guard fits(bytes.count) else { return }
            raw(bytes)
        }

        /// The `KeyValue`'s tag and length, its key, and the `AnyValue`'s tag and length;
        /// false (nothing written) when the whole `KeyValue` does not fit.
        private mutating func keyValueHead(_ field: UInt8, _ key: StaticString, valueField: Int) -> Bool {
            let keyLength = key.utf8CodeUnitCount
            let content = Size.field(keyLength) + Size.field(valueField)
            guard fits(Size.field(content)) else { return false }
            tag(field, wire: 2)
            varint(UInt64(content))
            tag(1, wire: 2)
            varint(UInt64(keyLength))
            raw(UnsafeRawBufferPointer(start: key.utf8Start, count: keyLength))
            tag(2, wire: 2)
            varint(UInt64(valueField))
            return true
        }

        mutating func string(_ field: UInt8, _ value: String) {
            tag(field, wire: 2)
            varint(UInt64(value.utf8.count))
            text(value)
        }

        mutating func text(_ value: String) {
            let done: Void? = value.utf8.withContiguousStorageIfAvailable { raw(UnsafeRawBufferPointer($0)) }
            if done == nil { for byte in value.utf8 { self.byte(byte) } }
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

/// A span's fields but its attributes, for `OTLPSpanWriter.measure` and `write`.
public struct SpanHeader {
    public var traceID: TraceID
    public var spanID: SpanID
    public var parentSpanID: SpanID?
    public var traceState: String?
    /// The name, and a second part joined to it with a space (`GET` and a route), so a
    /// span's name is never built as a string of its own.
    public var name: String
    public var nameSuffix: String?
    public var kind: SpanRecord.Kind
    public var startUnixNano: UInt64
    public var endUnixNano: UInt64
    public var link: SpanRecord.Link?
    public var isError: Bool
    public var statusMessage: String?

    public init(
        traceID: TraceID, spanID: SpanID, parentSpanID: SpanID?, traceState: String? = nil, name: String,
        nameSuffix: String? = nil, kind: SpanRecord.Kind, startUnixNano: UInt64, endUnixNano: UInt64,
        link: SpanRecord.Link? = nil, isError: Bool = false, statusMessage: String? = nil
    ) {
        self.traceID = traceID
        self.spanID = spanID
        self.parentSpanID = parentSpanID
        self.traceState = traceState
        self.name = name
        self.nameSuffix = nameSuffix
        self.kind = kind
        self.startUnixNano = startUnixNano
        self.endUnixNano = endUnixNano
        self.link = link
        self.isError = isError
        self.statusMessage = statusMessage
    }

    init(_ record: SpanRecord) {
        self.init(
            traceID: record.traceID, spanID: record.spanID, parentSpanID: record.parentSpanID,
            traceState: record.traceState, name: record.name, kind: record.kind, startUnixNano: record.startUnixNano,
            endUnixNano: record.endUnixNano, link: record.links.first, isError: record.isError,
            statusMessage: record.statusMessage)
    }
}

/// A span's attributes as they are added: measured, written, or kept (for tests). The
/// closure that adds them runs once per pass (once when `writeOnce` fits; after a span
/// that did not, again to measure and to write), so it must add the same attributes each
/// time; a span's attributes are never gathered into an array on the way to their bytes. Keys are static strings (their bytes are
/// copied as they are); values are added typed, never wrapped.
public struct SpanAttributes {
    enum Mode { case measure, write, collect }

    let mode: Mode
    private(set) var size = 0
    /// Set in `write` mode.
    var writer: OTLPSpanWriter.Writer?
    private(set) var kept: [(String, SpanRecord.Value)] = []

    init(mode: Mode, writer: OTLPSpanWriter.Writer? = nil) {
        self.mode = mode
        self.writer = writer
    }

    /// Attributes kept as values: `collected` then holds them.
    public static func collecting() -> SpanAttributes { SpanAttributes(mode: .collect) }

    public var collected: [(String, SpanRecord.Value)] { kept }

    public mutating func add(_ key: StaticString, _ value: String) {
        switch mode {
        case .measure:
            size += OTLPSpanWriter.Size.field(
                OTLPSpanWriter.Size.field(key.utf8CodeUnitCount)
                    + OTLPSpanWriter.Size.field(OTLPSpanWriter.Size.string(value)))
        case .write: writer!.keyValue(9, key, string: value)
        case .collect: kept.append((key.description, .string(value)))
        }
    }

    public mutating func add(_ key: StaticString, _ value: Int64) {
        switch mode {
        case .measure:
            size += OTLPSpanWriter.Size.field(
                OTLPSpanWriter.Size.field(key.utf8CodeUnitCount)
                    + OTLPSpanWriter.Size.field(1 + OTLPSpanWriter.Size.varint(UInt64(bitPattern: value))))
        case .write: writer!.keyValue(9, key, int: value)
        case .collect: kept.append((key.description, .int(value)))
        }
    }

    public mutating func add(_ key: StaticString, _ value: Bool) {
        switch mode {
        case .measure:
            size += OTLPSpanWriter.Size.field(
                OTLPSpanWriter.Size.field(key.utf8CodeUnitCount) + OTLPSpanWriter.Size.field(2))
        case .write: writer!.keyValue(9, key, bool: value)
        case .collect: kept.append((key.description, .bool(value)))
        }
    }

    /// Attributes encoded before (`EncodedAttributes`): their bytes are copied as they are.
    public mutating func add(_ encoded: EncodedAttributes) {
        switch mode {
        case .measure: size += encoded.bytes.count
        case .write: encoded.bytes.withUnsafeBytes { writer!.encoded($0) }
        case .collect: kept += encoded.pairs
        }
    }

    /// Any key and value (the slower way, for `SpanRecord`s).
    public mutating func addAny(_ key: String, _ value: SpanRecord.Value) {
        switch mode {
        case .measure: size += OTLPSpanWriter.Size.field(OTLPSpanWriter.Size.keyValue(key, value))
        case .write: writer!.keyValue(9, key, value)
        case .collect: kept.append((key, value))
        }
    }
}

/// Attributes encoded once and copied as they are into every span that carries them (an
/// endpoint's address and identity, this pod's identity), so a span does not encode them
/// again: made when an endpoint or connection is first traced, not per request.
public struct EncodedAttributes: Sendable {
    /// `Span.attributes` fields (field 9), as `SpanAttributes` writes them.
    let bytes: [UInt8]
    /// The same as values (`SpanAttributes.collecting`).
    let pairs: [(String, SpanRecord.Value)]

    public static let none = EncodedAttributes { _ in }

    public init(_ add: (inout SpanAttributes) -> Void) {
        var collect = SpanAttributes.collecting()
        add(&collect)
        pairs = collect.collected
        var measure = SpanAttributes(mode: .measure)
        add(&measure)
        var bytes = [UInt8](repeating: 0, count: measure.size)
        bytes.withUnsafeMutableBufferPointer { buffer in
            guard let base = buffer.baseAddress else { return }
            var write = SpanAttributes(mode: .write, writer: OTLPSpanWriter.Writer(base))
            add(&write)
            assert(write.writer!.pointer == base + buffer.count)
        }
        self.bytes = bytes
    }
}
