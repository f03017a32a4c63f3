import Logging
import NIOCore
import Synchronization
import WeftCore
import WeftProtocol

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// What every proxy connection shares: the current mesh, the CA, the authenticator, the
/// metrics, and the register of established sessions per event loop.
///
/// Sessions are registered on their own event loop and only touched there; a publish
/// runs one task per loop that walks that loop's sessions, so no lock is held while
/// pushes are built and no handler crosses threads.
final class PushHub: Sendable {
    /// Unsent bytes a connection may hold before it counts as a slow consumer.
    static let writeBufferHighWater = 4 << 20

    let metrics: ControlMetrics
    let helloTimeout: TimeAmount
    /// How long a refused delta waits before the whole config that replaces it.
    let debounce: TimeAmount
    /// How long a connection may stay above its write high-water mark before it is closed.
    let slowConsumerGrace: TimeAmount
    /// Heartbeats (docs/protocol.md §11).
    let pingInterval = TimeAmount.seconds(Int64(ControlProtocol.pingIntervalSeconds))
    let idleTimeout = TimeAmount.seconds(Int64(ControlProtocol.idleTimeoutSeconds))
    private let sweeps = Mutex<[RepeatedTask]>([])
    private let issuer: any WorkloadIssuer
    private let authenticator: any HelloAuthenticator
    private let mesh: Mutex<CompiledMesh>
    private let limiter: Mutex<IssuanceLimiter>
    /// A monotonic clock in nanoseconds (a fake one in tests of the limits).
    private let clock: @Sendable () -> UInt64
    /// The control plane's namespace: no identity in it is ever issued through a hello.
    let reservedNamespace: String
    /// Connections that have not yet had a hello accepted, and how many may be.
    let unauthenticated = UnauthenticatedCount()
    let maxUnauthenticated: Int
    private let loops: [(loop: any EventLoop, sessions: NIOLoopBoundBox<[String: ProxySessionHandler]>)]
    private let logger: Logger

    init(
        group: any EventLoopGroup, initialMesh: CompiledMesh, issuer: any WorkloadIssuer,
        authenticator: any HelloAuthenticator, metrics: ControlMetrics, logger: Logger,
        helloTimeout: TimeAmount = .seconds(Int64(ControlProtocol.helloTimeoutSeconds)),
        debounce: TimeAmount = .milliseconds(100), slowConsumerGrace: TimeAmount = .seconds(10),
        limiter: IssuanceLimiter = IssuanceLimiter(), reservedNamespace: String = MeshDefaults.controlPlaneNamespace,
        maxUnauthenticated: Int = 256,
        clock: @escaping @Sendable () -> UInt64 = { NIODeadline.now().uptimeNanoseconds }
    ) {
        self.limiter = Mutex(limiter)
        self.clock = clock
        self.reservedNamespace = reservedNamespace
        self.maxUnauthenticated = maxUnauthenticated
        self.debounce = debounce
        self.slowConsumerGrace = slowConsumerGrace
        self.mesh = Mutex(initialMesh)
        self.issuer = issuer
        self.authenticator = authenticator
        self.metrics = metrics
        self.logger = logger
        self.helloTimeout = helloTimeout
        self.loops = group.makeIterator().map { loop in
            (loop, NIOLoopBoundBox.makeBoxSendingValue([:], as: [String: ProxySessionHandler].self, eventLoop: loop))
        }
    }

    var currentMesh: CompiledMesh { mesh.withLock { $0 } }

    /// Starts one heartbeat sweep per event loop, every second, over that loop's sessions.
    func startSweeping() {
        let tasks = loops.map { (loop, sessions) in
            loop.scheduleRepeatedTask(initialDelay: .seconds(1), delay: .seconds(1)) { _ in
                let now = loop.now
                for handler in sessions.value.values { handler.sweep(now: now) }
            }
        }
        sweeps.withLock { $0 += tasks }
    }

    func stopSweeping() {
        for task in sweeps.withLock({ $0 }) { task.cancel() }
    }

    private func box(for loop: any EventLoop) -> NIOLoopBoundBox<[String: ProxySessionHandler]>? {
        loops.first { $0.loop === loop }?.sessions
    }

    func register(_ handler: ProxySessionHandler, sessionID: String, loop: any EventLoop) {
        box(for: loop)?.value[sessionID] = handler
        metrics.proxiesConnected.increment()
    }

