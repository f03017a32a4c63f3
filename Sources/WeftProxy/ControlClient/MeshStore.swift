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
        var config: AppliedConfig?
        var subscriptions: Set<String> = []
        var connected = false
        /// "clusterIP:port" → service key, rebuilt when the config changes.
        var clusterIndex: [String: String] = [:]
        /// The connected session's stream of new subscriptions, if one is connected.
        var subscriber: AsyncStream<String>.Continuation?
    }

    private let held = Mutex(Held())

    public init() {}

    /// A stream of the services subscribed from now on, for one control-plane session.
    /// The ones subscribed before go in that session's hello (`subscriptions`); a new
    /// session replaces the previous stream, which finishes.
    func attachSubscriber() -> AsyncStream<String> {
        let (stream, continuation) = AsyncStream.makeStream(of: String.self, bufferingPolicy: .unbounded)
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

    func setIdentity(_ identity: WorkloadIdentity) { held.withLock { $0.identity = identity } }
    func setConfig(_ config: AppliedConfig) {
        var index: [String: String] = [:]
        for entry in config.services.values {
            for ip in entry.clusterIPs {
                for port in entry.ports { index["\(ip):\(port.port)"] = entry.key }
            }
        }
        held.withLock {
            $0.config = config
            $0.clusterIndex = index
        }
    }
    func setConnected(_ connected: Bool) { held.withLock { $0.connected = connected } }

    /// Asks for a destination's routes and endpoints (`namespace/name`); only the first
    /// call per service reaches the control plane.
    public func subscribe(_ service: String) {
        let subscriber = held.withLock { held -> AsyncStream<String>.Continuation? in
            held.subscriptions.insert(service).inserted ? held.subscriber : nil
        }
        subscriber?.yield(service)
    }

    /// The Service a connection to `ip:port` is for, if the mesh index knows it.
    public func service(ip: String, port: Int) -> String? {
        let key = "\(ip):\(port)"
        return held.withLock { $0.clusterIndex[key] }
    }
}
