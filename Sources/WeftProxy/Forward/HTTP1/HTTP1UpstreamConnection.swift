import NIOCore

/// What an upstream HTTP/1 connection reports to the exchange that is using it.
protocol HTTP1UpstreamOwner: AnyObject {
    func upstreamRead(_ buffer: ByteBuffer)
    func upstreamReadComplete()
    func upstreamWritabilityChanged(isWritable: Bool)
    /// The connection closed; `error` is what failed it, if anything did.
    func upstreamClosed(error: Error?)
}

/// The handler on a pooled upstream HTTP/1 connection: it hands bytes to the exchange
/// that checked it out, and closes the connection if the server speaks while idle.
///
/// The owner is a strong reference, cleared when the exchange releases the connection
/// (the prototype measured strong references cleared on close beating `weak`).
final class HTTP1UpstreamConnection: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    let destination: SocketAddress
    /// The pool bucket it returns to; set when the pool opens it.
    var bucket: HTTP1UpstreamPool.Bucket?
    private(set) var context: ChannelHandlerContext?
    var owner: HTTP1UpstreamOwner?
    /// When it went back to the pool; the pool's sweep closes it after the idle timeout.
    var idleSince = NIODeadline.distantFuture
    /// True once it has carried a request; a reused connection may have been closed by
    /// the server meanwhile, which makes a failure before any response byte retryable.
    var hasBeenUsed = false
    /// How long its dial took: TCP connect, then the mesh TLS handshake (0 for plaintext),
    /// in nanoseconds; a span's connect and tls parts, for its first exchange.
    var dialNanos: (connect: UInt64, tls: UInt64) = (0, 0)
    /// A stream of an `HTTP1MultiplexedSession`: one exchange, never pooled.
    var isSingleUse = false
    private var failure: Error?
    private var pendingRead = false
    /// Set while the owner wants reads held (its client cannot take more bytes).
    var isReadPaused = false {
        didSet {
            if !isReadPaused && pendingRead {
                pendingRead = false
                context?.read()
            }
        }
    }

    init(destination: SocketAddress) {
        self.destination = destination
    }

    /// The channel, kept from `handlerAdded`: asking the context for it on every request
    /// costs a retain/release pair and NIO's lifecycle checks.
    private(set) var channel: Channel?
    private var isClosed = false
    private var needsFlush = false

    var isActive: Bool { !isClosed && channel != nil }
    var isWritable: Bool { channel?.isWritable ?? false }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        self.channel = context.channel
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
        self.channel = nil
    }

    func write(_ buffer: ByteBuffer, promise: EventLoopPromise<Void>? = nil) {
        needsFlush = true
        if let context {
            context.write(wrapOutboundOut(buffer), promise: promise)
        } else {
            promise?.fail(ChannelError.ioOnClosedChannel)
        }
    }

    /// Flushes if anything was written since the last flush.
    func flushIfNeeded() {
        guard needsFlush else { return }
        needsFlush = false
        context?.flush()
    }

    func close() {
        owner = nil
        isClosed = true
        context?.close(promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if let owner {
            owner.upstreamRead(unwrapInboundIn(data))
        } else {
            // A server must not send while no request is outstanding; such a connection
            // cannot be reused safely.
            context.close(promise: nil)
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        owner?.upstreamReadComplete()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        owner?.upstreamWritabilityChanged(isWritable: context.channel.isWritable)
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        failure = failure ?? error
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        isClosed = true
        let owner = self.owner
        self.owner = nil
        owner?.upstreamClosed(error: failure)
    }
}

extension HTTP1UpstreamConnection {
    func read(context: ChannelHandlerContext) {
        if isReadPaused {
            pendingRead = true
        } else {
            context.read()
        }
    }
}

@available(*, unavailable)
extension HTTP1UpstreamConnection: Sendable {}
