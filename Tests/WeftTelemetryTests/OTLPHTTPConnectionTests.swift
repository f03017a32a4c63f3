import NIOCore
import NIOEmbedded
import NIOHTTP1
import XCTest

@testable import WeftTelemetry

/// One export's connection to an OTLP/HTTP receiver: when it is usable again, and why an
/// export failed.
final class OTLPHTTPConnectionTests: XCTestCase {
    private func posting(_ connection: OTLPHTTPConnection) throws -> (EmbeddedChannel, () -> (ok: Bool, usable: Bool)?)
    {
        let channel = EmbeddedChannel(handler: connection)
        var seen: (ok: Bool, usable: Bool)?
        connection.post([ByteBuffer(string: "spans")]) { ok in seen = (ok, connection.isUsable) }
        guard case .head(let head) = try channel.readOutbound(as: HTTPClientRequestPart.self) else {
            XCTFail("no request head")
            return (channel, { seen })
        }
        XCTAssertEqual(head.method, .POST)
        XCTAssertEqual(head.headers.first(name: "content-length"), "5")
        return (channel, { seen })
    }

    private func answer(_ channel: EmbeddedChannel, _ version: HTTPVersion, _ status: HTTPResponseStatus) throws {
        try channel.writeInbound(HTTPClientResponsePart.head(HTTPResponseHead(version: version, status: status)))
        try channel.writeInbound(HTTPClientResponsePart.end(nil))
    }

    /// A receiver that answers HTTP/1.0 (or `Connection: close`) closes the connection: it
    /// is unusable by the time the owner hears of the answer, so the next export goes on a
    /// new connection, not on this one as it closes.
    func testAConnectionTheReceiverClosesIsNotOfferedForTheNextExport() throws {
        let connection = OTLPHTTPConnection(host: "collector", port: 4318, path: "/v1/traces")
        let (channel, seen) = try posting(connection)
        try answer(channel, .http1_0, .ok)
        XCTAssertEqual(seen()?.ok, true)
        XCTAssertEqual(seen()?.usable, false, "unusable before done ran")
    }

    func testAKeptAliveConnectionStaysUsable() throws {
        let connection = OTLPHTTPConnection(host: "collector", port: 4318, path: "/v1/traces")
        let (channel, seen) = try posting(connection)
        try answer(channel, .http1_1, .ok)
        XCTAssertEqual(seen()?.ok, true)
        XCTAssertEqual(seen()?.usable, true)
        XCTAssertNil(connection.failure)
    }

    /// The reason kept is the first: a TLS error, not the close that follows it; a status
    /// is named.
    func testTheFirstReasonIsKept() throws {
        struct HandshakeFailed: Error, CustomStringConvertible {
            var description: String { "CERTIFICATE_VERIFY_FAILED" }
        }
        let refused = OTLPHTTPConnection(host: "collector", port: 4318, path: "/v1/traces")
        let (channel, seen) = try posting(refused)
        channel.pipeline.fireErrorCaught(HandshakeFailed())
        XCTAssertEqual(seen()?.ok, false)
        XCTAssertEqual(refused.failure, "CERTIFICATE_VERIFY_FAILED")

        let answered = OTLPHTTPConnection(host: "collector", port: 4318, path: "/v1/traces")
        let (other, seenOther) = try posting(answered)
        try answer(other, .http1_1, .tooManyRequests)
        XCTAssertEqual(seenOther()?.ok, false)
        XCTAssertEqual(answered.failure, "answered 429 Too Many Requests")
    }
}
