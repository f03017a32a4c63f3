import XCTest

@testable import WeftProxy

private func detect(_ bytes: [UInt8]) -> ProtocolDetector.Verdict {
    bytes.withUnsafeBytes { ProtocolDetector.detect($0) }
}

private func detect(_ text: String) -> ProtocolDetector.Verdict {
    detect(Array(text.utf8))
}

private func bytes(hex lines: [String]) -> [UInt8] {
    let hex = Array(lines.joined().utf8)
    return stride(from: 0, to: hex.count, by: 2).map {
        UInt8(String(decoding: hex[$0..<($0 + 2)], as: UTF8.self), radix: 16)!
    }
}

private func u16(_ value: Int) -> [UInt8] { [UInt8(value >> 8 & 0xFF), UInt8(value & 0xFF)] }
private func u24(_ value: Int) -> [UInt8] { [UInt8(value >> 16 & 0xFF)] + u16(value) }

/// A minimal ClientHello in one record, with the given extensions.
private func clientHello(_ extensions: [(type: Int, body: [UInt8])]) -> [UInt8] {
    var hello: [UInt8] = [0x03, 0x03] + [UInt8](repeating: 0xAB, count: 32)
    hello += [0x00]  // session id
    hello += u16(2) + [0x13, 0x01]  // cipher suites
    hello += [0x01, 0x00]  // compression methods
    let list = extensions.flatMap { u16($0.type) + u16($0.body.count) + $0.body }
    hello += u16(list.count) + list
    let handshake = [0x01] + u24(hello.count) + hello
    return [0x16, 0x03, 0x01] + u16(handshake.count) + handshake
}

/// A server_name extension holding one name of the given type.
private func serverName(_ name: [UInt8], type: UInt8 = 0) -> (type: Int, body: [UInt8]) {
    let entry = [type] + u16(name.count) + name
    return (0, u16(entry.count) + entry)
}

private func serverName(_ name: String) -> (type: Int, body: [UInt8]) { serverName(Array(name.utf8)) }

/// What `openssl s_client -servername weft.example` (OpenSSL 3, TLS 1.3) sent first,
/// captured through a relay in front of `openssl s_server`.
private let opensslHello = bytes(hex: [
    "16030101390100013503032d194de25a9c09c54ef153dc4fd08c7e61c1d90fbcf2c2685edeaadc07a2f8122065c71f50",
    "0b4c87c487d3fc24f6ec9aa0f6bd6aa031b65e13d5e476914b7e957a003e130213031301c02cc030009fcca9cca8ccaa",
    "c02bc02f009ec024c028006bc023c0270067c00ac0140039c009c0130033009d009c003d003c0035002f00ff010000ae",
    "00000011000f00000c776566742e6578616d706c65000b000403000102000a00160014001d0017001e00190018010001",
    "01010201030104002300000016000000170000000d002a0028040305030603080708080809080a080b08040805080604",
    "0105010601030303010302040205020602002b0009080304030303020301002d00020101003300260024001d002065e5",
    "f2fed761473afc41d026e9aaab48fb7883732b6fe34b85b53740ee4b3746",
])

/// The same, with `-noservername`.
private let opensslHelloWithoutSNI = bytes(hex: [
    "1603010124010001200303679d257a1ab56bc3616bedb82352997fe64b6321813d59a19e2933cdc16a163320480000a7",
    "c36a882b464516d89a4a265351758219b7670f09d3eeb444d33f1f20003e130213031301c02cc030009fcca9cca8ccaa",
    "c02bc02f009ec024c028006bc023c0270067c00ac0140039c009c0130033009d009c003d003c0035002f00ff01000099",
    "000b000403000102000a00160014001d0017001e0019001801000101010201030104002300000016000000170000000d",
    "002a0028040305030603080708080809080a080b080408050806040105010601030303010302040205020602002b0009",
    "080304030303020301002d00020101003300260024001d002096d71831a5907ee44c2da3402ceecfc7b3d462a2f07b67",
    "4b0cd5987fafee6e43",
])