    func unregister(sessionID: String, loop: any EventLoop) {
        if box(for: loop)?.value.removeValue(forKey: sessionID) != nil {
            metrics.proxiesConnected.decrement()
        }
    }

    /// Makes `mesh` current and pushes it to every established session.
    func publish(_ newMesh: CompiledMesh) {
        mesh.withLock { $0 = newMesh }
        for (loop, sessions) in loops {
            loop.execute {
                for handler in sessions.value.values { handler.push(newMesh) }
            }
        }
    }

    /// Sends every established session `shutting_down` and closes it.
    func shutDownSessions() async {
        for (loop, sessions) in loops {
            try? await loop.submit { for handler in sessions.value.values { handler.shutDown() } }.get()
        }
    }

    /// Every established session's status.
    func statuses() async -> [ProxyStatus] {
        var out: [ProxyStatus] = []
        for (loop, sessions) in loops {
            let part = try? await loop.submit { sessions.value.values.compactMap(\.status) }.get()
            out.append(contentsOf: part ?? [])
        }
        return out.sorted { ($0.namespace, $0.pod, $0.session) < ($1.namespace, $1.pod, $1.session) }
    }

    /// Every established session's status, read synchronously: only from a thread that is
    /// every loop's (tests on an `EmbeddedEventLoop`).
    func statusesOnLoop() -> [ProxyStatus] {
        loops.flatMap { $0.sessions.value.values.compactMap(\.status) }
    }

    /// What the proxy in `namespace/pod` would be sent now (status and config JSON).
    func config(namespace: String, pod: String) async -> (ProxyStatus, [UInt8])? {
        let mesh = currentMesh
        for (loop, sessions) in loops {
            let found = try? await loop.submit { () -> (ProxyStatus, [UInt8])? in
                for handler in sessions.value.values {
                    guard let status = handler.status, status.namespace == namespace, status.pod == pod,
                        let config = handler.currentConfigJSON(mesh)
                    else { continue }
                    return (status, Array(config.readableBytesView))
                }
                return nil
            }.get()
            if let found = found ?? nil { return found }
        }
        return nil
    }

    // MARK: - Hello and renew

    /// Checks a hello and issues its certificate.
    ///
    /// In order: names are Kubernetes names; the token is accepted; the hello claims what
    /// the token proves; nothing in the control plane's namespace; with a token that proves
    /// only mesh membership, the pod is in the config and runs as the claimed service
    /// account; the pod and the source address are within their issuance limits; the CSR
    /// asks for exactly the identity that follows.
    func admit(_ hello: Hello, source: String) -> Result<(Identity, ProxySession), ProtocolError> {
        do throws(ProtocolError) {
            let node = hello.node
            for (field, value) in [
                ("node.pod", node.pod), ("node.namespace", node.namespace),
                ("node.serviceAccount", node.serviceAccount),
            ] where !Self.isDNSName(value) {
                throw ProtocolError(.invalidMessage, "\(field): \"\(value)\" is not a Kubernetes name")
            }
            let proven = try authenticator.authenticate(token: hello.token, node: node)
            guard proven.namespace == node.namespace, proven.serviceAccount == node.serviceAccount else {
                throw ProtocolError(
                    .forbiddenIdentity,
                    "the token proves \(proven.namespace)/\(proven.serviceAccount), the hello claims \(node.namespace)/\(node.serviceAccount)"
                )
            }
            guard node.namespace != reservedNamespace else {
                throw ProtocolError(
                    .forbiddenIdentity,
                    "namespace \(reservedNamespace) is the control plane's; no identity in it is issued through a hello"
                )
            }
            let mesh = currentMesh
            let known = mesh.pods["\(node.namespace)/\(node.pod)"]
            if let known, known.serviceAccount != node.serviceAccount {
                throw ProtocolError(
                    .forbiddenIdentity,
                    "pod \(node.namespace)/\(node.pod) runs as service account \(known.serviceAccount), not \(node.serviceAccount)"
                )
            }
            if known == nil, proven.strength == .meshMember {
                throw ProtocolError(
                    .forbiddenIdentity,
                    "pod \(node.namespace)/\(node.pod) is not in the config; with the shared bootstrap token only pods in the config are issued an identity"
                )
            }
            let identity = SPIFFEID(
                trustDomain: issuer.trustDomain, namespace: node.namespace, serviceAccount: node.serviceAccount)
            let subscriptions = hello.subscriptions ?? []
            guard subscriptions.count <= 10_000, subscriptions.allSatisfy(Self.isServiceKey) else {
                throw ProtocolError(.invalidMessage, "subscriptions: each must be \"namespace/name\"")
            }
            try takeIssuance(pod: "\(node.namespace)/\(node.pod)", source: source)
            let issued = try issuer.issue(csrPEM: hello.csr, for: identity)
            metrics.certificatesIssued.increment()
            let sessionID = Self.makeSessionID()
            let session = ProxySession(
                id: sessionID, node: node, identity: identity, labels: known?.labels ?? node.labels,
                connectedAt: Self.timestamp(), certificateNotAfter: issued.notAfter, subscriptions: subscriptions,
                source: source, probes: known?.probes ?? [])
            let message = Identity(
                spiffeId: identity.description, chain: issued.chainPEM, trustBundle: issuer.trustBundlePEM,
                notBefore: issued.notBefore, notAfter: issued.notAfter, session: sessionID)
            return .success((message, session))
        } catch {
            return .failure(error)
        }
    }

