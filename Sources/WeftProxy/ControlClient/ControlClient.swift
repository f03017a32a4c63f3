import Logging
import NIOCore
import NIOPosix
import NIOSSL
import NIOTLS
import ServiceLifecycle
import Synchronization
import WeftCore
import WeftProtocol

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// The crypto the control client needs, behind a seam so it can be tested and so the data
/// plane does not care which library does it.
public protocol WorkloadKeyMaking: Sendable {
    /// A fresh P-256 key (PEM) and a CSR (PEM) for `identity` signed by it.
    func makeKeyAndCSR(for identity: SPIFFEID) throws -> (keyPEM: String, csrPEM: String)
    /// Base64 of the DER ECDSA P-256 SHA-256 signature over `data` by `keyPEM`.
    func sign(_ data: [UInt8], keyPEM: String) throws -> String
    /// The SPIFFE ID in a DER certificate's URI SAN, if any.
    func spiffeID(ofCertificateDER der: [UInt8]) -> String?
}

/// The sidecar's side of the control protocol (docs/protocol.md).
///
/// Connects, sends its hello with a CSR for its own identity, installs the identity and
/// config it is given and acks or nacks every push. It renews at 70% of the certificate's
/// lifetime, reconnects with jittered exponential backoff, and while the control plane is
/// away the proxy keeps serving on its last good identity and config (also cached on disk).
public final class ControlClient: ServiceLifecycle.Service, Sendable {
    private let settings: ControlClientSettings
    private let store: MeshStore
    private let keys: any WorkloadKeyMaking
    private let group: any EventLoopGroup
    private let logger: Logger
    private let cache: ControlCache?

    public init(
        settings: ControlClientSettings, store: MeshStore, keys: any WorkloadKeyMaking, group: any EventLoopGroup,
        logger: Logger
    ) {
        self.settings = settings
        self.store = store
        self.keys = keys
        self.group = group
        self.logger = logger
        self.cache = settings.cacheDirectory.map { ControlCache(directory: $0) }
    }

    private var ownIdentity: SPIFFEID {
        SPIFFEID(
            trustDomain: settings.trustDomain, namespace: settings.node.namespace,
            serviceAccount: settings.node.serviceAccount)
    }

    /// Loads the cached identity and config, if the cache holds a current certificate.
    public func loadCache() {
        guard let cache else { return }
        do {
            if let identity = try cache.loadIdentity() {
                if let notAfter = try? Date(identity.notAfter, strategy: .iso8601), notAfter > Date() {
                    if let failure = store.setIdentity(identity) {
                        logger.error("cannot make mesh TLS from the cached identity", metadata: ["error": "\(failure)"])
                    }
                } else {
                    logger.warning(
                        "cached certificate has expired; waiting for the control plane",
                        metadata: ["notAfter": "\(identity.notAfter)"])
                }
            }
            if let config = try cache.loadConfig() {
                do {
                    store.setConfig(config, snapshot: try compile(config))
                } catch {
                    logger.warning("cached config cannot be applied; ignoring it", metadata: ["error": "\(error)"])
                }
            }
            if store.hasIdentityAndConfig {
                logger.info(
                    "running on the cached identity and config until the control plane answers",
                    metadata: [
                        "version": "\(store.config?.version ?? 0)", "identity": "\(store.identity?.spiffeId ?? "")",
                    ])
            }
        } catch {
            logger.warning("control cache unreadable; ignoring it", metadata: ["error": "\(error)"])
        }
    }

    public func run() async throws {
        await cancelWhenGracefulShutdown {
            var backoff = ReconnectBackoff()
            var random = SystemRandomNumberGenerator()
            while !Task.isCancelled {
                let started = ContinuousClock.now
                do {
                    try await self.session()
                } catch is CancellationError {
                    break
                } catch {
                    self.logger.warning(
                        "control plane session ended; serving on the last good config",
                        metadata: ["controlPlane": "\(self.settings.host):\(self.settings.port)", "error": "\(error)"])
                }
                self.store.setConnected(false)
                let delay = backoff.delay(afterSessionOf: ContinuousClock.now - started, using: &random)
                do { try await Task.sleep(for: delay) } catch { break }
            }
        }
    }

