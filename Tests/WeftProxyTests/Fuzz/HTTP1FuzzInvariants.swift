#if canImport(WeftProxy)
    @testable import WeftProxy
#endif

/// Properties that `HTTP1HeadParser` and `HTTP1BodyTracker` keep for any input.
///
/// Shared by the libFuzzer harness `fuzz/HTTP1Fuzz.swift` (which compiles this file with
/// the pure parser sources into one module, hence the conditional import) and by
/// `FuzzRegressionTests`, which replays every file under `fuzz/regressions/http1/`.
///
/// The same input is used three ways: as a request (after `leadingEmptyLines`, as the
/// proxy does), as a response to GET, HEAD and CONNECT, and as a body under each framing.
/// Each way is checked against a plain reference (`findEnd`, chunked framing), against
/// itself fed in pieces, and, for heads, against the head the proxy would forward.
enum HTTP1FuzzInvariants {
    static func check(_ data: [UInt8], fail: (String) -> Void) {
        let seed = FuzzBuffers.fnv1a(data)
        checkRequest(data, seed: seed, fail: fail)
        if let end = checkScan(data, seed: seed, fail: fail) {
            for method in [HTTP1Method.get, .head, .connect] {
                checkHead(Array(data[0..<end]), kind: .response(requestMethod: method), fail: fail)
            }
        }
        let length = Int(seed % UInt64(data.count + 3))
        for framing in [HTTP1Head.Framing.none, .contentLength(length), .chunked, .untilClose] {
            checkBody(data, framing: framing, seed: seed, fail: fail)
        }
    }

    // MARK: - Heads

    private static func checkRequest(_ data: [UInt8], seed: UInt64, fail: (String) -> Void) {
        let skip = FuzzBuffers.withExactCopy(data) { HTTP1HeadParser.leadingEmptyLines($0) }
        guard skip % 2 == 0, skip <= data.count,
            stride(from: 0, to: skip, by: 2).allSatisfy({ data[$0] == cr && data[$0 + 1] == lf })
        else {
            return fail("leadingEmptyLines returned \(skip), which is not a run of CRLF at the start")
        }
        let rest = Array(data[skip...])
        if let end = checkScan(rest, seed: seed, fail: fail) {
            checkHead(Array(rest[0..<end]), kind: .request, fail: fail)
        }
    }

    enum Scan: Equatable {
        case incomplete
        case end(Int)
        case failed(HTTP1ParseError.Code)
    }

    /// Checks `findEnd` against a reference and against itself fed in pieces; returns
    /// the head's length when there is a head.
    private static func checkScan(_ bytes: [UInt8], seed: UInt64, fail: (String) -> Void) -> Int? {
        let whole = FuzzBuffers.withExactCopy(bytes) { scan($0, resumeAt: 0, fail: fail) }
        let expected = referenceScan(bytes)
        if whole != expected { fail("findEnd gave \(whole), the reference \(expected)") }

        var feeds = [
            FuzzBuffers.cuts(count: bytes.count, seed: seed, pieces: 2),
            FuzzBuffers.cuts(count: bytes.count, seed: seed >> 7, pieces: 3),
        ]
        if bytes.count <= 4096 { feeds.append(Array(0...bytes.count)) }
        for cuts in feeds {
            let pieces = feed(bytes, cuts: cuts, fail: fail)
            switch (whole, pieces) {
            case (.failed, .failed(let code)):
                if code == .bareLF && whole != .failed(.bareLF) {
                    fail("findEnd in pieces \(cuts) found a bare LF that findEnd on the whole did not (\(whole))")
                }
            default:
                if pieces != whole { fail("findEnd in pieces \(cuts) gave \(pieces), on the whole \(whole)") }
            }
        }
        if case .end(let end) = whole { return end }
        return nil
    }

