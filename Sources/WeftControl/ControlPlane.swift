import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import ServiceLifecycle
import Synchronization
import WeftCore
import WeftIdentity
import WeftProtocol

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// The control plane as one `Service`: config source → compiled mesh → push server, with
/// the CA and the HTTP API beside them.
///
/// Start-up fails loudly (CA unreadable, token file empty, initial config invalid): a
/// control plane that serves a wrong or empty mesh is worse than one that does not start.
/// After start-up, a bad config change is rejected and the last good one stays.
public final class ControlPlane: ServiceLifecycle.Service {
    private let settings: ControlPlaneSettings
    private let logger: Logger
    public let metrics = ControlMetrics()

    public init(settings: ControlPlaneSettings, logger: Logger) {
        self.settings = settings
        self.logger = logger
    }

    /// A start-up failure, with what to fix.
    public struct StartupError: Error, CustomStringConvertible {
        public let description: String
    }

    public func run() async throws {
        let ca: CertificateAuthority
        do {
            ca = try CertificateAuthority(loadingFrom: settings.caDirectory)
        } catch {
            throw StartupError(description: "--ca \(settings.caDirectory): \(error)")
        }
        let authenticator: SharedTokenAuthenticator
        do {
            authenticator = try SharedTokenAuthenticator(token: try Self.readFile(settings.tokenFile))
        } catch {
            throw StartupError(description: "--token-file \(settings.tokenFile): \(error)")
        }
        let source = FolderConfigSource(directory: settings.configDirectory, logger: logger)
        let initial: MeshState
        do {
            initial = try source.loadInitial()
        } catch {
            throw StartupError(
                description: "--config \(settings.configDirectory): the config is invalid:\n\(error.description)")
        }
        let trustDomain = ca.trustDomain ?? initial.meshConfig.trustDomain
        guard initial.meshConfig.trustDomain == trustDomain else {
            throw StartupError(
                description:
                    "MeshConfig trustDomain \(initial.meshConfig.trustDomain) differs from the CA's trust domain \(trustDomain)"
            )
        }
        let issuer = CAWorkloadIssuer(ca: ca, trustDomain: trustDomain, lifetime: settings.certificateLifetime)
        let servingTLS = try ServingCertificate(ca: ca, identity: ownIdentity(trustDomain), logger: logger)

        // Forwarding is the intake's: nothing to forward, or to check, without it.
        let forwardTarget =
            settings.otlpPort > 0 ? settings.otlpForward.flatMap(OTLPForwarder.Target.init(url:)) : nil
        var forwardTLS: NIOSSLContext?
        if let forwardTarget, forwardTarget.tls {
            do {
                forwardTLS = try OTLPForwarder.clientTLS(trusting: settings.otlpForwardCA)
            } catch {
                throw StartupError(description: "\(error)")
            }
        }

        let group = MultiThreadedEventLoopGroup(numberOfThreads: settings.threads)
        let compiled = MeshCompiler.compile(initial, generation: 1, previous: nil)
        metrics.configGeneration.set(Int64(1))
        let hub = PushHub(
            group: group, initialMesh: compiled, issuer: issuer, authenticator: authenticator, metrics: metrics,
            logger: logger, debounce: Self.timeAmount(settings.debounce),
            slowConsumerGrace: Self.timeAmount(settings.slowConsumerGrace), reservedNamespace: settings.namespace)
        let traces = SpanStore(limit: settings.traceMemory)
        let api = ControlAPI(
            hub: hub, metrics: metrics, traces: traces,
            config: ConfigStatus(
                source: settings.configDirectory, generation: 1, acceptedAt: Self.now(), state: "valid",
                rejectedCount: 0, lastRejection: nil, warnings: initial.warnings.map(\.description)),
            access: settings.apiAccess,
            certificateLifetimeSeconds: Int(settings.certificateLifetime.components.seconds))
        let push: any Channel
        let http: any Channel
        var intake: (any Channel)?
        do {
            push = try await PushServer(hub: hub, tls: servingTLS, logger: logger)
                .bind(host: settings.pushHost, port: settings.pushPort, group: group)
            http = try await Self.bindHTTP(api: api, host: settings.httpHost, port: settings.httpPort, group: group)
            if settings.otlpPort > 0 {
                let metrics = self.metrics
                let logger = self.logger
                let forwarder = forwardTarget.map { target in
                    OTLPForwarder(
                        target: target, tls: forwardTLS, eventLoop: group.next(), logger: logger,
                        forwarded: { metrics.spansForwarded.increment(by: Int64($0)) },
                        dropped: { metrics.spansForwardDropped.increment(by: Int64($0)) })
                }
                intake = try await Self.bindIntake(
                    store: traces, metrics: metrics, host: settings.pushHost, port: settings.otlpPort,
                    maxBody: settings.otlpMaxBody, limit: IntakeRateLimit(rate: Double(settings.otlpRateLimit)),
                    forwarder: forwarder, group: group)
            }
        } catch {
            try? await group.shutdownGracefully()
            throw StartupError(description: "cannot listen: \(error)")
        }
        hub.startSweeping()
        api.markReady()
        logger.info(
            "weft-control serving",
            metadata: [
                "push": "\(settings.pushHost):\(settings.pushPort)",
                "http": "\(settings.httpHost):\(settings.httpPort)",
                "otlp": "\(settings.otlpPort > 0 ? "\(settings.pushHost):\(settings.otlpPort)" : "off")",
                "config": "\(settings.configDirectory)", "trustDomain": "\(trustDomain)",
                "services": "\(initial.services.count)",
            ])

        let pending = Mutex<MeshState?>(nil)
        let (signals, signal) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        await withDiscardingTaskGroup { tasks in
            tasks.addTask {
                await cancelWhenGracefulShutdown {
                    do {
                        try await source.watch { event in
                            switch event {
                            case .updated(let state):
                                pending.withLock { $0 = state }
                                signal.yield()
                            case .restored:
                                api.updateConfigStatus { status in
                                    status.state = "valid"
                                    status.lastRejection = nil
                                }
                            case .rejected(let errors):
                                self.metrics.configsRejected.increment()
                                api.updateConfigStatus { status in
                                    status.state = "rejected"
                                    status.rejectedCount += 1
                                    status.lastRejection = .init(at: Self.now(), errors: errors.map(\.description))
                                }
                            }
                        }
                    } catch {
                        self.logger.error("config watch stopped", metadata: ["error": "\(error)"])
                    }
                }
            }
            tasks.addTask {
                // Debounce: a burst of accepted changes within `debounce` becomes one push.
                await cancelWhenGracefulShutdown {
                    var generation = 1
                    for await _ in signals {
                        try? await Task.sleep(for: self.settings.debounce)
                        guard
                            let state = pending.withLock({ value in
                                defer { value = nil }
                                return value
                            })
                        else { continue }
                        generation += 1
                        let next = MeshCompiler.compile(state, generation: generation, previous: hub.currentMesh)
                        hub.publish(next)
                        self.metrics.configGeneration.set(Int64(generation))
                        let current = generation
                        api.updateConfigStatus { status in
                            status.generation = current
                            status.acceptedAt = Self.now()
                            status.state = "valid"
                            status.lastRejection = nil
                            status.warnings = state.warnings.map(\.description)
                        }
                        self.logger.info(
                            "config change pushed",
                            metadata: ["generation": "\(generation)", "services": "\(state.services.count)"])
                    }
                }
            }
            tasks.addTask {
                await cancelWhenGracefulShutdown { await servingTLS.renewPeriodically() }
            }
            tasks.addTask {
                try? await gracefulShutdown()
                signal.finish()
            }
        }
        logger.info("weft-control stopping")
        try? await push.close()
        hub.stopSweeping()
        await hub.shutDownSessions()
        try? await http.close()
        try? await intake?.close()
        try? await group.shutdownGracefully()
    }