private let h2Preface = Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8)

final class ProtocolDetectorTests: XCTestCase {
    /// Asserts that every proper prefix of `bytes` shorter than `decisive` needs more
    /// bytes and every longer one gives `expected`, as when bytes arrive one at a time.
    private func assertByteAtATime(
        _ bytes: [UInt8], decisive: Int, _ expected: DetectedProtocol, file: StaticString = #filePath,
        line: UInt = #line
    ) {
        for length in 0...bytes.count {
            let verdict = detect(Array(bytes[0..<length]))
            if length < decisive {
                XCTAssertEqual(verdict, .needMoreBytes, "first \(length) bytes", file: file, line: line)
            } else {
                XCTAssertEqual(verdict, .detected(expected), "first \(length) bytes", file: file, line: line)
            }
        }
    }

    func testNoBytesNeedMore() {
        XCTAssertEqual(detect([]), .needMoreBytes)
    }

    // MARK: - HTTP/1

    func testHTTP1Requests() {
        for request in [
            "GET / HTTP/1.1\r\nHost: a\r\n\r\n", "POST /x HTTP/1.0\r\n", "OPTIONS * HTTP/1.1\r\n",
            "CONNECT a:443 HTTP/1.1\r\n",
            "PRI * HTTP/1.1\r\n", "PROPFIND /d HTTP/1.1\r\n", "M-SEARCH * HTTP/1.1\r\n",
            "PUT http://a.example/x?y HTTP/1.1\r\n",
        ] {
            XCTAssertEqual(detect(request), .detected(.http1), request.debugDescription)
        }
    }

    func testHTTP1ByteAtATime() {
        let request = Array("GET /index.html HTTP/1.1\r\nHost: a\r\n\r\n".utf8)
        assertByteAtATime(request, decisive: "GET ".utf8.count, .http1)
        let post = Array("POST / HTTP/1.0\r\n".utf8)
        assertByteAtATime(post, decisive: "POST ".utf8.count, .http1)
        // Another method: decided at its target's first byte (origin form).
        let report = Array("REPORT /x HTTP/1.1\r\n".utf8)
        assertByteAtATime(report, decisive: "REPORT /".utf8.count, .http1)
    }

    func testNotQuiteHTTP1IsOpaque() {
        for text in [
            "GET\t/ HTTP/1.1\r\n", " GET / HTTP/1.1", "FOO bar HTTP/2.0\r\n",
            "SET key value\r\n", "get key\r\n", "FOO  / HTTP/1.1\r\n",
        ] {
            XCTAssertEqual(detect(text), .detected(.opaque), text.debugDescription)
        }
    }

    /// The red team's bypass: these start like requests but failed the strict request-line
    /// check, so they went to the app as opaque bytes, smuggling header pairs and all. They
    /// are HTTP/1 now, and the HTTP/1 parser rejects what is malformed.
    func testAnythingThatStartsLikeARequestIsHTTP1() {
        for text in [
            "\r\nGET / HTTP/1.1\r\n", "\r\n\r\nPOST / HTTP/1.1\r\n", "GET  / HTTP/1.1\r\n",
            "GET / HTTP/2.0\r\n", "GET / http/1.1\r\n", "GET /\r\n", "GET / HTTP/1,1", "GET /\u{7F} HTTP/1.1",
            "POST /" + String(repeating: "a", count: 9000) + " HTTP/1.1\r\n", "PROPFIND  /x HTTP/1.1\r\n",
            "MKCOL /" + String(repeating: "b", count: 9000),
        ] {
            XCTAssertEqual(detect(text), .detected(.http1), text.prefix(40).debugDescription)
        }
        // Decided at the space after a known method, however the bytes arrive.
        assertByteAtATime(Array("GET  /x HTTP/1.1\r\n".utf8), decisive: 4, .http1)
        assertByteAtATime(Array("\r\nDELETE /x HTTP/1.1\r\n".utf8), decisive: 9, .http1)
    }

