import Glibc
import Logging
import NIOCore
import NIOExtras
import NIOHTTP1
import NIOPosix
import ServiceLifecycle
import Synchronization

/// The sidecar: capture listeners, admin server, and graceful drain, as one `Service`.
///
/// `run()` binds everything, then waits for SIGTERM (via `ServiceGroup`) or
/// `POST /shutdown`. Either starts a drain: readiness turns false, listeners close,
/// idle HTTP connections close and busy ones close after their current response, and
/// whatever is still open after `drainTimeout` is closed.
public final class ProxyServer: Service {
    private let config: ProxyConfig
    private let logger: Logger
    private let metrics = ProxyMetrics()
    private let state: ProxyState
    private let meshStore: MeshStore?
    /// The proxy's event loops; the control client shares them (a sidecar's thread budget).
    public let eventLoopGroup: MultiThreadedEventLoopGroup
    /// Whether `run()` shuts `eventLoopGroup` down when it ends: only a group it made.
    private let ownsEventLoopGroup: Bool

    /// - Parameters:
    ///   - meshStore: what the control client fills in; nil without a control plane.
    ///   - eventLoopGroup: loops shared with other services (the control client). Their
    ///     owner shuts them down after every service has stopped: a service that ends
    ///     first, say on a bind error, must not take the loops from under the others.
    ///     Nil: the server makes `config.threads` loops and shuts them down itself.
    public init(
        config: ProxyConfig, logger: Logger, meshStore: MeshStore? = nil,
        eventLoopGroup: MultiThreadedEventLoopGroup? = nil
    ) {
        self.config = config
        self.logger = logger
        self.meshStore = meshStore
        self.state = ProxyState(meshStore: meshStore)
        self.ownsEventLoopGroup = eventLoopGroup == nil
        self.eventLoopGroup = eventLoopGroup ?? MultiThreadedEventLoopGroup(numberOfThreads: config.threads)
    }

    public func run() async throws {
        let group = eventLoopGroup
        let pools = UpstreamPools(group: group, config: config, metrics: metrics, logger: logger, meshStore: meshStore)
        // One quiescing helper per listener: a helper tracks a single server channel.
        var quiescers: [ServerQuiescingHelper] = []
        var listeners: [Channel] = []
        do {
            for direction in TrafficDirection.allCases {
                let listener = CaptureListener(
                    direction: direction, config: config, metrics: metrics.direction(direction), pools: pools,
                    meshStore: meshStore, logger: logger)
                let port = direction == .outbound ? config.outboundPort : config.inboundPort
                let flag = direction == .outbound ? "--outbound-port" : "--inbound-port"
                let v4 = ServerQuiescingHelper(group: group)
                listeners.append(
                    try await listening("\(direction) capture", flag: flag, host: "0.0.0.0", port: port) {
                        try await listener.bind(host: "0.0.0.0", port: port, group: group, quiesce: v4)
                    })
                quiescers.append(v4)
                if config.enableIPv6 {
                    do {
                        let v6 = ServerQuiescingHelper(group: group)
                        listeners.append(try await listener.bind(host: "::", port: port, group: group, quiesce: v6))
                        quiescers.append(v6)
                    } catch {
                        logger.info("no IPv6 capture listener", metadata: ["port": "\(port)", "error": "\(error)"])
                    }
                }
            }
            let admin = try await listening(
                "the admin server", flag: "--admin-port", host: config.adminHost, port: config.adminPort
            ) {
                try await bindAdmin(group: group, pools: pools)
            }
            state.markListening()
            logger.info(
                "weft-proxy serving",
                metadata: [
                    "outbound": "\(config.outboundPort)", "inbound": "\(config.inboundPort)",
                    "admin": "\(config.adminHost):\(config.adminPort)", "threads": "\(config.threads)",
                ])

            // Cancelled, if still waiting, when this scope ends.
            async let _ = releaseStartupPagesOnceReady()
            let sweep = scheduleSubscriptionSweep(group: group, pools: pools)
            defer { sweep?.cancel() }
            await withGracefulShutdownHandler {
                for await _ in state.shutdownRequested { break }
            } onGracefulShutdown: { [state] in
                state.requestShutdown()
            }
            await drain(group: group, quiescers: quiescers, pools: pools)
            try? await admin.close()
            // A helper's deinit completes a promise on the loop: let them go before the loops stop.
            quiescers.removeAll()
        } catch {
            for listener in listeners { try? await listener.close() }
            quiescers.removeAll()
            if ownsEventLoopGroup { try? await group.shutdownGracefully() }
            throw error
        }
        if ownsEventLoopGroup { try? await group.shutdownGracefully() }
        logger.info("weft-proxy stopped")
    }

