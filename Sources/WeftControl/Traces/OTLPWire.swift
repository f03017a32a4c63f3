/// An `ExportTraceServiceRequest` read at the wire level (opentelemetry-proto v1.9.0): where
/// each resource, scope and span is in the bytes, and of each span what the store indexes
/// (ids, name, times, status). Nothing is decoded further and nothing is copied: the store
/// keeps each trace's fragment as slices of these bytes put back together
/// (`fragment(_:trace:)`), so a span the intake takes costs no decode and no re-encode
/// (SwiftProtobuf's decode and encode of both cost about 25 µs a sidecar span).
///
/// Strict about structure: a truncated field, a length past its message, a wire type other
/// than protobuf's four, or a known field of the wrong wire type is an error, as it is for
/// SwiftProtobuf; unknown fields are skipped, as protobuf says.
struct OTLPWire {
    struct Span {
        /// The whole `spans` field (tag, length, content).
        var field: Range<Int>
        var traceID: Range<Int>?
        var spanID: Range<Int>?
        var parentSpanID: Range<Int>?
        var name: Range<Int>?
        var start: UInt64 = 0
        var end: UInt64 = 0
        var isError = false
    }

    struct Scope {
        /// The `scope` and `schema_url` fields, when present (tag, length, content).
        var scope: Range<Int>?
        var schema: Range<Int>?
        var spans: [Span] = []
    }

    struct Resource {
        var resource: Range<Int>?
        var schema: Range<Int>?
        var serviceName: Range<Int>?
        var scopes: [Scope] = []
    }

    struct Malformed: Error, CustomStringConvertible {
        let description: String
    }

    let bytes: [UInt8]
    private(set) var resources: [Resource] = []

    init(_ bytes: [UInt8]) throws {
        self.bytes = bytes
        var reader = Reader(bytes: bytes, range: 0..<bytes.count, what: "ExportTraceServiceRequest")
        while let (number, wire, value) = try reader.next() {
            if number == 1 {
                resources.append(try Self.resource(bytes, try reader.message(wire, value, "resource_spans")))
            }
        }
    }

    private static func resource(_ bytes: [UInt8], _ range: Range<Int>) throws -> Resource {
        var out = Resource()
        var reader = Reader(bytes: bytes, range: range, what: "ResourceSpans")
        while let (number, wire, value) = try reader.next() {
            switch number {
            case 1:
                let content = try reader.message(wire, value, "resource")
                out.resource = reader.fieldStart..<content.upperBound
                out.serviceName = try serviceName(bytes, content)
            case 2:
                out.scopes.append(try scope(bytes, try reader.message(wire, value, "scope_spans")))
            case 3:
                _ = try reader.message(wire, value, "schema_url")
                out.schema = reader.fieldStart..<reader.position
            default: break
            }
        }
        return out
    }

    /// `service.name` among a Resource's attributes (its string value's bytes).
    private static func serviceName(_ bytes: [UInt8], _ range: Range<Int>) throws -> Range<Int>? {
        var reader = Reader(bytes: bytes, range: range, what: "Resource")
        while let (number, wire, value) = try reader.next() {
            guard number == 1 else { continue }
            var keyValue = Reader(bytes: bytes, range: try reader.message(wire, value, "attributes"), what: "KeyValue")
            var key: Range<Int>?
            var text: Range<Int>?
            while let (field, kind, inner) = try keyValue.next() {
                if field == 1 { key = try keyValue.message(kind, inner, "key") }
                if field == 2 {
                    var any = Reader(bytes: bytes, range: try keyValue.message(kind, inner, "value"), what: "AnyValue")
                    while let (f, k, v) = try any.next() {
                        if f == 1 { text = try any.message(k, v, "string_value") }
                    }
                }
            }
            if let key, bytes[key].elementsEqual("service.name".utf8) { return text }
        }
        return nil
    }

    private static func scope(_ bytes: [UInt8], _ range: Range<Int>) throws -> Scope {
        var out = Scope()
        var reader = Reader(bytes: bytes, range: range, what: "ScopeSpans")
        while let (number, wire, value) = try reader.next() {
            switch number {
            case 1:
                _ = try reader.message(wire, value, "scope")
                out.scope = reader.fieldStart..<reader.position
            case 2:
                let content = try reader.message(wire, value, "spans")
                out.spans.append(try span(bytes, content, field: reader.fieldStart..<content.upperBound))
            case 3:
                _ = try reader.message(wire, value, "schema_url")
                out.schema = reader.fieldStart..<reader.position
            default: break
            }
        }
        return out
    }

    private static func span(_ bytes: [UInt8], _ range: Range<Int>, field: Range<Int>) throws -> Span {
        var out = Span(field: field)
        var reader = Reader(bytes: bytes, range: range, what: "Span")
        while let (number, wire, value) = try reader.next() {
            switch number {
            case 1: out.traceID = try reader.message(wire, value, "trace_id")
            case 2: out.spanID = try reader.message(wire, value, "span_id")
            case 4: out.parentSpanID = try reader.message(wire, value, "parent_span_id")
            case 5: out.name = try reader.message(wire, value, "name")
            case 7: out.start = try reader.fixed64(wire, value, "start_time_unix_nano")
            case 8: out.end = try reader.fixed64(wire, value, "end_time_unix_nano")
            case 15:
                var status = Reader(bytes: bytes, range: try reader.message(wire, value, "status"), what: "Status")
                while let (f, k, v) = try status.next() {
                    guard f == 3 else { continue }
                    guard k == 0 else { throw Malformed(description: "Status.code: wire type \(k), not varint") }
                    out.isError = v == 2
                }
            default: break
            }
        }
        return out
    }

