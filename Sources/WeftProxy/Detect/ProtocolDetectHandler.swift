import Logging
import NIOCore
import NIOHTTP2
import NIOPosix
import NIOSSL

/// Where an accepted connection goes, decided at accept time from its original destination.
struct ConnectionTarget {
    let direction: TrafficDirection
    /// The original destination, as the client addressed it.
    let originalDestination: SocketAddress
    /// Where the proxy connects when the mesh does not choose: the original destination
    /// (outbound) or the app (inbound).
    let upstream: SocketAddress
    /// Outbound with a mesh: what the destination is in it, resolved per request.
    let outbound: OutboundBinding?
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
    /// When the client's first bytes arrived: its first request's time starts there, so
    /// detection is inside that request's time (and span).
    private var firstByteAt: NIODeadline?
    private var isDecided = false
    private var clientInputEnded = false
    private var ownsConnection = true
    private var timer: Scheduled<Void>?
    /// Inbound on an opaque port: only a mesh TLS ClientHello is looked for.
    private var peekForMeshTLS = false
    /// How long an inbound opaque port waits for a mesh TLS ClientHello.
    static let opaquePeek = TimeAmount.milliseconds(100)

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
        if skipDetection && target.direction == .inbound && pools.mesh.meshTLS != nil {
            // An opaque port inbound: a meshed caller's sidecar opens it with a mesh TLS
            // ClientHello at once, so peek for one briefly; anything else (or silence: a
            // server-speaks-first protocol) is opaque TCP.
            peekForMeshTLS = true
            timer = context.eventLoop.scheduleTask(in: min(config.detectTimeout, Self.opaquePeek)) { [self] in
                timer = nil
                if let first = buffered?.readableBytesView.first, first == 0x16, !isDecided {
                    // A TLS record has begun (a ClientHello split across segments): its
                    // rest gets the detection timeout.
                    timer = context.eventLoop.scheduleTask(in: config.detectTimeout - Self.opaquePeek) { [self] in
                        timer = nil
                        decide(.opaque)
                    }
                    return
                }
                decide(.opaque)
            }
        } else if skipDetection {
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
        if firstByteAt == nil { firstByteAt = .now() }
        if isDecided {
            // Already read before the verdict held reads: keep it for the forwarder.
            buffered.append(&bytes)
            return
        }
        buffered.append(&bytes)
        let verdict = buffered!.withUnsafeReadableBytes { ProtocolDetector.detect($0) }
        if peekForMeshTLS {
            switch verdict {
            case .needMoreBytes where buffered!.readableBytes < ProtocolDetector.maxBytes:
                break
            case .detected(.tls):
                let offers = buffered!.withUnsafeReadableBytes { ClientHelloReader.applicationProtocols(inRecord: $0) }
                if MeshALPN.first(in: offers) != nil, let tls = pools.mesh.meshTLS {
                    terminateMeshTLS(context, tls)
                } else {
                    decide(.opaque)
                }
            default:
                decide(.opaque)
            }
            return
        }
        switch verdict {
        case .needMoreBytes:
            if buffered!.readableBytes >= ProtocolDetector.maxBytes { decide(.opaque) }
        case .detected(.tls(let serverName)) where target.direction == .inbound:
            // Mesh TLS (a ClientHello offering a mesh ALPN protocol) is terminated here;
            // any other TLS (the app's own) passes through untouched.
            let offers = buffered!.withUnsafeReadableBytes { ClientHelloReader.applicationProtocols(inRecord: $0) }
            if MeshALPN.first(in: offers) != nil, let tls = pools.mesh.meshTLS {
                terminateMeshTLS(context, tls)
            } else {
                decide(.tls(serverName: serverName))
            }
        case .detected(let detected):
            decide(detected)
        }
    }

