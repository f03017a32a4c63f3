import Logging
import NIOCore
import NIOHTTP2
import NIOPosix

/// Where an accepted connection goes, decided at accept time from its original destination.
struct ConnectionTarget {
    let direction: TrafficDirection
    /// The original destination, as the client addressed it.
    let originalDestination: SocketAddress
    /// Where the proxy connects: the original destination (outbound) or the app on
    /// loopback at the original port (inbound).
    let upstream: SocketAddress
}

/// The first handler on every captured connection: it reads the client's first bytes,
/// decides the protocol, and replaces itself with the handler that forwards it.
///
/// - Reads are held once a verdict is reached, until the forwarding handler is in place,
///   so no byte is read before something can take it.
/// - A client that sends nothing within the detection timeout is treated as opaque TCP
///   (server-speaks-first protocols on ports not listed as opaque still work, late);
///   listed opaque ports skip detection altogether.
final class ProtocolDetectHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer

    private let target: ConnectionTarget
    private let metrics: DirectionMetrics
    private let config: ProxyConfig
    private let pools: LoopPools
    private let logger: Logger
    private let skipDetection: Bool

    private var context: ChannelHandlerContext?
    private var buffered: ByteBuffer?
    private var isDecided = false
    private var clientInputEnded = false
    private var ownsConnection = true
    private var timer: Scheduled<Void>?

    init(
        target: ConnectionTarget, metrics: DirectionMetrics, config: ProxyConfig, pools: LoopPools,
        logger: Logger
    ) {
        self.target = target
        self.metrics = metrics
        self.config = config
        self.pools = pools
        self.logger = logger
        self.skipDetection = config.opaquePorts.contains(target.originalDestination.port ?? 0)
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        if skipDetection {
            decide(.opaque)
        } else {
            timer = context.eventLoop.scheduleTask(in: config.detectTimeout) { [self] in
                timer = nil
                decide(.opaque)
            }
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
        self.context = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        metrics.readFromSource.increment(by: Int64(bytes.readableBytes))
        if isDecided {
            // Already read before the verdict held reads: keep it for the forwarder.
            buffered.append(&bytes)
            return
        }
        buffered.append(&bytes)
        let verdict = buffered!.withUnsafeReadableBytes { ProtocolDetector.detect($0) }
        switch verdict {
        case .needMoreBytes:
            if buffered!.readableBytes >= ProtocolDetector.maxBytes { decide(.opaque) }
        case .detected(let detected):
            decide(detected)
        }
    }

    func read(context: ChannelHandlerContext) {
        if !isDecided { context.read() }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, case .inputClosed = event {
            clientInputEnded = true
            if (buffered?.readableBytes ?? 0) == 0 && !isDecided {
                // Connected and closed without a byte: nothing to forward.
                isDecided = true
                context.close(promise: nil)
            } else if !isDecided {
                decide(.opaque)
            }
        } else if event is ChannelShouldQuiesceEvent {
            if !isDecided { context.close(promise: nil) }
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        if ownsConnection {
            ownsConnection = false
            metrics.connectionsOpen.decrement()
        }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }

    private func decide(_ detected: DetectedProtocol) {
        guard !isDecided, let context else { return }
        isDecided = true
        timer?.cancel()
        timer = nil
        metrics.connectionAccepted(detected)
        logger.debug(
            "connection",
            metadata: [
                "direction": "\(target.direction.rawValue)", "protocol": "\(detected.label)",
                "dst": "\(describe(target.originalDestination))",
            ])
        switch detected {
        case .http1:
            let handler = HTTP1ProxyHandler(
                destination: target.upstream, pool: pools.http1, metrics: metrics, config: config,
                initialBytes: buffered ?? context.channel.allocator.buffer(capacity: 0),
                clientInputEnded: clientInputEnded)
            let channel = context.channel
            handOver(context) {
                try context.pipeline.syncOperations.addHandler(handler, position: .after(self))
            }
            channel.read()
        case .http2 where !clientInputEnded:
            startHTTP2(context)
        default:
            // Opaque TCP and TLS (passed through).
            connectAndSplice(context)
        }
    }

    /// Terminates the client's HTTP/2 connection; each stream is relayed to a stream on
    /// the shared upstream connection (`HTTP2ClientRelay`, frame mode: no stream channels).
    private func startHTTP2(_ context: ChannelHandlerContext) {
        let destination = target.upstream
        let pool = pools.http2(target.direction)
        let metrics = self.metrics
        let config = self.config
        let logger = self.logger
        let early = buffered
        buffered = nil
        handOver(context) {
            let sync = context.pipeline.syncOperations
            let accounting = ConnectionAccountingHandler(
                readCounter: metrics.readFromSource, writeCounter: metrics.writtenToSource,
                openGauge: metrics.connectionsOpen)
            try sync.addHandler(accounting, position: .after(self))
            // A connection error ends the connection: the gate stops reading and closes
            // once swift-nio-http2's GOAWAY is out.
            let gate = HTTP2ConnectionErrorGate()
            try sync.addHandler(gate, position: .after(accounting))
            let http2 = NIOHTTP2Handler(
                mode: .server, frameDelegate: HTTP2GoAwayWatch(gate: gate), connectionConfiguration: .init())
            try sync.addHandler(http2, position: .after(gate))
            try sync.addHandler(
                HTTP2ClientRelay(
                    destination: destination, pool: pool, metrics: metrics, config: config, logger: logger),
                position: .after(http2))
            // Detection already counted these bytes; hand them to the HTTP/2 handler.
            if let early { context.fireChannelRead(NIOAny(early)) }
        }
        context.channel.read()
    }

    /// Installs the next handler, then removes this one; the next handler now owns the
    /// connection (and its open-connections gauge).
    private func handOver(_ context: ChannelHandlerContext, install: () throws -> Void) {
        // Given up before installing: the next handler may finish the connection inside
        // `install` (an HTTP/1 handler answering a malformed first request with 400 and
        // closing), and the connection must leave the gauge once, not twice.
        ownsConnection = false
        do {
            try install()
            context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
        } catch {
            ownsConnection = true
            context.close(promise: nil)
        }
    }

    private func connectAndSplice(_ context: ChannelHandlerContext) {
        let client = context.channel
        let upstreamAddress = target.upstream
        ClientBootstrap(group: context.eventLoop)
            .connectTimeout(config.connectTimeout)
            .channelOption(.tcpOption(.tcp_nodelay), value: 1)
            .channelOption(.allowRemoteHalfClosure, value: true)
            .connect(to: upstreamAddress)
            .whenComplete { [self] result in
                switch result {
                case .success(let upstream):
                    guard client.isActive, let context = self.context else {
                        upstream.close(promise: nil)
                        return
                    }
                    let early = buffered
                    buffered = nil
                    let inputEnded = clientInputEnded
                    handOver(context) {}
                    // A client that sent nothing (the detection timeout ran out): the
                    // server must speak, or the client, within one more detection timeout.
                    let silent = !skipDetection && (early?.readableBytes ?? 0) == 0 && !inputEnded
                    SpliceHandler.join(
                        client: client, upstream: upstream, metrics: metrics, toUpstream: early, toClient: nil,
                        clientOwnsGauge: true, clientInputEnded: inputEnded, idleTimeout: config.opaqueIdleTimeout,
                        firstIdleCheck: silent ? config.detectTimeout : nil)
                case .failure(let error):
                    metrics.error(.connectFailed)
                    logger.debug(
                        "upstream connect failed",
                        metadata: ["dst": "\(describe(upstreamAddress))", "error": "\(describe(error))"])
                    // TCP has no error message: a reset tells the client the destination failed.
                    SpliceHandler.reset(client)
                }
            }
    }
}

@available(*, unavailable)
extension ProtocolDetectHandler: Sendable {}

extension Optional where Wrapped == ByteBuffer {
    /// Appends to the buffer, creating it from `bytes` (without a copy) when empty.
    fileprivate mutating func append(_ bytes: inout ByteBuffer) {
        if var existing = self, existing.readableBytes > 0 {
            self = nil
            existing.writeBuffer(&bytes)
            self = existing
        } else {
            self = bytes
        }
    }
}