    /// Takes a token from the pod's and the source's issuance buckets.
    /// - Throws: `.rateLimited` naming the bucket and when to retry.
    private func takeIssuance(pod: String, source: String) throws(ProtocolError) {
        let now = clock()
        if let refusal = limiter.withLock({ $0.admit(pod: pod, source: source, nowNanoseconds: now) }) {
            throw ProtocolError(.rateLimited, refusal.description)
        }
    }

    /// Checks a renewal's proof and issues the new certificate.
    func renew(_ renew: Renew, session: ProxySession) async -> Result<Identity, ProtocolError> {
        do throws(ProtocolError) {
            let proven = try await issuer.verifyRenewal(
                chainPEM: renew.certificate, data: RenewProof.signedBytes(session: session.id, csr: renew.csr),
                signatureBase64: renew.signature)
            guard proven == session.identity else {
                throw ProtocolError(
                    .forbiddenIdentity, "the renewal proves \(proven), this connection is \(session.identity)")
            }
            try takeIssuance(pod: "\(session.node.namespace)/\(session.node.pod)", source: session.source)
            let issued = try issuer.issue(csrPEM: renew.csr, for: session.identity)
            metrics.certificatesIssued.increment()
            metrics.certificatesRenewed.increment()
            return .success(
                Identity(
                    spiffeId: session.identity.description, chain: issued.chainPEM,
                    trustBundle: issuer.trustBundlePEM, notBefore: issued.notBefore, notAfter: issued.notAfter,
                    session: session.id))
        } catch {
            return .failure(error)
        }
    }

    static func isDNSName(_ s: String) -> Bool {
        guard !s.isEmpty, s.utf8.count <= 253 else { return false }
        return s.utf8.allSatisfy {
            ($0 >= 0x61 && $0 <= 0x7A) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x2D || $0 == 0x2E
        }
    }

    static func isServiceKey(_ key: String) -> Bool {
        let parts = key.split(separator: "/", omittingEmptySubsequences: false)
        return parts.count == 2 && isDNSName(String(parts[0])) && isDNSName(String(parts[1]))
    }

    private static func makeSessionID() -> String {
        var generator = SystemRandomNumberGenerator()
        let hex = Array("0123456789abcdef".utf8)
        var bytes: [UInt8] = []
        for _ in 0..<16 { bytes.append(hex[Int(generator.next() % 16)]) }
        return String(decoding: bytes, as: UTF8.self)
    }

    static func timestamp(_ date: Date = Date()) -> String {
        date.formatted(.iso8601)
    }
}

/// Connections whose hello has not been accepted yet, bounded so that connections which
/// never say hello (or stall inside their first frame) cannot hold the control plane's
/// memory: each holds a TLS session and up to one hello frame.
final class UnauthenticatedCount: Sendable {
    private let count = Atomic<Int>(0)

    /// Counts one more connection if fewer than `limit` are counted.
    func enter(limit: Int) -> Bool {
        var current = count.load(ordering: .relaxed)
        while current < limit {
            let (exchanged, original) = count.compareExchange(
                expected: current, desired: current + 1, ordering: .relaxed)
            if exchanged { return true }
            current = original
        }
        return false
    }

    func leave() { count.subtract(1, ordering: .relaxed) }

    var value: Int { count.load(ordering: .relaxed) }
}
