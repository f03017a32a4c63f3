import Glibc
import NIOCore
import WeftTelemetry

/// One side of a byte-for-byte TCP splice between two channels on the same event loop.
///
/// Used for opaque TCP, TLS passed through, and upgraded HTTP connections (WebSocket).
/// - Backpressure: a side reads only while its partner is writable (`read` is held
///   otherwise and replayed when the partner drains), so nothing buffers without bound.
/// - Half-close: end of input on one side shuts down the partner's output; the pair
///   closes once both directions have ended.
/// - Reset: a reset on one side resets the other (SO_LINGER 0), so a client sees the
///   upstream's failure rather than a clean end of stream.
/// - Idle: a pair that moves no byte for `--opaque-idle-timeout` (1 h, Envoy's TCP proxy
///   default) is reset; a pair that began with neither side having sent anything (the
///   detection timeout ran out on a silent client) must move a byte within one more
///   detection timeout, or is reset: server-speaks-first protocols speak at once, and
///   silent connections must not hold an upstream connection for an hour each. One
///   check per period compares the pair's read count with the last check's: no timer or
///   clock read per read.
final class SpliceHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// Shared by both sides: counts the directions that have ended, and the reads the
    /// idle check watches.
    final class Pair {
        var endedDirections = 0
        var reads = 0
        var readsAtLastCheck = 0
        var idleCheck: Scheduled<Void>?
    }

    private var partner: SpliceHandler?
    private var context: ChannelHandlerContext?
    private var pendingRead = false
    private let pair: Pair
    private let readCounter: Counter
    private let writeCounter: Counter
    private let openGauge: Gauge?

    /// - Parameters:
    ///   - readCounter: bytes read on this side; `writeCounter`: bytes written on this side.
    ///   - openGauge: decremented when this side closes (the client side owns the gauge).
    private init(pair: Pair, readCounter: Counter, writeCounter: Counter, openGauge: Gauge?) {
        self.pair = pair
        self.readCounter = readCounter
        self.writeCounter = writeCounter
        self.openGauge = openGauge
    }

    /// Joins a client channel and an upstream channel and sends along what each side
    /// already sent before the splice started. Call on their shared event loop.
    ///
    /// - Parameters:
    ///   - toUpstream: bytes the client sent before the splice (e.g. during detection).
    ///   - toClient: bytes the upstream sent before the splice (e.g. after a 101).
    ///   - clientInputEnded: the client half-closed before the splice started.
    static func join(
        client: Channel, upstream: Channel, metrics: DirectionMetrics,
        toUpstream: ByteBuffer?, toClient: ByteBuffer?, clientOwnsGauge: Bool, clientInputEnded: Bool = false,
        idleTimeout: TimeAmount? = nil, firstIdleCheck: TimeAmount? = nil
    ) {
        let pair = Pair()
        let clientSide = SpliceHandler(
            pair: pair, readCounter: metrics.readFromSource, writeCounter: metrics.writtenToSource,
            openGauge: clientOwnsGauge ? metrics.connectionsOpen : nil)
        let upstreamSide = SpliceHandler(
            pair: pair, readCounter: metrics.readFromDestination, writeCounter: metrics.writtenToDestination,
            openGauge: nil)
        clientSide.partner = upstreamSide
        upstreamSide.partner = clientSide
        do {
            try client.pipeline.syncOperations.addHandler(clientSide)
            try upstream.pipeline.syncOperations.addHandler(upstreamSide)
        } catch {
            client.close(promise: nil)
            upstream.close(promise: nil)
            return
        }
        if let toUpstream, toUpstream.readableBytes > 0 { upstreamSide.send(toUpstream) }
        if let toClient, toClient.readableBytes > 0 { clientSide.send(toClient) }
        upstreamSide.context?.flush()
        clientSide.context?.flush()
        if clientInputEnded {
            // The client already half-closed during detection: pass that on.
            pair.endedDirections += 1
            upstream.close(mode: .output, promise: nil)
        }
        if let idleTimeout {
            scheduleIdleCheck(
                pair, client: client, upstream: upstream, in: firstIdleCheck ?? idleTimeout, then: idleTimeout)
        }
        client.read()
        upstream.read()
    }

    private static func scheduleIdleCheck(
        _ pair: Pair, client: Channel, upstream: Channel, in delay: TimeAmount, then period: TimeAmount
    ) {
        pair.idleCheck = client.eventLoop.assumeIsolatedUnsafeUnchecked().scheduleTask(in: delay) {
            pair.idleCheck = nil
            guard client.isActive || upstream.isActive else { return }
            if pair.reads == pair.readsAtLastCheck {
                reset(client)
                reset(upstream)
                return
            }
            pair.readsAtLastCheck = pair.reads
            scheduleIdleCheck(pair, client: client, upstream: upstream, in: period, then: period)
        }
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
        self.partner = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        pair.reads &+= 1
        readCounter.increment(by: Int64(buffer.readableBytes))
        partner?.send(buffer)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        partner?.context?.flush()
    }

    func channelInactive(context: ChannelHandlerContext) {
        openGauge?.decrement()
        pair.idleCheck?.cancel()
        pair.idleCheck = nil
        // Still linked means this side closed without an error (errorCaught unlinks and
        // resets): e.g. its output had been shut down and then its peer's FIN arrived,
        // which NIO turns into a full close. The partner may still hold bytes from this
        // side: close it once they are written.
        if let partner, let partnerContext = partner.context {
            self.partner = nil
            partner.partner = nil
            Self.closeAfterPendingWrites(partnerContext)
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard let event = event as? ChannelEvent, case .inputClosed = event else {
            context.fireUserInboundEventTriggered(event)
            return
        }
        pair.endedDirections += 1
        if pair.endedDirections == 2 {
            // Both directions ended. The partner may still hold bytes from this side
            // (its input already ended, so shutting its output would close it at once and
            // drop them): close both once its pending writes are done.
            guard let partnerContext = partner?.context else {
                context.close(promise: nil)
                return
            }
            partnerContext.writeAndFlush(NIOAny(partnerContext.channel.allocator.buffer(capacity: 0))).whenComplete {
                _ in
                partnerContext.close(promise: nil)
                context.close(promise: nil)
            }
        } else if let partnerContext = partner?.context {
            partnerContext.flush()
            partnerContext.close(mode: .output, promise: nil)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        // A reset (or any I/O error) on one side ends the pair; reset the other side
        // too so the peer learns the connection failed instead of seeing a clean EOF.
        if let partner, let partnerContext = partner.context {
            self.partner = nil
            partner.partner = nil
            Self.reset(partnerContext.channel)
        }
        context.close(promise: nil)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable, let partner, partner.pendingRead {
            partner.pendingRead = false
            partner.context?.read()
        }
        context.fireChannelWritabilityChanged()
    }

    func read(context: ChannelHandlerContext) {
        if let partner, let partnerContext = partner.context, !partnerContext.channel.isWritable {
            pendingRead = true
        } else {
            context.read()
        }
    }

    private func send(_ buffer: ByteBuffer) {
        guard let context else { return }
        writeCounter.increment(by: Int64(buffer.readableBytes))
        context.write(wrapOutboundOut(buffer), promise: nil)
    }

    /// Closes a channel after the writes queued on it have gone out.
    private static func closeAfterPendingWrites(_ context: ChannelHandlerContext) {
        context.writeAndFlush(NIOAny(context.channel.allocator.buffer(capacity: 0))).whenComplete { _ in
            context.close(promise: nil)
        }
    }

    /// Closes a channel with a TCP reset rather than a FIN.
    static func reset(_ channel: Channel) {
        if let provider = channel as? SocketOptionProvider {
            _ = provider.setSoLinger(linger(l_onoff: 1, l_linger: 0))
        }
        channel.close(promise: nil)
    }
}

@available(*, unavailable)
extension SpliceHandler: Sendable {}
