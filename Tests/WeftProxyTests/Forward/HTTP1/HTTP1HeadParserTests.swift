import NIOCore
import XCTest

@testable import WeftProxy

/// A head run through the parser the way `HTTP1ProxyHandler` does, with its bytes, so
/// tests can look at what the ranges point to.
private struct Parsed {
    var head: HTTP1Head
    var bytes: [UInt8]

    func text(_ range: Range<Int>) -> String { String(decoding: bytes[range], as: UTF8.self) }
    var target: String { text(head.target) }
    var host: String? { head.host.map(text) }
    var dropped: [String] { head.droppedLines.map(text) }
    /// What the proxy forwards: the head minus its dropped lines.
    var forwarded: String {
        var result: [UInt8] = []
        var cursor = 0
        for line in head.droppedLines {
            result += bytes[cursor..<line.lowerBound]
            cursor = line.upperBound
        }
        result += bytes[cursor..<head.length]
        return String(decoding: result, as: UTF8.self)
    }
}

private struct IncompleteHead: Error {}

/// Skips leading empty lines (requests only), finds the end of the head and parses it.
private func parse(_ bytes: [UInt8], as kind: HTTP1HeadParser.Kind = .request) throws -> Parsed {
    try bytes.withUnsafeBytes { buffer in
        var start = 0
        if case .request = kind { start = HTTP1HeadParser.leadingEmptyLines(buffer) }
        let rest = UnsafeRawBufferPointer(rebasing: buffer[start...])
        guard let end = try HTTP1HeadParser.findEnd(rest, resumeAt: 0) else { throw IncompleteHead() }
        var head = HTTP1Head()
        try HTTP1HeadParser.parse(UnsafeRawBufferPointer(rebasing: rest[0..<end]), kind: kind, into: &head)
        return Parsed(head: head, bytes: Array(rest[0..<end]))
    }
}

/// The trace fields of a parsed request head.
private func traceFields(of parsed: Parsed) -> HTTP1TraceFields {
    parsed.bytes.withUnsafeBytes { HTTP1HeadParser.traceFields($0, targetEnd: parsed.head.target.upperBound) }
}

private func parse(_ text: String, as kind: HTTP1HeadParser.Kind = .request) throws -> Parsed {
    try parse(Array(text.utf8), as: kind)
}

private func response(_ text: String, to method: HTTP1Method = .get) throws -> Parsed {
    try parse(text, as: .response(requestMethod: method))
}

/// The code of the error parsing `text` throws, or nil when it parses.
private func errorCode(_ text: String, as kind: HTTP1HeadParser.Kind = .request) -> HTTP1ParseError.Code? {
    errorCode(Array(text.utf8), as: kind)
}

private func errorCode(_ bytes: [UInt8], as kind: HTTP1HeadParser.Kind = .request) -> HTTP1ParseError.Code? {
    do {
        _ = try parse(bytes, as: kind)
        return nil
    } catch let error as HTTP1ParseError {
        return error.code
    } catch {
        XCTFail("unexpected error \(error)")
        return nil
    }
}

private func findEnd(_ bytes: [UInt8], resumeAt: Int = 0) throws -> Int? {
    try bytes.withUnsafeBytes { try HTTP1HeadParser.findEnd($0, resumeAt: resumeAt) }
}

/// Feeds `bytes` to `findEnd` as the proxy does when they arrive in pieces ending at
/// `cuts`: the buffer grows and each call resumes where the previous one stopped.
private func findEndIncrementally(_ bytes: [UInt8], cuts: [Int]) throws -> Int? {
    var scanned = 0
    for cut in cuts + [bytes.count] {
        if let end = try findEnd(Array(bytes[0..<cut]), resumeAt: scanned) { return end }
        scanned = cut
    }
    return nil
}

final class HTTP1HeadParserTests: XCTestCase {
    // MARK: - Request framing

    func testRequestWithoutBodyFields() throws {
        let text = "GET /index.html HTTP/1.1\r\nHost: a.example\r\nAccept: */*\r\n\r\n"
        let parsed = try parse(text)
        XCTAssertEqual(parsed.head.framing, .none)
        XCTAssertEqual(parsed.head.method, .get)
        XCTAssertEqual(parsed.head.minorVersion, 1)
        XCTAssertEqual(parsed.head.length, text.utf8.count)
        XCTAssertFalse(parsed.head.wantsClose)
        XCTAssertFalse(parsed.head.isUpgrade)
        XCTAssertEqual(parsed.head.droppedLines, [])
        XCTAssertEqual(parsed.forwarded, text)
    }

    func testRequestContentLength() throws {
        let parsed = try parse("POST /submit HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\nhello world")
        XCTAssertEqual(parsed.head.framing, .contentLength(11))
        XCTAssertEqual(parsed.head.length, "POST /submit HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\n".utf8.count)
    }

    func testRequestContentLengthZeroHasNoBody() throws {
        XCTAssertEqual(try parse("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n").head.framing, .none)
    }

    func testRequestContentLengthFieldNameIsCaseInsensitive() throws {
        XCTAssertEqual(
            try parse("POST / HTTP/1.1\r\nhost: a\r\ncontent-LENGTH: 7\r\n\r\n").head.framing, .contentLength(7))
    }

    func testRequestChunked() throws {
        XCTAssertEqual(
            try parse("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n").head.framing, .chunked)
        XCTAssertEqual(
            try parse("POST / HTTP/1.1\r\nHost: a\r\ntransfer-encoding: Chunked\r\n\r\n").head.framing, .chunked)
        XCTAssertEqual(
            try parse("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n").head.framing, .chunked)
        XCTAssertEqual(
            try parse("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n")
                .head.framing,
            .chunked)
        XCTAssertEqual(
            try parse("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked \t\r\n\r\n").head.framing, .chunked)
    }

