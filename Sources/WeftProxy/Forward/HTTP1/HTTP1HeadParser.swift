import Glibc

/// A strict RFC 9112 scanner for HTTP/1.x message heads.
///
/// The proxy never re-serialises a head: it scans the bytes in place, records what
/// routing and framing need, and forwards the original bytes as slices. Strictness is
/// the point, because a proxy that frames a message differently from the server behind
/// it is a request-smuggling hole:
/// - lines end in CRLF; a bare LF or a bare CR is rejected;
/// - obs-fold (a field line starting with whitespace) is rejected;
/// - whitespace between a field name and its colon is rejected;
/// - Content-Length must be digits, and repeated values must agree;
/// - a request with both Content-Length and Transfer-Encoding, or with a
///   Transfer-Encoding whose final coding is not chunked, or an HTTP/1.0 request with
///   Transfer-Encoding, is rejected;
/// - an HTTP/1.1 request must carry exactly one Host.
enum HTTP1HeadParser {
    static let maxHeadBytes = 64 * 1024
    static let maxFields = 128

    enum Kind {
        case request
        /// A response to a request with this method (HEAD and CONNECT change framing).
        case response(requestMethod: HTTP1Method)
    }

    /// Looks for the empty line that ends a head.
    ///
    /// - Parameters:
    ///   - bytes: the buffered bytes, starting at the head's first byte.
    ///   - resumeAt: how many bytes an earlier call already scanned (it may be 0).
    /// - Returns: the head's length including the final CRLF, or nil when more bytes are needed.
    /// - Throws: `bareLF` at the first LF not preceded by CR, `headTooLarge` past the limit.
    static func findEnd(_ bytes: UnsafeRawBufferPointer, resumeAt: Int) throws -> Int? {
        var index = resumeAt
        let count = bytes.count
        guard let base = bytes.baseAddress else { return nil }
        while index < count {
            guard let found = memchr(base + index, 0x0A, count - index) else { break }
            let lf = base.distance(to: UnsafeRawPointer(found))
            if lf == 0 || bytes[lf - 1] != 0x0D {
                throw HTTP1ParseError(.bareLF, "line ends in LF without CR at byte \(lf)")
            }
            if lf >= 3 && bytes[lf - 2] == 0x0A && bytes[lf - 3] == 0x0D {
                if lf + 1 > maxHeadBytes { throw tooLarge() }
                return lf + 1
            }
            index = lf + 1
        }
        if count > maxHeadBytes { throw tooLarge() }
        return nil
    }

    private static func tooLarge() -> HTTP1ParseError {
        HTTP1ParseError(.headTooLarge, "head is larger than \(maxHeadBytes) bytes")
    }

    /// Counts the empty lines (CRLF) that may precede a request line (RFC 9112 §2.2).
    static func leadingEmptyLines(_ bytes: UnsafeRawBufferPointer) -> Int {
        var index = 0
        while index + 1 < bytes.count && bytes[index] == 0x0D && bytes[index + 1] == 0x0A { index += 2 }
        return index
    }

