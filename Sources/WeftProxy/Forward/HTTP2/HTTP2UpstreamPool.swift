import NIOCore
import NIOHTTP2
import NIOPosix

/// One HTTP/2 connection per upstream destination, direction and event loop, shared by every
/// client stream going there: streams are multiplexed, so a second connection buys
/// nothing but handshakes. A connection that closes (or is refused) leaves the pool, and
/// the next stream opens a fresh one.
final class HTTP2UpstreamPool {
    private let eventLoop: EventLoop
    private let config: ProxyConfig
    private let metrics: DirectionMetrics
    private var connections: [SocketAddress: HTTP2UpstreamConnection] = [:]

    init(eventLoop: EventLoop, config: ProxyConfig, metrics: DirectionMetrics) {
        self.eventLoop = eventLoop
        self.config = config
        self.metrics = metrics
    }

    /// Opens a stream to `destination`, on the shared connection (opened if needed).
    func openStream(
        to destination: SocketAddress, initializer: @escaping NIOChannelInitializer
    ) -> EventLoopFuture<Channel> {
        let connection: HTTP2UpstreamConnection
        if let existing = connections[destination], !existing.isClosed {
            connection = existing
        } else {
            connection = HTTP2UpstreamConnection(
                destination: destination, eventLoop: eventLoop, config: config, metrics: metrics)
            connections[destination] = connection
            connection.closeFuture.whenComplete { [weak self, weak connection] _ in
                guard let self, let connection, self.connections[destination] === connection else { return }
                self.connections[destination] = nil
            }
            connection.connect()
        }
        return connection.openStream(initializer)
    }

    /// Closes every pooled connection (graceful shutdown).
    func closeAll() {
        for connection in connections.values { connection.close() }
        connections.removeAll()
    }
}

/// A client-mode HTTP/2 connection to one upstream (h2c with prior knowledge: the
/// client spoke it first, so the server it addressed speaks it too).
final class HTTP2UpstreamConnection {
    private enum State {
        case idle
        case connecting([(NIOChannelInitializer, EventLoopPromise<Channel>)])
        case ready(NIOHTTP2Handler.StreamMultiplexer, Channel)
        case closed(Error)
    }

    let destination: SocketAddress
    private let eventLoop: EventLoop
    private let config: ProxyConfig
    private let metrics: DirectionMetrics
    private var state = State.idle
    private let closePromise: EventLoopPromise<Void>

    init(destination: SocketAddress, eventLoop: EventLoop, config: ProxyConfig, metrics: DirectionMetrics) {
        self.destination = destination
        self.eventLoop = eventLoop
        self.config = config
        self.metrics = metrics
        self.closePromise = eventLoop.makePromise()
    }

    var closeFuture: EventLoopFuture<Void> { closePromise.futureResult }

    var isClosed: Bool {
        if case .closed = state { return true }
        return false
    }

    func connect() {
        state = .connecting([])
        let metrics = self.metrics
        ClientBootstrap(group: eventLoop)
            .connectTimeout(config.connectTimeout)
            .channelOption(.tcpOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(
                        ConnectionAccountingHandler(
                            readCounter: metrics.readFromDestination, writeCounter: metrics.writtenToDestination,
                            openGauge: nil))
                    _ = try channel.pipeline.syncOperations.configureHTTP2Pipeline(
                        mode: .client, connectionConfiguration: .init(), streamConfiguration: .init()
                    ) { stream in
                        // Servers do not open streams to the proxy (no server push).
                        stream.close()
                    }
                }
            }
            .connect(to: destination)
            .whenComplete { [self] result in
                switch result {
                case .success(let channel):
                    do {
                        let multiplexer = try channel.pipeline.syncOperations.handler(type: NIOHTTP2Handler.self)
                            .syncMultiplexer()
                        let waiting = pendingStreams()
                        state = .ready(multiplexer, channel)
                        channel.closeFuture.whenComplete { [self] _ in
                            state = .closed(ChannelError.ioOnClosedChannel)
                            closePromise.succeed()
                        }
                        for (initializer, promise) in waiting {
                            multiplexer.createStreamChannel(promise: promise, initializer)
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

    func openStream(_ initializer: @escaping NIOChannelInitializer) -> EventLoopFuture<Channel> {
        let promise = eventLoop.makePromise(of: Channel.self)
        switch state {
        case .idle, .connecting:
            var waiting = pendingStreams()
            waiting.append((initializer, promise))
            state = .connecting(waiting)
        case .ready(let multiplexer, _):
            multiplexer.createStreamChannel(promise: promise, initializer)
        case .closed(let error):
            promise.fail(error)
        }
        return promise.futureResult
    }

    func close() {
        if case .ready(_, let channel) = state { channel.close(promise: nil) }
    }

    private func pendingStreams() -> [(NIOChannelInitializer, EventLoopPromise<Channel>)] {
        if case .connecting(let waiting) = state { return waiting }
        return []
    }

    private func fail(_ error: Error) {
        let waiting = pendingStreams()
        state = .closed(error)
        for (_, promise) in waiting { promise.fail(error) }
        closePromise.succeed()
    }
}

@available(*, unavailable)
extension HTTP2UpstreamPool: Sendable {}

@available(*, unavailable)
extension HTTP2UpstreamConnection: Sendable {}
