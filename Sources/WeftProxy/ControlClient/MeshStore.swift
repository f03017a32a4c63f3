import Synchronization
import WeftProtocol

/// The proxy's certificate and key, as issued by the control plane.
public struct WorkloadIdentity: Codable, Sendable, Hashable {
    public var spiffeId: String
    /// PEM, leaf first.
    public var chainPEM: String
    /// PEM PKCS#8; made by this proxy, never sent anywhere.
    public var keyPEM: String
    public var trustBundlePEM: String
    public var notBefore: String
    public var notAfter: String
}

/// What the proxy holds from the control plane: identity, config and the destinations it
/// subscribed to. Shared by the control client (writer) and the admin server and data path
/// (readers); values are swapped whole under a lock, never mutated in place.
public final class MeshStore: Sendable {
    private struct Held {
        var identity: WorkloadIdentity?
        /// TLS for mesh traffic, made from `identity`.
        var meshTLS: MeshTLS?
        var config: AppliedConfig?
        var subscriptions: Set<String> = []
        var connected = false
        /// The config compiled for the data path; each loop holds its own reference.
        var snapshot: MeshSnapshot?
        var snapshotListeners: [@Sendable (MeshSnapshot) -> Void] = []
        /// The connected session's stream of subscription changes, if one is connected.
        var subscriber: AsyncStream<SubscriptionChange>.Continuation?
        /// When each subscribed Service was last used (or subscribed).
        var lastUsed: [String: ContinuousClock.Instant] = [:]
    }

    private let held = Mutex(Held())

    public init() {}

    /// A stream of the services subscribed from now on, for one control-plane session.
    /// The ones subscribed before go in that session's hello (`subscriptions`); a new
    /// session replaces the previous stream, which finishes.
    func attachSubscriber() -> AsyncStream<SubscriptionChange> {
        let (stream, continuation) = AsyncStream.makeStream(of: SubscriptionChange.self, bufferingPolicy: .unbounded)
        let previous = held.withLock { held in
            defer { held.subscriber = continuation }
            return held.subscriber
        }
        previous?.finish()
        return stream
    }

    public var identity: WorkloadIdentity? { held.withLock { $0.identity } }
    public var config: AppliedConfig? { held.withLock { $0.config } }
    public var hasIdentityAndConfig: Bool { held.withLock { $0.identity != nil && $0.config != nil } }
    public var isConnected: Bool { held.withLock { $0.connected } }
    public var subscriptions: [String] { held.withLock { $0.subscriptions.sorted() } }

    /// Installs a (renewed) identity and the mesh TLS made from it, which new connections
    /// use from now on. Returns why the TLS could not be made, if it could not (the identity
    /// is still installed; mesh TLS keeps the previous one).
    @discardableResult
    func setIdentity(_ identity: WorkloadIdentity) -> Error? {
        var failure: Error?
        let tls: MeshTLS?
        do {
            tls = try MeshTLS(identity: identity)
        } catch {
            failure = error
            tls = nil
        }
        held.withLock {
            $0.identity = identity
            if let tls { $0.meshTLS = tls }
        }
        return failure
    }

    /// The TLS for mesh traffic; nil before an identity.
    var meshTLS: MeshTLS? { held.withLock { $0.meshTLS } }

    /// Mesh TLS handshakes refused or failed, reported to the control plane with each ping
    /// (`weftctl check` names proxies whose peers fail handshakes). Rare: a lock is fine.
    private let tlsFailures = Mutex(TLSFailureReport(inbound: 0, outbound: 0, last: nil))

    func recordTLSFailure(inbound: Bool, detail: String) {
        tlsFailures.withLock {
            if inbound { $0.inbound += 1 } else { $0.outbound += 1 }
            $0.last = String(detail.prefix(300))
        }
    }

    /// Nil until the first failure.
    var tlsFailureReport: TLSFailureReport? {
        tlsFailures.withLock { $0.inbound + $0.outbound == 0 ? nil : $0 }
    }
    var snapshot: MeshSnapshot? { held.withLock { $0.snapshot } }

    /// Installs an accepted config and its compiled snapshot, and hands the snapshot to
    /// every listener (the data path's loops).
    /// Listeners are called under the store's lock, so every listener sees snapshots in the
    /// order they were set (they only hand them on: `loop.execute`).
    func setConfig(_ config: AppliedConfig, snapshot: MeshSnapshot) {
        held.withLock {
            $0.config = config
            $0.snapshot = snapshot
            for listener in $0.snapshotListeners { listener(snapshot) }
        }
    }

    /// Calls `listener` with the current snapshot, if any, and with every later one.
    func onSnapshot(_ listener: @escaping @Sendable (MeshSnapshot) -> Void) {
        held.withLock {
            $0.snapshotListeners.append(listener)
            if let current = $0.snapshot { listener(current) }
        }
    }

    func setConnected(_ connected: Bool) { held.withLock { $0.connected = connected } }

    /// Asks for a destination's routes and endpoints (`namespace/name`); only the first
    /// call per service reaches the control plane.
    public func subscribe(_ service: String) {
        let now = ContinuousClock.now
        let subscriber = held.withLock { held -> AsyncStream<SubscriptionChange>.Continuation? in
            guard held.subscriptions.insert(service).inserted else { return nil }
            held.lastUsed[service] = now
            return held.subscriber
        }
        subscriber?.yield(.subscribe(service))
    }

    /// Notes that requests went to these Services (the data path's loops report them).
    func noteUsed(_ services: Set<String>, now: ContinuousClock.Instant = .now) {
        guard !services.isEmpty else { return }
        held.withLock { held in
            for service in services where held.subscriptions.contains(service) { held.lastUsed[service] = now }
        }
    }

    /// Unsubscribes from the Services not used for `idle`: the control plane stops sending
    /// them and removes their routes and endpoints; the next request subscribes again.
    /// - Returns: the Services dropped, sorted.
    @discardableResult
    func dropIdle(olderThan idle: Duration, now: ContinuousClock.Instant = .now) -> [String] {
        let (dropped, subscriber) = held.withLock { held -> ([String], AsyncStream<SubscriptionChange>.Continuation?) in
            let idleOnes = held.subscriptions.filter { service in
                (held.lastUsed[service].map { now - $0 >= idle }) ?? true
            }.sorted()
            for service in idleOnes {
                held.subscriptions.remove(service)
                held.lastUsed[service] = nil
            }
            return (idleOnes, held.subscriber)
        }
        if !dropped.isEmpty { subscriber?.yield(.unsubscribe(dropped)) }
        return dropped
    }

}

/// A change of the destinations a proxy wants routes and endpoints for.
enum SubscriptionChange: Sendable, Equatable {
    case subscribe(String)
    case unsubscribe([String])
}