    /// Parses a complete head (as delimited by `findEnd`).
    ///
    /// - Parameters:
    ///   - bytes: exactly the head's bytes, ending in CRLF CRLF.
    ///   - kind: request, or response to a request with a given method.
    ///   - head: filled in; its `droppedLines` array is reused so steady-state parsing
    ///     does not allocate.
    /// - Throws: `HTTP1ParseError` naming the first violation.
    static func parse(_ bytes: UnsafeRawBufferPointer, kind: Kind, into head: inout HTTP1Head) throws {
        var dropped = head.droppedLines
        head.droppedLines = []  // leaves `dropped` the only reference, so its storage is reused
        dropped.removeAll(keepingCapacity: true)
        head = HTTP1Head()
        head.length = bytes.count
        var cursor = 0
        switch kind {
        case .request: try parseRequestLine(bytes, cursor: &cursor, head: &head)
        case .response: try parseStatusLine(bytes, cursor: &cursor, head: &head)
        }

        var fields = FieldSummary()
        var fieldCount = 0
        while true {
            // `findEnd` guarantees every LF is preceded by CR and that the head ends in an empty line.
            let lineStart = cursor
            if bytes[cursor] == 0x0D {
                // Only the final empty line may start with CR: a line starting `CR x` is a bare CR,
                // and stopping there would leave the fields after it unread but forwarded.
                guard cursor + 2 == bytes.count else {
                    throw HTTP1ParseError(.bareCR, "CR without LF at byte \(cursor)")
                }
                break
            }
            fieldCount += 1
            if fieldCount > maxFields {
                throw HTTP1ParseError(.tooManyFields, "more than \(maxFields) header fields")
            }
            let first = bytes[cursor]
            if first == 0x20 || first == 0x09 {
                throw HTTP1ParseError(.obsFold, "line folding (obs-fold) at byte \(cursor)")
            }
            while cursor < bytes.count && isTokenByte(bytes[cursor]) { cursor += 1 }
            let nameEnd = cursor
            guard nameEnd > lineStart, bytes[cursor] == 0x3A else {
                throw HTTP1ParseError(.invalidFieldName, "invalid header field name at byte \(lineStart)")
            }
            cursor += 1
            while bytes[cursor] == 0x20 || bytes[cursor] == 0x09 { cursor += 1 }
            let valueStart = cursor
            while true {
                let byte = bytes[cursor]
                if byte == 0x0D {
                    if bytes[cursor + 1] == 0x0A { break }
                    throw HTTP1ParseError(.bareCR, "CR without LF at byte \(cursor)")
                }
                if !isFieldValueByte(byte) {
                    throw HTTP1ParseError(
                        .invalidFieldValue, "control byte 0x\(hex(byte)) in a header field value at byte \(cursor)")
                }
                cursor += 1
            }
            var valueEnd = cursor
            while valueEnd > valueStart && (bytes[valueEnd - 1] == 0x20 || bytes[valueEnd - 1] == 0x09) {
                valueEnd -= 1
            }
            cursor += 2
            try fields.note(
                bytes, name: lineStart..<nameEnd, value: valueStart..<valueEnd, line: lineStart..<cursor,
                dropped: &dropped)
        }

        if !fields.nominated.isEmpty {
            dropNominated(bytes, fields: fields, headEnd: bytes.count, dropped: &dropped)
        }
        head.isUpgrade = fields.connectionUpgrade && fields.hasUpgradeField
        if !head.isUpgrade {
            if let line = fields.connectionLine {
                if fields.isKeepAliveOnly {
                    head.keepAliveLine = line
                } else {
                    dropped.append(line)
                }
            }
            dropped.append(contentsOf: fields.moreConnectionLines)
            if let line = fields.upgradeLine { dropped.append(line) }
            dropped.append(contentsOf: fields.moreUpgradeLines)
        }
        if dropped.count > 1 { dropped.sort { $0.lowerBound < $1.lowerBound } }
        head.droppedLines = dropped
        head.wantsClose = fields.connectionClose || (head.minorVersion == 0 && !fields.connectionKeepAlive)
        head.host = fields.host
        try resolveFraming(kind: kind, fields: fields, head: &head)
    }

    // MARK: - Start lines

    private static func parseRequestLine(_ bytes: UnsafeRawBufferPointer, cursor: inout Int, head: inout HTTP1Head)
        throws
    {
        let methodStart = cursor
        while isTokenByte(bytes[cursor]) { cursor += 1 }
        guard cursor > methodStart, bytes[cursor] == 0x20 else {
            throw HTTP1ParseError(.invalidRequestLine, "request line does not start with a method and one space")
        }
        head.method = method(bytes, methodStart..<cursor)
        cursor += 1
        let targetStart = cursor
        while bytes[cursor] > 0x20 && bytes[cursor] < 0x7F { cursor += 1 }
        guard cursor > targetStart, bytes[cursor] == 0x20 else {
            throw HTTP1ParseError(
                .invalidRequestLine, "request target is empty or holds a byte that is not visible ASCII")
        }
        head.target = targetStart..<cursor
        cursor += 1
        head.minorVersion = try parseVersion(bytes, cursor: &cursor, malformed: .invalidRequestLine)
        guard bytes[cursor] == 0x0D, bytes[cursor + 1] == 0x0A else {
            throw HTTP1ParseError(.invalidRequestLine, "request line does not end after the HTTP version")
        }
        cursor += 2
    }

