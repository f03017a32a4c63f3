import NIOCore
import NIOEmbedded
import XCTest

@testable import WeftControl

final class SmallFlushWriterTests: XCTestCase {
    /// What reaches the TLS handler's place: each write's size, and where flushes fall.
    private final class FlushRecorder: ChannelOutboundHandler {
        typealias OutboundIn = ByteBuffer
        var events: [String] = []
        var bytes: [UInt8] = []

        func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
            let buffer = unwrapOutboundIn(data)
            events.append("w\(buffer.readableBytes)")
            bytes += buffer.readableBytesView
            context.write(data, promise: promise)
        }

        func flush(context: ChannelHandlerContext) {
            events.append("f")
            context.flush()
        }
    }

    private func channel(maxFlushBytes: Int) throws -> (EmbeddedChannel, FlushRecorder) {
        let recorder = FlushRecorder()
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(recorder)
        try channel.pipeline.syncOperations.addHandler(SmallFlushWriter(maxFlushBytes: maxFlushBytes))
        return (channel, recorder)
    }

    func testSmallWritesPassUnchanged() throws {
        let (channel, recorder) = try channel(maxFlushBytes: 100)
        channel.write(ByteBuffer(repeating: 1, count: 4), promise: nil)
        channel.writeAndFlush(ByteBuffer(repeating: 2, count: 50), promise: nil)
        XCTAssertEqual(recorder.events, ["w4", "w50", "f"])
    }

    func testLargeWriteIsSplitIntoFlushesOfAtMostTheLimitInOrder() throws {
        let (channel, recorder) = try channel(maxFlushBytes: 100)
        let header = ByteBuffer(bytes: [0, 0, 0, 250])
        let payload = ByteBuffer(bytes: (0..<250).map { UInt8($0) })
        let written = channel.eventLoop.makePromise(of: Void.self)
        channel.write(header, promise: nil)
        channel.writeAndFlush(payload, promise: written)
        // The header tops up the first flush instead of becoming a record of its own.
        XCTAssertEqual(recorder.events, ["w4", "w96", "f", "w100", "f", "w54", "f"])
        XCTAssertEqual(recorder.bytes, [0, 0, 0, 250] + (0..<250).map { UInt8($0) })
        XCTAssertNoThrow(try written.futureResult.wait())
    }

    func testAFlushStartsTheCountAgain() throws {
        let (channel, recorder) = try channel(maxFlushBytes: 100)
        channel.writeAndFlush(ByteBuffer(repeating: 1, count: 80), promise: nil)
        channel.writeAndFlush(ByteBuffer(repeating: 2, count: 80), promise: nil)
        XCTAssertEqual(recorder.events, ["w80", "f", "w80", "f"])
    }
}
