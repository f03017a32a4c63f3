import NIOCore
import NIOHTTP2
import NIOPosix

/// One mesh TLS HTTP/2 connection (`MeshALPN.http1OverHTTP2`) to a meshed endpoint that
/// carries HTTP/1 exchanges, one stream each, for every client connection of one event
/// loop (MeshConfig `mtls.http1Transport: HTTP2`).
///
/// Each stream is handed to `HTTP1ProxyHandler` as an `HTTP1UpstreamConnection` that is
/// used once: behind it, `HTTP1OverHTTP2Bridge` turns the exchange into frames. Streams
/// beyond the server's concurrency limit wait in NIOHTTP2 until one ends. The session
/// takes no new streams once the connection closes or the server sends GOAWAY, and
/// closes after the upstream idle timeout with no stream open.
final class HTTP1MultiplexedSession {
    private struct Ready {
        let channel: Channel
        let multiplexer: NIOHTTP2Handler.StreamMultiplexer
    }

    private let ready: EventLoopFuture<Ready>
    private let eventLoop: EventLoop
    private let idleTimeout: TimeAmount
    private var openStreams = 0
    private var streamsOpened = 0
    private var idleTimer: Scheduled<Void>?
    /// False once the connection failed, closed, is going away, or was retired.
    private(set) var isUsable = true
    /// The identity the connection presents: a renewed one retires the session.
    let tls: MeshTLS?

    init(
        to destination: SocketAddress, meshIdentity: String, tls: MeshTLS?, eventLoop: EventLoop, config: ProxyConfig
    ) {
        self.eventLoop = eventLoop
        self.tls = tls
        self.idleTimeout = config.upstreamIdleTimeout
        let watch = GoAwayWatch()
        ready = MeshDial.connect(
            ClientBootstrap(group: eventLoop)
                .connectTimeout(config.connectTimeout)
                .channelOption(.tcpOption(.tcp_nodelay), value: 1),
            to: destination, meshIdentity: meshIdentity, tls: tls, alpn: .http1OverHTTP2, on: eventLoop,
            afterTLS: { sync in
                var connection = NIOHTTP2Handler.ConnectionConfiguration()
                // Requests were parsed strictly as HTTP/1; responses are checked by the
                // bridge as they become HTTP/1 lines.
                connection.headerBlockValidation = .disabled
                connection.initialSettings = HTTP1OverHTTP2Bridge.settings(maxConcurrentStreams: nil)
                let multiplexer = try sync.configureHTTP2Pipeline(
                    mode: .client, connectionConfiguration: connection, streamConfiguration: .init(),
                    inboundStreamInitializer: { $0.close() })
                watch.multiplexer = multiplexer
                try sync.addHandler(watch)
            }
        )
        .flatMapThrowing { channel in
            guard let multiplexer = watch.multiplexer else { throw ChannelError.inappropriateOperationForState }
            return Ready(channel: channel, multiplexer: multiplexer)
        }
        watch.onGoAway = { [weak self] in self?.isUsable = false }
        ready.whenComplete { [weak self] result in
            guard let self else { return }
            switch result {
            case .success(let ready):
                ready.channel.closeFuture.whenComplete { [weak self] _ in self?.isUsable = false }
            case .failure:
                self.isUsable = false
            }
        }
    }

    /// A new stream, set up as a single-use `HTTP1UpstreamConnection` to `destination`.
    func openStream(bucket: HTTP1UpstreamPool.Bucket) -> EventLoopFuture<HTTP1UpstreamConnection> {
        let connection = HTTP1UpstreamConnection(destination: bucket.destination)
        connection.bucket = bucket
        connection.isSingleUse = true
        // A stream on a connection that already carried one counts as reused: failing
        // before any response byte (the server went away meanwhile), an idempotent
        // request is tried again, as on a pooled HTTP/1.1 connection.
        connection.hasBeenUsed = streamsOpened > 0
        streamsOpened += 1
        streamOpened()
        let bound = NIOLoopBound(connection, eventLoop: eventLoop)
        return ready.flatMap { ready in
            ready.multiplexer.createStreamChannel { stream in
                stream.eventLoop.makeCompletedFuture {
                    try stream.pipeline.syncOperations.addHandler(HTTP1OverHTTP2Bridge(role: .client))
                    try stream.pipeline.syncOperations.addHandler(bound.value)
                }
            }
        }
        .map { stream in
            stream.closeFuture.whenComplete { [self] _ in streamClosed() }
            return connection
        }
        .flatMapErrorThrowing { [self] error in
            streamClosed()
            throw error
        }
    }

    private func streamOpened() {
        openStreams += 1
        idleTimer?.cancel()
        idleTimer = nil
    }

    private func streamClosed() {
        openStreams -= 1
        guard openStreams == 0 else { return }
        guard isUsable else {
            close()
            return
        }
        idleTimer = eventLoop.scheduleTask(in: idleTimeout) { [self] in
            idleTimer = nil
            close()
        }
    }

    /// Takes no new streams; closes once the open ones have ended (a renewed identity:
    /// new streams go on a connection that presents it).
    func retire() {
        isUsable = false
        if openStreams == 0 { close() }
    }

    func close() {
        isUsable = false
        idleTimer?.cancel()
        idleTimer = nil
        ready.whenSuccess { $0.channel.close(promise: nil) }
    }
}

/// Marks its session unusable when the server sends GOAWAY (connection-level frames reach
/// the parent pipeline): streams already open finish, new ones go to a new connection.
private final class GoAwayWatch: ChannelInboundHandler {
    typealias InboundIn = HTTP2Frame
    var onGoAway: (() -> Void)?
    /// The connection's stream multiplexer, kept here from the pipeline's set-up until the
    /// handshake verified the peer.
    var multiplexer: NIOHTTP2Handler.StreamMultiplexer?

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if case .goAway = unwrapInboundIn(data).payload { onGoAway?() }
        context.fireChannelRead(data)
    }
}

@available(*, unavailable)
extension HTTP1MultiplexedSession: Sendable {}