    private static func parseStatusLine(_ bytes: UnsafeRawBufferPointer, cursor: inout Int, head: inout HTTP1Head)
        throws
    {
        head.minorVersion = try parseVersion(bytes, cursor: &cursor, malformed: .invalidStatusLine)
        guard bytes[cursor] == 0x20,
            isDigit(bytes[cursor + 1]), isDigit(bytes[cursor + 2]), isDigit(bytes[cursor + 3])
        else {
            throw HTTP1ParseError(.invalidStatusLine, "status line has no three-digit status code")
        }
        head.status =
            Int(bytes[cursor + 1] - 0x30) * 100 + Int(bytes[cursor + 2] - 0x30) * 10 + Int(bytes[cursor + 3] - 0x30)
        cursor += 4
        guard head.status >= 100 else {
            throw HTTP1ParseError(.invalidStatusLine, "status code \(head.status) is below 100")
        }
        if bytes[cursor] == 0x20 {
            cursor += 1
            while bytes[cursor] != 0x0D {
                guard isFieldValueByte(bytes[cursor]) else {
                    throw HTTP1ParseError(.invalidStatusLine, "control byte in the reason phrase")
                }
                cursor += 1
            }
        }
        guard bytes[cursor] == 0x0D, bytes[cursor + 1] == 0x0A else {
            throw HTTP1ParseError(.invalidStatusLine, "status line does not end after the status code")
        }
        cursor += 2
    }

    private static func parseVersion(
        _ bytes: UnsafeRawBufferPointer, cursor: inout Int, malformed: HTTP1ParseError.Code
    ) throws -> Int {
        guard bytes.count - cursor >= 10,
            bytes[cursor] == 0x48, bytes[cursor + 1] == 0x54, bytes[cursor + 2] == 0x54,
            bytes[cursor + 3] == 0x50, bytes[cursor + 4] == 0x2F,
            isDigit(bytes[cursor + 5]), bytes[cursor + 6] == 0x2E, isDigit(bytes[cursor + 7])
        else {
            throw HTTP1ParseError(malformed, "malformed HTTP version")
        }
        let major = bytes[cursor + 5] - 0x30
        let minor = bytes[cursor + 7] - 0x30
        guard major == 1, minor <= 1 else {
            throw HTTP1ParseError(.unsupportedVersion, "HTTP/\(major).\(minor) is not HTTP/1.0 or HTTP/1.1")
        }
        cursor += 8
        return Int(minor)
    }

    private static func method(_ bytes: UnsafeRawBufferPointer, _ range: Range<Int>) -> HTTP1Method {
        // Methods are case-sensitive (RFC 9110 §9.1).
        switch range.count {
        case 3:
            if matches(bytes, range, "GET") { return .get }
            if matches(bytes, range, "PUT") { return .put }
        case 4:
            if matches(bytes, range, "POST") { return .post }
            if matches(bytes, range, "HEAD") { return .head }
        case 5:
            if matches(bytes, range, "PATCH") { return .patch }
            if matches(bytes, range, "TRACE") { return .trace }
        case 6: if matches(bytes, range, "DELETE") { return .delete }
        case 7:
            if matches(bytes, range, "OPTIONS") { return .options }
            if matches(bytes, range, "CONNECT") { return .connect }
        default: break
        }
        return .other
    }

    // MARK: - Framing