    // MARK: - One session

    private func tlsContext() throws -> NIOSSLContext {
        let bundle = try readTextFile(settings.trustBundleFile)
        let roots = try NIOSSLCertificate.fromPEMBytes(Array(bundle.utf8))
        guard !roots.isEmpty else { throw ClientFailure("\(settings.trustBundleFile): no PEM certificates") }
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.minimumTLSVersion = .tlsv13
        configuration.trustRoots = .certificates(roots)
        // Identity, not DNS, names the control plane: checked after the handshake.
        configuration.certificateVerification = .noHostnameVerification
        return try NIOSSLContext(configuration: configuration)
    }

    private func session() async throws {
        let token = try readTextFile(settings.tokenFile).trimmingWhitespace()
        let tls = try tlsContext()
        let expected = settings.controlPlaneIdentity
        let keys = self.keys
        let verified = group.any().makePromise(of: Void.self)
        // Every path completes `verified`: a promise left pending is a leak (and a crash in
        // debug builds) when the connection attempt fails.
        let channel: NIOAsyncChannel<ByteBuffer, ByteBuffer>
        do {
            channel = try await ClientBootstrap(group: group)
                .connectTimeout(.seconds(5))
                .channelOption(.tcpOption(.tcp_nodelay), value: 1)
                .connect(host: settings.host, port: settings.port) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        let sync = channel.pipeline.syncOperations
                        try sync.addHandler(NIOSSLClientHandler(context: tls, serverHostname: nil))
                        try sync.addHandler(ServerIdentityCheck(expected: expected, keys: keys, verified: verified))
                        try sync.addHandler(ByteToMessageHandler(ControlFrameDecoder()))
                        try sync.addHandler(ControlFrameEncoder())
                        return try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                    }
                }
        } catch {
            verified.fail(error)
            throw error
        }
        // A control plane that accepts the connection but never finishes the handshake
        // must not hold the client forever: it gives up and reconnects.
        let handshakeTimeout = verified.futureResult.eventLoop.scheduleTask(
            in: .seconds(Int64(ControlProtocol.handshakeTimeoutSeconds))
        ) {
            verified.fail(
                ClientFailure("no TLS handshake within \(ControlProtocol.handshakeTimeoutSeconds) s"))
        }
        try await channel.executeThenClose { inbound, outbound in
            // The token goes out only after the peer proved it is the control plane. The
            // wait ends with the task too (a future's get() alone would not), so a
            // shutdown during the handshake is not held up by it.
            defer { handshakeTimeout.cancel() }
            try await withTaskCancellationHandler {
                try await verified.futureResult.get()
            } onCancel: {
                verified.fail(CancellationError())
            }
            let state = SessionState()
            let (keyPEM, csrPEM) = try keys.makeKeyAndCSR(for: ownIdentity)
            state.setPendingKey(keyPEM)
            // Attached before the hello's list is read, so no subscription falls between.
            let newSubscriptions = store.attachSubscriber()
            let (inHello, afterHello) = Self.splitSubscriptions(store.subscriptions)
            let hello = Hello(
                proxyVersion: settings.proxyVersion, node: settings.node, token: token, csr: csrPEM,
                subscriptions: inHello)
            try await outbound.write(ClientMessage.hello(hello).encode())
            // The server keeps the hello small (it comes before authentication); what did
            // not fit follows at once, in frames well under the client frame limit.
            for start in stride(from: 0, to: afterHello.count, by: 1000) {
                let services = Array(afterHello[start..<min(start + 1000, afterHello.count)])
                try await outbound.write(ClientMessage.subscribe(Subscription(services: services)).encode())
            }
            // The reader and the timers end only by throwing, and the first to throw ends
            // the session: leaving the group with an error cancels the other tasks.
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await self.timers(state: state, outbound: outbound) }
                group.addTask {
                    for await change in newSubscriptions {
                        switch change {
                        case .subscribe(let service):
                            try await outbound.write(
                                ClientMessage.subscribe(Subscription(services: [service])).encode())
                        case .unsubscribe(let services):
                            self.logger.debug("unsubscribing idle destinations", metadata: ["services": "\(services)"])
                            try await outbound.write(
                                ClientMessage.unsubscribe(Subscription(services: services)).encode())
                        }
                    }
                }
                group.addTask {
                    for try await frame in inbound {
                        state.touch()
                        let message = try ServerMessage.decode(frame)
                        if let reply = try self.handle(message, state: state) {
                            try await outbound.write(reply.encode())
                        }
                    }
                    throw ClientFailure("the control plane closed the connection")
                }
                for try await _ in group {}
            }
            throw ClientFailure("the control plane session ended")
        }
    }

    /// The subscriptions that go in the hello (up to `helloSubscriptionBytes` of keys) and
    /// the ones sent as `subscribe` after it.
    static func splitSubscriptions(_ all: [String]) -> (inHello: [String], after: [String]) {
        var bytes = 0
        var count = 0
        for key in all {
            bytes += key.utf8.count + 3  // quotes and comma
            if bytes > ControlProtocol.helloSubscriptionBytes { break }
            count += 1
        }
        return (Array(all[..<count]), Array(all[count...]))
    }

    /// Renewal at 70% of the lifetime, a ping after 15 s of quiet, and the idle timeout.
    ///
    /// Sleeps until the earliest of the three is due, not on a fixed tick: an idle sidecar
    /// wakes once per ping interval, not once a second (each wake-up runs the concurrency
    /// runtime and brings its pages back into the resident set). A deadline only moves
    /// later while the task sleeps (a frame received, a ping sent), except the renewal
    /// time, which an identity sets; it lies at least 42 s ahead (weft-control issues
    /// certificates of a minute or more), past any wake-up already scheduled.
    private func timers(state: SessionState, outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>) async throws {
        var pingID = 1
        while true {
            try await Task.sleep(until: Self.nextTimer(state: state), clock: .continuous)
            if ContinuousClock.now - state.lastReceived > .seconds(ControlProtocol.idleTimeoutSeconds) {
                throw ClientFailure("nothing from the control plane for \(ControlProtocol.idleTimeoutSeconds) s")
            }
            if ContinuousClock.now - state.lastPing >= .seconds(ControlProtocol.pingIntervalSeconds) {
                state.markPing()
                try await outbound.write(
                    ClientMessage.ping(Ping(id: pingID, tlsFailures: store.tlsFailureReport)).encode())
                pingID += 1
            }
            if let renew = try renewal(state: state) {
                try await outbound.write(ClientMessage.renew(renew).encode())
            }
        }
    }

    /// The earliest of the idle timeout, the next ping and the renewal, 10 ms past it so
    /// the checks that follow the sleep find it due; at least 100 ms from now.
    private static func nextTimer(state: SessionState) -> ContinuousClock.Instant {
        var next = min(
            state.lastReceived + .seconds(ControlProtocol.idleTimeoutSeconds),
            state.lastPing + .seconds(ControlProtocol.pingIntervalSeconds))
        if let renewAt = state.renewAt, !state.isRenewing { next = min(next, renewAt) }
        // Never a busy loop, even if a due renewal cannot be started.
        return max(next + .milliseconds(10), .now + .milliseconds(100))
    }

    private func renewal(state: SessionState) throws -> Renew? {
        guard let identity = store.identity, let session = state.session, !state.isRenewing,
            let renewAt = state.renewAt, ContinuousClock.now >= renewAt
        else { return nil }
        let (keyPEM, csrPEM) = try keys.makeKeyAndCSR(for: ownIdentity)
        let signature = try keys.sign(RenewProof.signedBytes(session: session, csr: csrPEM), keyPEM: identity.keyPEM)
        state.setPendingKey(keyPEM)
        state.markRenewing(true)
        logger.info("renewing the workload certificate", metadata: ["notAfter": "\(identity.notAfter)"])
        return Renew(csr: csrPEM, certificate: identity.chainPEM, signature: signature)
    }

    /// When to renew a certificate just received: after 70% of the validity it has left.
    ///
    /// Measured from its arrival rather than from its notBefore, which the CA backdates by
    /// 5 minutes for clock skew (with a short lifetime, 70% from notBefore can lie in the
    /// past), and on the monotonic clock, so a wall-clock step does not move it.
    static func renewalDelay(notAfter: Date, now: Date) -> Duration {
        .milliseconds(Int64((max(0, notAfter.timeIntervalSince(now)) * 1000).rounded()) * 7 / 10)
    }

    /// Handles one frame; returns the answer to send, if any.
    private func handle(_ message: ServerMessage, state: SessionState) throws -> ClientMessage? {
        switch message {
        case .identity(let identity):
            guard identity.spiffeId == ownIdentity.description else {
                throw ClientFailure("the control plane issued \(identity.spiffeId), expected \(ownIdentity)")
            }
            guard let keyPEM = state.takePendingKey() else {
                throw ClientFailure("an identity arrived that this proxy did not ask for")
            }
            let workload = WorkloadIdentity(
                spiffeId: identity.spiffeId, chainPEM: identity.chain, keyPEM: keyPEM,
                trustBundlePEM: identity.trustBundle, notBefore: identity.notBefore, notAfter: identity.notAfter)
            if let failure = store.setIdentity(workload) {
                logger.error(
                    "cannot make mesh TLS from the new identity; new mesh connections keep the previous one",
                    metadata: ["error": "\(failure)"])
            }
            state.setSession(identity.session)
            if let notAfter = try? Date(identity.notAfter, strategy: .iso8601) {
                state.setRenewAt(.now + Self.renewalDelay(notAfter: notAfter, now: Date()))
            }
            state.markRenewing(false)
            store.setConnected(true)
            persist { try $0.store(identity: workload) }
            logger.info(
                "identity installed",
                metadata: ["identity": "\(identity.spiffeId)", "notAfter": "\(identity.notAfter)"])
            return nil
        case .config(let push):
            do {
                let config = try ConfigApplier.apply(push)
                try install(config)
                return .ack(Ack(version: push.version, nonce: push.nonce))
            } catch {
                return refuse(version: push.version, nonce: push.nonce, error)
            }
        case .delta(let push):
            do {
                let config = try ConfigApplier.apply(push, to: store.config ?? AppliedConfig(version: -1))
                try install(config)
                return .ack(Ack(version: push.version, nonce: push.nonce))
            } catch {
                return refuse(version: push.version, nonce: push.nonce, error)
            }
        case .ping(let ping):
            return .pong(ping)
        case .pong:
            return nil
        case .error(let error):
            if error.fatal { throw ClientFailure("control plane refused: \(error.code.rawValue): \(error.message)") }
            logger.warning(
                "control plane reported", metadata: ["code": "\(error.code.rawValue)", "message": "\(error.message)"])
            return nil
        }
    }

    /// Compiles the data path's snapshot of `config`.
    private func compile(_ config: AppliedConfig) throws(ConfigRefusal) -> MeshSnapshot {
        try MeshSnapshotCompiler.compile(config, namespace: settings.node.namespace)
    }

    /// Compiles and installs an accepted config, and subscribes to the Services its
    /// routes send to whose endpoints it lacks.
    /// - Throws: `ConfigRefusal` when the data path cannot apply it; nothing changes then.
    private func install(_ config: AppliedConfig) throws(ConfigRefusal) {
        let snapshot = try compile(config)
        store.setConfig(config, snapshot: snapshot)
        for service in snapshot.missingServices { store.subscribe(service) }
        persist { try $0.store(config: config) }
        logger.debug(
            "config installed", metadata: ["version": "\(config.version)", "generation": "\(config.generation)"])
    }

    private func refuse(version: Int, nonce: String, _ error: ConfigRefusal) -> ClientMessage {
        logger.warning(
            "refused a config push; staying on the last good config",
            metadata: [
                "version": "\(version)", "code": "\(error.code.rawValue)", "reason": "\(error.reason)",
                "running": "\(store.config?.version ?? 0)",
            ])
        return .nack(Nack(version: version, nonce: nonce, error: error.reason, code: error.code.rawValue))
    }

    private func persist(_ write: (ControlCache) throws -> Void) {
        guard let cache else { return }
        do { try write(cache) } catch {
            logger.warning("could not write the control cache", metadata: ["error": "\(error)"])
        }
    }
}