    /// A `ResourceSpans` message holding `resource`'s spans for which `keep` is true (in
    /// their scopes), encoded from slices of the export.
    func fragment(_ resource: Resource, keep: (Span) -> Bool) -> [UInt8] {
        var members: [(scope: Int, span: Int)] = []
        for (s, scope) in resource.scopes.enumerated() {
            for (i, span) in scope.spans.enumerated() where keep(span) { members.append((s, i)) }
        }
        return fragment(resource, members: members)
    }

    /// A `ResourceSpans` message holding the spans `members` names (scope index, span index
    /// in it; in order), in their scopes, encoded from slices of the export: what the store
    /// keeps per trace. Linear in the members: an export of 512 one-span traces makes 512
    /// fragments without looking at every span for each.
    func fragment(_ resource: Resource, members: [(scope: Int, span: Int)]) -> [UInt8] {
        var out: [UInt8] = []
        var total = (resource.resource?.count ?? 0) + (resource.schema?.count ?? 0)
        for member in members { total += resource.scopes[member.scope].spans[member.span].field.count + 16 }
        out.reserveCapacity(total)
        // Copied from the export's storage directly (a slice of the array per copy would
        // retain and release it each time).
        bytes.withUnsafeBufferPointer { export in
            func copy(_ field: Range<Int>?) {
                if let field { out.append(contentsOf: UnsafeBufferPointer(rebasing: export[field])) }
            }
            copy(resource.resource)
            var index = 0
            while index < members.count {
                let scopeIndex = members[index].scope
                let scope = resource.scopes[scopeIndex]
                var end = index
                var length = (scope.scope?.count ?? 0) + (scope.schema?.count ?? 0)
                while end < members.count && members[end].scope == scopeIndex {
                    length += scope.spans[members[end].span].field.count
                    end += 1
                }
                out.append(0x12)  // ResourceSpans.scope_spans, length-delimited
                Reader.appendVarint(UInt64(length), to: &out)
                copy(scope.scope)
                for member in members[index..<end] { copy(scope.spans[member.span].field) }
                copy(scope.schema)
                index = end
            }
            copy(resource.schema)
        }
        return out
    }

    /// Reads the fields of one message: number, wire type, and the value (a varint, a
    /// fixed value, or a length-delimited field's length).
    struct Reader {
        let bytes: [UInt8]
        let range: Range<Int>
        let what: String
        private(set) var position: Int
        /// Where the last field read began (its tag).
        private(set) var fieldStart = 0
        /// The content of the last length-delimited field, when the caller did not take it
        /// (`message`): skipped by the next `next`.
        private var pending = 0

        init(bytes: [UInt8], range: Range<Int>, what: String) {
            self.bytes = bytes
            self.range = range
            self.what = what
            self.position = range.lowerBound
        }

        mutating func next() throws -> (number: UInt64, wire: UInt64, value: UInt64)? {
            position += pending
            pending = 0
            guard position < range.upperBound else { return nil }
            fieldStart = position
            let tag = try varint()
            let number = tag >> 3
            let wire = tag & 7
            guard number > 0 else { throw Malformed(description: "\(what): field number 0") }
            switch wire {
            case 0: return (number, wire, try varint())
            case 1: return (number, wire, try fixed(8))
            case 2:
                let length = try varint()
                guard length <= UInt64(range.upperBound - position) else {
                    throw Malformed(description: "\(what): field \(number) runs past the end of its message")
                }
                pending = Int(length)
                return (number, wire, length)
            case 5: return (number, wire, try fixed(4))
            default: throw Malformed(description: "\(what): field \(number) has wire type \(wire)")
            }
        }

        /// A length-delimited field's content (skipped over); the field must be one.
        mutating func message(_ wire: UInt64, _ length: UInt64, _ name: String) throws -> Range<Int> {
            guard wire == 2 else {
                throw Malformed(description: "\(what).\(name): wire type \(wire), not length-delimited")
            }
            let content = position..<(position + Int(length))
            position = content.upperBound
            pending = 0
            return content
        }

        func fixed64(_ wire: UInt64, _ value: UInt64, _ name: String) throws -> UInt64 {
            guard wire == 1 else { throw Malformed(description: "\(what).\(name): wire type \(wire), not fixed64") }
            return value
        }

        private mutating func varint() throws -> UInt64 {
            var value: UInt64 = 0
            var shift: UInt64 = 0
            while position < range.upperBound {
                let byte = bytes[position]
                position += 1
                guard shift < 64 else { break }
                value |= UInt64(byte & 0x7F) << shift
                if byte < 0x80 { return value }
                shift += 7
            }
            throw Malformed(description: "\(what): a truncated or overlong varint")
        }

        private mutating func fixed(_ count: Int) throws -> UInt64 {
            guard range.upperBound - position >= count else {
                throw Malformed(description: "\(what): a truncated fixed-width field")
            }
            var value: UInt64 = 0
            for i in 0..<count { value |= UInt64(bytes[position + i]) << (8 * UInt64(i)) }
            position += count
            return value
        }

        static func appendVarint(_ value: UInt64, to out: inout [UInt8]) {
            var value = value
            while value >= 0x80 {
                out.append(UInt8(truncatingIfNeeded: value) | 0x80)
                value >>= 7
            }
            out.append(UInt8(value))
        }
    }
}