    func testRequestTransferEncodingNotEndingInChunkedIsRejected() {
        XCTAssertEqual(
            errorCode("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n"), .invalidTransferEncoding)
        XCTAssertEqual(
            errorCode("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n"),
            .invalidTransferEncoding)
        XCTAssertEqual(
            errorCode("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n\r\n"),
            .invalidTransferEncoding)
        XCTAssertEqual(
            errorCode("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity\r\n\r\n"), .invalidTransferEncoding)
    }

    func testChunkedTwiceIsRejected() {
        XCTAssertEqual(
            errorCode("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked\r\n\r\n"),
            .invalidTransferEncoding)
        XCTAssertEqual(
            errorCode("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n"),
            .invalidTransferEncoding)
    }

    func testEmptyTransferEncodingIsRejected() {
        XCTAssertEqual(errorCode("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\r\n\r\n"), .invalidTransferEncoding)
        XCTAssertEqual(
            errorCode("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: , \r\n\r\n"), .invalidTransferEncoding)
    }

    func testContentLengthWithTransferEncodingIsRejected() {
        XCTAssertEqual(
            errorCode("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"),
            .conflictingFraming)
        XCTAssertEqual(
            errorCode("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n"),
            .conflictingFraming)
        XCTAssertEqual(
            errorCode("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\nTransfer-Encoding: chunked\r\n\r\n"),
            .conflictingFraming)
    }

    func testHTTP10RequestWithTransferEncodingIsRejected() {
        XCTAssertEqual(errorCode("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"), .conflictingFraming)
    }

    func testDifferingContentLengthsAreRejected() {
        XCTAssertEqual(
            errorCode("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n"),
            .invalidContentLength)
        XCTAssertEqual(errorCode("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 6\r\n\r\n"), .invalidContentLength)
    }

    func testRepeatedEqualContentLengthsAreAccepted() throws {
        XCTAssertEqual(
            try parse("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\n").head.framing, .contentLength(5))
        XCTAssertEqual(
            try parse("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n").head.framing,
            .contentLength(5))
        XCTAssertEqual(
            try parse("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 007\r\n\r\n").head.framing, .contentLength(7))
        XCTAssertEqual(
            try parse("POST / HTTP/1.1\r\nHost: a\r\nContent-Length:5\t\r\n\r\n").head.framing, .contentLength(5))
    }

    func testContentLengthMustBeDigits() {
        for value in ["+5", "-5", "5 5", "0x5", "5a", "five", "5.0", "1e3", "\"5\"", "", " ", ","] {
            XCTAssertEqual(
                errorCode("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: \(value)\r\n\r\n"), .invalidContentLength,
                "Content-Length: \(value)")
        }
    }

    func testContentLengthOverflowIsRejected() throws {
        XCTAssertEqual(
            try parse("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 999999999999999999\r\n\r\n").head.framing,
            .contentLength(999_999_999_999_999_999))
        for value in [
            "1000000000000000000", "9223372036854775807", "9223372036854775808", "99999999999999999999999999",
        ] {
            XCTAssertEqual(
                errorCode("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: \(value)\r\n\r\n"), .invalidContentLength,
                value)
        }
    }

    // MARK: - Response framing

    func testResponseFraming() throws {
        XCTAssertEqual(try response("HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\n").head.framing, .contentLength(12))
        XCTAssertEqual(try response("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n").head.framing, .none)
        XCTAssertEqual(try response("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n").head.framing, .chunked)
        XCTAssertEqual(try response("HTTP/1.1 200 OK\r\nServer: x\r\n\r\n").head.framing, .untilClose)
        XCTAssertEqual(try response("HTTP/1.0 200 OK\r\n\r\n").head.framing, .untilClose)
        // A final coding other than chunked: the body runs until the server closes (RFC 9112 §6.3).
        XCTAssertEqual(try response("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n").head.framing, .untilClose)
    }

    func testResponseStatus() throws {
        let parsed = try response("HTTP/1.1 404 Not Found\r\nContent-Length: 3\r\n\r\n")
        XCTAssertEqual(parsed.head.status, 404)
        XCTAssertEqual(parsed.head.minorVersion, 1)
        XCTAssertEqual(try response("HTTP/1.1 200\r\n\r\n").head.status, 200)
        XCTAssertEqual(try response("HTTP/1.1 599 \r\n\r\n").head.status, 599)
        XCTAssertEqual(try response("HTTP/1.1 200 Ok \u{80}\u{FF} fine\r\n\r\n").head.status, 200)
    }

    func testResponsesThatNeverHaveABody() throws {
        for status in [
            "100 Continue", "101 Switching Protocols", "103 Early Hints", "204 No Content", "304 Not Modified",
        ] {
            let parsed = try response("HTTP/1.1 \(status)\r\nContent-Length: 10\r\n\r\n")
            XCTAssertEqual(parsed.head.framing, .none, status)
            let chunked = try response("HTTP/1.1 \(status)\r\nTransfer-Encoding: chunked\r\n\r\n")
            XCTAssertEqual(chunked.head.framing, .none, status)
        }
    }

    func testResponseToHEADHasNoBody() throws {
        XCTAssertEqual(try response("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n", to: .head).head.framing, .none)
        XCTAssertEqual(
            try response("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", to: .head).head.framing, .none)
        XCTAssertEqual(try response("HTTP/1.1 404 Not Found\r\n\r\n", to: .head).head.framing, .none)
    }

    func testSuccessfulResponseToCONNECTHasNoBody() throws {
        XCTAssertEqual(try response("HTTP/1.1 200 Connection Established\r\n\r\n", to: .connect).head.framing, .none)
        XCTAssertEqual(try response("HTTP/1.1 299 OK\r\nContent-Length: 5\r\n\r\n", to: .connect).head.framing, .none)
        // A refusal is an ordinary response with a body.
        XCTAssertEqual(
            try response("HTTP/1.1 407 Auth\r\nContent-Length: 5\r\n\r\n", to: .connect).head.framing, .contentLength(5)
        )
        XCTAssertEqual(try response("HTTP/1.1 300 X\r\n\r\n", to: .connect).head.framing, .untilClose)
    }