    private static func scan(_ bytes: UnsafeRawBufferPointer, resumeAt: Int, fail: (String) -> Void) -> Scan {
        do {
            guard let end = try HTTP1HeadParser.findEnd(bytes, resumeAt: resumeAt) else { return .incomplete }
            if end > bytes.count { fail("findEnd returned \(end) for \(bytes.count) bytes") }
            return .end(end)
        } catch let error as HTTP1ParseError {
            return .failed(error.code)
        } catch {
            fail("findEnd threw \(error), which is not an HTTP1ParseError")
            return .incomplete
        }
    }

    /// Feeds `bytes` to `findEnd` as the proxy does: the buffer grows to each cut, and
    /// each call resumes where the last one stopped.
    private static func feed(_ bytes: [UInt8], cuts: [Int], fail: (String) -> Void) -> Scan {
        FuzzBuffers.withExactCopy(bytes) { buffer in
            var scanned = 0
            for cut in cuts {
                let result = scan(UnsafeRawBufferPointer(rebasing: buffer[0..<cut]), resumeAt: scanned, fail: fail)
                if result != .incomplete { return result }
                scanned = cut
            }
            return .incomplete
        }
    }

    /// `findEnd` written the obvious way: the first LF decides unless it ends a
    /// non-empty line; a head ends at the first CRLF CRLF.
    static func referenceScan(_ bytes: [UInt8]) -> Scan {
        for index in bytes.indices where bytes[index] == lf {
            if index == 0 || bytes[index - 1] != cr { return .failed(.bareLF) }
            if index >= 3 && bytes[index - 2] == lf && bytes[index - 3] == cr {
                return index + 1 > HTTP1HeadParser.maxHeadBytes ? .failed(.headTooLarge) : .end(index + 1)
            }
        }
        return bytes.count > HTTP1HeadParser.maxHeadBytes ? .failed(.headTooLarge) : .incomplete
    }

    /// Parses a head delimited by `findEnd` and checks what the parser reports.
    private static func checkHead(_ head: [UInt8], kind: HTTP1HeadParser.Kind, fail: (String) -> Void) {
        var parsed = HTTP1Head()
        let error = parseHead(head, kind: kind, into: &parsed, fail: fail)

        // A head reused from an earlier message must give the same answer.
        var reused = HTTP1Head()
        _ = parseHead(reusableSample, kind: .request, into: &reused, fail: fail)
        let reusedError = parseHead(head, kind: kind, into: &reused, fail: fail)
        if reusedError != error {
            fail(
                "parse into a reused head threw \(String(describing: reusedError)), fresh \(String(describing: error))")
        }
        guard error == nil else { return }
        if summary(reused) != summary(parsed) {
            fail("parse into a reused head gave \(summary(reused)), fresh \(summary(parsed))")
        }

        if checkParsed(parsed, head: head, kind: kind, fail: fail) {
            checkForwarded(parsed, head: head, kind: kind, fail: fail)
        }
    }

    private static let reusableSample = Array(
        "GET /a HTTP/1.1\r\nHost: h\r\nConnection: close, x\r\nX: 1\r\nTE: trailers\r\nKeep-Alive: 5\r\n\r\n".utf8)

    private static func parseHead(
        _ head: [UInt8], kind: HTTP1HeadParser.Kind, into parsed: inout HTTP1Head, fail: (String) -> Void
    ) -> HTTP1ParseError.Code? {
        FuzzBuffers.withExactCopy(head) { buffer in
            do {
                try HTTP1HeadParser.parse(buffer, kind: kind, into: &parsed)
                return nil
            } catch let error as HTTP1ParseError {
                return error.code
            } catch {
                fail("parse threw \(error), which is not an HTTP1ParseError")
                return nil
            }
        }
    }

    static func summary(_ head: HTTP1Head) -> String {
        "length=\(head.length) minor=\(head.minorVersion) method=\(head.method) target=\(head.target) "
            + "host=\(String(describing: head.host)) status=\(head.status) framing=\(head.framing) "
            + "close=\(head.wantsClose) upgrade=\(head.isUpgrade) dropped=\(head.droppedLines)"
    }

