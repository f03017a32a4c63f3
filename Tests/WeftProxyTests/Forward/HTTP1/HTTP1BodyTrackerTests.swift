import XCTest

@testable import WeftProxy

/// What a tracker made of a body fed in pieces.
private struct Fed: Equatable {
    var consumed: Int
    var isComplete: Bool
}

/// Feeds `bytes` to a new tracker in pieces ending at `cuts` (then the rest), each piece
/// its own buffer, until the tracker stops short of a piece's end, as the proxy does.
private func feed(_ bytes: [UInt8], framing: HTTP1Head.Framing, cuts: [Int] = []) throws -> Fed {
    var tracker = HTTP1BodyTracker(framing: framing)
    var consumed = 0
    var start = 0
    for end in cuts + [bytes.count] {
        let piece = Array(bytes[start..<end])
        start = end
        let taken = try piece.withUnsafeBytes { try tracker.consume($0) }
        XCTAssertLessThanOrEqual(taken, piece.count)
        consumed += taken
        if taken < piece.count {
            XCTAssertTrue(tracker.isComplete, "stopped short of a piece before the body ended")
            break
        }
    }
    return Fed(consumed: consumed, isComplete: tracker.isComplete)
}

private func feed(_ text: String, framing: HTTP1Head.Framing, cuts: [Int] = []) throws -> Fed {
    try feed(Array(text.utf8), framing: framing, cuts: cuts)
}

private func chunkError(_ text: String) -> HTTP1ParseError.Code? {
    chunkError(Array(text.utf8))
}

private func chunkError(_ bytes: [UInt8]) -> HTTP1ParseError.Code? {
    do {
        _ = try feed(bytes, framing: .chunked)
        return nil
    } catch {
        return (error as? HTTP1ParseError)?.code
    }
}

final class HTTP1BodyTrackerTests: XCTestCase {
    // MARK: - Length

    func testContentLengthStopsAtItsEnd() throws {
        XCTAssertEqual(try feed("hello", framing: .contentLength(5)), Fed(consumed: 5, isComplete: true))
        XCTAssertEqual(try feed("hel", framing: .contentLength(5)), Fed(consumed: 3, isComplete: false))
        XCTAssertEqual(try feed("", framing: .contentLength(5)), Fed(consumed: 0, isComplete: false))
    }

    func testContentLengthLeavesPipelinedBytes() throws {
        let bytes = Array("helloGET / HTTP/1.1\r\nHost: a\r\n\r\n".utf8)
        XCTAssertEqual(try feed(bytes, framing: .contentLength(5)), Fed(consumed: 5, isComplete: true))
        for cut in 0...bytes.count {
            XCTAssertEqual(
                try feed(bytes, framing: .contentLength(5), cuts: [cut]), Fed(consumed: 5, isComplete: true),
                "cut at \(cut)")
        }
    }

    func testContentLengthAcrossBuffers() throws {
        var tracker = HTTP1BodyTracker(framing: .contentLength(10))
        XCTAssertEqual(try Array("abcd".utf8).withUnsafeBytes { try tracker.consume($0) }, 4)
        XCTAssertFalse(tracker.isComplete)
        XCTAssertEqual(try Array("efghi".utf8).withUnsafeBytes { try tracker.consume($0) }, 5)
        XCTAssertFalse(tracker.isComplete)
        XCTAssertEqual(try Array("jKLM".utf8).withUnsafeBytes { try tracker.consume($0) }, 1)
        XCTAssertTrue(tracker.isComplete)
        XCTAssertEqual(try Array("more".utf8).withUnsafeBytes { try tracker.consume($0) }, 0)
    }

    func testEmptyBodies() throws {
        XCTAssertTrue(HTTP1BodyTracker(framing: .none).isComplete)
        XCTAssertTrue(HTTP1BodyTracker(framing: .contentLength(0)).isComplete)
        XCTAssertEqual(try feed("GET / HTTP/1.1\r\n", framing: .none), Fed(consumed: 0, isComplete: true))
        XCTAssertEqual(try feed("GET / HTTP/1.1\r\n", framing: .contentLength(0)), Fed(consumed: 0, isComplete: true))
    }

    func testUntilCloseTakesEverything() throws {
        var tracker = HTTP1BodyTracker(framing: .untilClose)
        XCTAssertTrue(tracker.isUntilClose)
        XCTAssertEqual(
            try Array("0\r\n\r\nHTTP/1.1 200 OK\r\n\r\n".utf8).withUnsafeBytes { try tracker.consume($0) }, 24)
        XCTAssertFalse(tracker.isComplete)
        XCTAssertTrue(tracker.isUntilClose)
        XCTAssertFalse(HTTP1BodyTracker(framing: .chunked).isUntilClose)
    }

    // MARK: - Chunked