    func testResponseWithContentLengthAndTransferEncodingIsRejected() {
        XCTAssertEqual(
            errorCode(
                "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
                as: .response(requestMethod: .get)),
            .conflictingFraming)
    }

    func testHTTP10ResponseWithTransferEncodingIsRejected() {
        XCTAssertEqual(
            errorCode("HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", as: .response(requestMethod: .get)),
            .conflictingFraming)
    }

    func testResponseWithDifferingContentLengthsIsRejected() {
        XCTAssertEqual(
            errorCode(
                "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", as: .response(requestMethod: .get)),
            .invalidContentLength)
    }

    func testMalformedStatusLines() {
        let kind = HTTP1HeadParser.Kind.response(requestMethod: .get)
        for line in [
            "HTTP/1.1 20 OK", "HTTP/1.1 2000 OK", "HTTP/1.1 099 Low", "HTTP/1.1 OK", "HTTP/1.1  200 OK",
            "HTTP/1.1 200 O\u{7F}K", "HTTP/1.1 200 O\u{01}K", "HTTP/1.1\t200 OK", "HTTP/1.1 2x0 OK",
        ] {
            XCTAssertEqual(errorCode("\(line)\r\n\r\n", as: kind), .invalidStatusLine, line.debugDescription)
        }
        XCTAssertEqual(errorCode("HTTX/1.1 200 OK\r\n\r\n", as: kind), .invalidStatusLine)
        XCTAssertEqual(errorCode("HTTP/2.0 200 OK\r\n\r\n", as: kind), .unsupportedVersion)
        XCTAssertEqual(errorCode("HTTP/1.1 200 OK\rX\r\n\r\n", as: kind), .invalidStatusLine)
    }

    // MARK: - Keep-alive

    func testHTTP11KeepsAliveUnlessClose() throws {
        XCTAssertFalse(try parse("GET / HTTP/1.1\r\nHost: a\r\n\r\n").head.wantsClose)
        XCTAssertTrue(try parse("GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n").head.wantsClose)
        XCTAssertTrue(try parse("GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, Close\r\n\r\n").head.wantsClose)
        XCTAssertTrue(
            try parse("GET / HTTP/1.1\r\nHost: a\r\nConnection: x\r\nConnection: CLOSE\r\n\r\n").head.wantsClose)
        XCTAssertFalse(try parse("GET / HTTP/1.1\r\nHost: a\r\nConnection: closed\r\n\r\n").head.wantsClose)
        XCTAssertTrue(try response("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n").head.wantsClose)
        XCTAssertFalse(try response("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n").head.wantsClose)
    }

    func testHTTP10ClosesUnlessKeepAlive() throws {
        XCTAssertTrue(try parse("GET / HTTP/1.0\r\n\r\n").head.wantsClose)
        XCTAssertFalse(try parse("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n").head.wantsClose)
        XCTAssertTrue(try parse("GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n").head.wantsClose)
        // The Keep-Alive field is not the Connection option.
        XCTAssertTrue(try parse("GET / HTTP/1.0\r\nKeep-Alive: timeout=5\r\n\r\n").head.wantsClose)
        XCTAssertTrue(try response("HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n").head.wantsClose)
        XCTAssertFalse(
            try response("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n").head.wantsClose)
        XCTAssertEqual(try parse("GET / HTTP/1.0\r\n\r\n").head.minorVersion, 0)
    }

    // MARK: - Upgrade

    func testUpgradeKeepsConnectionAndUpgradeLines() throws {
        let text =
            "GET /chat HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\r\n"
        let parsed = try parse(text)
        XCTAssertTrue(parsed.head.isUpgrade)
        XCTAssertEqual(parsed.head.droppedLines, [])
        XCTAssertEqual(parsed.forwarded, text)
    }

    func testUpgradeStillDropsOtherHopByHopFields() throws {
        let parsed = try parse(
            "GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, upgrade, X-Hop\r\nUpgrade: h2c\r\nKeep-Alive: 5\r\nX-Hop: 1\r\n\r\n"
        )
        XCTAssertTrue(parsed.head.isUpgrade)
        XCTAssertEqual(parsed.dropped, ["Keep-Alive: 5\r\n", "X-Hop: 1\r\n"])
    }

    func testUpgradeFieldWithoutConnectionUpgradeIsDropped() throws {
        let parsed = try parse("GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\r\n")
        XCTAssertFalse(parsed.head.isUpgrade)
        XCTAssertEqual(parsed.dropped, ["Upgrade: websocket\r\n"])
    }

    func testConnectionUpgradeWithoutUpgradeFieldIsNoUpgrade() throws {
        let parsed = try parse("GET / HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\n\r\n")
        XCTAssertFalse(parsed.head.isUpgrade)
        XCTAssertEqual(parsed.dropped, ["Connection: upgrade\r\n"])
    }

    func testUpgradeResponse() throws {
        let parsed = try response(
            "HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n")
        XCTAssertTrue(parsed.head.isUpgrade)
        XCTAssertEqual(parsed.head.status, 101)
        XCTAssertEqual(parsed.head.droppedLines, [])
    }

    // MARK: - Hop-by-hop fields

