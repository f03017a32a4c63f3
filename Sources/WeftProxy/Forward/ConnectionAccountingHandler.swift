import NIOCore
import WeftTelemetry

/// Counts a connection's raw bytes and, on the client side, its end, for pipelines
/// whose later handlers see frames rather than bytes (HTTP/2).
final class ConnectionAccountingHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let readCounter: Counter?
    private let writeCounter: Counter?
    private let openGauge: Gauge?

    /// Nil counters: bytes are counted elsewhere (HTTP/1 over HTTP/2: per stream).
    init(readCounter: Counter?, writeCounter: Counter?, openGauge: Gauge?) {
        self.readCounter = readCounter
        self.writeCounter = writeCounter
        self.openGauge = openGauge
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        readCounter?.increment(by: Int64(unwrapInboundIn(data).readableBytes))
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        writeCounter?.increment(by: Int64(unwrapOutboundIn(data).readableBytes))
        context.write(data, promise: promise)
    }

    func channelInactive(context: ChannelHandlerContext) {
        openGauge?.decrement()
        context.fireChannelInactive()
    }
}

@available(*, unavailable)
extension ConnectionAccountingHandler: Sendable {}
