import Glibc
import Logging
import NIOCore
import NIOExtras
import NIOPosix
import Synchronization

/// Binds a capture port (outbound :15001 or inbound :15006) and sets up each accepted
/// connection: original destination, loop check, then protocol detection.
struct CaptureListener {
    let direction: TrafficDirection
    let config: ProxyConfig
    let metrics: DirectionMetrics
    let pools: UpstreamPools
    let meshStore: MeshStore?
    let logger: Logger

    /// Binds `host:port`. IPv6 listeners are IPv6-only, so each family has its own
    /// socket and `SO_ORIGINAL_DST` is always asked at the matching level.
    func bind(
        host: String, port: Int, group: EventLoopGroup, quiesce: ServerQuiescingHelper
    ) async throws -> Channel {
        let isIPv6 = host.contains(":")
        let backoff = AcceptBackoff(direction: direction, metrics: metrics, logger: logger)
        var bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .serverChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(
                        AcceptBackoffHandler(shouldForwardIOErrorCaught: false, backoffProvider: backoff.delay))
                    try channel.pipeline.syncOperations.addHandler(quiesce.makeServerChannelHandler(channel: channel))
                }
            }
            .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
            .childChannelOption(.allowRemoteHalfClosure, value: true)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if backoff.shedsThisConnection() {
                        SpliceHandler.reset(channel)
                        // Its descriptor is free now, or once the close completes.
                        backoff.reserve.acquire()
                        channel.eventLoop.scheduleTask(in: .milliseconds(20)) { backoff.reserve.acquire() }
                        return
                    }
                    try self.setUp(channel)
                }
            }
        if isIPv6 {
            bootstrap = bootstrap.serverChannelOption(
                ChannelOptions.Types.SocketOption(level: .ipv6, name: .ipv6_v6only), value: 1)
        }
        return try await bootstrap.bind(host: host, port: port).get()
    }

    private func setUp(_ channel: Channel) throws {
        metrics.connectionsOpen.increment()
        let original: SocketAddress
        switch OriginalDestination.read(channel) {
        case .success(let address):
            original = address
        case .failure(let failure):
            metrics.connectionsOpen.decrement()
            metrics.error(.noOriginalDestination)
            logger.warning(
                "refused connection", metadata: ["direction": "\(direction.rawValue)", "reason": "\(failure)"])
            throw failure
        }
        if isLoop(original, local: channel.localAddress) {
            metrics.connectionsOpen.decrement()
            metrics.error(.loop)
            logger.debug(
                "refused connection to a capture port",
                metadata: ["direction": "\(direction.rawValue)", "dst": "\(describe(original))"])
            throw CaptureError.loop(describe(original))
        }
        let pools = pools.pools(for: channel.eventLoop)
        let upstream = direction == .outbound ? original : inboundTarget(port: original.port ?? 0, like: original)
        // Outbound traffic with a mesh is bound to what its destination is in the mesh
        // (a Service port, an endpoint, or outside); without one it passes through.
        let binding =
            direction == .outbound && meshStore != nil ? AddressKey(original).map { OutboundBinding(key: $0) } : nil
        let target = ConnectionTarget(
            direction: direction, originalDestination: original, upstream: upstream, outbound: binding)
        try channel.pipeline.syncOperations.addHandler(
            ProtocolDetectHandler(target: target, metrics: metrics, config: config, pools: pools, logger: logger))
    }

    /// A connection that was not redirected (it came straight to the capture port), or
    /// that was addressed to a capture port on this host, would loop into the proxy.
    private func isLoop(_ original: SocketAddress, local: SocketAddress?) -> Bool {
        if let local, original == local { return true }
        guard let port = original.port, config.capturePorts.contains(port) || port == config.adminPort else {
            return false
        }
        return isLoopback(original) || original.ipAddress == local?.ipAddress
    }

    private func isLoopback(_ address: SocketAddress) -> Bool {
        switch address {
        case .v4(let v4): return UInt32(bigEndian: v4.address.sin_addr.s_addr) >> 24 == 127
        case .v6: return address.ipAddress == "::1"
        default: return false
        }
    }

    /// The app's address for an inbound connection: the address the peer sent it to (the
    /// pod IP) at the original port, or `--inbound-forward-host` at that port when set.
    private func inboundTarget(port: Int, like original: SocketAddress) -> SocketAddress {
        guard let forwardHost = config.inboundForwardHost else { return original }
        let host: String
        if case .v6 = original, forwardHost == "127.0.0.1" {
            host = "::1"
        } else {
            host = forwardHost
        }
        return (try? SocketAddress(ipAddress: host, port: port)) ?? original
    }
}

/// What a capture listener does when accept(2) fails: it waits `delay` before accepting
/// again, counts every failure (`weft_errors_total{error="accept_failed"}`), and logs at
/// most once per `logInterval`. Without it, a process out of file descriptors spins on
/// accept4 → EMFILE and says nothing.
///
/// Holding reads is not enough on its own: swift-nio leaves a listener whose accept
/// failed registered for readability (its read stays pending), so epoll, level-triggered,
/// wakes it again at once. Out of descriptors, the listener therefore sheds one waiting
/// connection: it closes a descriptor held in reserve, lets that accept succeed, resets the
/// connection, and takes the reserve back (libuv's EMFILE trick). The listener then has
/// no read pending and sleeps until the backoff ends: one accept per 200 ms, not a spin.
/// Connections are refused (reset) only while the process is out of descriptors.
final class AcceptBackoff: Sendable {
    static let delay = TimeAmount.milliseconds(200)
    static let logInterval = TimeAmount.seconds(10)
    private let direction: TrafficDirection
    private let metrics: DirectionMetrics
    private let logger: Logger
    private let shedNext = Atomic<Bool>(false)
    private let log = Mutex<(last: NIODeadline?, since: Int)>((nil, 0))
    /// This listener's reserve (one per listener, so two listeners out of descriptors at
    /// once each have one to shed with).
    let reserve = ReserveDescriptor()

