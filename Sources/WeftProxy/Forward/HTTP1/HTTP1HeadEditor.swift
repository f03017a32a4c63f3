import NIOCore

/// Writes an HTTP/1 head that route filters change (header modifiers, URLRewrite, the
/// retry mark), from the head's original bytes: the start line (with a new target when the
/// path is rewritten), the field lines that are kept, then the added ones. Heads no filter
/// changes never come here; they are forwarded as slices of the bytes received.
enum HTTP1HeadEditor {
    /// - Parameters:
    ///   - bytes: exactly the head, as parsed into `head`.
    ///   - edits: header modifiers, applied in order.
    ///   - host: URLRewrite's hostname: the Host line is replaced.
    ///   - path: the new path (the query is kept).
    ///   - extraLines: lines to add last (each ending in CRLF).
    ///   - close: end with `connection: close` (dropping a kept keep-alive line).
    static func edit(
        _ bytes: UnsafeRawBufferPointer, head: HTTP1Head, isRequest: Bool, edits: [HeaderEdits], host: String? = nil,
        path: String? = nil, extraLines: String = "", close: Bool = false, allocator: ByteBufferAllocator
    ) -> ByteBuffer {
        var out = allocator.buffer(capacity: bytes.count + 128)
        // The start line.
        var lineEnd = 0
        while lineEnd + 1 < bytes.count && !(bytes[lineEnd] == 0x0D && bytes[lineEnd + 1] == 0x0A) { lineEnd += 1 }
        if isRequest, let path {
            out.writeBytes(UnsafeRawBufferPointer(rebasing: bytes[0..<head.target.lowerBound]))
            out.writeString(path)
            var queryStart = head.target.lowerBound
            while queryStart < head.target.upperBound && bytes[queryStart] != 0x3F { queryStart += 1 }
            out.writeBytes(UnsafeRawBufferPointer(rebasing: bytes[queryStart..<(lineEnd + 2)]))
        } else {
            out.writeBytes(UnsafeRawBufferPointer(rebasing: bytes[0..<(lineEnd + 2)]))
        }
        // The field lines: hop-by-hop ones and those the modifiers replace or remove go.
        var cursor = lineEnd + 2
        let end = bytes.count - 2
        while cursor < end {
            var next = cursor
            while next + 1 < bytes.count && !(bytes[next] == 0x0D && bytes[next + 1] == 0x0A) { next += 1 }
            next += 2
            var colon = cursor
            while colon < next && bytes[colon] != 0x3A { colon += 1 }
            let name = UnsafeRawBufferPointer(rebasing: bytes[cursor..<colon])
            let isDropped = head.droppedLines.contains { $0.lowerBound == cursor }
            let isKeepAlive = close && head.keepAliveLine?.lowerBound == cursor
            let isHost = host != nil && Self.isHost(name)
            if !isDropped && !isKeepAlive && !isHost && !edits.contains(where: { $0.drops(name) }) {
                out.writeBytes(UnsafeRawBufferPointer(rebasing: bytes[cursor..<next]))
            }
            cursor = next
        }
        if let host { out.writeString("host: \(host)\r\n") }
        for edit in edits { out.writeString(edit.lines()) }
        out.writeString(extraLines)
        if close { out.writeString("connection: close\r\n") }
        out.writeString("\r\n")
        return out
    }

    /// The head without the lines `dropped` (the parser's hop-by-hop lines) and `replaced`
    /// (both in order), and with what `lines` writes (at most `capacity` bytes, each line
    /// ending in CRLF) after the rest: the kept bytes copied once, in one buffer, with no
    /// string made on the way. A traced request without filters comes here (its span's
    /// context in place of the caller's); `edit` looks at every line for filters.
    static func replacingLines(
        _ bytes: UnsafeRawBufferPointer, dropped: [Range<Int>], replaced: [Range<Int>], capacity: Int,
        allocator: ByteBufferAllocator, lines: (inout ByteBuffer) -> Void
    ) -> ByteBuffer {
        var out = allocator.buffer(capacity: bytes.count + capacity)
        // Both lists are in order: walk them together, copying what lies between.
        var cursor = 0
        var (d, r) = (0, 0)
        while d < dropped.count || r < replaced.count {
            let line: Range<Int>
            if r == replaced.count || (d < dropped.count && dropped[d].lowerBound < replaced[r].lowerBound) {
                line = dropped[d]
                d += 1
            } else {
                line = replaced[r]
                r += 1
            }
            if line.lowerBound > cursor {
                out.writeBytes(UnsafeRawBufferPointer(rebasing: bytes[cursor..<line.lowerBound]))
            }
            cursor = max(cursor, line.upperBound)
        }
        let end = bytes.count - 2  // before the empty line
        if end > cursor { out.writeBytes(UnsafeRawBufferPointer(rebasing: bytes[cursor..<end])) }
        lines(&out)
        out.writeStaticString("\r\n")
        return out
    }

    private static func isHost(_ name: UnsafeRawBufferPointer) -> Bool {
        name.count == 4 && (name[0] | 0x20) == 0x68 && (name[1] | 0x20) == 0x6F && (name[2] | 0x20) == 0x73
            && (name[3] | 0x20) == 0x74
    }
}
