import NIOHPACK

/// A borrowed view of a request head, as route matching needs it: the method, the path
/// and query of the target, and header values. Each driver provides one over what it
/// already holds (the HTTP/1 head's bytes in the connection's buffer; the HTTP/2 HPACK
/// block), so routes are written once and a request is never copied into a common type.
protocol RequestHeadView {
    /// Whether the method is exactly `method` (case-sensitive, as RFC 9110 says).
    func isMethod(_ method: UnsafeRawBufferPointer) -> Bool
    /// The target's path, without the query, to `body`.
    func withPath<R>(_ body: (UnsafeRawBufferPointer) -> R) -> R
    /// The target's query (after `?`, without it; empty when none), to `body`.
    func withQuery<R>(_ body: (UnsafeRawBufferPointer) -> R) -> R
    /// The first value of the header `lowercasedName`, or nil, to `body`.
    func withHeader<R>(_ lowercasedName: [UInt8], _ body: (UnsafeRawBufferPointer?) -> R) -> R
    /// The request's authority: HTTP/1's Host, HTTP/2's `:authority` (or its Host).
    func withAuthority<R>(_ body: (UnsafeRawBufferPointer?) -> R) -> R
}

private let hostName: [UInt8] = Array("host".utf8)
private let authorityName: [UInt8] = Array(":authority".utf8)

/// An HTTP/1 request head in place: `bytes` are exactly the head, as `HTTP1HeadParser`
/// delimited and parsed it into `head`.
struct HTTP1RequestHeadView: RequestHeadView {
    let bytes: UnsafeRawBufferPointer
    /// The parts of the parsed head it reads (not the head itself: copying a view would
    /// then retain the head's arrays).
    private let target: Range<Int>
    private let host: Range<Int>?
    /// Where the path is, found once per request (every matcher reads it).
    private let path: Range<Int>

    init(bytes: UnsafeRawBufferPointer, head: HTTP1Head) {
        self.bytes = bytes
        self.target = head.target
        self.host = head.host
        self.path = Self.pathRange(bytes, head.target)
    }

    func isMethod(_ method: UnsafeRawBufferPointer) -> Bool {
        let length = target.lowerBound - 1
        guard length == method.count else { return false }
        for i in 0..<length where bytes[i] != method[i] { return false }
        return true
    }

    /// The path's range: origin-form `/p?q`; absolute-form `http://h/p?q` (the path starts
    /// at the first `/` after the authority; none means `/`); `*` (OPTIONS) as is.
    private static func pathRange(_ bytes: UnsafeRawBufferPointer, _ target: Range<Int>) -> Range<Int> {
        var start = target.lowerBound
        let end = target.upperBound
        if start < end && bytes[start] != 0x2F && bytes[start] != 0x2A {
            // absolute-form: skip "scheme://authority"
            var i = start
            while i + 2 < end && !(bytes[i] == 0x3A && bytes[i + 1] == 0x2F && bytes[i + 2] == 0x2F) { i += 1 }
            i += 3
            while i < end && bytes[i] != 0x2F && bytes[i] != 0x3F { i += 1 }
            start = min(i, end)
        }
        var stop = start
        while stop < end && bytes[stop] != 0x3F && bytes[stop] != 0x23 { stop += 1 }
        return start..<stop
    }

    func withPath<R>(_ body: (UnsafeRawBufferPointer) -> R) -> R {
        let range = path
        if range.isEmpty { return Self.slash.withUnsafeBytes(body) }
        return body(UnsafeRawBufferPointer(rebasing: bytes[range]))
    }

    private static let slash: [UInt8] = [0x2F]

    func withQuery<R>(_ body: (UnsafeRawBufferPointer) -> R) -> R {
        let path = self.path
        let end = target.upperBound
        guard path.upperBound < end, bytes[path.upperBound] == 0x3F else {
            return body(UnsafeRawBufferPointer(rebasing: bytes[0..<0]))
        }
        var stop = path.upperBound + 1
        while stop < end && bytes[stop] != 0x23 { stop += 1 }
        return body(UnsafeRawBufferPointer(rebasing: bytes[(path.upperBound + 1)..<stop]))
    }

