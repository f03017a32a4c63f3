import Logging
import NIOCore
import NIOHTTP2
import NIOPosix
import NIOSSL

/// HTTP/2 connections per upstream destination, direction and event loop, shared by every
/// client stream going there. Streams are multiplexed, so one connection usually serves
/// them all; a second one opens only when the first carries `maxOpenStreams` at once, and a
/// connection retired (its stream or reset budget spent) drains while a new one takes the
/// new streams. A connection that closes (or is refused) leaves the pool.
final class HTTP2UpstreamPool {
    private let eventLoop: EventLoop
    private let config: ProxyConfig
    private let metrics: DirectionMetrics
    private let logger: Logger
    /// The mesh TLS to originate with, read when a mesh connection opens (nil: none yet).
    private let meshTLS: () -> MeshTLS?
    /// Per destination and mesh identity (nil: plaintext), oldest first.
    private var connections: [UpstreamKey: [HTTP2UpstreamConnection]] = [:]

    /// An upstream connection's key: the endpoint, and the identity it must present over
    /// mesh TLS (nil: plaintext).
    struct UpstreamKey: Hashable {
        let destination: SocketAddress
        let meshIdentity: String?
    }

    init(
        eventLoop: EventLoop, config: ProxyConfig, metrics: DirectionMetrics, logger: Logger,
        meshTLS: @escaping () -> MeshTLS? = { nil }
    ) {
        self.eventLoop = eventLoop
        self.config = config
        self.metrics = metrics
        self.logger = logger
        self.meshTLS = meshTLS
    }

    /// Opens a stream for `exchange` to `destination` (over mesh TLS to `meshIdentity`, when
    /// given), on the shared connection (opened if needed, or replaced if the server is going
    /// away).
    func openStream(
        _ exchange: HTTP2RelayedStream, to destination: SocketAddress, meshIdentity: String? = nil,
        batchedBy reader: HTTP2ConnectionRelay?
    ) {
        let key = UpstreamKey(destination: destination, meshIdentity: meshIdentity)
        if let existing = connections[key] {
            for connection in existing where !connection.isClosed {
                if connection.open(exchange, batchedBy: reader) { return }
            }
        }
        let connection = HTTP2UpstreamConnection(
            destination: destination, eventLoop: eventLoop, config: config, metrics: metrics, logger: logger,
            meshIdentity: meshIdentity, meshTLS: meshIdentity == nil ? nil : meshTLS())
        connections[key, default: []].append(connection)
        connection.closeFuture.whenComplete { [weak self, weak connection] _ in
            guard let self, let connection else { return }
            self.connections[key]?.removeAll { $0 === connection }
            if self.connections[key]?.isEmpty == true { self.connections[key] = nil }
        }
        connection.connect()
        _ = connection.open(exchange, batchedBy: reader)
    }

    /// Closes every pooled connection (graceful shutdown).
    func closeAll() {
        for list in connections.values { for connection in list { connection.close() } }
        connections.removeAll()
    }
}

/// A client-mode HTTP/2 connection to one upstream (h2c with prior knowledge: the
/// client spoke it first, so the server it addressed speaks it too), in frame mode: an
/// `HTTP2UpstreamRelay` behind the `NIOHTTP2Handler` numbers the streams and routes
/// their frames.
final class HTTP2UpstreamConnection {
    private enum State {
        case idle
        case connecting([HTTP2RelayedStream])
        case ready(HTTP2UpstreamRelay, Channel)
        case closed(Error)
    }

    let destination: SocketAddress
    /// Set for a meshed endpoint: the connection is mesh TLS (`MeshALPN.http2`) and the
    /// server must present this identity before any stream opens.
    let meshIdentity: String?
    private let meshTLS: MeshTLS?
    private let eventLoop: EventLoop
    private let config: ProxyConfig
    private let metrics: DirectionMetrics
    private let logger: Logger
    private var state = State.idle
    private let closePromise: EventLoopPromise<Void>

    init(
        destination: SocketAddress, eventLoop: EventLoop, config: ProxyConfig, metrics: DirectionMetrics,
        logger: Logger,
        meshIdentity: String? = nil, meshTLS: MeshTLS? = nil
    ) {
        self.meshIdentity = meshIdentity
        self.meshTLS = meshTLS
        self.destination = destination
        self.eventLoop = eventLoop
        self.config = config
        self.metrics = metrics
        self.logger = logger
        self.closePromise = eventLoop.makePromise()
    }

    var closeFuture: EventLoopFuture<Void> { closePromise.futureResult }

    var isClosed: Bool {
        if case .closed = state { return true }
        return false
    }