    private static func resolveFraming(kind: Kind, fields: FieldSummary, head: inout HTTP1Head) throws {
        switch kind {
        case .request:
            if head.minorVersion == 1 && fields.hostCount == 0 {
                throw HTTP1ParseError(.missingHost, "HTTP/1.1 request without a Host header")
            }
            if fields.hasTransferEncoding {
                if fields.contentLength != nil {
                    throw HTTP1ParseError(.conflictingFraming, "request has both Content-Length and Transfer-Encoding")
                }
                if head.minorVersion == 0 {
                    throw HTTP1ParseError(.conflictingFraming, "HTTP/1.0 request with Transfer-Encoding")
                }
                guard fields.chunkedIsFinal else {
                    throw HTTP1ParseError(.invalidTransferEncoding, "request Transfer-Encoding does not end in chunked")
                }
                head.framing = .chunked
            } else if let length = fields.contentLength, length > 0 {
                head.framing = .contentLength(length)
            } else {
                head.framing = .none
            }
        case .response(let method):
            let status = head.status
            if status < 200 || status == 204 || status == 304 || method == .head
                || (method == .connect && status < 300)
            {
                head.framing = .none
            } else if fields.hasTransferEncoding {
                if fields.contentLength != nil {
                    throw HTTP1ParseError(.conflictingFraming, "response has both Content-Length and Transfer-Encoding")
                }
                if head.minorVersion == 0 {
                    // RFC 9112 §6.1: the framing of an HTTP/1.0 message with Transfer-Encoding
                    // is faulty; the client behind us may frame it differently.
                    throw HTTP1ParseError(.conflictingFraming, "HTTP/1.0 response with Transfer-Encoding")
                }
                head.framing = fields.chunkedIsFinal ? .chunked : .untilClose
            } else if let length = fields.contentLength {
                head.framing = length > 0 ? .contentLength(length) : .none
            } else {
                head.framing = .untilClose
            }
        }
    }

    // MARK: - Fields

    /// The trace context of a request head (`traceparent`, `tracestate`, `b3`, `x-b3-*`),
    /// gathered in one pass: each field's value, and the lines a traced request's span
    /// replaces. Looked for only where the proxy records spans (`parse` does not: a proxy
    /// without tracing pays nothing for it).
    /// - Parameter targetEnd: where the request target ends (`HTTP1Head.target`): the
    ///   field lines follow its line.
    static func traceFields(_ bytes: UnsafeRawBufferPointer, targetEnd: Int) -> HTTP1TraceFields {
        var fields = HTTP1TraceFields()
        // A parsed head: every LF ends a line after its CR, the last line is empty. Lines are
        // found with memchr, and only those whose name starts as a trace field's does
        // (`t`, `b`, `x`) are looked into: this runs on every request where spans are
        // recorded, also at sampling 0 (the caller's decision is followed).
        guard let base = bytes.baseAddress, bytes.count >= 2 else { return fields }
        let end = bytes.count - 2  // the empty line
        func lineEnd(from start: Int) -> Int {  // the CR of the line's CRLF
            guard start < end, let found = memchr(base + start, 0x0A, end - start) else { return end }
            return base.distance(to: UnsafeRawPointer(found)) - 1
        }
        var cursor = lineEnd(from: targetEnd) + 2
        while cursor < end {
            let lineStart = cursor
            let crlf = lineEnd(from: cursor)
            cursor = crlf + 2
            let first = bytes[lineStart] | 0x20
            guard first == 0x74 || first == 0x62 || first == 0x78 else { continue }
            var colon = lineStart
            while colon < crlf && bytes[colon] != 0x3A { colon += 1 }
            guard let field = HTTP1TraceFields.Field(bytes, lineStart..<colon) else { continue }
            // The value, without the optional whitespace around it.
            var valueStart = min(colon + 1, crlf)
            var valueEnd = crlf
            while valueStart < valueEnd && (bytes[valueStart] == 0x20 || bytes[valueStart] == 0x09) { valueStart += 1 }
            while valueEnd > valueStart && (bytes[valueEnd - 1] == 0x20 || bytes[valueEnd - 1] == 0x09) {
                valueEnd -= 1
            }
            fields.found(field, line: lineStart..<cursor, value: valueStart..<valueEnd)
        }
        return fields
    }

    /// What the field lines said, gathered in one pass.
    private struct FieldSummary {
        var contentLength: Int?
        var hasTransferEncoding = false
        var chunkedIsFinal = false
        var connectionClose = false
        var connectionKeepAlive = false
        var connectionUpgrade = false
        var hasUpgradeField = false
        var hostCount = 0
        var host: Range<Int>?
        // The first Connection and Upgrade lines are kept inline: one of each is the
        // common case, and arrays here would allocate on every message.
        var connectionLine: Range<Int>?
        var moreConnectionLines: [Range<Int>] = []
        var upgradeLine: Range<Int>?
        var moreUpgradeLines: [Range<Int>] = []