    func withHeader<R>(_ lowercasedName: [UInt8], _ body: (UnsafeRawBufferPointer?) -> R) -> R {
        // Field lines start after the request line's CRLF; the head ends with an empty line.
        var cursor = target.upperBound
        while cursor + 1 < bytes.count && !(bytes[cursor] == 0x0D && bytes[cursor + 1] == 0x0A) { cursor += 1 }
        cursor += 2
        let end = bytes.count - 2
        while cursor < end {
            let lineStart = cursor
            var colon = cursor
            while colon < end && bytes[colon] != 0x3A { colon += 1 }
            var lineEnd = colon
            while lineEnd + 1 < bytes.count && !(bytes[lineEnd] == 0x0D && bytes[lineEnd + 1] == 0x0A) { lineEnd += 1 }
            if colon - lineStart == lowercasedName.count
                && Self.equalsLowercased(bytes, from: lineStart, lowercasedName)
            {
                var valueStart = colon + 1
                while valueStart < lineEnd && (bytes[valueStart] == 0x20 || bytes[valueStart] == 0x09) {
                    valueStart += 1
                }
                var valueEnd = lineEnd
                while valueEnd > valueStart && (bytes[valueEnd - 1] == 0x20 || bytes[valueEnd - 1] == 0x09) {
                    valueEnd -= 1
                }
                return body(UnsafeRawBufferPointer(rebasing: bytes[valueStart..<valueEnd]))
            }
            cursor = lineEnd + 2
        }
        return body(nil)
    }

    func withAuthority<R>(_ body: (UnsafeRawBufferPointer?) -> R) -> R {
        guard let host else { return body(nil) }
        return body(UnsafeRawBufferPointer(rebasing: bytes[host]))
    }

    private static func equalsLowercased(_ bytes: UnsafeRawBufferPointer, from start: Int, _ name: [UInt8]) -> Bool {
        for i in 0..<name.count {
            var byte = bytes[start + i]
            if byte >= 0x41 && byte <= 0x5A { byte |= 0x20 }
            if byte != name[i] { return false }
        }
        return true
    }
}

/// An HTTP/2 request head: its HPACK header block (pseudo-headers included).
struct HPACKRequestHeadView: RequestHeadView {
    let headers: HPACKHeaders
    /// `:path`, looked up once per request (every matcher reads it).
    private let target: String

    init(headers: HPACKHeaders) {
        self.headers = headers
        self.target = headers.first(name: ":path") ?? "/"
    }

    func isMethod(_ method: UnsafeRawBufferPointer) -> Bool {
        guard var value = headers.first(name: ":method") else { return false }
        return value.withUTF8 { $0.elementsEqual(method) }
    }

    func withPath<R>(_ body: (UnsafeRawBufferPointer) -> R) -> R {
        var path = target
        return path.withUTF8 { utf8 in
            var stop = 0
            while stop < utf8.count && utf8[stop] != 0x3F && utf8[stop] != 0x23 { stop += 1 }
            return body(UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(utf8)[0..<stop]))
        }
    }

    func withQuery<R>(_ body: (UnsafeRawBufferPointer) -> R) -> R {
        var path = target
        return path.withUTF8 { utf8 in
            let raw = UnsafeRawBufferPointer(utf8)
            guard let mark = raw.firstIndex(of: 0x3F) else { return body(UnsafeRawBufferPointer(rebasing: raw[0..<0])) }
            var stop = mark + 1
            while stop < raw.count && raw[stop] != 0x23 { stop += 1 }
            return body(UnsafeRawBufferPointer(rebasing: raw[(mark + 1)..<stop]))
        }
    }

    func withAuthority<R>(_ body: (UnsafeRawBufferPointer?) -> R) -> R {
        if headers.contains(name: ":authority") { return withHeader(authorityName, body) }
        return withHeader(hostName, body)
    }

    func withHeader<R>(_ lowercasedName: [UInt8], _ body: (UnsafeRawBufferPointer?) -> R) -> R {
        for (name, value, _) in headers {
            var name = name
            let matches = name.withUTF8 { utf8 in
                utf8.count == lowercasedName.count
                    && zip(utf8, lowercasedName).allSatisfy { ($0 >= 0x41 && $0 <= 0x5A ? $0 | 0x20 : $0) == $1 }
            }
            if matches {
                var value = value
                return value.withUTF8 { body(UnsafeRawBufferPointer($0)) }
            }
        }
        return body(nil)
    }
}