    /// Returns false when the head's ranges are too broken to build the forwarded head from.
    private static func checkParsed(
        _ parsed: HTTP1Head, head: [UInt8], kind: HTTP1HeadParser.Kind, fail: (String) -> Void
    ) -> Bool {
        let count = head.count
        if parsed.length != count {
            fail("length \(parsed.length) for a head of \(count) bytes")
            return false
        }
        if parsed.minorVersion != 0 && parsed.minorVersion != 1 { fail("minor version \(parsed.minorVersion)") }
        let startLineEnd = (head.firstIndex(of: lf) ?? count) + 1

        // What was accepted is a start line and field lines (token, colon, then no controls), each ending in CRLF.
        for index in head.indices where head[index] == cr && (index + 1 == count || head[index + 1] != lf) {
            fail("accepted a head with a bare CR at byte \(index)")
            return false
        }
        var lineStart = startLineEnd
        while lineStart < count - 2 {
            let lineEnd = head[lineStart...].firstIndex(of: cr)!
            let nameEnd = head[lineStart..<lineEnd].firstIndex { !isTokenByte($0) } ?? lineEnd
            if nameEnd == lineStart || nameEnd == lineEnd || head[nameEnd] != colon {
                fail("accepted the field line \(lineStart)..<\(lineEnd), which has no token and colon")
                return false
            }
            if head[nameEnd..<lineEnd].contains(where: { !isFieldValueByte($0) }) {
                fail("accepted a control byte in the field line \(lineStart)..<\(lineEnd)")
                return false
            }
            lineStart = lineEnd + 2
        }
        if lineStart != count - 2 { fail("the empty line that ends the head is not at its end") }

        var previousEnd = startLineEnd
        for line in parsed.droppedLines {
            guard line.lowerBound >= previousEnd, line.upperBound <= count - 2, line.count >= 3 else {
                fail("droppedLines \(parsed.droppedLines) are not sorted, disjoint field lines of \(count) bytes")
                return false
            }
            guard head[line.lowerBound - 2] == cr, head[line.lowerBound - 1] == lf,
                head[line.upperBound - 2] == cr, head[line.upperBound - 1] == lf,
                head[line.lowerBound..<(line.upperBound - 2)].firstIndex(of: lf) == nil
            else {
                fail("dropped range \(line) is not one whole field line")
                return false
            }
            let name = head[line.lowerBound...].prefix { $0 != colon }
            let lowered = String(decoding: name.map { $0 | 0x20 }, as: UTF8.self)
            if ["content-length", "transfer-encoding", "host"].contains(lowered) {
                fail("dropped a framing or Host line at \(line)")
            }
            previousEnd = line.upperBound
        }

        switch kind {
        case .request:
            let target = parsed.target
            if target.isEmpty || target.lowerBound < 2 || target.upperBound > startLineEnd {
                fail("target \(target) is not inside the request line (ends at \(startLineEnd))")
                return false
            } else if head[target.lowerBound - 1] != space
                || head[target].contains(where: { $0 <= space || $0 >= 0x7F })
            {
                fail("target \(target) is not a space-delimited run of visible bytes")
            }
            if let host = parsed.host {
                if host.lowerBound < startLineEnd || host.upperBound > count - 4 {
                    fail("host \(host) is outside the fields")
                    return false
                }
            } else if parsed.minorVersion == 1 {
                fail("an HTTP/1.1 request without a host was accepted")
            }
            switch parsed.framing {
            case .untilClose: fail("a request framed until close")
            case .contentLength(let length) where length <= 0: fail("a request with Content-Length \(length) framing")
            case .chunked where parsed.minorVersion == 0: fail("an HTTP/1.0 request framed as chunked")
            default: break
            }
        case .response(let method):
            let status = parsed.status
            if status < 100 || status > 999 { fail("status \(status)") }
            let bodiless =
                status < 200 || status == 204 || status == 304 || method == .head
                || (method == .connect && status < 300)
            if bodiless && parsed.framing != .none { fail("status \(status) to \(method) framed as \(parsed.framing)") }
            if case .contentLength(let length) = parsed.framing, length <= 0 {
                fail("Content-Length \(length) framing")
            }
        }
        return true
    }

