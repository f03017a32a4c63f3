/// The part of Kubernetes `metadata` the mesh reads. Everything else (annotations,
/// managedFields, uid, resourceVersion...) is ignored.
public struct ObjectMeta: Hashable, Sendable {
    public let name: String
    /// `default` when the manifest names none, as `kubectl apply` would do.
    public let namespace: String
    public let labels: [String: String]
    /// RFC 3339 text as the API server writes it; nil in hand-written files. Only used to
    /// order HTTPRoutes (Gateway API: the oldest route wins a tie).
    public let creationTimestamp: String?

    public init(name: String, namespace: String, labels: [String: String], creationTimestamp: String?) {
        self.name = name
        self.namespace = namespace
        self.labels = labels
        self.creationTimestamp = creationTimestamp
    }
}

/// The identity of a resource in the configuration: kind, namespace and name.
public struct ResourceID: Hashable, Sendable, Comparable, CustomStringConvertible {
    public let kind: String
    public let namespace: String
    public let name: String

    public init(kind: String, namespace: String, name: String) {
        self.kind = kind
        self.namespace = namespace
        self.name = name
    }

    public var description: String { "\(kind) \(namespace)/\(name)" }

    public static func < (lhs: ResourceID, rhs: ResourceID) -> Bool {
        (lhs.kind, lhs.namespace, lhs.name) < (rhs.kind, rhs.namespace, rhs.name)
    }
}

/// A Service named by namespace and name.
public struct ServiceName: Hashable, Sendable, Comparable, CustomStringConvertible {
    public let namespace: String
    public let name: String

    public init(namespace: String, name: String) {
        self.namespace = namespace
        self.name = name
    }

    public var description: String { "\(namespace)/\(name)" }

    public static func < (lhs: ServiceName, rhs: ServiceName) -> Bool {
        (lhs.namespace, lhs.name) < (rhs.namespace, rhs.name)
    }
}

/// Transport protocol of a port (`TCP` when the manifest does not say).
public enum TransportProtocol: String, Hashable, Sendable {
    case tcp = "TCP"
    case udp = "UDP"
    case sctp = "SCTP"
}
