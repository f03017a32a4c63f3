import NIOCore
import NIOEmbedded
import NIOSSL
import XCTest

@testable import WeftProxy

/// ALPN read from real ClientHellos (BoringSSL's, through swift-nio-ssl) and from broken ones.
final class ClientHelloTests: XCTestCase {
    /// The first flight a swift-nio-ssl client writes, offering `protocols`.
    private func clientHello(offering protocols: [String]) throws -> [UInt8] {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.applicationProtocols = protocols
        configuration.certificateVerification = .none
        let context = try NIOSSLContext(configuration: configuration)
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(NIOSSLClientHandler(context: context, serverHostname: nil))
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        var out: [UInt8] = []
        while let buffer = try channel.readOutbound(as: ByteBuffer.self) { out += buffer.readableBytesView }
        _ = try? channel.finish()
        return out
    }

    private func parse(_ bytes: [UInt8]) -> ClientHello.Parse {
        bytes.withUnsafeBytes { ClientHello.parse($0) }
    }

    func testReadsTheOffersOfARealClientHello() throws {
        let hello = try clientHello(offering: [MeshALPN.http1.rawValue, "h2"])
        XCTAssertEqual(parse(hello), .offers(["weft/1+http1.1", "h2"]))
        XCTAssertEqual(MeshALPN.first(in: ["h2", "weft/1+tcp"]), .tcp)
        XCTAssertNil(MeshALPN.first(in: ["h2", "http/1.1"]))
        XCTAssertEqual(parse(try clientHello(offering: [])), .offers([]), "no ALPN extension: no offers")
    }

    func testEveryPrefixOfAClientHelloNeedsMoreBytes() throws {
        let hello = try clientHello(offering: [MeshALPN.http2.rawValue])
        for end in [0, 1, 4, 5, 6, hello.count / 2, hello.count - 1] {
            XCTAssertEqual(parse(Array(hello[0..<end])), .needMoreBytes, "first \(end) bytes")
        }
    }

    func testWhatIsNotAClientHelloIsSaidSo() {
        XCTAssertEqual(parse(Array("GET / HTTP/1.1\r\n".utf8)), .notClientHello)
        XCTAssertEqual(parse([0x17, 0x03, 0x03, 0x00, 0x05, 1, 2, 3, 4, 5]), .notClientHello, "application data")
        XCTAssertEqual(parse([0x16, 0x03, 0x01, 0x40, 0x01]), .notClientHello, "a record over 2^14 bytes")
        XCTAssertEqual(parse([0x16, 0x03, 0x01, 0x00, 0x04, 2, 0, 0, 0]), .notClientHello, "a ServerHello")
    }

    func testLengthsThatOverrunNeverTrap() throws {
        let hello = try clientHello(offering: [MeshALPN.http1.rawValue])
        // Every single-byte corruption of the record's body: an answer, never a crash.
        for index in 5..<hello.count {
            for value: UInt8 in [0x00, 0xFF] {
                var broken = hello
                broken[index] = value
                switch parse(broken) {
                case .offers, .notClientHello, .needMoreBytes: break
                }
            }
        }
        var short = hello
        short[4] = UInt8(truncatingIfNeeded: hello.count - 5 - 40)  // a record cut mid-extension
        short[3] = UInt8((hello.count - 5 - 40) >> 8)
        _ = parse(Array(short[0..<(hello.count - 40)]))
    }
}
