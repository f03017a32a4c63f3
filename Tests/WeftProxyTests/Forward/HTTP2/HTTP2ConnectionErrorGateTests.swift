import NIOCore
import NIOEmbedded
import NIOHTTP2
import XCTest

@testable import WeftProxy

/// The gate in front of a server-mode `NIOHTTP2Handler`, as on a client's connection: a
/// connection error ends the connection and nothing read after it reaches the handler; a
/// graceful GOAWAY (NO_ERROR) does not.
final class HTTP2ConnectionErrorGateTests: XCTestCase {
    private static let preface = Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8) + [0, 0, 0, 0x4, 0, 0, 0, 0, 0]
    /// WINDOW_UPDATE of 0 on the connection: a connection error (PROTOCOL_ERROR).
    private static let badWindowUpdate: [UInt8] = [0, 0, 4, 0x8, 0, 0, 0, 0, 0, 0, 0, 0, 0]

    private func makeChannel() throws -> (EmbeddedChannel, HTTP2ConnectionErrorGate) {
        let channel = EmbeddedChannel()
        let gate = HTTP2ConnectionErrorGate()
        try channel.pipeline.syncOperations.addHandler(gate)
        try channel.pipeline.syncOperations.addHandler(
            NIOHTTP2Handler(mode: .server, frameDelegate: HTTP2GoAwayWatch(gate: gate)))
        try channel.connect(to: try SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        try channel.writeInbound(ByteBuffer(bytes: Self.preface))
        while try channel.readOutbound(as: ByteBuffer.self) != nil {}
        return (channel, gate)
    }

    private func goAways(_ channel: EmbeddedChannel) throws -> Int {
        var count = 0
        while var buffer = try channel.readOutbound(as: ByteBuffer.self) {
            while buffer.readableBytes >= 9, let length = buffer.getInteger(at: buffer.readerIndex, as: UInt8.self) {
                let size = Int(length) << 16 | Int(buffer.getInteger(at: buffer.readerIndex + 1, as: UInt16.self)!)
                if buffer.getInteger(at: buffer.readerIndex + 3, as: UInt8.self) == 0x7 { count += 1 }
                buffer.moveReaderIndex(forwardBy: min(buffer.readableBytes, 9 + size))
            }
        }
        return count
    }

    func testConnectionErrorClosesAndDropsWhatFollows() throws {
        let (channel, gate) = try makeChannel()
        try? channel.writeInbound(ByteBuffer(bytes: Self.badWindowUpdate))
        XCTAssertTrue(gate.isShut)
        channel.embeddedEventLoop.run()  // the flush and the close run on the loop
        XCTAssertEqual(try goAways(channel), 1)
        XCTAssertFalse(channel.isActive, "closed once the GOAWAY was written")
        // Anything still delivered is dropped by the gate: no second GOAWAY, no buffering.
        for _ in 0..<100 { try? channel.writeInbound(ByteBuffer(bytes: Self.badWindowUpdate)) }
        XCTAssertEqual(try goAways(channel), 0)
    }

    func testGracefulGoAwayKeepsTheConnection() throws {
        let (channel, gate) = try makeChannel()
        gate.wroteGoAway(code: .noError)
        channel.embeddedEventLoop.run()
        XCTAssertFalse(gate.isShut)
        XCTAssertTrue(channel.isActive)
    }

    func testReadsAreHeldOnceShut() throws {
        let (channel, gate) = try makeChannel()
        final class ReadCounter: ChannelOutboundHandler {
            typealias OutboundIn = Any
            var reads = 0
            func read(context: ChannelHandlerContext) {
                reads += 1
                context.read()
            }
        }
        let counter = ReadCounter()
        try channel.pipeline.syncOperations.addHandler(counter, position: .first)
        channel.read()
        XCTAssertEqual(counter.reads, 1)
        gate.wroteGoAway(code: .protocolError)
        channel.read()
        XCTAssertEqual(counter.reads, 1, "no read reaches the socket after the error")
    }
}