    func testHTTP2VersionIsDecidedAtItsFirstDifferentByte() {
        let request = Array("FOO x HTTP/2.0\r\n".utf8)
        assertByteAtATime(request, decisive: "FOO x HTTP/2".utf8.count, .opaque)
    }

    func testMethodLengthLimit() {
        let longest = String(repeating: "M", count: ProtocolDetector.maxMethod)
        XCTAssertEqual(detect("\(longest) / HTTP/1.1\r\n"), .detected(.http1))
        XCTAssertEqual(detect(longest), .needMoreBytes)
        XCTAssertEqual(detect(longest + "M"), .detected(.opaque))
    }

    /// Found by the fuzzer: a 17-byte method was opaque when the first read ended inside
    /// it and HTTP/1 when the whole line arrived at once.
    func testLongMethodIsOpaqueHoweverTheBytesArrive() {
        let request = Array("PROPPATCHEXTENDED /a HTTP/1.1\r\n".utf8)
        assertByteAtATime(request, decisive: 17, .opaque)
    }

    func testRequestLineLengthLimit() {
        // An unknown method with a target in neither origin nor asterisk form is HTTP/1
        // only with " HTTP/1." in the line, and the line is awaited up to the limit.
        let limit = ProtocolDetector.maxRequestLine
        // The target ends (at its space) one byte before the limit: HTTP/1.
        let fits = Array(("FOO " + String(repeating: "a", count: limit - 5) + " HTTP/1.1\r\n").utf8)
        XCTAssertEqual(fits.firstIndex(of: 0x20, after: 4), limit - 1)
        assertByteAtATime(fits, decisive: limit + "HTTP/1.".utf8.count, .http1)
        // The target reaches the limit: opaque, whether or not its end has arrived.
        let tooLong = Array(("FOO " + String(repeating: "a", count: limit - 4) + " HTTP/1.1\r\n").utf8)
        assertByteAtATime(tooLong, decisive: limit, .opaque)
    }

    // MARK: - HTTP/2

    func testHTTP2Preface() {
        let bytes = h2Preface + [0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x00, 0x00]
        assertByteAtATime(bytes, decisive: h2Preface.count, .http2)
    }

    /// A broken preface starts like an HTTP/1 request (`PRI *`), so the HTTP/1 parser
    /// answers it (400) rather than the bytes going to the app as opaque.
    func testBrokenPrefaceIsHTTP1() {
        XCTAssertEqual(detect(Array("PRI * HTTP/2.0\r\n\r\nSX\r\n\r\n".utf8)), .detected(.http1))
        XCTAssertEqual(detect(Array("PRI * HTTP/2.0\r\n\r\n\r\n".utf8)), .detected(.http1))
    }

    func testWordsStartingWithPAreHTTP1() {
        XCTAssertEqual(detect("POST / HTTP/1.1\r\n"), .detected(.http1))
        XCTAssertEqual(detect("PATCH / HTTP/1.1\r\n"), .detected(.http1))
        XCTAssertEqual(detect("PR"), .needMoreBytes)
        XCTAssertEqual(detect("PRX"), .needMoreBytes)
    }

    // MARK: - TLS

    func testClientHelloFromOpenSSL() {
        XCTAssertEqual(detect(opensslHello), .detected(.tls(serverName: "weft.example")))
        XCTAssertEqual(detect(opensslHelloWithoutSNI), .detected(.tls(serverName: nil)))
        // Bytes after the record (the client's next flight) change nothing.
        XCTAssertEqual(
            detect(opensslHello + [0x14, 0x03, 0x03, 0x00, 0x01, 0x01]), .detected(.tls(serverName: "weft.example")))
    }