    init(direction: TrafficDirection, metrics: DirectionMetrics, logger: Logger) {
        self.direction = direction
        self.metrics = metrics
        self.logger = logger
        reserve.acquire()
    }

    /// The backoff provider: called with each accept error on the listener's loop.
    func delay(_ error: IOError) -> TimeAmount? {
        // A client that reset before its connection was accepted (ECONNABORTED) is not
        // the process running out of anything: no pause (else resets would stall
        // accepting for everyone), no count.
        guard [EMFILE, ENFILE, ENOBUFS, ENOMEM].contains(error.errnoCode) else { return nil }
        metrics.error(.acceptFailed)
        if error.errnoCode == EMFILE || error.errnoCode == ENFILE, reserve.release() {
            shedNext.store(true, ordering: .relaxed)
        }
        let now = NIODeadline.now()
        let shouldLog = log.withLock { state -> Int? in
            state.since += 1
            guard state.last.map({ now - $0 >= Self.logInterval }) ?? true else { return nil }
            defer { state = (now, 0) }
            return state.since
        }
        if let failures = shouldLog {
            logger.error(
                "accept failed; accepting again in 200 ms",
                metadata: [
                    "direction": "\(direction.rawValue)", "error": "\(error)", "failures_since_last_log": "\(failures)",
                ])
        }
        return Self.delay
    }

    /// Whether a connection just accepted is the one shed to leave the accept loop (the
    /// caller resets it and takes the reserve descriptor back).
    func shedsThisConnection() -> Bool {
        shedNext.exchange(false, ordering: .relaxed)
    }
}

/// A descriptor a listener keeps open to close when the process runs out, so that it can
/// accept (and shed) a connection and leave swift-nio's accept loop.
final class ReserveDescriptor: Sendable {
    private let fd = Mutex<CInt>(-1)

    func acquire() {
        fd.withLock { fd in
            if fd < 0 { fd = open("/dev/null", O_RDONLY | O_CLOEXEC) }
        }
    }

    /// Closes the reserve; false if none was held.
    func release() -> Bool {
        fd.withLock { fd in
            guard fd >= 0 else { return false }
            close(fd)
            fd = -1
            return true
        }
    }
}

enum CaptureError: Error, CustomStringConvertible {
    case loop(String)

    var description: String {
        switch self {
        case .loop(let address): return "connection to \(address) would loop into the proxy"
        }
    }
}

/// The upstream pools of one event loop: HTTP/1 (shared by both directions, since
/// each exchange counts its own bytes) and HTTP/2 per direction (the connection counts
/// bytes, so it belongs to one direction).
final class LoopPools {
    let http1: HTTP1UpstreamPool
    let http2Inbound: HTTP2UpstreamPool
    let http2Outbound: HTTP2UpstreamPool
    /// The loop's mesh snapshot, balancers and random generator.
    let mesh: LoopContext

    init(
        loop: EventLoop, config: ProxyConfig, metrics: ProxyMetrics, logger: Logger, meshStore: MeshStore? = nil,
        inflight: InflightRequests = InflightRequests()
    ) {
        mesh = LoopContext(
            eventLoop: loop, discoveryTimeout: config.discoveryTimeout, meshStore: meshStore, metrics: metrics,
            traceExport: config.traceExport, inflight: inflight)
        http1 = HTTP1UpstreamPool(eventLoop: loop, config: config)
        http2Inbound = HTTP2UpstreamPool(eventLoop: loop, config: config, metrics: metrics.inbound, logger: logger)
        let mesh = self.mesh
        http2Outbound = HTTP2UpstreamPool(
            eventLoop: loop, config: config, metrics: metrics.outbound, logger: logger, meshTLS: { mesh.meshTLS })
    }

    func http2(_ direction: TrafficDirection) -> HTTP2UpstreamPool {
        direction == .inbound ? http2Inbound : http2Outbound
    }

    func closeAll() {
        http1.closeAll()
        http2Inbound.closeAll()
        http2Outbound.closeAll()
        mesh.closeMirrorConnections()
        mesh.spans?.close()
    }
}

/// One set of upstream pools per event loop, so pools need no locks.
final class UpstreamPools: @unchecked Sendable {
    // Written once at start-up, then only read; each pool is used on its own loop only.
    private let pools: [ObjectIdentifier: LoopPools]

    init(
        group: EventLoopGroup, config: ProxyConfig, metrics: ProxyMetrics, logger: Logger, meshStore: MeshStore? = nil
    ) {
        var pools: [ObjectIdentifier: LoopPools] = [:]
        let inflight = InflightRequests()  // the pod's, across loops
        for loop in group.makeIterator() {
            pools[ObjectIdentifier(loop)] = LoopPools(
                loop: loop, config: config, metrics: metrics, logger: logger, meshStore: meshStore,
                inflight: inflight)
        }
        self.pools = pools
        // Every snapshot the control client installs reaches each loop, on that loop.
        meshStore?.onSnapshot { [self] snapshot in
            for loop in group.makeIterator() {
                let context = self.pools(for: loop).mesh
                loop.execute { context.install(snapshot) }
            }
        }
    }

    func pools(for loop: EventLoop) -> LoopPools {
        pools[ObjectIdentifier(loop)]!
    }

    /// Closes pooled connections on every loop.
    func closeAll(group: EventLoopGroup) async {
        for loop in group.makeIterator() {
            let pools = pools(for: loop)
            try? await loop.submit { pools.closeAll() }.get()
        }
    }
}

@available(*, unavailable)
extension LoopPools: Sendable {}