    func testChunkedBody() throws {
        let body = "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
        XCTAssertEqual(
            try feed(body + "GET / HTTP/1.1\r\n", framing: .chunked), Fed(consumed: body.utf8.count, isComplete: true))
        XCTAssertEqual(try feed(body, framing: .chunked), Fed(consumed: body.utf8.count, isComplete: true))
        XCTAssertEqual(
            try feed(Array(body.utf8.dropLast()), framing: .chunked),
            Fed(consumed: body.utf8.count - 1, isComplete: false))
    }

    func testChunkSizesAreHexInEitherCase() throws {
        let data = String(repeating: "x", count: 26)
        for size in ["1a", "1A", "01a", "001A"] {
            let body = "\(size)\r\n\(data)\r\n0\r\n\r\n"
            XCTAssertEqual(try feed(body, framing: .chunked), Fed(consumed: body.utf8.count, isComplete: true), size)
        }
    }

    func testChunkExtensions() throws {
        for line in [
            "5;name", "5;name=value", "5;a=1;b=\"two; three\"", "5 ;x", "5\t; x = y", "5;", "5 \t ;x", "5 ", "5\t",
        ] {
            let body = "\(line)\r\nhello\r\n0;last\r\n\r\n"
            XCTAssertEqual(
                try feed(body, framing: .chunked), Fed(consumed: body.utf8.count, isComplete: true),
                line.debugDescription)
        }
    }

    /// Found by the fuzzer: whitespace after the size let anything through as an
    /// extension, so `1 0` (size 1 to us, perhaps 0x10 to a lenient server) was accepted.
    func testOnlyAnExtensionMayFollowWhitespaceAfterTheSize() {
        XCTAssertEqual(chunkError("5 x\r\nhello\r\n0\r\n\r\n"), .invalidChunk)
        XCTAssertEqual(chunkError("1 0\r\nx\r\n0\r\n\r\n"), .invalidChunk)
        XCTAssertEqual(chunkError("3\tPOST\"\r\n0H"), .invalidChunk)
        XCTAssertEqual(chunkError("5 \t=x\r\nhello\r\n0\r\n\r\n"), .invalidChunk)
    }

    func testControlBytesInAnExtensionAreRejected() {
        XCTAssertEqual(chunkError("5;a\u{00}\r\nhello\r\n0\r\n\r\n"), .invalidChunk)
        XCTAssertEqual(chunkError("5;a\nhello\r\n0\r\n\r\n"), .invalidChunk)
        XCTAssertEqual(chunkError("5;a\u{7F}\r\nhello\r\n0\r\n\r\n"), .invalidChunk)
    }

    func testTrailers() throws {
        let body = "5\r\nhello\r\n0\r\nX-Checksum: abc\r\nX-Other:\t1 2\r\n\r\n"
        XCTAssertEqual(try feed(body + "NEXT", framing: .chunked), Fed(consumed: body.utf8.count, isComplete: true))
    }

    func testMalformedTrailersAreRejected() {
        XCTAssertEqual(chunkError("0\r\n X: folded\r\n\r\n"), .invalidChunk)
        XCTAssertEqual(chunkError("0\r\n\tX: folded\r\n\r\n"), .invalidChunk)
        XCTAssertEqual(chunkError("0\r\n:x\r\n\r\n"), .invalidChunk)
        XCTAssertEqual(chunkError("0\r\nX: a\u{00}\r\n\r\n"), .invalidChunk)
        XCTAssertEqual(chunkError("0\r\nX: a\nY: b\r\n\r\n"), .invalidChunk)
        XCTAssertEqual(chunkError("0\r\nX: a\r\r\n\r\n"), .invalidChunk)
    }

    func testTheLastChunkMustEndInCRLF() throws {
        XCTAssertEqual(chunkError("0\r\n\rX"), .invalidChunk)
        XCTAssertEqual(chunkError("0\r\n\n"), .invalidChunk)
        XCTAssertEqual(try feed("0\r\n\r", framing: .chunked), Fed(consumed: 4, isComplete: false))
        XCTAssertEqual(try feed("0\r\nX: 1\r\n", framing: .chunked), Fed(consumed: 9, isComplete: false))
    }

    func testInvalidChunkSizesAreRejected() {
        for line in ["g", "-1", "+1", "0x5", " 5", ";x", "", "5.0", "\u{0B}5"] {
            XCTAssertEqual(chunkError("\(line)\r\nhello\r\n0\r\n\r\n"), .invalidChunk, line.debugDescription)
        }
    }

    func testChunkSizeLineMustEndInCRLF() {
        XCTAssertEqual(chunkError("5\nhello\r\n0\r\n\r\n"), .invalidChunk)
        XCTAssertEqual(chunkError("5\rhello\r\n0\r\n\r\n"), .invalidChunk)
        XCTAssertEqual(chunkError("5;x\rhello\r\n0\r\n\r\n"), .invalidChunk)
    }

