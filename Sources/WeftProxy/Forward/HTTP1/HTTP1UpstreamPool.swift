import NIOCore
import NIOPosix
import NIOSSL

/// Idle upstream HTTP/1 connections of one event loop, by destination.
///
/// Shared by every client connection on the loop, so a client that opens a new
/// connection per request still reuses upstream connections (fewer handshakes, fewer
/// syscalls). Checkout is LIFO: the most recently used connection is the least likely
/// to have been closed by the server's keep-alive timeout. Only its own loop touches it.
final class HTTP1UpstreamPool {
    /// The idle connections to one destination. A client connection looks its bucket up
    /// once and keeps it, so checkout and release are array operations, not hash lookups.
    final class Bucket {
        let destination: SocketAddress
        /// Set for an endpoint whose Pod runs a sidecar: its connections are mesh TLS
        /// (`MeshALPN.http1`) and its server must present this SPIFFE ID.
        let meshIdentity: String?
        fileprivate var idle: [HTTP1UpstreamConnection] = []
        /// The HTTP/2 connection that carries this mesh endpoint's HTTP/1 exchanges, one
        /// stream each, when MeshConfig `mtls.http1Transport` is `HTTP2`.
        fileprivate var session: HTTP1MultiplexedSession?

        fileprivate init(destination: SocketAddress, meshIdentity: String?) {
            self.destination = destination
            self.meshIdentity = meshIdentity
        }
    }

    /// Connections are pooled by endpoint and by how they are secured: plaintext, or mesh
    /// TLS to a given identity.
    private struct BucketKey: Hashable {
        let destination: SocketAddress
        let meshIdentity: String?
    }

    private let eventLoop: EventLoop
    private let config: ProxyConfig
    private var buckets: [BucketKey: Bucket] = [:]
    private var sweep: RepeatedTask?

    init(eventLoop: EventLoop, config: ProxyConfig) {
        self.eventLoop = eventLoop
        self.config = config
    }

    /// The bucket for `destination` (over mesh TLS to `meshIdentity`, when given), created
    /// on first use.
    func bucket(for destination: SocketAddress, meshIdentity: String? = nil) -> Bucket {
        let key = BucketKey(destination: destination, meshIdentity: meshIdentity)
        if let bucket = buckets[key] { return bucket }
        let bucket = Bucket(destination: destination, meshIdentity: meshIdentity)
        buckets[key] = bucket
        return bucket
    }

    /// An idle connection from `bucket`, if one is still open.
    func checkout(_ bucket: Bucket) -> HTTP1UpstreamConnection? {
        while let connection = bucket.idle.popLast() {
            if connection.isActive {
                connection.idleSince = .distantFuture
                return connection
            }
        }
        return nil
    }

    /// Returns a connection for reuse; closes it if its bucket is full.
    func release(_ connection: HTTP1UpstreamConnection) {
        connection.owner = nil
        connection.isReadPaused = false
        // A stream of a multiplexed session carries one exchange; it ends with it.
        guard !connection.isSingleUse else { return }
        guard connection.isActive, let bucket = connection.bucket else { return }
        guard bucket.idle.count < config.maxIdlePerDestination else {
            connection.close()
            return
        }
        connection.idleSince = .now()
        bucket.idle.append(connection)
        scheduleSweep()
    }

    /// Opens a new connection to the bucket's destination. For a mesh bucket, the future
    /// succeeds only once the TLS handshake is done and the server presented the bucket's
    /// identity; it fails with `MeshPeerMismatch`, the TLS error, or `MeshTLSError` when
    /// this proxy has no identity yet (`tls` nil).
    ///
    /// `multiplexed` (for a mesh bucket): a new stream on the bucket's HTTP/2 session
    /// instead, the session opened (or replaced, when gone or when `tls` is a renewed
    /// identity) first.
    func connect(_ bucket: Bucket, tls: MeshTLS? = nil, multiplexed: Bool = false) -> EventLoopFuture<
        HTTP1UpstreamConnection
    > {
        if multiplexed, let identity = bucket.meshIdentity {
            if let session = bucket.session, !session.isUsable || session.tls !== tls {
                session.retire()
                bucket.session = nil
            }
            let session =
                bucket.session
                ?? HTTP1MultiplexedSession(
                    to: bucket.destination, meshIdentity: identity, tls: tls, eventLoop: eventLoop, config: config)
            bucket.session = session
            return session.openStream(bucket: bucket)
        }
        let connection = HTTP1UpstreamConnection(destination: bucket.destination)
        connection.bucket = bucket
        let dialStarted = LoopContext.now()
        var connectedAt: UInt64 = 0
        return MeshDial.connect(
            ClientBootstrap(group: eventLoop)
                .connectTimeout(config.connectTimeout)
                .channelOption(.tcpOption(.tcp_nodelay), value: 1),
            to: bucket.destination, meshIdentity: bucket.meshIdentity, tls: tls, alpn: .http1, on: eventLoop,
            afterTLS: { try $0.addHandler(connection) },
            connected: { connectedAt = LoopContext.now() }
        )
        .map { _ in
            let ready = LoopContext.now()
            connection.dialNanos = (connectedAt &- dialStarted, ready &- connectedAt)
            return connection
        }
    }

    /// Closes every idle connection (graceful shutdown).
    func closeAll() {
        for bucket in buckets.values {
            bucket.idle.forEach { $0.close() }
            bucket.idle.removeAll()
            bucket.session?.close()
            bucket.session = nil
        }
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
        var anyIdle = false
        for destination in Array(buckets.keys) {
            var bucket = buckets.removeValue(forKey: destination)!
            bucket.idle.removeAll { connection in
                guard connection.idleSince < cutoff || !connection.isActive else { return false }
                connection.close()
                return true
            }
            anyIdle = anyIdle || !bucket.idle.isEmpty
            // Forget a bucket nobody holds any more (no client handler, no connection).
            if !bucket.idle.isEmpty || !isKnownUniquelyReferenced(&bucket) {
                buckets[destination] = bucket
            }
        }
        if !anyIdle {
            task.cancel()
            sweep = nil
        }
    }
}

@available(*, unavailable)
extension HTTP1UpstreamPool: Sendable {}
