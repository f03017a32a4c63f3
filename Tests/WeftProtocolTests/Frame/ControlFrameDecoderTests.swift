import NIOCore
import NIOEmbedded
import WeftProtocol
import XCTest

final class ControlFrameDecoderTests: XCTestCase {
    private func makeChannel(maxFrameBytes: Int = ControlProtocol.maxFrameBytes) -> EmbeddedChannel {
        EmbeddedChannel(handler: ByteToMessageHandler(ControlFrameDecoder(maxFrameBytes: maxFrameBytes)))
    }

    func testFrameWrittenOneByteAtATimeArrivesOnceWhole() throws {
        let channel = makeChannel()
        let payload = #"{"type":"ping","id":1}"#
        let frame = ByteBuffer.frame(payload)
        for (index, byte) in frame.readableBytesView.enumerated() {
            try channel.writeInbound(ByteBuffer(bytes: [byte]))
            if index < frame.readableBytes - 1 {
                XCTAssertNil(try channel.readInbound(as: ByteBuffer.self), "a frame arrived after \(index + 1) bytes")
            }
        }
        XCTAssertEqual(try channel.readInbound(as: ByteBuffer.self), ByteBuffer(string: payload))
        XCTAssertNil(try channel.readInbound(as: ByteBuffer.self))
        XCTAssertTrue(try channel.finish().isClean)
    }

    func testTwoFramesInOneWriteArriveAsTwo() throws {
        let channel = makeChannel()
        var bytes = ByteBuffer.frame(#"{"type":"ping","id":1}"#)
        var second = ByteBuffer.frame(#"{"type":"pong","id":2}"#)
        bytes.writeBuffer(&second)
        try channel.writeInbound(bytes)
        XCTAssertEqual(try channel.readInbound(as: ByteBuffer.self), ByteBuffer(string: #"{"type":"ping","id":1}"#))
        XCTAssertEqual(try channel.readInbound(as: ByteBuffer.self), ByteBuffer(string: #"{"type":"pong","id":2}"#))
        XCTAssertNil(try channel.readInbound(as: ByteBuffer.self))
    }

    func testFrameAndAHalfKeepsTheRestForTheNextWrite() throws {
        let channel = makeChannel()
        let whole = ByteBuffer.frame(#"{"type":"pong","id":2}"#)
        var bytes = ByteBuffer.frame(#"{"type":"ping","id":1}"#)
        bytes.writeImmutableBuffer(whole.getSlice(at: 0, length: 7)!)
        try channel.writeInbound(bytes)
        XCTAssertEqual(try channel.readInbound(as: ByteBuffer.self), ByteBuffer(string: #"{"type":"ping","id":1}"#))
        XCTAssertNil(try channel.readInbound(as: ByteBuffer.self))
        try channel.writeInbound(whole.getSlice(at: 7, length: whole.readableBytes - 7)!)
        XCTAssertEqual(try channel.readInbound(as: ByteBuffer.self), ByteBuffer(string: #"{"type":"pong","id":2}"#))
    }

    func testOversizedLengthIsRefusedAsSoonAsItsFourBytesArrive() throws {
        let channel = makeChannel()
        // No body follows: the decoder must refuse on the header alone, before buffering.
        XCTAssertProtocolError(
            try channel.writeInbound(ByteBuffer.frameHeader(UInt32(ControlProtocol.maxFrameBytes + 1))),
            .oversizedFrame, mentioning: ["\(ControlProtocol.maxFrameBytes + 1)"])
    }

    func testOversizedLengthSplitAcrossWritesIsRefusedOnItsFourthByte() throws {
        let channel = makeChannel(maxFrameBytes: ControlProtocol.maxClientFrameBytes)
        let header = ByteBuffer.frameHeader(UInt32(ControlProtocol.maxClientFrameBytes + 1))
        try channel.writeInbound(header.getSlice(at: 0, length: 3)!)
        XCTAssertNil(try channel.readInbound(as: ByteBuffer.self))
        XCTAssertProtocolError(try channel.writeInbound(header.getSlice(at: 3, length: 1)!), .oversizedFrame)
    }

    func testServerLimitRefusesWhatTheDefaultLimitAccepts() throws {
        let length = UInt32(ControlProtocol.maxClientFrameBytes + 1)
        XCTAssertNoThrow(try makeChannel().writeInbound(ByteBuffer.frameHeader(length)))
        XCTAssertProtocolError(
            try makeChannel(maxFrameBytes: ControlProtocol.maxClientFrameBytes).writeInbound(
                ByteBuffer.frameHeader(length)),
            .oversizedFrame)
    }

    func testLengthOfExactlyTheLimitIsAccepted() throws {
        let channel = makeChannel()
        XCTAssertNoThrow(try channel.writeInbound(ByteBuffer.frameHeader(UInt32(ControlProtocol.maxFrameBytes))))
        XCTAssertNil(try channel.readInbound(as: ByteBuffer.self))
    }

    func testLargestLengthIsRefusedWithoutOverflow() throws {
        XCTAssertProtocolError(try makeChannel().writeInbound(ByteBuffer.frameHeader(.max)), .oversizedFrame)
    }

    func testZeroLengthIsAnEmptyFrame() throws {
        XCTAssertProtocolError(try makeChannel().writeInbound(ByteBuffer.frameHeader(0)), .emptyFrame)
    }

    func testEOFInsideABodyIsATruncatedFrame() throws {
        let channel = makeChannel()
        var bytes = ByteBuffer.frameHeader(22)
        bytes.writeString(#"{"type":"#)
        try channel.writeInbound(bytes)
        XCTAssertNil(try channel.readInbound(as: ByteBuffer.self))
        channel.pipeline.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
        XCTAssertProtocolError(try channel.throwIfErrorCaught(), .truncatedFrame)
    }

    func testEOFInsideAHeaderIsATruncatedFrame() throws {
        let channel = makeChannel()
        try channel.writeInbound(ByteBuffer(bytes: [0, 0]))
        XCTAssertProtocolError(try channel.finish(), .truncatedFrame)
    }

    func testEOFAfterWholeFramesDeliversThemAndIsClean() throws {
        let channel = makeChannel()
        try channel.writeInbound(ByteBuffer.frame(#"{"type":"ping","id":1}"#))
        channel.pipeline.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
        XCTAssertNoThrow(try channel.throwIfErrorCaught())
        XCTAssertEqual(try channel.readInbound(as: ByteBuffer.self), ByteBuffer(string: #"{"type":"ping","id":1}"#))
    }

    func testNextFrameLeavesAnIncompleteFrameUntouched() throws {
        var buffer = ByteBuffer.frameHeader(10)
        buffer.writeString("12345")
        let before = buffer
        XCTAssertNil(try ControlFrameDecoder.nextFrame(from: &buffer, maxFrameBytes: 100))
        XCTAssertEqual(buffer, before)
        XCTAssertEqual(buffer.readerIndex, 0)
    }

    func testNextFrameTakesExactlyOneFrame() throws {
        var buffer = ByteBuffer.frame("{}")
        buffer.writeString("rest")
        let frame = try ControlFrameDecoder.nextFrame(from: &buffer, maxFrameBytes: 100)
        XCTAssertEqual(frame, ByteBuffer(string: "{}"))
        XCTAssertEqual(buffer, ByteBuffer(string: "rest"))
    }
}