    func testChunkDataMustEndInCRLF() {
        XCTAssertEqual(chunkError("5\r\nhelloX\r\n0\r\n\r\n"), .invalidChunk)
        XCTAssertEqual(chunkError("5\r\nhello\n0\r\n\r\n"), .invalidChunk)
        XCTAssertEqual(chunkError("5\r\nhello\rX0\r\n\r\n"), .invalidChunk)
        XCTAssertEqual(chunkError("5\r\nhello world\r\n0\r\n\r\n"), .invalidChunk)
        XCTAssertEqual(chunkError("5\r\nhell\r\n0\r\n\r\n0\r\n\r\n"), .invalidChunk)
    }

    func testChunkSizeDigitLimit() throws {
        // 15 hex digits fit an Int; the 16th is rejected, even as a leading zero.
        XCTAssertEqual(try feed("fffffffffffffff\r\nabc", framing: .chunked), Fed(consumed: 20, isComplete: false))
        XCTAssertEqual(try feed("000000000000005\r\nhello\r\n0\r\n\r\n", framing: .chunked).isComplete, true)
        XCTAssertEqual(chunkError("ffffffffffffffff\r\n"), .invalidChunk)
        XCTAssertEqual(chunkError("10000000000000000\r\n"), .invalidChunk)
        XCTAssertEqual(chunkError("0000000000000005\r\nhello\r\n0\r\n\r\n"), .invalidChunk)
        XCTAssertEqual(chunkError("ffffffffffffffffffffffffffffffff\r\n"), .invalidChunk)
    }

    func testALargeChunkIsCountedAcrossBuffers() throws {
        let size = 70_000
        let body = Array("11170\r\n".utf8) + [UInt8](repeating: 0x61, count: size) + Array("\r\n0\r\n\r\n".utf8)
        XCTAssertEqual(
            try feed(body, framing: .chunked, cuts: [3, 100, 65_536, size]), Fed(consumed: body.count, isComplete: true)
        )
    }

    // MARK: - Buffer boundaries

    /// Every body, split into two buffers at every position and into three at every pair
    /// of positions, ends at the same byte as when fed whole.
    func testChunkedBodySplitAnywhere() throws {
        let bodies = [
            "0\r\n\r\n",
            "1\r\na\r\n0\r\n\r\n",
            "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
            "a;ext=\"v\"\r\n0123456789\r\n0;x\r\n\r\n",
            "3 ;e\r\nabc\r\n0\r\nTrailer: one\r\nTrailer-Two:  x \r\n\r\n",
            "1A\r\nabcdefghijklmnopqrstuvwxyz\r\n00\r\n\r\n",
            "2\r\n\r\n\r\n0\r\n\r\n",
        ]
        let next = "POST / HTTP/1.1\r\nHost: a\r\n\r\n"
        for body in bodies {
            let bytes = Array((body + next).utf8)
            let expected = Fed(consumed: body.utf8.count, isComplete: true)
            XCTAssertEqual(try feed(bytes, framing: .chunked), expected, body.debugDescription)
            XCTAssertEqual(
                try feed(bytes, framing: .chunked, cuts: Array(1..<bytes.count)), expected,
                "\(body.debugDescription) byte by byte")
            for first in 0...bytes.count {
                XCTAssertEqual(
                    try feed(bytes, framing: .chunked, cuts: [first]), expected,
                    "\(body.debugDescription) cut at \(first)")
                for second in stride(from: first, through: bytes.count, by: 3) {
                    XCTAssertEqual(
                        try feed(bytes, framing: .chunked, cuts: [first, second]), expected,
                        "\(body.debugDescription) cut at \(first) and \(second)")
                }
            }
        }
    }

    /// A prefix of a body is never complete and is consumed whole, wherever it is split.
    func testIncompleteChunkedBodySplitAnywhere() throws {
        let body = Array("5;x\r\nhello\r\n0\r\nT: 1\r\n\r\n".utf8)
        for length in 0..<body.count {
            let prefix = Array(body[0..<length])
            for cut in 0...length {
                XCTAssertEqual(
                    try feed(prefix, framing: .chunked, cuts: [cut]), Fed(consumed: length, isComplete: false),
                    "\(length) cut at \(cut)")
            }
        }
    }

    /// An invalid body is rejected wherever it is split.
    func testInvalidChunkedBodySplitAnywhere() {
        for body in ["5\r\nhelloX\r\n", "5 x\r\n", "0\r\n X\r\n\r\n", "fffffffffffffffff"] {
            let bytes = Array(body.utf8)
            for cut in 0...bytes.count {
                XCTAssertThrowsError(
                    try feed(bytes, framing: .chunked, cuts: [cut]), "\(body.debugDescription) cut at \(cut)"
                ) {
                    XCTAssertEqual(($0 as? HTTP1ParseError)?.code, .invalidChunk)
                }
            }
        }
    }

    func testContentLengthSplitAnywhere() throws {
        let bytes = Array("0123456789NEXT".utf8)
        for length in 1...10 {
            for cut in 0...bytes.count {
                XCTAssertEqual(
                    try feed(bytes, framing: .contentLength(length), cuts: [cut]),
                    Fed(consumed: length, isComplete: true))
            }
        }
    }
}
