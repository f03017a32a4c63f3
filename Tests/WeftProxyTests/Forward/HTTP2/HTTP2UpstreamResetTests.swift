import NIOCore
import NIOEmbedded
import NIOHPACK
import NIOHTTP2
import XCTest

@testable import WeftProxy

/// The root cause of `NoSuchStream` after client cancellations, pinned: a server's late
/// HEADERS or DATA on a stream the proxy reset must be ignored (RFC 9113 §5.1), however
/// many streams were reset since, on a connection with the proxy's upstream settings. With
/// swift-nio-http2's defaults, the 32nd reset pushes the first out of its ring of recently
/// reset streams and the late frame becomes a connection error (GOAWAY STREAM_CLOSED).
final class HTTP2UpstreamResetTests: XCTestCase {
    private final class GoAwayWatch: NIOHTTP2FrameDelegate {
        var goAway: HTTP2ErrorCode?
        func wroteFrame(_ frame: HTTP2Frame) {
            if case .goAway(_, let code, _) = frame.payload { goAway = code }
        }
    }

    private final class Errors: ChannelInboundHandler {
        typealias InboundIn = HTTP2Frame
        var caught: [Error] = []
        func errorCaught(context: ChannelHandlerContext, error: Error) { caught.append(error) }
    }

    /// Opens and resets `pairs` streams, then delivers a server's HEADERS and DATA for
    /// stream 1; returns the GOAWAY code the client wrote, if any.
    private func lateFramesAfterResets(
        _ pairs: Int, configuration: NIOHTTP2Handler.ConnectionConfiguration
    ) throws -> HTTP2ErrorCode? {
        let server = EmbeddedChannel()
        try server.pipeline.syncOperations.addHandler(NIOHTTP2Handler(mode: .server))
        let client = EmbeddedChannel()
        let watch = GoAwayWatch()
        try client.pipeline.syncOperations.addHandler(
            NIOHTTP2Handler(mode: .client, frameDelegate: watch, connectionConfiguration: configuration))
        try client.pipeline.syncOperations.addHandler(Errors())
        let address = try SocketAddress(ipAddress: "127.0.0.1", port: 1)
        try server.connect(to: address).wait()
        try client.connect(to: address).wait()
        var moved = true
        while moved {  // preface and settings
            moved = false
            while let b = try client.readOutbound(as: ByteBuffer.self) { try server.writeInbound(b); moved = true }
            while let b = try server.readOutbound(as: ByteBuffer.self) { try client.writeInbound(b); moved = true }
        }
        let request: HPACKHeaders = [":method": "GET", ":path": "/", ":scheme": "http", ":authority": "b"]
        for i in 0..<pairs {
            let id = HTTP2StreamID(2 * i + 1)
            client.write(
                HTTP2Frame(streamID: id, payload: .headers(.init(headers: request, endStream: true))), promise: nil)
            client.writeAndFlush(HTTP2Frame(streamID: id, payload: .rstStream(.cancel)), promise: nil)
        }
        while try client.readOutbound(as: ByteBuffer.self) != nil {}  // in flight: the server has not seen them
        var late = ByteBuffer()
        late.writeBytes([0, 0, 1, 0x1, 0x4, 0, 0, 0, 1, 0x88])  // HEADERS :status 200, END_HEADERS
        late.writeBytes([0, 0, 5, 0x0, 0x1, 0, 0, 0, 1])  // DATA, END_STREAM
        late.writeString("hello")
        try? client.writeInbound(late)
        _ = try? client.finish()
        _ = try? server.finish()
        return watch.goAway
    }

    func testLateFramesOnResetStreamsAreIgnoredWithTheProxysSettings() throws {
        let configuration = HTTP2UpstreamConnection.connectionConfiguration()
        for pairs in [1, 31, 32, 50, 200, HTTP2UpstreamRelay.maxStreamsPerConnection] {
            XCTAssertNil(try lateFramesAfterResets(pairs, configuration: configuration), "\(pairs) resets")
        }
    }

    /// The defaults, for contrast: what broke the shared connection (32 resets).
    func testDefaultsMakeItAConnectionErrorPastTheRing() throws {
        var defaults = NIOHTTP2Handler.ConnectionConfiguration()
        defaults.headerBlockValidation = .disabled
        XCTAssertNil(try lateFramesAfterResets(31, configuration: defaults))
        XCTAssertEqual(try lateFramesAfterResets(32, configuration: defaults), .streamClosed)
    }
}
