import NIOCore
import NIOPosix

/// Idle upstream HTTP/1 connections of one event loop, by destination.
///
/// Shared by every client connection on the loop, so a client that opens a new
/// connection per request still reuses upstream connections (fewer handshakes, fewer
/// syscalls). Checkout is LIFO: the most recently used connection is the least likely
/// to have been closed by the server's keep-alive timeout. Only its own loop touches it.
final class HTTP1UpstreamPool {
    private let eventLoop: EventLoop
    private let config: ProxyConfig
    private var idle: [SocketAddress: [HTTP1UpstreamConnection]] = [:]
    private var sweep: RepeatedTask?

    init(eventLoop: EventLoop, config: ProxyConfig) {
        self.eventLoop = eventLoop
        self.config = config
    }

    /// An idle connection to `destination`, if one is still open.
    func checkout(_ destination: SocketAddress) -> HTTP1UpstreamConnection? {
        while var list = idle[destination], let connection = list.popLast() {
            idle[destination] = list.isEmpty ? nil : list
            if connection.isActive {
                connection.idleSince = .distantFuture
                return connection
            }
        }
        return nil
    }

    /// Returns a connection for reuse; closes it if the pool for its destination is full.
    func release(_ connection: HTTP1UpstreamConnection) {
        connection.owner = nil
        connection.isReadPaused = false
        guard connection.isActive else { return }
        var list = idle[connection.destination] ?? []
        guard list.count < config.maxIdlePerDestination else {
            connection.close()
            return
        }
        connection.idleSince = .now()
        list.append(connection)
        idle[connection.destination] = list
        scheduleSweep()
    }

    /// Opens a new connection to `destination`.
    func connect(_ destination: SocketAddress) -> EventLoopFuture<HTTP1UpstreamConnection> {
        let connection = HTTP1UpstreamConnection(destination: destination)
        return ClientBootstrap(group: eventLoop)
            .connectTimeout(config.connectTimeout)
            .channelOption(.tcpOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(connection)
                }
            }
            .connect(to: destination)
            .map { _ in connection }
    }

    /// Closes every idle connection (graceful shutdown).
    func closeAll() {
        for list in idle.values { list.forEach { $0.close() } }
        idle.removeAll()
        sweep?.cancel()
        sweep = nil
    }

    private func scheduleSweep() {
        guard sweep == nil else { return }
        let interval = TimeAmount.nanoseconds(max(config.upstreamIdleTimeout.nanoseconds / 4, 100_000_000))
        sweep = eventLoop.scheduleRepeatedTask(initialDelay: interval, delay: interval) { [weak self] task in
            self?.closeExpired(task)
        }
    }

    private func closeExpired(_ task: RepeatedTask) {
        let cutoff = NIODeadline.now() - config.upstreamIdleTimeout
        for (destination, list) in idle {
            let (expired, kept) = (list.filter { $0.idleSince < cutoff || !$0.isActive }, list.filter { $0.idleSince >= cutoff && $0.isActive })
            expired.forEach { $0.close() }
            idle[destination] = kept.isEmpty ? nil : kept
        }
        if idle.isEmpty {
            task.cancel()
            sweep = nil
        }
    }
}

@available(*, unavailable)
extension HTTP1UpstreamPool: Sendable {}
