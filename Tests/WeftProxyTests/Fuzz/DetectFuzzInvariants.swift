#if canImport(WeftProxy)
    @testable import WeftProxy
#endif

/// Properties that `ProtocolDetector.detect` keeps for any first bytes.
///
/// Shared by the libFuzzer harness `fuzz/DetectFuzz.swift` and by `FuzzRegressionTests`
/// (see `HTTP1FuzzInvariants` for why the import is conditional).
///
/// The central one is monotonicity: the proxy calls `detect` again after every read, so
/// a verdict reached on a prefix must be the verdict on every longer input; otherwise
/// how TCP happened to segment the bytes would decide how a connection is handled.
enum DetectFuzzInvariants {
    /// Inputs up to this length have every prefix checked; longer ones a sample.
    static let allPrefixesUpTo = 600

    static func check(_ data: [UInt8], fail: (String) -> Void) {
        let verdict = FuzzBuffers.withExactCopy(data) { ProtocolDetector.detect($0) }
        let again = FuzzBuffers.withExactCopy(data) { ProtocolDetector.detect($0) }
        if again != verdict { fail("detect is not deterministic: \(verdict), then \(again)") }

        if data.isEmpty && verdict != .needMoreBytes { fail("no bytes gave \(verdict)") }

        // The inbound side reads a ClientHello's ALPN offers from the same bytes (mesh TLS or
        // not): any bytes give an answer, the same twice, and offers only from a TLS
        // handshake record whose protocols are non-empty names.
        let offers = FuzzBuffers.withExactCopy(data) { ClientHelloReader.applicationProtocols(inRecord: $0) }
        let offersAgain = FuzzBuffers.withExactCopy(data) { ClientHelloReader.applicationProtocols(inRecord: $0) }
        if offers != offersAgain { fail("ALPN offers are not deterministic: \(offers), then \(offersAgain)") }
        if !offers.isEmpty && data.first != 0x16 { fail("ALPN offers \(offers) from a non-handshake record") }
        if offers.contains(where: \.isEmpty) { fail("an empty ALPN protocol name in \(offers)") }
        if data.count >= ProtocolDetector.maxBytes && verdict == .needMoreBytes {
            fail("asked for more than maxBytes (\(data.count) bytes buffered)")
        }
        switch verdict {
        case .needMoreBytes, .detected(.opaque):
            break
        case .detected(.http2):
            if !data.starts(with: Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8)) { fail("http2 without the preface") }
        case .detected(.http1):
            // After empty lines: a method token and a space, then a known method, or a
            // target starting with / or *, or " HTTP/1." later in the line.
            let rest = data.drop { $0 == 0x0D || $0 == 0x0A }
            let method = rest.prefix { HTTP1HeadParser.isTokenByte($0) }
            let afterMethod = rest.dropFirst(method.count)
            guard !method.isEmpty, afterMethod.first == 0x20 else {
                fail("http1 without a method token and a space")
                break
            }
            let known = method.withUnsafeBytes { ProtocolDetector.isKnownMethod($0) }
            let target = afterMethod.dropFirst()
            let line = rest.prefix(ProtocolDetector.maxRequestLine + 8)
            if !known && target.first != UInt8(ascii: "/") && target.first != UInt8(ascii: "*")
                && !containsRun(line, Array(" HTTP/1.".utf8))
            {
                fail("http1 without a known method, an origin-form target or \" HTTP/1.\"")
            }
        case .detected(.tls(let name)):
            if data[0] != 0x16 { fail("tls from a first byte 0x\(String(data[0], radix: 16))") }
            if let name {
                if name.isEmpty || !name.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) {
                    fail("server name \(name.debugDescription) is empty or not visible ASCII")
                }
                if !containsRun(data[...], Array(name.utf8)) {
                    fail("server name \(name.debugDescription) is not in the input")
                }
            }
        }

        FuzzBuffers.withExactCopy(data) { buffer in
            for length in prefixLengths(data.count) {
                let partial = ProtocolDetector.detect(UnsafeRawBufferPointer(rebasing: buffer[0..<length]))
                if partial != .needMoreBytes && partial != verdict {
                    fail("the first \(length) bytes gave \(partial), all \(data.count) gave \(verdict)")
                }
            }
        }
    }

    private static func prefixLengths(_ count: Int) -> [Int] {
        if count <= allPrefixesUpTo { return Array(0..<count) }
        var lengths = Array(0..<allPrefixesUpTo)
        let step = max(1, (count - allPrefixesUpTo) / 200)
        lengths += stride(from: allPrefixesUpTo, to: count, by: step)
        // The limits the detector counts against.
        for limit in [
            16, 17, ProtocolDetector.maxRequestLine - 1, ProtocolDetector.maxRequestLine,
            ProtocolDetector.maxRequestLine + 1,
        ]
        where limit < count {
            lengths.append(limit)
        }
        lengths.append(count - 1)
        return lengths
    }

    private static func containsRun(_ haystack: ArraySlice<UInt8>, _ needle: [UInt8]) -> Bool {
        guard !needle.isEmpty, haystack.count >= needle.count else { return needle.isEmpty }
        var start = haystack.startIndex
        while start + needle.count <= haystack.endIndex {
            if haystack[start..<(start + needle.count)].elementsEqual(needle) { return true }
            start += 1
        }
        return false
    }
}
