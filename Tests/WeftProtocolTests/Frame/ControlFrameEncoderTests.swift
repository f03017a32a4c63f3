import NIOCore
import NIOEmbedded
import WeftProtocol
import XCTest

final class ControlFrameEncoderTests: XCTestCase {
    private func encoded(_ payload: ByteBuffer) throws -> ByteBuffer {
        let channel = EmbeddedChannel(handler: ControlFrameEncoder())
        try channel.writeOutbound(payload)
        var out = ByteBuffer()
        while var part = try channel.readOutbound(as: ByteBuffer.self) { out.writeBuffer(&part) }
        return out
    }

    func testWritesABigEndianLengthThenThePayload() throws {
        let payload = #"{"id":1,"type":"ping"}"#
        var out = try encoded(ByteBuffer(string: payload))
        XCTAssertEqual(out.readBytes(length: 4), [0, 0, 0, 22])
        XCTAssertEqual(out, ByteBuffer(string: payload))
    }

    func testLengthUsesAllFourBytes() throws {
        let payload = ByteBuffer(repeating: UInt8(ascii: "x"), count: 0x01_02_03)
        var out = try encoded(payload)
        XCTAssertEqual(out.readBytes(length: 4), [0x00, 0x01, 0x02, 0x03])
        XCTAssertEqual(out.readableBytes, 0x01_02_03)
    }

    func testEncodedMessagesDecodeBackThroughTheDecoder() throws {
        let sender = EmbeddedChannel(handler: ControlFrameEncoder())
        let receiver = EmbeddedChannel(handler: ByteToMessageHandler(ControlFrameDecoder()))
        for message in ProtocolFixtures.serverMessages { try sender.writeOutbound(message.encode()) }
        while let bytes = try sender.readOutbound(as: ByteBuffer.self) { try receiver.writeInbound(bytes) }
        var received: [ServerMessage] = []
        while let frame = try receiver.readInbound(as: ByteBuffer.self) {
            received.append(try ServerMessage.decode(frame))
        }
        XCTAssertEqual(received, ProtocolFixtures.serverMessages)
    }
}
