import NIOCore

/// Splits a byte stream into frames: a 4-byte big-endian length, then that many bytes of
/// UTF-8 JSON.
///
/// The length is checked against `maxFrameBytes` as soon as its four bytes arrive, so an
/// oversized frame is refused before any of its body is buffered. A zero-length frame is
/// malformed (a frame always holds one JSON object). Frames are handed on as slices of the
/// read buffer, never copied.
public struct ControlFrameDecoder: ByteToMessageDecoder {
    public typealias InboundOut = ByteBuffer

    public let maxFrameBytes: Int
    /// The limit of the first frame (the hello, on the server's side), which arrives before
    /// the peer is authenticated and so is kept small; nil: the same as the others.
    public let maxFirstFrameBytes: Int?
    private var framesDecoded = 0

    public init(maxFrameBytes: Int = ControlProtocol.maxFrameBytes, maxFirstFrameBytes: Int? = nil) {
        self.maxFrameBytes = maxFrameBytes
        self.maxFirstFrameBytes = maxFirstFrameBytes
    }

    public mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        let limit = framesDecoded == 0 ? (maxFirstFrameBytes ?? maxFrameBytes) : maxFrameBytes
        guard let frame = try Self.nextFrame(from: &buffer, maxFrameBytes: limit) else { return .needMoreData }
        framesDecoded &+= 1
        context.fireChannelRead(Self.wrapInboundOut(frame))
        return .continue
    }

    public mutating func decodeLast(
        context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool
    ) throws -> DecodingState {
        while try decode(context: context, buffer: &buffer) == .continue {}
        if buffer.readableBytes > 0 {
            throw ProtocolError(.truncatedFrame, "the connection closed inside a frame (\(buffer.readableBytes) bytes)")
        }
        return .needMoreData
    }

    /// Takes one whole frame's payload off the front of `buffer`, or returns nil if it is
    /// not all there yet.
    /// - Throws: `ProtocolError` `.oversizedFrame` or `.emptyFrame`.
    public static func nextFrame(from buffer: inout ByteBuffer, maxFrameBytes: Int) throws -> ByteBuffer? {
        guard let length = buffer.getInteger(at: buffer.readerIndex, as: UInt32.self) else { return nil }
        if length == 0 { throw ProtocolError(.emptyFrame, "a frame of length 0 holds no JSON object") }
        if Int(length) > maxFrameBytes {
            throw ProtocolError(.oversizedFrame, "frame of \(length) bytes exceeds the limit of \(maxFrameBytes) bytes")
        }
        guard buffer.readableBytes >= 4 + Int(length) else { return nil }
        buffer.moveReaderIndex(forwardBy: 4)
        return buffer.readSlice(length: Int(length))
    }
}

/// Writes each outbound payload as a frame: its 4-byte big-endian length, then the bytes.
public final class ControlFrameEncoder: ChannelOutboundHandler, RemovableChannelHandler {
    public typealias OutboundIn = ByteBuffer
    public typealias OutboundOut = ByteBuffer

    public init() {}

    public func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let payload = unwrapOutboundIn(data)
        var header = context.channel.allocator.buffer(capacity: 4)
        header.writeInteger(UInt32(payload.readableBytes))
        context.write(wrapOutboundOut(header), promise: nil)
        context.write(wrapOutboundOut(payload), promise: promise)
    }
}

@available(*, unavailable) extension ControlFrameEncoder: Sendable {}