        /// One Connection line whose only option is keep-alive.
        var isKeepAliveOnly: Bool {
            connectionKeepAlive && !connectionClose && !connectionUpgrade && nominated.isEmpty
                && moreConnectionLines.isEmpty
        }
        /// Field names listed in Connection other than close, keep-alive and upgrade.
        var nominated: [Range<Int>] = []

        mutating func note(
            _ bytes: UnsafeRawBufferPointer, name: Range<Int>, value: Range<Int>, line: Range<Int>,
            dropped: inout [Range<Int>]
        ) throws {
            switch name.count {
            case 2:
                if equalsLowercase(bytes, name, "te") { dropped.append(line) }
            case 4:
                if equalsLowercase(bytes, name, "host") {
                    hostCount += 1
                    if hostCount > 1 { throw HTTP1ParseError(.duplicateHost, "more than one Host header") }
                    host = value
                }
            case 7:
                if equalsLowercase(bytes, name, "upgrade") {
                    hasUpgradeField = true
                    if upgradeLine == nil { upgradeLine = line } else { moreUpgradeLines.append(line) }
                }
            case 10:
                if equalsLowercase(bytes, name, "connection") {
                    if connectionLine == nil { connectionLine = line } else { moreConnectionLines.append(line) }
                    noteConnection(bytes, value)
                } else if equalsLowercase(bytes, name, "keep-alive") {
                    dropped.append(line)
                }
            case 14:
                if equalsLowercase(bytes, name, "content-length") { try noteContentLength(bytes, value) }
            case 16:
                if equalsLowercase(bytes, name, "proxy-connection") { dropped.append(line) }
            case 17:
                if equalsLowercase(bytes, name, "transfer-encoding") { try noteTransferEncoding(bytes, value) }
            default:
                break
            }
        }

        private mutating func noteConnection(_ bytes: UnsafeRawBufferPointer, _ value: Range<Int>) {
            forEachListElement(bytes, value) { token in
                if equalsLowercase(bytes, token, "close") {
                    connectionClose = true
                } else if equalsLowercase(bytes, token, "keep-alive") {
                    connectionKeepAlive = true
                } else if equalsLowercase(bytes, token, "upgrade") {
                    connectionUpgrade = true
                } else if !equalsLowercase(bytes, token, "content-length")
                    && !equalsLowercase(bytes, token, "transfer-encoding")
                    && !equalsLowercase(bytes, token, "host")
                    && !equalsLowercase(bytes, token, "connection")
                {
                    // Framing fields are never dropped on a peer's say-so: removing them
                    // would make the next hop frame the body differently from us. Connection
                    // lines have their own rule (dropped unless upgrading); nominating them
                    // would drop them twice, or drop them from an upgrade.
                    nominated.append(token)
                }
            }
        }

        private mutating func noteContentLength(_ bytes: UnsafeRawBufferPointer, _ value: Range<Int>) throws {
            var sawElement = false
            var failure: HTTP1ParseError?
            forEachListElement(bytes, value) { element in
                sawElement = true
                guard failure == nil else { return }
                guard element.count <= 18, element.allSatisfy({ isDigit(bytes[$0]) }) else {
                    failure = HTTP1ParseError(.invalidContentLength, "Content-Length is not a number")
                    return
                }
                let length = element.reduce(0) { $0 * 10 + Int(bytes[$1] - 0x30) }
                if let existing = contentLength, existing != length {
                    failure = HTTP1ParseError(
                        .invalidContentLength, "Content-Length values disagree (\(existing) and \(length))")
                }
                contentLength = length
            }
            if let failure { throw failure }
            if !sawElement { throw HTTP1ParseError(.invalidContentLength, "empty Content-Length") }
        }

        private mutating func noteTransferEncoding(_ bytes: UnsafeRawBufferPointer, _ value: Range<Int>) throws {
            var sawElement = false
            var chunkedSeen = chunkedIsFinal
            var failure: HTTP1ParseError?
            forEachListElement(bytes, value) { coding in
                sawElement = true
                // chunked must be applied once, and last (RFC 9112 §6.1).
                if chunkedSeen {
                    failure = HTTP1ParseError(.invalidTransferEncoding, "a transfer coding follows chunked")
                }
                if equalsLowercase(bytes, coding, "chunked") { chunkedSeen = true }
            }
            if let failure { throw failure }
            guard sawElement else { throw HTTP1ParseError(.invalidTransferEncoding, "empty Transfer-Encoding") }
            hasTransferEncoding = true
            chunkedIsFinal = chunkedSeen
        }
    }

