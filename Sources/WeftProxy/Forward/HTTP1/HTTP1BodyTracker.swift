/// Follows an HTTP/1.x body byte by byte to find where the message ends, without
/// decoding it: the proxy forwards chunked bodies, chunk extensions and trailers as the
/// sender wrote them, and needs only the boundary (to reuse the connection and to
/// answer pipelined requests in order). HTTP/1 over HTTP/2 also asks where the payload
/// runs are (`consume(_:data:)`), to send them as DATA without the chunk framing.
///
/// A struct of plain values: no allocation, tested without a channel.
struct HTTP1BodyTracker {
    private enum State: Equatable {
        case length(remaining: Int)
        case chunkSize(digits: Int, size: Int)
        /// Whitespace after the size: only more of it, an extension or the CRLF may follow.
        case chunkSizeWhitespace(size: Int)
        case chunkExtension(size: Int)
        case chunkSizeLF(size: Int)
        case chunkData(remaining: Int)
        case chunkDataCR
        case chunkDataLF
        case trailerLineStart
        case trailerLine
        case trailerLineLF
        case finalLF
        case untilClose
        case done
    }

    private var state: State

    init(framing: HTTP1Head.Framing) {
        switch framing {
        case .none: state = .done
        case .contentLength(let length): state = length == 0 ? .done : .length(remaining: length)
        case .chunked: state = .chunkSize(digits: 0, size: 0)
        case .untilClose: state = .untilClose
        }
    }

    /// True once the whole body has passed.
    var isComplete: Bool { state == .done }

    /// True for a body that ends only when the sender closes.
    var isUntilClose: Bool { state == .untilClose }

    /// Consumes as many of `bytes` as belong to this body.
    ///
    /// - Returns: how many bytes belong to the body; fewer than `bytes.count` only when
    ///   the body ended inside `bytes` (what follows is the next message).
    /// - Throws: `invalidChunk` for malformed chunked framing.
    @inline(__always)
    mutating func consume(_ bytes: UnsafeRawBufferPointer) throws -> Int {
        try consume(bytes, data: { _ in })
    }

    /// Consumes as `consume(_:)` does, and reports each run of payload bytes (the body
    /// without chunk framing or trailers) as a range of `bytes`, in order: what the
    /// HTTP/1-over-HTTP/2 bridge sends as DATA.
    @inline(__always)
    mutating func consume(_ bytes: UnsafeRawBufferPointer, data: (Range<Int>) -> Void) throws -> Int {
        var index = 0
        let count = bytes.count
        while index < count {
            switch state {
            case .done:
                return index
            case .untilClose:
                if index < count { data(index..<count) }
                return count
            case .length(let remaining):
                let take = min(remaining, count - index)
                data(index..<index + take)
                index += take
                state = remaining == take ? .done : .length(remaining: remaining - take)
            case .chunkData(let remaining):
                let take = min(remaining, count - index)
                data(index..<index + take)
                index += take
                state = remaining == take ? .chunkDataCR : .chunkData(remaining: remaining - take)
            case .chunkSize(let digits, let size):
                let byte = bytes[index]
                if let value = hexValue(byte) {
                    // 15 hex digits stay below Int.max; a larger chunk is not a real chunk.
                    guard digits < 15 else { throw chunkError("chunk size has too many digits") }
                    state = .chunkSize(digits: digits + 1, size: size << 4 | value)
                } else if digits == 0 {
                    throw chunkError("chunk size is not hexadecimal")
                } else if byte == 0x0D {
                    state = .chunkSizeLF(size: size)
                } else if byte == 0x3B {
                    state = .chunkExtension(size: size)
                } else if byte == 0x20 || byte == 0x09 {
                    state = .chunkSizeWhitespace(size: size)
                } else {
                    throw chunkError("unexpected byte after chunk size")
                }
                index += 1
            case .chunkSizeWhitespace(let size):
                // chunk-ext = *( BWS ";" ... ) (RFC 9112 §7.1.1): `5 x` or `1 0` is not a chunk
                // size line, and another parser could read it as a different size.
                let byte = bytes[index]
                if byte == 0x3B {
                    state = .chunkExtension(size: size)
                } else if byte == 0x0D {
                    state = .chunkSizeLF(size: size)
                } else if byte != 0x20 && byte != 0x09 {
                    throw chunkError("unexpected byte after chunk size")
                }
                index += 1
            case .chunkExtension(let size):
                let byte = bytes[index]
                if byte == 0x0D {
                    state = .chunkSizeLF(size: size)
                } else if !HTTP1HeadParser.isFieldValueByte(byte) {
                    throw chunkError("control byte in a chunk extension")
                }
                index += 1
            case .chunkSizeLF(let size):
                guard bytes[index] == 0x0A else { throw chunkError("chunk size line does not end in CRLF") }
                state = size == 0 ? .trailerLineStart : .chunkData(remaining: size)
                index += 1
            case .chunkDataCR:
                guard bytes[index] == 0x0D else { throw chunkError("chunk data is longer than its size") }
                state = .chunkDataLF
                index += 1
            case .chunkDataLF:
                guard bytes[index] == 0x0A else { throw chunkError("chunk data does not end in CRLF") }
                state = .chunkSize(digits: 0, size: 0)
                index += 1
            case .trailerLineStart:
                let byte = bytes[index]
                if byte == 0x0D {
                    state = .finalLF
                } else if byte == 0x20 || byte == 0x09 || !HTTP1HeadParser.isTokenByte(byte) {
                    throw chunkError("malformed trailer field")
                } else {
                    state = .trailerLine
                }
                index += 1
            case .trailerLine:
                let byte = bytes[index]
                if byte == 0x0D {
                    state = .trailerLineLF
                } else if !HTTP1HeadParser.isFieldValueByte(byte) {
                    throw chunkError("control byte in a trailer field")
                }
                index += 1
            case .trailerLineLF:
                guard bytes[index] == 0x0A else { throw chunkError("trailer line does not end in CRLF") }
                state = .trailerLineStart
                index += 1
            case .finalLF:
                guard bytes[index] == 0x0A else { throw chunkError("chunked body does not end in CRLF") }
                state = .done
                index += 1
            }
        }
        return index
    }

    private func chunkError(_ reason: String) -> HTTP1ParseError {
        HTTP1ParseError(.invalidChunk, reason)
    }

    @inline(__always)
    private func hexValue(_ byte: UInt8) -> Int? {
        switch byte {
        case 0x30...0x39: return Int(byte - 0x30)
        case 0x41...0x46: return Int(byte - 0x41 + 10)
        case 0x61...0x66: return Int(byte - 0x61 + 10)
        default: return nil
        }
    }
}