    /// Start-up is over once the proxy is first ready and a second more has let the first
    /// config's follow-up work (the cache file, the first metrics) run: then the pages
    /// only start-up used are let go (`StartupPages`). Readiness is polled, every 250 ms
    /// at first and backing off to every 4 s, so a proxy waiting long for its control
    /// plane is not woken often. Returns early when cancelled.
    private func releaseStartupPagesOnceReady() async {
        guard config.releaseStartupPages else { return }
        do {
            var poll = Duration.milliseconds(250)
            while !state.isReady {
                try await Task.sleep(for: poll)
                poll = min(poll * 2, .seconds(4))
            }
            try await Task.sleep(for: .seconds(1))
        } catch {
            return
        }
        let bytes = StartupPages.release()
        logger.debug("released start-up pages", metadata: ["advised_bytes": "\(bytes)"])
    }

    /// Every tenth of `subscriptionIdleTimeout` (at least every second), collects the
    /// Services each loop's requests used and unsubscribes those idle for the whole timeout,
    /// so a proxy holds routes and endpoints only for what it talks to.
    private func scheduleSubscriptionSweep(group: EventLoopGroup, pools: UpstreamPools) -> RepeatedTask? {
        guard let store = meshStore, let idle = config.subscriptionIdleTimeout else { return nil }
        let interval = TimeAmount.nanoseconds(max(idle.nanoseconds / 10, 1_000_000_000))
        let loop = group.next()
        let logger = self.logger
        return loop.scheduleRepeatedAsyncTask(initialDelay: interval, delay: interval) { _ in
            let parts = group.makeIterator().map { member in
                let context = pools.pools(for: member).mesh
                return member.submit { context.takeUsedServices() }
            }
            return EventLoopFuture.whenAllSucceed(parts, on: loop).map { sets in
                store.noteUsed(sets.reduce(into: Set<String>()) { $0.formUnion($1) })
                let dropped = store.dropIdle(olderThan: .nanoseconds(idle.nanoseconds))
                if !dropped.isEmpty {
                    logger.info("unsubscribed idle destinations", metadata: ["services": "\(dropped)"])
                }
            }
        }
    }

    private func drain(group: EventLoopGroup, quiescers: [ServerQuiescingHelper], pools: UpstreamPools) async {
        state.markDraining()
        logger.info("draining", metadata: ["timeout": "\(seconds(config.drainTimeout))"])
        let loop = group.next()
        let promises = quiescers.map { quiescer in
            let promise = loop.makePromise(of: Void.self)
            quiescer.initiateShutdown(promise: promise)
            return promise.futureResult
        }
        let drained = EventLoopFuture.andAllComplete(promises, on: loop)
        await pools.closeAll(group: group)
        // Whichever comes first: every connection closed, or the drain timeout. (Awaiting
        // both in a task group would wait for the drain even after the timeout won.)
        let outcome = loop.makePromise(of: Bool.self)
        let settled = Mutex(false)
        let settle: @Sendable (Bool) -> Void = { result in
            if settled.withLock({ done in
                defer { done = true }; return !done
            }) {
                outcome.succeed(result)
            }
        }
        drained.whenComplete { _ in settle(true) }
        let timer = loop.scheduleTask(in: config.drainTimeout) { settle(false) }
        let finished = (try? await outcome.futureResult.get()) ?? false
        timer.cancel()
        if !finished { logger.warning("drain timeout: closing the connections still open") }
    }

    /// Runs `bind`, and names the listener, address and flag if it fails ("cannot listen
    /// on 0.0.0.0:15006 for the inbound capture (--inbound-port): Address already in use").
    private func listening(
        _ what: String, flag: String, host: String, port: Int, _ bind: () async throws -> Channel
    ) async throws -> Channel {
        do {
            return try await bind()
        } catch {
            let reason = (error as? IOError).map { String(cString: strerror($0.errnoCode)) } ?? "\(error)"
            throw ListenFailure(description: "cannot listen on \(host):\(port) for the \(what) (\(flag)): \(reason)")
        }
    }

    private func bindAdmin(group: EventLoopGroup, pools: UpstreamPools) async throws -> Channel {
        let state = self.state
        let registry = metrics.registry
        let report: @Sendable (EventLoop) -> EventLoopFuture<[UInt8]> = { loop in
            EndpointsReport.collect(pools: pools, group: group, on: loop)
        }
        let loopMetrics: @Sendable (EventLoop, Bool) -> EventLoopFuture<String> = { loop, exemplars in
            LoopContext.latencyText(pools: pools, group: group, on: loop, exemplars: exemplars)
        }
        return try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                    try channel.pipeline.syncOperations.addHandler(
                        AdminHandler(
                            state: state, registry: registry, endpointsReport: report, loopMetrics: loopMetrics))
                }
            }
            .bind(host: config.adminHost, port: config.adminPort)
            .get()
    }
}

/// A listener that could not be opened, named with its flag.
public struct ListenFailure: Error, CustomStringConvertible {
    public let description: String
}