    private func ownIdentity(_ trustDomain: String) -> SPIFFEID {
        SPIFFEID(trustDomain: trustDomain, namespace: settings.namespace, serviceAccount: settings.serviceAccount)
    }

    /// A settings duration as NIO's `TimeAmount`, to the millisecond.
    static func timeAmount(_ duration: Duration) -> TimeAmount {
        .milliseconds(Int64(MeshCompiler.milliseconds(duration)))
    }

    static func now() -> String { Date().formatted(.iso8601) }

    static func readFile(_ path: String) throws -> String {
        do {
            return try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw StartupError(description: "cannot read \(path): \(error.localizedDescription)")
        }
    }

    private static func bindIntake(
        store: SpanStore, metrics: ControlMetrics, host: String, port: Int, maxBody: Int, limit: IntakeRateLimit,
        forwarder: OTLPForwarder?, group: any EventLoopGroup
    ) async throws -> any Channel {
        try await bindHTTPServer(host: host, port: port, group: group) {
            SpanIntakeHandler(
                store: store, maxBody: maxBody, limit: limit, onLimited: { metrics.exportsLimited.increment() },
                forward: forwarder.map { forwarder in { forwarder.forward($0, spans: $1) } }
            ) { outcome in
                metrics.spansAccepted.increment(by: Int64(outcome.accepted))
                metrics.spansRejected.increment(by: Int64(outcome.rejected))
                let usage = store.usage
                metrics.traceStoreTraces.set(Int64(usage.traces))
                metrics.traceStoreBytes.set(Int64(usage.bytes))
                metrics.tracesEvicted.set(Int64(usage.evicted))
            }
        }
    }

    private static func bindHTTP(
        api: ControlAPI, host: String, port: Int, group: any EventLoopGroup
    ) async throws -> any Channel {
        try await bindHTTPServer(host: host, port: port, group: group) { ControlHTTPHandler(api: api) }
    }

    /// An HTTP/1.1 server (NIOHTTP1, with its error handling) whose connections each get
    /// `handler()` after the codec.
    private static func bindHTTPServer(
        host: String, port: Int, group: any EventLoopGroup,
        handler: @escaping @Sendable () -> any ChannelInboundHandler
    ) async throws -> any Channel {
        try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                    try channel.pipeline.syncOperations.addHandler(handler())
                }
            }
            .bind(host: host, port: port)
            .get()
    }
}