/// Per-connection state shared by the reader and the timer task.
private final class SessionState: Sendable {
    private struct Values {
        var pendingKey: String?
        var session: String?
        var renewing = false
        var renewAt: ContinuousClock.Instant?
        var lastReceived = ContinuousClock.now
        var lastPing = ContinuousClock.now
    }

    private let values = Mutex(Values())

    func setPendingKey(_ key: String) { values.withLock { $0.pendingKey = key } }
    func takePendingKey() -> String? {
        values.withLock { v in
            defer { v.pendingKey = nil }; return v.pendingKey
        }
    }
    func setSession(_ session: String) { values.withLock { $0.session = session } }
    var session: String? { values.withLock { $0.session } }
    var isRenewing: Bool { values.withLock { $0.renewing } }
    func markRenewing(_ renewing: Bool) { values.withLock { $0.renewing = renewing } }
    var renewAt: ContinuousClock.Instant? { values.withLock { $0.renewAt } }
    func setRenewAt(_ instant: ContinuousClock.Instant) { values.withLock { $0.renewAt = instant } }
    func touch() { values.withLock { $0.lastReceived = .now } }
    var lastReceived: ContinuousClock.Instant { values.withLock { $0.lastReceived } }
    func markPing() { values.withLock { $0.lastPing = .now } }
    var lastPing: ContinuousClock.Instant { values.withLock { $0.lastPing } }
}