    /// Terminates mesh TLS: the handshake (client certificate chained to the trust bundle),
    /// the peer's SPIFFE ID, then `MeshTLSTerminator` installs the forwarder for the
    /// protocol the handshake agreed, toward the app.
    private func terminateMeshTLS(_ context: ChannelHandlerContext, _ tls: MeshTLS) {
        guard !isDecided else { return }
        isDecided = true
        timer?.cancel()
        timer = nil
        metrics.connectionAccepted(.tls(serverName: nil))
        let early = buffered
        buffered = nil
        let verified = context.eventLoop.makePromise(of: MeshPeer.self)
        let terminator = MeshTLSTerminator(
            app: target.upstream, pools: pools, metrics: metrics, config: config, logger: logger,
            clientInputEnded: clientInputEnded, port: target.originalDestination.port ?? 0)
        handOver(context) {
            let sync = context.pipeline.syncOperations
            let server = NIOSSLServerHandler(context: tls.server)
            try sync.addHandler(server, position: .after(self))
            let verifier = MeshPeerVerifier(expected: nil, verified: verified)
            try sync.addHandler(verifier, position: .after(server))
            try sync.addHandler(terminator, position: .after(verifier))
            if let early { context.fireChannelRead(NIOAny(early)) }
        }
        context.channel.read()
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
                clientInputEnded: clientInputEnded, outbound: target.outbound, mesh: pools.mesh,
                inboundGate: inboundGate(context, identity: nil), firstByteAt: firstByteAt)
            let channel = context.channel
            handOver(context) {
                try context.pipeline.syncOperations.addHandler(handler, position: .after(self))
            }
            channel.read()
        case .http2 where !clientInputEnded:
            startHTTP2(context)
        default:
            // Opaque TCP and TLS (passed through): authorized per connection, inbound.
            if var gate = inboundGate(context, identity: nil), let denial = gate.checkConnection() {
                denial.reset(context.channel, metrics: metrics, logger: logger)
                return
            }
            connectAndSplice(context)
        }
    }

    /// Inbound: the authorization of this connection's caller (nil outbound).
    private func inboundGate(_ context: ChannelHandlerContext, identity: String?) -> InboundGate? {
        guard target.direction == .inbound else { return nil }
        return InboundGate(
            mesh: pools.mesh, identity: identity, remote: context.channel.remoteAddress,
            port: target.originalDestination.port ?? 0)
    }

    /// Terminates the client's HTTP/2 connection; each stream is relayed to a stream on
    /// the shared upstream connection (`HTTP2ClientRelay`, frame mode: no stream channels).
    private func startHTTP2(_ context: ChannelHandlerContext) {
        let destination = target.upstream
        let pool = pools.http2(target.direction)
        let outbound = target.outbound
        let mesh = pools.mesh
        let metrics = self.metrics
        let config = self.config
        let logger = self.logger
        let early = buffered
        buffered = nil
        let gate = inboundGate(context, identity: nil)
        handOver(context) {
            try HTTP2Inbound.install(
                after: self, in: context.pipeline.syncOperations, destination: destination, pool: pool,
                metrics: metrics, config: config, logger: logger, outbound: outbound, mesh: mesh, inboundGate: gate,
                firstByteAt: firstByteAt)
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

    /// Opaque TCP (and TLS passed through): to a Service port, one of its endpoints (no
    /// route applies; the ClusterIP itself is never dialled, so no kube-proxy is needed);
    /// otherwise the original destination, unless the mesh is REGISTRY_ONLY.
    private func connectAndSplice(_ context: ChannelHandlerContext, avoiding: LoopEndpoint? = nil, attempt: Int = 0) {
        guard var binding = target.outbound else {
            connectAndSplice(context, to: target.upstream, endpoint: nil, meshIdentity: nil, attempt: attempt)
            return
        }
        let mesh = pools.mesh
        switch mesh.planConnection(&binding, avoiding: avoiding) {
        case .passthrough:
            // To a meshed Pod's own address: mesh TLS to its identity.
            connectAndSplice(
                context, to: target.upstream, endpoint: nil,
                meshIdentity: mesh.snapshot.meshIdentity(ofAddress: target.upstream), attempt: attempt)
        case .forward(let planned):
            planned.endpoint.requestStarted()
            connectAndSplice(
                context, to: planned.endpoint.target.address, endpoint: planned.endpoint,
                meshIdentity: planned.endpoint.target.meshIdentity, attempt: attempt)
        case .answer(let answer):
            metrics.error(answer.kind)
            logger.debug(
                "refused connection",
                metadata: ["dst": "\(describe(target.originalDestination))", "reason": "\(answer.detail)"])
            SpliceHandler.reset(context.channel)
        case .redirect:
            // Routes (and so redirects) do not apply to opaque traffic.
            SpliceHandler.reset(context.channel)
        case .awaitDiscovery:
            let deadline = discoveryDeadline ?? (mesh.eventLoop.now + mesh.discoveryTimeout)
            discoveryDeadline = deadline
            mesh.waitForDiscovery(until: deadline) { [self] arrived in
                guard let context = self.context, context.channel.isActive else { return }
                if arrived {
                    connectAndSplice(context, avoiding: avoiding, attempt: attempt)
                } else {
                    metrics.error(.discoveryTimeout)
                    SpliceHandler.reset(context.channel)
                }
            }
        }
    }

    private var discoveryDeadline: NIODeadline?

    private func connectAndSplice(
        _ context: ChannelHandlerContext, to upstreamAddress: SocketAddress, endpoint: LoopEndpoint?,
        meshIdentity: String?, attempt: Int
    ) {
        let client = context.channel
        let started = LoopContext.now()
        // To a meshed endpoint, mesh TLS offering weft/1+tcp: the splice goes after its handler.
        MeshDial.connect(
            ClientBootstrap(group: context.eventLoop)
                .connectTimeout(config.connectTimeout)
                .channelOption(.tcpOption(.tcp_nodelay), value: 1)
                .channelOption(.allowRemoteHalfClosure, value: true),
            to: upstreamAddress, meshIdentity: meshIdentity, tls: pools.mesh.meshTLS, alpn: .tcp,
            on: context.eventLoop
        )
        .whenComplete { [self] result in
            switch result {
            case .success(let upstream):
                let now = LoopContext.now()
                endpoint?.requestFinished(rttNanoseconds: now &- started, now: now, failed: false)
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
                let failure = ConnectFailure(error, to: upstreamAddress, meshIdentity: meshIdentity)
                pools.mesh.recordTLSFailure(failure)
                if let endpoint {
                    let now = LoopContext.now()
                    endpoint.requestFinished(rttNanoseconds: now &- started, now: now, failed: true)
                    if attempt + 1 < 3, client.isActive, let context = self.context {
                        // Nothing was sent: another endpoint.
                        connectAndSplice(context, avoiding: endpoint, attempt: attempt + 1)
                        return
                    }
                }
                metrics.error(failure.kind)
                logger.debug(
                    "upstream connect failed",
                    metadata: ["dst": "\(describe(upstreamAddress))", "error": "\(failure.detail)"])
                // TCP has no error message: a reset tells the client the destination failed.
                SpliceHandler.reset(client)
            }
        }
    }
}

@available(*, unavailable)
extension ProtocolDetectHandler: Sendable {}

/// The server side of a client's HTTP/2 connection (plaintext h2c, or inside mesh TLS):
/// byte accounting (which owns the open-connections gauge from here), the connection-error
/// gate, swift-nio-http2 in frame mode, and the relay that sends each stream upstream.
enum HTTP2Inbound {
    static func install(
        after previous: ChannelHandler, in sync: ChannelPipeline.SynchronousOperations, destination: SocketAddress,
        pool: HTTP2UpstreamPool, metrics: DirectionMetrics, config: ProxyConfig, logger: Logger,
        outbound: OutboundBinding? = nil, mesh: LoopContext? = nil, inboundGate: InboundGate? = nil,
        firstByteAt: NIODeadline? = nil
    ) throws {
        let accounting = ConnectionAccountingHandler(
            readCounter: metrics.readFromSource, writeCounter: metrics.writtenToSource,
            openGauge: metrics.connectionsOpen)
        try sync.addHandler(accounting, position: .after(previous))
        // A connection error ends the connection: the gate stops reading and closes once
        // swift-nio-http2's GOAWAY is out.
        let gate = HTTP2ConnectionErrorGate()
        try sync.addHandler(gate, position: .after(accounting))
        let http2 = NIOHTTP2Handler(
            mode: .server, frameDelegate: HTTP2GoAwayWatch(gate: gate), connectionConfiguration: .init())
        try sync.addHandler(http2, position: .after(gate))
        try sync.addHandler(
            HTTP2ClientRelay(
                destination: destination, pool: pool, metrics: metrics, config: config, logger: logger,
                outbound: outbound, mesh: mesh, inboundGate: inboundGate, firstByteAt: firstByteAt),
            position: .after(http2))
    }
}

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