    func testHopByHopFieldsAreDropped() throws {
        let parsed = try parse(
            "GET / HTTP/1.1\r\nConnection: close\r\nHost: a\r\nKeep-Alive: timeout=5\r\nX-Keep: 1\r\nProxy-Connection: keep-alive\r\n"
                + "TE: trailers\r\nUpgrade: h2c\r\n\r\n")
        XCTAssertEqual(
            parsed.dropped,
            [
                "Connection: close\r\n", "Keep-Alive: timeout=5\r\n", "Proxy-Connection: keep-alive\r\n",
                "TE: trailers\r\n", "Upgrade: h2c\r\n",
            ])
        XCTAssertEqual(parsed.forwarded, "GET / HTTP/1.1\r\nHost: a\r\nX-Keep: 1\r\n\r\n")
    }

    func testHopByHopNamesAreCaseInsensitive() throws {
        let parsed = try parse(
            "GET / HTTP/1.1\r\nHost: a\r\nCONNECTION: x\r\nkeep-alive: 1\r\nte: trailers\r\nPROXY-connection: y\r\n\r\n"
        )
        XCTAssertEqual(parsed.head.droppedLines.count, 4)
        XCTAssertEqual(parsed.forwarded, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
    }

    func testFieldsNominatedByConnectionAreDropped() throws {
        let parsed = try parse(
            "GET / HTTP/1.1\r\nX-Early: 0\r\nHost: a\r\nConnection: x-early, X-Trace ,,x-late\r\nX-Trace: 1\r\nx-trace: 2\r\nX-Tracer: 3\r\n"
                + "X-Late: 4\r\n\r\n")
        XCTAssertEqual(
            parsed.dropped,
            [
                "X-Early: 0\r\n", "Connection: x-early, X-Trace ,,x-late\r\n", "X-Trace: 1\r\n", "x-trace: 2\r\n",
                "X-Late: 4\r\n",
            ])
        XCTAssertEqual(parsed.forwarded, "GET / HTTP/1.1\r\nHost: a\r\nX-Tracer: 3\r\n\r\n")
    }

    func testConnectionCannotNominateFramingOrHost() throws {
        let parsed = try parse(
            "POST / HTTP/1.1\r\nHost: a\r\nConnection: Content-Length, Transfer-Encoding, host, X-A\r\nContent-Length: 4\r\nX-A: 1\r\n\r\n"
        )
        XCTAssertEqual(parsed.dropped, ["Connection: Content-Length, Transfer-Encoding, host, X-A\r\n", "X-A: 1\r\n"])
        XCTAssertEqual(parsed.head.framing, .contentLength(4))
        XCTAssertEqual(parsed.host, "a")

        let chunked = try parse(
            "POST / HTTP/1.1\r\nHost: a\r\nConnection: transfer-encoding\r\nTransfer-Encoding: chunked\r\n\r\n")
        XCTAssertEqual(chunked.dropped, ["Connection: transfer-encoding\r\n"])
        XCTAssertEqual(chunked.head.framing, .chunked)
    }

    func testNominatedHopByHopFieldIsDroppedOnce() throws {
        let parsed = try parse(
            "GET / HTTP/1.1\r\nHost: a\r\nConnection: te, keep-alive, proxy-connection\r\nTE: x\r\nProxy-Connection: y\r\n\r\n"
        )
        XCTAssertEqual(parsed.head.droppedLines.count, 3)
        XCTAssertEqual(parsed.forwarded, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
    }

    /// Found by the fuzzer: the Connection line was dropped twice (once as nominated).
    func testConnectionNominatingConnectionDropsItOnce() throws {
        let parsed = try parse("GET / HTTP/1.1\r\nHost: a\r\nConnection: connection\r\n\r\n")
        XCTAssertEqual(parsed.dropped, ["Connection: connection\r\n"])
    }

    /// Found by the fuzzer: nominating Connection dropped it from an upgrade, so the
    /// next hop saw `Upgrade` without `Connection: upgrade`.
    func testConnectionNominatingConnectionKeepsAnUpgrade() throws {
        let text = "GET / HTTP/1.1\r\nHost: a\r\nConnection: upgrade, connection\r\nUpgrade: x\r\n\r\n"
        let parsed = try parse(text)
        XCTAssertTrue(parsed.head.isUpgrade)
        XCTAssertEqual(parsed.forwarded, text)
    }

    func testTraceContextLinesAreFoundOnRequestAndStillForwarded() throws {
        let text =
            "GET / HTTP/1.1\r\nHost: a\r\nTraceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01\r\n"
            + "tracestate: v=1\r\nB3: 1-2\r\nX-B3-TraceId: 1\r\nx-b3-spanid: 2\r\nx-b3-parentspanid: 3\r\n"
            + "x-b3-sampled: 1\r\nx-b3-flags: 1\r\nx-b3: 9\r\nbb: 1\r\n\r\n"
        let parsed = try parse(text)
        let fields = traceFields(of: parsed)
        XCTAssertTrue(fields.hasContext)
        let names = { (lines: [Range<Int>]) in
            lines.map { line in
                String(decoding: parsed.bytes[line].prefix { $0 != UInt8(ascii: ":") }, as: UTF8.self)
            }
        }
        XCTAssertEqual(
            names(fields.replacedLines(state: false)),
            ["Traceparent", "B3", "X-B3-TraceId", "x-b3-spanid", "x-b3-parentspanid", "x-b3-sampled", "x-b3-flags"],
            "tracestate passes on; lookalikes are not trace context")
        XCTAssertEqual(
            names(fields.replacedLines(state: true)),
            [
                "Traceparent", "tracestate", "B3", "X-B3-TraceId", "x-b3-spanid", "x-b3-parentspanid", "x-b3-sampled",
                "x-b3-flags",
            ], "a new trace drops the state too, in the head's order")
        let value = { (field: HTTP1TraceFields.Field) in
            fields.value(field).map { String(decoding: parsed.bytes[$0], as: UTF8.self) }
        }
        XCTAssertEqual(value(.traceparent), "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
        XCTAssertEqual(value(.tracestate), "v=1")
        XCTAssertEqual(value(.b3), "1-2")
        XCTAssertEqual(value(.b3TraceID), "1", "names in any case")
        XCTAssertEqual(value(.b3Flags), "1")
        XCTAssertEqual(parsed.forwarded, text, "found, not dropped: only a traced request replaces them")
        let untraced = try parse("GET / HTTP/1.1\r\nHost: a\r\nTracestate: a=1\r\nx-b3: 1\r\n\r\n")
        let none = traceFields(of: untraced)
        XCTAssertFalse(none.hasContext, "a tracestate alone is no context")
        XCTAssertNil(none.value(.b3))
        let spaced = try parse("GET / HTTP/1.1\r\nHost: a\r\nb3:  \t1-2 \t\r\nb3: 3-4\r\n\r\n")
        let trimmed = traceFields(of: spaced)
        XCTAssertEqual(
            trimmed.value(.b3).map { String(decoding: spaced.bytes[$0], as: UTF8.self) }, "1-2",
            "the first value, without the whitespace around it")
        XCTAssertEqual(trimmed.replacedLines(state: false).count, 2, "every line is replaced")
    }

    func testATracedHeadLosesItsHopByHopAndContextLinesAndCarriesTheSpans() throws {
        // Hop-by-hop lines (the parser's) and trace lines (the span's to replace)
        // interleaved, first and last among the fields: each goes, the rest stays in order,
        // and the span's lines come last.
        let text =
            "GET /a?b HTTP/1.1\r\nTraceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01\r\n"
            + "Keep-Alive: timeout=5\r\nHost: a\r\nx-b3-sampled: 1\r\nConnection: keep-alive, x-gone\r\n"
            + "x-gone: 1\r\ntracestate: v=1\r\nAccept: */*\r\nTE: trailers\r\nb3: 1-2\r\n\r\n"
        let parsed = try parse(text)
        let fields = traceFields(of: parsed)
        let edit = { (state: Bool) in
            parsed.bytes.withUnsafeBytes { bytes in
                HTTP1HeadEditor.replacingLines(
                    bytes, dropped: parsed.head.droppedLines, replaced: fields.replacedLines(state: state),
                    capacity: 64,
                    allocator: ByteBufferAllocator()
                ) { $0.writeString("traceparent: new\r\n") }
            }
        }
        // What the proxy forwards untraced (the head without its hop-by-hop lines), less
        // the context lines, with the span's after the rest.
        var expected = parsed.forwarded.split(separator: "\r\n", omittingEmptySubsequences: false).filter { line in
            let name = line.prefix { $0 != ":" }.lowercased()
            return !["traceparent", "x-b3-sampled", "b3"].contains(name)
        }
        expected.removeLast(2)  // the empty line
        XCTAssertEqual(
            String(buffer: edit(false)), expected.joined(separator: "\r\n") + "\r\ntraceparent: new\r\n\r\n")
        XCTAssertFalse(parsed.forwarded.contains("Keep-Alive"), "the parser drops hop-by-hop lines")
        XCTAssertFalse(String(buffer: edit(false)).contains("x-gone"))
        XCTAssertFalse(String(buffer: edit(true)).contains("tracestate"), "a new trace drops the state")
        XCTAssertTrue(String(buffer: edit(false)).contains("tracestate: v=1\r\n"), "a continued one keeps it")
    }

    func testDroppedLinesOfAResponse() throws {
        // Keep-Alive is dropped; a Connection line holding only keep-alive is kept aside
        // (`keepAliveLine`): the proxy forwards it as its own option unless it closes.
        let parsed = try response(
            "HTTP/1.1 200 OK\r\nKeep-Alive: timeout=5\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n")
        XCTAssertEqual(parsed.forwarded, "HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n")
        let line = try XCTUnwrap(parsed.head.keepAliveLine)
        XCTAssertEqual(line, 40..<64)
    }

    func testConnectionWithMoreThanKeepAliveIsDropped() throws {
        let parsed = try response(
            "HTTP/1.1 200 OK\r\nConnection: keep-alive, x-trace\r\nX-Trace: 1\r\nContent-Length: 0\r\n\r\n")
        XCTAssertNil(parsed.head.keepAliveLine)
        XCTAssertEqual(parsed.forwarded, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
        let closing = try response("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")
        XCTAssertNil(closing.head.keepAliveLine)
        XCTAssertEqual(closing.forwarded, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
    }

    func testReusedHeadIsReset() throws {
        var head = HTTP1Head()
        let first = Array("POST /a HTTP/1.0\r\nConnection: close, x\r\nX: 1\r\nTE: t\r\nContent-Length: 3\r\n\r\n".utf8)
        let second = Array("GET /b HTTP/1.1\r\nHost: h\r\n\r\n".utf8)
        try first.withUnsafeBytes { try HTTP1HeadParser.parse($0, kind: .request, into: &head) }
        XCTAssertEqual(head.droppedLines.count, 3)
        try second.withUnsafeBytes { try HTTP1HeadParser.parse($0, kind: .request, into: &head) }
        XCTAssertEqual(head.droppedLines, [])
        XCTAssertEqual(head.method, .get)
        XCTAssertEqual(head.framing, .none)
        XCTAssertFalse(head.wantsClose)
        XCTAssertEqual(head.minorVersion, 1)
        XCTAssertEqual(head.length, second.count)
        XCTAssertEqual(head.host, 23..<24)
    }

    // MARK: - Host, target, method

    func testHostRangeIsTheTrimmedValue() throws {
        let parsed = try parse("GET / HTTP/1.1\r\nHost: \t example.test:8080 \t\r\n\r\n")
        XCTAssertEqual(parsed.host, "example.test:8080")
        XCTAssertEqual(try parse("GET / HTTP/1.1\r\nhOsT:a\r\n\r\n").host, "a")
    }

    func testEmptyHostIsAllowed() throws {
        let parsed = try parse("GET / HTTP/1.1\r\nHost:\r\n\r\n")
        XCTAssertEqual(parsed.host, "")
    }

    func testHTTP10RequestNeedsNoHost() throws {
        XCTAssertNil(try parse("GET / HTTP/1.0\r\n\r\n").head.host)
        XCTAssertEqual(try parse("GET / HTTP/1.0\r\nHost: b\r\n\r\n").host, "b")
    }

    func testHostIsRequiredOnceInHTTP11() {
        XCTAssertEqual(errorCode("GET / HTTP/1.1\r\n\r\n"), .missingHost)
        XCTAssertEqual(errorCode("GET / HTTP/1.1\r\nHosts: a\r\n\r\n"), .missingHost)
        XCTAssertEqual(errorCode("GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n"), .duplicateHost)
        XCTAssertEqual(errorCode("GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n"), .duplicateHost)
        XCTAssertEqual(errorCode("GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n"), .duplicateHost)
    }

    func testTargetRange() throws {
        XCTAssertEqual(try parse("GET /a/b?c=d&e=%20 HTTP/1.1\r\nHost: a\r\n\r\n").target, "/a/b?c=d&e=%20")
        XCTAssertEqual(try parse("GET http://a.example/x HTTP/1.1\r\nHost: a\r\n\r\n").target, "http://a.example/x")
        XCTAssertEqual(
            try parse("CONNECT a.example:443 HTTP/1.1\r\nHost: a.example:443\r\n\r\n").target, "a.example:443")
        XCTAssertEqual(try parse("OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n").target, "*")
        XCTAssertEqual(try parse("GET / HTTP/1.1\r\nHost: a\r\n\r\n").head.target, 4..<5)
    }

    func testMethodMapping() throws {
        let expected: [(String, HTTP1Method)] = [
            ("GET", .get), ("HEAD", .head), ("POST", .post), ("PUT", .put), ("DELETE", .delete), ("OPTIONS", .options),
            ("TRACE", .trace), ("CONNECT", .connect), ("PATCH", .patch), ("get", .other), ("Post", .other),
            ("PROPFIND", .other), ("GETS", .other), ("GE", .other), ("M-SEARCH", .other), ("PURGE", .other),
        ]
        for (name, method) in expected {
            XCTAssertEqual(try parse("\(name) / HTTP/1.1\r\nHost: a\r\n\r\n").head.method, method, name)
        }
    }

    func testIdempotentMethods() {
        XCTAssertEqual(
            [HTTP1Method.get, .head, .options, .trace, .put, .delete].filter(\.isIdempotent).count, 6)
        XCTAssertEqual([HTTP1Method.post, .connect, .patch, .other].filter(\.isIdempotent), [])
    }

    // MARK: - Strictness

    func testObsFoldIsRejected() {
        XCTAssertEqual(errorCode("GET / HTTP/1.1\r\nHost: a\r\nX: 1\r\n 2\r\n\r\n"), .obsFold)
        XCTAssertEqual(errorCode("GET / HTTP/1.1\r\nHost: a\r\nX: 1\r\n\t2\r\n\r\n"), .obsFold)
        XCTAssertEqual(errorCode("GET / HTTP/1.1\r\n Host: a\r\n\r\n"), .obsFold)
        XCTAssertEqual(
            errorCode("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip,\r\n chunked\r\n\r\n"), .obsFold)
    }

    func testBareLFIsRejected() {
        XCTAssertEqual(errorCode("GET / HTTP/1.1\nHost: a\r\n\r\n"), .bareLF)
        XCTAssertEqual(errorCode("GET / HTTP/1.1\r\nHost: a\n\r\n"), .bareLF)
        XCTAssertEqual(errorCode("GET / HTTP/1.1\r\nHost: a\r\n\n"), .bareLF)
        XCTAssertEqual(errorCode("GET / HTTP/1.1\r\nHost: a\nX: y\r\n\r\n"), .bareLF)
        XCTAssertEqual(errorCode("\nGET / HTTP/1.1\r\nHost: a\r\n\r\n"), .bareLF)
        XCTAssertEqual(
            errorCode("HTTP/1.1 200 OK\nContent-Length: 1\r\n\r\n", as: .response(requestMethod: .get)), .bareLF)
    }

    func testBareCRInAValueIsRejected() {
        XCTAssertEqual(errorCode("GET / HTTP/1.1\r\nHost: a\rb\r\n\r\n"), .bareCR)
        XCTAssertEqual(errorCode("GET / HTTP/1.1\r\nHost: a\r\nX: \r\r\n\r\n"), .bareCR)
        XCTAssertEqual(errorCode("POST / HTTP/1.1\r\nHost: a\r\nX: 1\rContent-Length: 5\r\n\r\n"), .bareCR)
    }

    /// Found by the fuzzer: a line starting with a bare CR ended the fields early, so the
    /// fields after it (here a Content-Length) were forwarded but never looked at.
    func testBareCRAtTheStartOfALineIsRejected() {
        XCTAssertEqual(errorCode("POST / HTTP/1.1\r\nHost: a\r\n\r\r\nContent-Length: 10\r\n\r\n"), .bareCR)
        XCTAssertEqual(errorCode("GET / HTTP/1.1\r\nHost: a\r\n\rX: y\r\n\r\n"), .bareCR)
        XCTAssertEqual(
            errorCode(
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection:\r\n\r close\r\n\r\n",
                as: .response(requestMethod: .get)),
            .bareCR)
    }

    func testBareCRInTheRequestLineIsRejected() {
        XCTAssertEqual(errorCode("GET /\r HTTP/1.1\r\nHost: a\r\n\r\n"), .invalidRequestLine)
        XCTAssertEqual(errorCode("GET / HTTP/1.1\r\rHost: a\r\n\r\n"), .invalidRequestLine)
    }

    func testWhitespaceBeforeColonIsRejected() {
        XCTAssertEqual(errorCode("GET / HTTP/1.1\r\nHost : a\r\n\r\n"), .invalidFieldName)
        XCTAssertEqual(errorCode("GET / HTTP/1.1\r\nHost\t: a\r\n\r\n"), .invalidFieldName)
        XCTAssertEqual(
            errorCode("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\n\r\n"), .invalidFieldName)
    }

    func testInvalidFieldNamesAreRejected() {
        for line in [": x", "X", "X Y: z", "X\"Y: z", "X(: z", "X@Y: z", "\u{80}X: y", "X/Y: z"] {
            XCTAssertEqual(
                errorCode("GET / HTTP/1.1\r\nHost: a\r\n\(line)\r\n\r\n"), .invalidFieldName, line.debugDescription)
        }
    }

    func testControlBytesInValuesAreRejected() {
        for value in ["a\u{00}b", "\u{00}", "a\u{7F}", "\u{01}", "a\u{1B}[0m", "a\u{0C}"] {
            XCTAssertEqual(
                errorCode("GET / HTTP/1.1\r\nHost: a\r\nX: \(value)\r\n\r\n"), .invalidFieldValue,
                value.debugDescription)
        }
    }

    func testObsTextAndTabsInValuesAreAccepted() throws {
        let bytes =
            Array("GET / HTTP/1.1\r\nHost: a\r\nX: caf".utf8) + [0xC3, 0xA9, 0x09, 0xFF] + Array(" b\r\n\r\n".utf8)
        XCTAssertEqual(try parse(bytes).head.droppedLines, [])
    }

    func testTransferEncodingTricksAreRejected() {
        let cases: [(String, HTTP1ParseError.Code)] = [
            ("Transfer-Encoding: \u{0B}chunked", .invalidFieldValue),
            ("Transfer-Encoding: chunked\u{0B}", .invalidFieldValue),
            ("Transfer-Encoding: \u{0C}chunked", .invalidFieldValue),
            ("Transfer-Encoding: chunked\u{00}", .invalidFieldValue),
            ("Transfer-Encoding: \rchunked", .bareCR),
            ("Transfer-Encoding: xchunked", .invalidTransferEncoding),
            ("Transfer-Encoding: chunked-false", .invalidTransferEncoding),
            ("Transfer-Encoding: \"chunked\"", .invalidTransferEncoding),
            ("Transfer-Encoding: chunked;q=1", .invalidTransferEncoding),
            ("Transfer-Encoding: chu nked", .invalidTransferEncoding),
            ("Transfer-Encoding : chunked", .invalidFieldName),
            (" Transfer-Encoding: chunked", .obsFold),
            ("Transfer-Encoding: gzip\r\n chunked", .obsFold),
        ]
        for (line, code) in cases {
            XCTAssertEqual(errorCode("POST / HTTP/1.1\r\nHost: a\r\n\(line)\r\n\r\n"), code, line.debugDescription)
        }
    }

    func testUnsupportedVersionsAreRejected() {
        XCTAssertEqual(errorCode("GET / HTTP/2.0\r\nHost: a\r\n\r\n"), .unsupportedVersion)
        XCTAssertEqual(errorCode("GET / HTTP/1.2\r\nHost: a\r\n\r\n"), .unsupportedVersion)
        XCTAssertEqual(errorCode("GET / HTTP/0.9\r\nHost: a\r\n\r\n"), .unsupportedVersion)
        XCTAssertEqual(errorCode("GET / HTTP/3.1\r\nHost: a\r\n\r\n"), .unsupportedVersion)
        XCTAssertEqual(errorCode("GET / HTTP/1.10\r\nHost: a\r\n\r\n"), .invalidRequestLine)
        XCTAssertEqual(errorCode("GET / http/1.1\r\nHost: a\r\n\r\n"), .invalidRequestLine)
        XCTAssertEqual(errorCode("GET / HTTP/1\r\nHost: a\r\n\r\n"), .invalidRequestLine)
        XCTAssertEqual(errorCode("GET / HTTP/1.x\r\nHost: a\r\n\r\n"), .invalidRequestLine)
    }

    func testMalformedRequestLinesAreRejected() {
        for line in [
            "GET  / HTTP/1.1", "GET /  HTTP/1.1", " GET / HTTP/1.1", "GET\t/ HTTP/1.1", "GET / HTTP/1.1 ", "GET /",
            "GET / ",
            "GET", "/ HTTP/1.1", "GET /a b HTTP/1.1", "GET /\u{7F} HTTP/1.1", "G(T / HTTP/1.1",
        ] {
            XCTAssertEqual(errorCode("\(line)\r\nHost: a\r\n\r\n"), .invalidRequestLine, line.debugDescription)
        }
        XCTAssertEqual(
            errorCode(Array("GET /".utf8) + [0xC3, 0xA9] + Array(" HTTP/1.1\r\nHost: a\r\n\r\n".utf8)),
            .invalidRequestLine)
    }

    func testTooManyFields() throws {
        func request(fields: Int) -> String {
            "GET / HTTP/1.1\r\nHost: a\r\n" + (1..<fields).map { "X-\($0): v\r\n" }.joined() + "\r\n"
        }
        XCTAssertEqual(try parse(request(fields: HTTP1HeadParser.maxFields)).head.framing, .none)
        XCTAssertEqual(errorCode(request(fields: HTTP1HeadParser.maxFields + 1)), .tooManyFields)
    }

    func testHeadTooLarge() throws {
        let prefix = "GET / HTTP/1.1\r\nHost: a\r\nX: "
        let filler = HTTP1HeadParser.maxHeadBytes - prefix.utf8.count - 4
        let largest = Array((prefix + String(repeating: "v", count: filler) + "\r\n\r\n").utf8)
        XCTAssertEqual(largest.count, HTTP1HeadParser.maxHeadBytes)
        XCTAssertEqual(try findEnd(largest), largest.count)
        XCTAssertEqual(try parse(largest).head.length, largest.count)

        let tooLarge = Array((prefix + String(repeating: "v", count: filler + 1) + "\r\n\r\n").utf8)
        XCTAssertEqual(errorCode(tooLarge), .headTooLarge)
        // Without an end in sight, too many bytes are rejected as soon as they are buffered.
        let endless = Array((prefix + String(repeating: "v", count: filler + 5)).utf8)
        XCTAssertEqual(endless.count, HTTP1HeadParser.maxHeadBytes + 1)
        XCTAssertThrowsError(try findEnd(endless)) { XCTAssertEqual(($0 as? HTTP1ParseError)?.code, .headTooLarge) }
        XCTAssertNil(try findEnd(Array(endless.dropLast())))
        // A small head followed by a large body is fine.
        let pipelined = Array("GET / HTTP/1.1\r\nHost: a\r\n\r\n".utf8) + [UInt8](repeating: 0x41, count: 100_000)
        XCTAssertEqual(try findEnd(pipelined), 27)
    }

    // MARK: - Leading empty lines

    func testLeadingEmptyLines() {
        func count(_ text: String) -> Int { Array(text.utf8).withUnsafeBytes { HTTP1HeadParser.leadingEmptyLines($0) } }
        XCTAssertEqual(count("GET / HTTP/1.1\r\n"), 0)
        XCTAssertEqual(count("\r\nGET / HTTP/1.1\r\n"), 2)
        XCTAssertEqual(count("\r\n\r\n\r\nGET"), 6)
        XCTAssertEqual(count("\r\n\r"), 2)
        XCTAssertEqual(count("\r"), 0)
        XCTAssertEqual(count(""), 0)
        XCTAssertEqual(count("\n\r\n"), 0)
        XCTAssertEqual(count("\r\r\n"), 0)
    }

    func testRequestAfterLeadingEmptyLines() throws {
        let parsed = try parse("\r\n\r\nGET /x HTTP/1.1\r\nHost: a\r\n\r\n")
        XCTAssertEqual(parsed.target, "/x")
        XCTAssertEqual(parsed.head.length, "GET /x HTTP/1.1\r\nHost: a\r\n\r\n".utf8.count)
    }

    // MARK: - findEnd

    func testFindEndNeedsTheEmptyLine() throws {
        XCTAssertNil(try findEnd([]))
        XCTAssertNil(try findEnd(Array("GET / HTTP/1.1\r\nHost: a\r\n".utf8)))
        XCTAssertNil(try findEnd(Array("GET / HTTP/1.1\r\nHost: a\r\n\r".utf8)))
        XCTAssertNil(try findEnd(Array("GET / HTTP/1.1\r\nHost: a\r\n\r\r\n".utf8)))
        XCTAssertEqual(try findEnd(Array("GET / HTTP/1.1\r\nHost: a\r\n\r\nBODY".utf8)), 27)
        XCTAssertEqual(try findEnd(Array("\r\n\r\n".utf8)), 4)
    }

    func testFindEndOneByteAtATimeMatchesAllAtOnce() throws {
        let heads = [
            "GET / HTTP/1.1\r\nHost: a\r\n\r\n",
            "POST /upload HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
            "GET / HTTP/1.1\r\nX: a\rb\r\n\r\n",
            "GET / HTTP/1.1\r\n\r\n\r\n",
        ]
        for text in heads {
            let bytes = Array(text.utf8)
            let whole = try findEnd(bytes)
            XCTAssertNotNil(whole, text.debugDescription)
            XCTAssertEqual(try findEndIncrementally(bytes, cuts: Array(0..<bytes.count)), whole, text.debugDescription)
            for cut in 0...bytes.count {
                XCTAssertEqual(
                    try findEndIncrementally(bytes, cuts: [cut]), whole, "\(text.debugDescription) cut at \(cut)")
            }
        }
    }

    func testFindEndFindsABareLFWhenResuming() {
        let bytes = Array("GET / HTTP/1.1\r\nHost: a\nX: b\r\n\r\n".utf8)
        for cut in 0...bytes.count {
            XCTAssertThrowsError(try findEndIncrementally(bytes, cuts: [cut]), "cut at \(cut)") {
                XCTAssertEqual(($0 as? HTTP1ParseError)?.code, .bareLF)
            }
        }
    }

    // MARK: - Byte classes

    func testTokenBytesAreExactlyTchar() {
        let tchar = Set("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ".utf8)
        for byte in UInt8.min...UInt8.max {
            XCTAssertEqual(HTTP1HeadParser.isTokenByte(byte), tchar.contains(byte), "byte 0x\(String(byte, radix: 16))")
        }
    }

    func testFieldValueBytesAreVisibleSpaceTabAndObsText() {
        for byte in UInt8.min...UInt8.max {
            let expected = byte == 0x09 || byte == 0x20 || (byte >= 0x21 && byte <= 0x7E) || byte >= 0x80
            XCTAssertEqual(HTTP1HeadParser.isFieldValueByte(byte), expected, "byte 0x\(String(byte, radix: 16))")
        }
    }

    func testErrorDescriptionNamesTheCode() {
        let error = HTTP1ParseError(.bareLF, "line ends in LF without CR at byte 3")
        XCTAssertEqual(error.description, "bare_lf: line ends in LF without CR at byte 3")
        XCTAssertEqual(error, HTTP1ParseError(.bareLF, "another reason"))
        XCTAssertNotEqual(error, HTTP1ParseError(.bareCR, "line ends in LF without CR at byte 3"))
    }
}