    /// Drops every field line whose name `Connection` nominated.
    private static func dropNominated(
        _ bytes: UnsafeRawBufferPointer, fields: FieldSummary, headEnd: Int, dropped: inout [Range<Int>]
    ) {
        // The first line is the start line; field lines follow until the empty line.
        var cursor = 0
        while bytes[cursor] != 0x0A { cursor += 1 }
        cursor += 1
        while bytes[cursor] != 0x0D {
            let lineStart = cursor
            var colon = cursor
            while bytes[colon] != 0x3A { colon += 1 }
            while bytes[cursor] != 0x0A { cursor += 1 }
            cursor += 1
            let name = lineStart..<colon
            if fields.nominated.contains(where: { equalsCaseInsensitive(bytes, $0, name) }),
                !dropped.contains(lineStart..<cursor)
            {
                dropped.append(lineStart..<cursor)
            }
        }
    }

    // MARK: - Byte classes

    /// tchar (RFC 9110 §5.6.2).
    ///
    /// Two 64-bit masks rather than a table: integer constants are laid out statically,
    /// while a global array needs a lazy-initialisation check on every access.
    @inline(__always)
    static func isTokenByte(_ byte: UInt8) -> Bool {
        if byte < 64 { return tokenMaskLow & (1 << UInt64(byte)) != 0 }
        if byte < 128 { return tokenMaskHigh & (1 << UInt64(byte - 64)) != 0 }
        return false
    }

    /// Bytes 0–63 that are tchar: ! # $ % & ' * + - . 0-9
    private static let tokenMaskLow: UInt64 = 0x03FF_6CFA_0000_0000
    /// Bytes 64–127 that are tchar: A-Z ^ _ ` a-z | ~
    private static let tokenMaskHigh: UInt64 = 0x57FF_FFFF_C7FF_FFFE

    /// field-vchar, SP or HTAB (RFC 9110 §5.5); obs-text is allowed, controls are not.
    @inline(__always)
    static func isFieldValueByte(_ byte: UInt8) -> Bool { byte == 0x09 || (byte >= 0x20 && byte != 0x7F) }

    @inline(__always)
    static func isDigit(_ byte: UInt8) -> Bool { byte >= 0x30 && byte <= 0x39 }

    private static func hex(_ byte: UInt8) -> String {
        let digits = Array("0123456789abcdef")
        return String([digits[Int(byte >> 4)], digits[Int(byte & 0xF)]])
    }
}

// MARK: - Small byte helpers

/// Calls `body` with each non-empty element of a comma-separated list, trimmed of OWS.
@inline(__always)
private func forEachListElement(_ bytes: UnsafeRawBufferPointer, _ range: Range<Int>, _ body: (Range<Int>) -> Void) {
    var start = range.lowerBound
    while start < range.upperBound {
        var end = start
        while end < range.upperBound && bytes[end] != 0x2C { end += 1 }
        var lower = start
        var upper = end
        while lower < upper && (bytes[lower] == 0x20 || bytes[lower] == 0x09) { lower += 1 }
        while upper > lower && (bytes[upper - 1] == 0x20 || bytes[upper - 1] == 0x09) { upper -= 1 }
        if lower < upper { body(lower..<upper) }
        start = end + 1
    }
}

/// Compares bytes with a lowercase ASCII literal, ignoring the case of the bytes.
@inline(__always)
func equalsLowercase(_ bytes: UnsafeRawBufferPointer, _ range: Range<Int>, _ literal: StaticString) -> Bool {
    guard range.count == literal.utf8CodeUnitCount else { return false }
    let pointer = literal.utf8Start
    var index = 0
    for position in range {
        var byte = bytes[position]
        if byte >= 0x41 && byte <= 0x5A { byte |= 0x20 }
        if byte != pointer[index] { return false }
        index += 1
    }
    return true
}

