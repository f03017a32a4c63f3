import Logging
import NIOCore
import NIOHTTP2
import NIOPosix

/// Behind the TLS server handler and the peer check on an inbound mesh TLS connection:
/// on the verified `MeshPeer` the check passes on (the caller and the agreed ALPN),
/// installs the forwarder for what that protocol says the connection carries, toward the
/// app, and leaves. Until then it owns the connection's place in the open-connections gauge.
///
/// - `MeshALPN.http1`: `HTTP1ProxyHandler` to the app, as for plaintext HTTP/1.
/// - `MeshALPN.http2`: the HTTP/2 relay to the app, as for plaintext h2c.
/// - `MeshALPN.http1OverHTTP2`: HTTP/1 exchanges on HTTP/2 streams, each given to its own
///   `HTTP1ProxyHandler` to the app (`HTTP1OverHTTP2Inbound`).
/// - `MeshALPN.tcp`: authorized once (no method or path), then spliced to the app: one
///   mesh TLS connection per TCP connection.
final class MeshTLSTerminator: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer

    private let app: SocketAddress
    private let pools: LoopPools
    private let metrics: DirectionMetrics
    private let config: ProxyConfig
    private let logger: Logger
    /// The client half-closed (during detection, or since): passed on to the forwarder.
    private var clientInputEnded: Bool
    /// The pod's port the caller reached, for authorization.
    private let port: Int
    private var handedOver = false
    /// Closes a connection whose handshake does not complete within the request-head
    /// timeout (a half handshake must not hold a connection forever).
    private var handshakeTimer: Scheduled<Void>?
    /// Bytes decrypted before the forwarder was in place (none expected: the handshake's
    /// event comes first), passed on to it.
    private var early: ByteBuffer?

    init(
        app: SocketAddress, pools: LoopPools, metrics: DirectionMetrics, config: ProxyConfig, logger: Logger,
        clientInputEnded: Bool, port: Int
    ) {
        self.port = port
        self.app = app
        self.pools = pools
        self.metrics = metrics
        self.config = config
        self.logger = logger
        self.clientInputEnded = clientInputEnded
    }

    func handlerAdded(context: ChannelHandlerContext) {
        handshakeTimer = context.eventLoop.scheduleTask(in: config.requestHeadTimeout) { [self] in
            handshakeTimer = nil
            guard !handedOver else { return }
            metrics.error(.tlsHandshake)
            pools.mesh.recordTLSFailure(
                inbound: true,
                detail:
                    "a caller at \(context.channel.remoteAddress?.ipAddress ?? "?") did not finish its handshake in time"
            )
            logger.debug(
                "mesh TLS handshake not completed in time; closing",
                metadata: ["timeout": "\(seconds(config.requestHeadTimeout))"])
            context.close(promise: nil)
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        handshakeTimer?.cancel()
        handshakeTimer = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        if early == nil { early = bytes } else { early!.writeBuffer(&bytes) }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard let peer = event as? MeshPeer else {
            if let event = event as? ChannelEvent, case .inputClosed = event { clientInputEnded = true }
            context.fireUserInboundEventTriggered(event)
            return
        }
        logger.debug(
            "mesh TLS accepted", metadata: ["peer": "\(peer.spiffeID)", "alpn": "\(peer.alpn?.rawValue ?? "none")"])
        let sync = context.pipeline.syncOperations
        let gate = InboundGate(
            mesh: pools.mesh, identity: peer.spiffeID, remote: context.channel.remoteAddress, port: port)
        do {
            switch peer.alpn {
            case .http1:
                let handler = HTTP1ProxyHandler(
                    destination: app, pool: pools.http1, metrics: metrics, config: config,
                    initialBytes: early ?? context.channel.allocator.buffer(capacity: 0),
                    clientInputEnded: clientInputEnded, inboundGate: gate)
                early = nil
                try sync.addHandler(handler, position: .after(self))
            case .http2:
                try HTTP2Inbound.install(
                    after: self, in: sync, destination: app, pool: pools.http2(.inbound), metrics: metrics,
                    config: config, logger: logger, inboundGate: gate)
                if let early {
                    self.early = nil
                    context.fireChannelRead(NIOAny(early))
                }
            case .http1OverHTTP2:
                try HTTP1OverHTTP2Inbound.install(
                    after: self, in: sync, app: app, pools: pools, metrics: metrics, config: config, gate: gate)
                if let early {
                    self.early = nil
                    context.fireChannelRead(NIOAny(early))
                }
            case .tcp:
                var gate = gate
                if let denial = gate.checkConnection() {
                    denial.reset(context.channel, metrics: metrics, logger: logger)
                    return
                }
                spliceToApp(context)
                return
            case nil:
                metrics.error(.tlsHandshake)
                logger.debug("mesh TLS protocol not served", metadata: ["alpn": "\(peer.alpn?.rawValue ?? "none")"])
                context.close(promise: nil)
                return
            }
        } catch {
            context.close(promise: nil)
            return
        }
        handedOver = true
        handshakeTimer?.cancel()
        handshakeTimer = nil
        let channel = context.channel
        sync.removeHandler(context: context, promise: nil)
        channel.read()
    }

    /// Opaque TCP inside mesh TLS: connects to the app and splices the decrypted bytes
    /// both ways (the splice sits after the TLS handler); half-closes pass through as
    /// close_notify.
    private func spliceToApp(_ context: ChannelHandlerContext) {
        handshakeTimer?.cancel()
        handshakeTimer = nil
        let client = context.channel
        ClientBootstrap(group: context.eventLoop)
            .connectTimeout(config.connectTimeout)
            .channelOption(.tcpOption(.tcp_nodelay), value: 1)
            .channelOption(.allowRemoteHalfClosure, value: true)
            .connect(to: app)
            .whenComplete { [self] result in
                switch result {
                case .success(let upstream):
                    guard client.isActive else {
                        upstream.close(promise: nil)
                        return
                    }
                    let bytes = early
                    early = nil
                    let inputEnded = clientInputEnded
                    let (metrics, idle) = (metrics, config.opaqueIdleTimeout)
                    // Out of the way first (reads are held until the splice asks), so no
                    // byte lands here after the splice starts; the splice owns the gauge.
                    handedOver = true
                    context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
                    SpliceHandler.join(
                        client: client, upstream: upstream, metrics: metrics, toUpstream: bytes, toClient: nil,
                        clientOwnsGauge: true, clientInputEnded: inputEnded, idleTimeout: idle)
                case .failure(let error):
                    metrics.error(.connectFailed)
                    logger.debug("app connect failed", metadata: ["error": "\(describe(error))"])
                    SpliceHandler.reset(client)
                }
            }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        if !handedOver {
            // A failed handshake or a refused peer: counted, the connection closed.
            metrics.error(.tlsHandshake)
            pools.mesh.recordTLSFailure(
                inbound: true,
                detail: "refused a caller at \(context.channel.remoteAddress?.ipAddress ?? "?"): \(describe(error))")
            logger.debug("mesh TLS refused", metadata: ["error": "\(describe(error))"])
        }
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        handshakeTimer?.cancel()
        handshakeTimer = nil
        if !handedOver { metrics.connectionsOpen.decrement() }
        context.fireChannelInactive()
    }
}

@available(*, unavailable)
extension MeshTLSTerminator: Sendable {}