    /// The head the proxy forwards (the original bytes minus `droppedLines`) must parse
    /// to the same message, with nothing left to drop.
    private static func checkForwarded(
        _ parsed: HTTP1Head, head: [UInt8], kind: HTTP1HeadParser.Kind, fail: (String) -> Void
    ) {
        var forwarded: [UInt8] = []
        var cursor = 0
        for line in parsed.droppedLines {
            forwarded += head[cursor..<line.lowerBound]
            cursor = line.upperBound
        }
        forwarded += head[cursor...]

        var again = HTTP1Head()
        if let error = parseHead(forwarded, kind: kind, into: &again, fail: fail) {
            return fail("the forwarded head does not parse: \(error)")
        }
        if !again.droppedLines.isEmpty { fail("the forwarded head still has lines to drop: \(again.droppedLines)") }
        if again.framing != parsed.framing || again.isUpgrade != parsed.isUpgrade || again.method != parsed.method
            || again.status != parsed.status || again.minorVersion != parsed.minorVersion
        {
            fail("the forwarded head parses differently: \(summary(again)), original \(summary(parsed))")
        }
        if case .request = kind {
            guard again.target.upperBound <= forwarded.count, (again.host?.upperBound ?? 0) <= forwarded.count else {
                return fail(
                    "the forwarded head's target \(again.target) or host \(String(describing: again.host)) is outside it"
                )
            }
            if forwarded[again.target] != head[parsed.target] { fail("the forwarded head has another target") }
            if again.host.map({ Array(forwarded[$0]) }) != parsed.host.map({ Array(head[$0]) }) {
                fail("the forwarded head has another host")
            }
        }
    }

    // MARK: - Bodies

    struct BodyOutcome: Equatable {
        var consumed: Int
        var isComplete: Bool
        var failed: Bool
    }

    private static func checkBody(_ data: [UInt8], framing: HTTP1Head.Framing, seed: UInt64, fail: (String) -> Void) {
        let count = data.count
        let whole = feedBody(data, framing: framing, cuts: [count], fail: fail)
        let expected: BodyOutcome
        switch framing {
        case .none:
            expected = BodyOutcome(consumed: 0, isComplete: true, failed: false)
        case .contentLength(let length):
            expected = BodyOutcome(consumed: min(length, count), isComplete: length <= count, failed: false)
        case .untilClose:
            expected = BodyOutcome(consumed: count, isComplete: false, failed: false)
        case .chunked:
            expected = referenceChunked(data)
        }
        if whole != expected { fail("\(framing) body: tracker gave \(whole), the reference \(expected)") }

        var feeds = [
            FuzzBuffers.cuts(count: count, seed: seed >> 3, pieces: 2),
            FuzzBuffers.cuts(count: count, seed: seed >> 11, pieces: 4),
        ]
        if count <= 4096 { feeds.append(Array(1...max(count, 1))) }
        for cuts in feeds {
            let pieces = feedBody(data, framing: framing, cuts: cuts, fail: fail)
            if pieces != whole { fail("\(framing) body in pieces \(cuts) gave \(pieces), whole \(whole)") }
        }
    }