    func testClientHelloByteAtATime() {
        assertByteAtATime(opensslHello, decisive: opensslHello.count, .tls(serverName: "weft.example"))
        assertByteAtATime(opensslHelloWithoutSNI, decisive: opensslHelloWithoutSNI.count, .tls(serverName: nil))
    }

    func testServerNameAmongOtherExtensions() {
        let hello = clientHello([
            (0x000A, [0x00, 0x02, 0x00, 0x1D]), (0x0017, []), serverName("api.default.svc.cluster.local"),
            (0x002B, [0x02, 0x03, 0x04]),
        ])
        XCTAssertEqual(detect(hello), .detected(.tls(serverName: "api.default.svc.cluster.local")))
    }

    func testHelloWithoutExtensionsHasNoServerName() {
        XCTAssertEqual(detect(clientHello([])), .detected(.tls(serverName: nil)))
        XCTAssertEqual(detect(clientHello([(0x0017, [])])), .detected(.tls(serverName: nil)))
    }

    func testUnusableServerNamesAreNil() {
        for name in [[], Array("a b".utf8), Array("a\u{00}b".utf8), [0x61, 0x80], Array("tab\there".utf8), [0x7F]]
            as [[UInt8]]
        {
            XCTAssertEqual(detect(clientHello([serverName(name)])), .detected(.tls(serverName: nil)), "\(name)")
        }
        XCTAssertEqual(
            detect(clientHello([serverName(Array("a.example".utf8), type: 1)])), .detected(.tls(serverName: nil)))
        // A server_name extension whose name runs past the extension.
        XCTAssertEqual(
            detect(clientHello([(0, u16(12) + [0] + u16(40) + Array("a.example".utf8))])),
            .detected(.tls(serverName: nil)))
        // An extension list that runs past the end of the hello.
        XCTAssertEqual(
            detect(clientHello([(0x0017, []), (0x0010, [])]).dropLastChangingLength(1)),
            .detected(.tls(serverName: nil)))
    }

    func testRecordHeaderPrefixes() {
        XCTAssertEqual(detect([0x16]), .needMoreBytes)
        XCTAssertEqual(detect([0x16, 0x03]), .needMoreBytes)
        XCTAssertEqual(detect([0x16, 0x03, 0x01, 0x01]), .needMoreBytes)
        XCTAssertEqual(detect([0x16, 0x03, 0x01, 0x01, 0x39]), .needMoreBytes)
        XCTAssertEqual(detect([0x16, 0x02]), .detected(.opaque))
        XCTAssertEqual(detect([0x16, 0x03, 0x05]), .detected(.opaque))
    }

    func testRecordsThatAreNotAClientHelloAreOpaque() {
        var serverHello = opensslHello
        serverHello[5] = 0x02
        XCTAssertEqual(detect(serverHello), .detected(.opaque))
        var sslv2Version = opensslHello
        sslv2Version[1] = 0x02
        XCTAssertEqual(detect(sslv2Version), .detected(.opaque))
        var futureVersion = opensslHello
        futureVersion[2] = 0x05
        XCTAssertEqual(detect(futureVersion), .detected(.opaque))
        // Record lengths that cannot hold a ClientHello, or exceed the TLS limit.
        for length in [0, 4, 16_385, 0xFFFF] {
            XCTAssertEqual(
                detect([0x16, 0x03, 0x01] + u16(length) + [0x01, 0x00, 0x00]), .detected(.opaque), "length \(length)")
        }
    }

    func testLargestRecordIsAwaitedUpToMaxBytes() {
        let record = [0x16, 0x03, 0x03] + u16(16_384) + [0x01] + u24(16_380) + [UInt8](repeating: 0, count: 16_380)
        XCTAssertEqual(record.count, ProtocolDetector.maxBytes)
        XCTAssertEqual(detect(Array(record.dropLast())), .needMoreBytes)
        XCTAssertEqual(detect(record), .detected(.tls(serverName: nil)))
    }

