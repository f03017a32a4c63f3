import NIOCore
import NIOHTTP2

/// Ends an HTTP/2 connection once swift-nio-http2 has answered a connection error with a
/// GOAWAY: no more reads, bytes already read are dropped, the GOAWAY is flushed, then the
/// connection closes (at most `closeGrace` later, for a peer that reads nothing).
///
/// swift-nio-http2 writes the GOAWAY but keeps the connection open, and keeps every byte
/// that follows unparsed in its decoder's buffer until the peer leaves, answering more
/// frames with more GOAWAYs: a flood after a connection error would hold gigabytes
/// (docs/ARCHITECTURE.md). Sits between the socket and the `NIOHTTP2Handler`, on the
/// client's connection and on upstream connections alike.
///
/// A GOAWAY with NO_ERROR (a graceful drain) is not an error: streams in flight finish.
final class HTTP2ConnectionErrorGate: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// The longest a connection in error waits for its GOAWAY to be written.
    static let closeGrace = TimeAmount.seconds(1)

    private var context: ChannelHandlerContext?
    private(set) var isShut = false
    /// Called once when the gate shuts (the upstream relay stops taking streams).
    var onShut: (() -> Void)?

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !isShut else { return }  // after the error: dropped, never buffered
        context.fireChannelRead(data)
    }

    func read(context: ChannelHandlerContext) {
        guard !isShut else { return }  // no more reads from the socket
        context.read()
    }

    /// swift-nio-http2 wrote a GOAWAY carrying `code` (called by the frame delegate, inside
    /// the handler's write).
    func wroteGoAway(code: HTTP2ErrorCode) {
        guard code != .noError, !isShut, let context else { return }
        isShut = true
        onShut?()
        onShut = nil
        // After the current write has left the HTTP/2 handler: flush it, then close once
        // it is on the wire (writes complete in order), or after the grace.
        context.eventLoop.execute { [self] in
            guard let context = self.context else { return }
            let written = context.eventLoop.makePromise(of: Void.self)
            context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(capacity: 0)), promise: written)
            let grace = context.eventLoop.scheduleTask(in: Self.closeGrace) {
                context.close(promise: nil)
            }
            written.futureResult.whenComplete { _ in
                grace.cancel()
                context.close(promise: nil)
            }
        }
    }
}

/// Tells the gate, and the upstream relay if there is one, when swift-nio-http2 writes a
/// GOAWAY (the proxy itself never writes one: swift-nio-http2 does, on a connection
/// error, or with NO_ERROR when a client connection drains).
struct HTTP2GoAwayWatch: NIOHTTP2FrameDelegate {
    let gate: HTTP2ConnectionErrorGate

    func wroteFrame(_ frame: HTTP2Frame) {
        if case .goAway(_, let code, _) = frame.payload { gate.wroteGoAway(code: code) }
    }
}

@available(*, unavailable)
extension HTTP2ConnectionErrorGate: Sendable {}
