import Logging
import NIOCore
import NIOExtras
import NIOHTTP1
import NIOPosix
import ServiceLifecycle

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
    private let state = ProxyState()

    public init(config: ProxyConfig, logger: Logger) {
        self.config = config
        self.logger = logger
    }

    public func run() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: config.threads)
        let pools = UpstreamPools(group: group, config: config, metrics: metrics)
        let quiesce = ServerQuiescingHelper(group: group)
        var listeners: [Channel] = []
        do {
            for direction in TrafficDirection.allCases {
                let listener = CaptureListener(
                    direction: direction, config: config, metrics: metrics.direction(direction), pools: pools,
                    logger: logger)
                let port = direction == .outbound ? config.outboundPort : config.inboundPort
                listeners.append(try await listener.bind(host: "0.0.0.0", port: port, group: group, quiesce: quiesce))
                if config.enableIPv6 {
                    do {
                        listeners.append(try await listener.bind(host: "::", port: port, group: group, quiesce: quiesce))
                    } catch {
                        logger.info("no IPv6 capture listener", metadata: ["port": "\(port)", "error": "\(error)"])
                    }
                }
            }
            let admin = try await bindAdmin(group: group)
            state.markListening()
            logger.info(
                "weft-proxy serving",
                metadata: [
                    "outbound": "\(config.outboundPort)", "inbound": "\(config.inboundPort)",
                    "admin": "\(config.adminHost):\(config.adminPort)", "threads": "\(config.threads)",
                ])

            await withGracefulShutdownHandler {
                for await _ in state.shutdownRequested { break }
            } onGracefulShutdown: { [state] in
                state.requestShutdown()
            }
            await drain(group: group, quiesce: quiesce, pools: pools)
            try? await admin.close()
        } catch {
            for listener in listeners { try? await listener.close() }
            try? await group.shutdownGracefully()
            throw error
        }
        try? await group.shutdownGracefully()
        logger.info("weft-proxy stopped")
    }

    private func drain(group: EventLoopGroup, quiesce: ServerQuiescingHelper, pools: UpstreamPools) async {
        state.markDraining()
        logger.info("draining", metadata: ["timeout": "\(seconds(config.drainTimeout))"])
        let drained = group.next().makePromise(of: Void.self)
        quiesce.initiateShutdown(promise: drained)
        await pools.closeAll(group: group)
        let deadline = group.next().scheduleTask(in: config.drainTimeout) {}
        let finished = await withTaskGroup(of: Bool.self) { tasks in
            tasks.addTask { (try? await drained.futureResult.get()) != nil }
            tasks.addTask {
                _ = try? await deadline.futureResult.get()
                return false
            }
            let first = await tasks.next() ?? false
            tasks.cancelAll()
            deadline.cancel()
            return first
        }
        if !finished { logger.warning("drain timeout: closing the connections still open") }
    }

    private func bindAdmin(group: EventLoopGroup) async throws -> Channel {
        let state = self.state
        let registry = metrics.registry
        return try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                    try channel.pipeline.syncOperations.addHandler(AdminHandler(state: state, registry: registry))
                }
            }
            .bind(host: config.adminHost, port: config.adminPort)
            .get()
    }
}