    /// The upstream connection's HTTP/2 settings.
    static func connectionConfiguration() -> NIOHTTP2Handler.ConnectionConfiguration {
        // Header blocks are validated on the client's connection, as they are received
        // (requests) and sent (responses): once per hop, not twice.
        var connection = NIOHTTP2Handler.ConnectionConfiguration()
        connection.headerBlockValidation = .disabled
        // Every stream the proxy resets here stays "recently reset" for the connection's
        // life, so the server's late frames on it are ignored (RFC 9113 §5.1), not a
        // connection error (see the relay's caps).
        connection.maximumRecentlyResetStreams = HTTP2UpstreamRelay.recentlyResetStreams
        // No server push: the relay has no client stream to hand a pushed one to, and an
        // unread pushed stream would hold a stream slot for good.
        connection.initialSettings.append(HTTP2Setting(parameter: .enablePush, value: 0))
        return connection
    }

    func connect() {
        state = .connecting([])
        let dialStarted = LoopContext.now()
        var connectedAt = dialStarted
        let metrics = self.metrics
        let logger = self.logger
        if meshIdentity != nil && meshTLS == nil {
            fail(MeshTLSError("this proxy holds no identity yet for mesh TLS"))
            return
        }
        // Mesh TLS: no stream opens before the server proved its identity.
        MeshDial.connect(
            ClientBootstrap(group: eventLoop)
                .connectTimeout(config.connectTimeout)
                .channelOption(.tcpOption(.tcp_nodelay), value: 1),
            to: destination, meshIdentity: meshIdentity, tls: meshTLS, alpn: .http2, on: eventLoop,
            beforeTLS: { sync in
                try sync.addHandler(
                    ConnectionAccountingHandler(
                        readCounter: metrics.readFromDestination, writeCounter: metrics.writtenToDestination,
                        openGauge: nil))
            },
            afterTLS: { sync in
                let connection = HTTP2UpstreamConnection.connectionConfiguration()
                let relay = HTTP2UpstreamRelay(logger: logger)
                let gate = HTTP2ConnectionErrorGate()
                gate.onShut = { [unowned relay] in relay.connectionErrorSent() }
                try sync.addHandler(gate)
                try sync.addHandler(
                    NIOHTTP2Handler(
                        mode: .client, frameDelegate: HTTP2GoAwayWatch(gate: gate),
                        connectionConfiguration: connection))
                try sync.addHandler(relay)
            },
            connected: { connectedAt = LoopContext.now() }
        )
        .whenComplete { [self] result in
            switch result {
            case .success(let channel):
                do {
                    let relay = try channel.pipeline.syncOperations.handler(type: HTTP2UpstreamRelay.self)
                    let waiting = pendingStreams()
                    // The streams that waited for this dial: its connect and TLS are their time.
                    let ready = LoopContext.now()
                    for exchange in waiting {
                        exchange.waitedForDial(
                            connect: connectedAt &- dialStarted, tls: ready &- connectedAt, until: ready)
                    }
                    state = .ready(relay, channel)
                    channel.closeFuture.whenComplete { [self] _ in
                        state = .closed(ChannelError.ioOnClosedChannel)
                        closePromise.succeed()
                    }
                    for exchange in waiting where exchange.wantsUpstream {
                        if !relay.open(exchange, batchedBy: nil) {
                            exchange.connectFailed(ChannelError.ioOnClosedChannel)
                        }
                    }
                } catch {
                    fail(error)
                    channel.close(promise: nil)
                }
            case .failure(let error):
                fail(error)
            }
        }
    }

    /// Opens a stream for `exchange` now, or once connected; false if this connection
    /// takes no new streams.
    func open(_ exchange: HTTP2RelayedStream, batchedBy reader: HTTP2ConnectionRelay?) -> Bool {
        switch state {
        case .idle, .connecting:
            var waiting = pendingStreams()
            guard waiting.count < HTTP2UpstreamRelay.maxOpenStreams else { return false }
            exchange.waitingForDialSince = LoopContext.now()
            waiting.append(exchange)
            state = .connecting(waiting)
            return true
        case .ready(let relay, _):
            return relay.open(exchange, batchedBy: reader)
        case .closed:
            return false
        }
    }

    func close() {
        if case .ready(_, let channel) = state { channel.close(promise: nil) }
    }

    private func pendingStreams() -> [HTTP2RelayedStream] {
        if case .connecting(let waiting) = state { return waiting }
        return []
    }

    private func fail(_ error: Error) {
        let waiting = pendingStreams()
        state = .closed(error)
        for exchange in waiting { exchange.connectFailed(error) }
        closePromise.succeed()
    }
}

@available(*, unavailable)
extension HTTP2UpstreamPool: Sendable {}

@available(*, unavailable)
extension HTTP2UpstreamConnection: Sendable {}