    /// A record shorter than the hello it starts: the hello is cut off, never read past.
    func testTruncatedHellosHaveNoServerName() {
        for length in 5..<(opensslHello.count - 5) {
            let truncated = Array(opensslHello[0..<3]) + u16(length) + Array(opensslHello[5..<(5 + length)])
            XCTAssertEqual(detect(truncated), .detected(.tls(serverName: nil)), "record length \(length)")
        }
    }

    /// Any one byte of a real hello changed never crashes, and changes the verdict only
    /// in the ways the record header allows.
    func testGarbledHellosNeverCrash() {
        for index in 0..<opensslHello.count {
            for value in [0x00, 0xFF, opensslHello[index] ^ 0x01, opensslHello[index] &+ 0x80] as [UInt8] {
                var garbled = opensslHello
                garbled[index] = value
                let verdict = detect(garbled)
                switch (index, verdict) {
                case (5..., .detected(.tls(_))), (1...4, .detected(.tls(_))), (1...4, .needMoreBytes),
                    (1..., .detected(.opaque)):
                    break
                case (0, _) where value != 0x16:
                    XCTAssertNotEqual(verdict, .detected(.tls(serverName: "weft.example")))
                default:
                    XCTFail("byte \(index) = \(value): \(verdict)")
                }
                if index >= 5, case .detected(.tls(let name?)) = verdict {
                    XCTAssertTrue(name.utf8.allSatisfy { $0 > 0x20 && $0 < 0x7F }, name)
                }
            }
        }
    }

    // MARK: - Anything else

    func testGarbageIsOpaque() {
        let cases: [[UInt8]] = [
            Array("SSH-2.0-OpenSSH_9.2p1\r\n".utf8), [0x00], [0x80, 0x01], Array("\r\n\0".utf8), [0x05, 0x01, 0x00],
            Array("{\"json\": true}".utf8), [0x17, 0x03, 0x03, 0x00, 0x10], Array(" ".utf8),
        ]
        for bytes in cases {
            XCTAssertEqual(detect(bytes), .detected(.opaque), "\(bytes)")
        }
    }

    func testNeverWaitsPastMaxBytes() {
        XCTAssertEqual(detect([UInt8](repeating: 0x61, count: ProtocolDetector.maxBytes)), .detected(.opaque))
        let target = Array(("FOO a" + String(repeating: "a", count: ProtocolDetector.maxBytes)).utf8)
        XCTAssertEqual(detect(target), .detected(.opaque))
        let empty = [UInt8](repeating: 0x0A, count: ProtocolDetector.maxBytes)
        XCTAssertEqual(detect(empty), .detected(.opaque))
    }

    func testLabels() {
        XCTAssertEqual(DetectedProtocol.http1.label, "http1")
        XCTAssertEqual(DetectedProtocol.http2.label, "http2")
        XCTAssertEqual(DetectedProtocol.tls(serverName: "x").label, "tls")
        XCTAssertEqual(DetectedProtocol.tls(serverName: nil).label, "tls")
        XCTAssertEqual(DetectedProtocol.opaque.label, "opaque")
    }
}

extension Array where Element == UInt8 {
    fileprivate func firstIndex(of byte: UInt8, after start: Int) -> Int? {
        self[(start + 1)...].firstIndex(of: byte)
    }

    /// Drops the last `count` bytes of a single-record ClientHello and shortens the record
    /// and handshake lengths to match, leaving the extension list's length as it was.
    fileprivate func dropLastChangingLength(_ count: Int) -> [UInt8] {
        var bytes = Array(dropLast(count))
        let record = bytes.count - 5
        bytes[3] = UInt8(record >> 8)
        bytes[4] = UInt8(record & 0xFF)
        let handshake = record - 4
        bytes[6] = UInt8(handshake >> 16)
        bytes[7] = UInt8(handshake >> 8 & 0xFF)
        bytes[8] = UInt8(handshake & 0xFF)
        return bytes
    }
}