    /// Feeds the body in pieces ending at `cuts`, each piece a buffer of its own, until
    /// the tracker stops short of a piece's end. `consumed` is meaningless once `failed`.
    private static func feedBody(_ data: [UInt8], framing: HTTP1Head.Framing, cuts: [Int], fail: (String) -> Void)
        -> BodyOutcome
    {
        var tracker = HTTP1BodyTracker(framing: framing)
        var total = 0
        var start = 0
        for cut in cuts where cut >= start {
            let piece = data[start..<min(cut, data.count)]
            start = cut
            let consumed: Int
            do {
                consumed = try FuzzBuffers.withExactCopy(piece) { try tracker.consume($0) }
            } catch is HTTP1ParseError {
                return BodyOutcome(consumed: 0, isComplete: false, failed: true)
            } catch {
                fail("consume threw \(error), which is not an HTTP1ParseError")
                return BodyOutcome(consumed: 0, isComplete: false, failed: true)
            }
            if consumed < 0 || consumed > piece.count { fail("consume took \(consumed) of \(piece.count) bytes") }
            total += consumed
            if consumed < piece.count {
                if !tracker.isComplete {
                    fail("consume stopped short (\(consumed) of \(piece.count)) of an unfinished body")
                }
                break
            }
        }
        if tracker.isUntilClose != (framing == .untilClose) {
            fail("isUntilClose is \(tracker.isUntilClose) for \(framing)")
        }
        return BodyOutcome(consumed: total, isComplete: tracker.isComplete, failed: false)
    }

    /// Chunked framing (RFC 9112 §7.1) written the obvious way over the whole buffer,
    /// with the tracker's limits: at most 15 hex digits, whitespace only before an
    /// extension or the CRLF, a trailer line starting with a token byte.
    static func referenceChunked(_ bytes: [UInt8]) -> BodyOutcome {
        let incomplete = BodyOutcome(consumed: bytes.count, isComplete: false, failed: false)
        let invalid = BodyOutcome(consumed: 0, isComplete: false, failed: true)
        var index = 0
        /// Expects CRLF at `index`: nil to go on, else the outcome.
        func crlf() -> BodyOutcome? {
            for expected in [cr, lf] {
                if index == bytes.count { return incomplete }
                if bytes[index] != expected { return invalid }
                index += 1
            }
            return nil
        }
        while true {
            var digits = 0
            var size = 0
            while index < bytes.count, let value = hexValue(bytes[index]) {
                if digits == 15 { return invalid }
                size = size * 16 + value
                digits += 1
                index += 1
            }
            if index == bytes.count { return incomplete }
            if digits == 0 { return invalid }
            while index < bytes.count && (bytes[index] == space || bytes[index] == tab) { index += 1 }
            if index == bytes.count { return incomplete }
            if bytes[index] == semicolon {
                while index < bytes.count && bytes[index] != cr {
                    if !isFieldValueByte(bytes[index]) { return invalid }
                    index += 1
                }
            }
            if let outcome = crlf() { return outcome }
            if size == 0 { break }
            if bytes.count - index < size { return incomplete }
            index += size
            if let outcome = crlf() { return outcome }
        }
        while true {
            if index == bytes.count { return incomplete }
            if bytes[index] == cr {
                if let outcome = crlf() { return outcome }
                return BodyOutcome(consumed: index, isComplete: true, failed: false)
            }
            if !isTokenByte(bytes[index]) { return invalid }
            while index < bytes.count && bytes[index] != cr {
                if !isFieldValueByte(bytes[index]) { return invalid }
                index += 1
            }
            if let outcome = crlf() { return outcome }
        }
    }

    // MARK: - Bytes

    static let cr: UInt8 = 0x0D
    static let lf: UInt8 = 0x0A
    static let space: UInt8 = 0x20
    static let tab: UInt8 = 0x09
    static let colon: UInt8 = 0x3A
    static let semicolon: UInt8 = 0x3B

    private static func hexValue(_ byte: UInt8) -> Int? {
        switch byte {
        case 0x30...0x39: return Int(byte - 0x30)
        case 0x41...0x46, 0x61...0x66: return Int(byte | 0x20) - 0x61 + 10
        default: return nil
        }
    }

    private static func isFieldValueByte(_ byte: UInt8) -> Bool { byte == tab || (byte >= space && byte != 0x7F) }

    private static func isTokenByte(_ byte: UInt8) -> Bool {
        switch byte {
        case 0x30...0x39, 0x41...0x5A, 0x61...0x7A: return true
        default: return Array("!#$%&'*+-.^_`|~".utf8).contains(byte)
        }
    }
}