/// Closes the connection unless the control plane's certificate carries the expected
/// SPIFFE ID. The chain itself was verified against the trust bundle by NIOSSL.
final class ServerIdentityCheck: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    private let expected: String
    private let keys: any WorkloadKeyMaking
    private let verified: EventLoopPromise<Void>
    private var isDone = false

    init(expected: String, keys: any WorkloadKeyMaking, verified: EventLoopPromise<Void>) {
        self.expected = expected
        self.keys = keys
        self.verified = verified
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case TLSUserEvent.handshakeCompleted = event {
            let peer = try? context.pipeline.syncOperations.handler(type: NIOSSLClientHandler.self).peerCertificate
            let der = (try? peer?.toDERBytes()) ?? nil
            let found = der.flatMap { keys.spiffeID(ofCertificateDER: $0) }
            isDone = true
            guard found == expected else {
                verified.fail(
                    ClientFailure("the control plane presented \(found ?? "no SPIFFE ID"), expected \(expected)"))
                context.close(promise: nil)
                return
            }
            verified.succeed()
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        if !isDone {
            isDone = true
            verified.fail(error)
        }
        context.fireErrorCaught(error)
    }

    func channelInactive(context: ChannelHandlerContext) {
        if !isDone {
            isDone = true
            verified.fail(ClientFailure("the connection closed during the TLS handshake"))
        }
        context.fireChannelInactive()
    }
}

@available(*, unavailable) extension ServerIdentityCheck: Sendable {}

struct ClientFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

extension String {
    func trimmingWhitespace() -> String {
        var s = Substring(self)
        while let c = s.first, c.isWhitespace { s.removeFirst() }
        while let c = s.last, c.isWhitespace { s.removeLast() }
        return String(s)
    }
}