@inline(__always)
private func matches(_ bytes: UnsafeRawBufferPointer, _ range: Range<Int>, _ literal: StaticString) -> Bool {
    guard range.count == literal.utf8CodeUnitCount else { return false }
    let pointer = literal.utf8Start
    var index = 0
    for position in range {
        if bytes[position] != pointer[index] { return false }
        index += 1
    }
    return true
}

private func equalsCaseInsensitive(_ bytes: UnsafeRawBufferPointer, _ lhs: Range<Int>, _ rhs: Range<Int>) -> Bool {
    guard lhs.count == rhs.count else { return false }
    for offset in 0..<lhs.count {
        var left = bytes[lhs.lowerBound + offset]
        var right = bytes[rhs.lowerBound + offset]
        if left >= 0x41 && left <= 0x5A { left |= 0x20 }
        if right >= 0x41 && right <= 0x5A { right |= 0x20 }
        if left != right { return false }
    }
    return true
}

/// A request head's trace context lines (`HTTP1HeadParser.traceFields`), as ranges of the
/// head's bytes.
struct HTTP1TraceFields {
    enum Field: Int {
        case traceparent, tracestate, b3, b3TraceID, b3SpanID, b3ParentSpanID, b3Sampled, b3Flags

        init?(_ bytes: UnsafeRawBufferPointer, _ name: Range<Int>) {
            switch name.count {
            case 2 where equalsLowercase(bytes, name, "b3"): self = .b3
            case 10 where equalsLowercase(bytes, name, "tracestate"): self = .tracestate
            case 10 where equalsLowercase(bytes, name, "x-b3-flags"): self = .b3Flags
            case 11 where equalsLowercase(bytes, name, "traceparent"): self = .traceparent
            case 11 where equalsLowercase(bytes, name, "x-b3-spanid"): self = .b3SpanID
            case 12 where equalsLowercase(bytes, name, "x-b3-traceid"): self = .b3TraceID
            case 12 where equalsLowercase(bytes, name, "x-b3-sampled"): self = .b3Sampled
            case 17 where equalsLowercase(bytes, name, "x-b3-parentspanid"): self = .b3ParentSpanID
            default: return nil
            }
        }

        /// The field's name as `IncomingTrace.extract` asks for it.
        init?(name: String) {
            switch name {
            case "traceparent": self = .traceparent
            case "tracestate": self = .tracestate
            case "b3": self = .b3
            case "x-b3-traceid": self = .b3TraceID
            case "x-b3-spanid": self = .b3SpanID
            case "x-b3-parentspanid": self = .b3ParentSpanID
            case "x-b3-sampled": self = .b3Sampled
            case "x-b3-flags": self = .b3Flags
            default: return nil
            }
        }
    }

    /// The first value of each field found, trimmed (by `Field`'s raw value); empty until
    /// one is found, so a head without context allocates nothing.
    private var values: [Range<Int>?] = []
    /// The lines that carry context (every field but `tracestate`), in order.
    private(set) var contextLines: [Range<Int>] = []
    /// The `tracestate` lines, in order.
    private(set) var stateLines: [Range<Int>] = []

    /// Whether the head carries any trace context (a `tracestate` alone is none).
    var hasContext: Bool { !contextLines.isEmpty }

    mutating func found(_ field: Field, line: Range<Int>, value: Range<Int>) {
        if field == .tracestate { stateLines.append(line) } else { contextLines.append(line) }
        if values.isEmpty { values = Array(repeating: nil, count: 8) }
        if values[field.rawValue] == nil { values[field.rawValue] = value }
    }

    /// The value of `field`, when the head has it.
    func value(_ field: Field) -> Range<Int>? {
        values.isEmpty ? nil : values[field.rawValue]
    }

    /// The lines a span's context replaces, in order: the context lines, and the
    /// `tracestate` lines too when `state` (a new trace drops the state it did not continue).
    func replacedLines(state: Bool) -> [Range<Int>] {
        guard state && !stateLines.isEmpty else { return contextLines }
        return (contextLines + stateLines).sorted { $0.lowerBound < $1.lowerBound }
    }
}
