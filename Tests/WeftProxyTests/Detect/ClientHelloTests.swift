import NIOCore
import NIOEmbedded
import NIOSSL
import XCTest

@testable import WeftProxy

/// ALPN offers read from real ClientHellos (BoringSSL's, through swift-nio-ssl) and from
/// broken ones, as the inbound side uses them to tell mesh TLS from an app's own.
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

    private func offers(_ bytes: [UInt8]) -> [String] {
        bytes.withUnsafeBytes { ClientHelloReader.applicationProtocols(inRecord: $0) }
    }

    func testReadsTheOffersOfARealClientHello() throws {
        let hello = try clientHello(offering: [MeshALPN.http1.rawValue, "h2"])
        XCTAssertEqual(offers(hello), ["weft/1+http1.1", "h2"])
        hello.withUnsafeBytes { XCTAssertEqual(ProtocolDetector.detect($0), .detected(.tls(serverName: nil))) }
        XCTAssertEqual(MeshALPN.first(in: ["h2", "weft/1+tcp"]), .tcp)
        XCTAssertNil(MeshALPN.first(in: ["h2", "http/1.1"]))
        XCTAssertEqual(offers(try clientHello(offering: [])), [], "no ALPN extension: no offers")
    }

    func testWhatIsNotAClientHelloOffersNothing() {
        XCTAssertEqual(offers(Array("GET / HTTP/1.1\r\n".utf8)), [])
        XCTAssertEqual(offers([0x17, 0x03, 0x03, 0x00, 0x05, 1, 2, 3, 4, 5]), [], "application data")
        XCTAssertEqual(offers([0x16, 0x03, 0x01, 0x00, 0x04, 2, 0, 0, 0]), [], "a ServerHello")
    }

    func testLengthsThatOverrunNeverTrap() throws {
        let hello = try clientHello(offering: [MeshALPN.http1.rawValue])
        // Every single-byte corruption of the record, and every truncation: an answer, never a crash.
        for index in 0..<hello.count {
            for value: UInt8 in [0x00, 0xFF] {
                var broken = hello
                broken[index] = value
                _ = offers(broken)
            }
        }
        for end in 0..<hello.count { _ = offers(Array(hello[0..<end])) }
    }
}
