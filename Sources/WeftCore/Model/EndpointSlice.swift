/// A discovery.k8s.io/v1 EndpointSlice: some of the addresses behind one Service.
public struct EndpointSlice: Hashable, Sendable {
    public enum AddressType: String, Hashable, Sendable {
        case ipv4 = "IPv4"
        case ipv6 = "IPv6"
        case fqdn = "FQDN"
    }

    /// A port every endpoint of the slice serves.
    public struct Port: Hashable, Sendable {
        public let name: String
        /// nil means "all ports" (Kubernetes allows it; the mesh cannot route to it).
        public let port: Int?
        public let `protocol`: TransportProtocol
        public let appProtocol: String?

        public init(name: String, port: Int?, `protocol`: TransportProtocol, appProtocol: String?) {
            self.name = name
            self.port = port
            self.`protocol` = `protocol`
            self.appProtocol = appProtocol
        }
    }

    /// The state of an endpoint. Absent conditions take the values Kubernetes documents:
    /// `ready` and `serving` absent mean true, `terminating` absent means false.
    public struct Conditions: Hashable, Sendable {
        public let ready: Bool
        public let serving: Bool
        public let terminating: Bool

        public init(ready: Bool, serving: Bool, terminating: Bool) {
            self.ready = ready
            self.serving = serving
            self.terminating = terminating
        }
    }

    /// What an endpoint is (usually a Pod).
    public struct TargetReference: Hashable, Sendable {
        public let kind: String
        public let name: String
        /// The slice's namespace when the reference names none.
        public let namespace: String

        public init(kind: String, name: String, namespace: String) {
            self.kind = kind
            self.name = name
            self.namespace = namespace
        }
    }

    public struct Endpoint: Hashable, Sendable {
        public let addresses: [String]
        public let conditions: Conditions
        public let targetRef: TargetReference?
        public let nodeName: String?
        public let zone: String?
        public let hostname: String?

        public init(
            addresses: [String], conditions: Conditions, targetRef: TargetReference?, nodeName: String?, zone: String?,
            hostname: String?
        ) {
            self.addresses = addresses
            self.conditions = conditions
            self.targetRef = targetRef
            self.nodeName = nodeName
            self.zone = zone
            self.hostname = hostname
        }
    }

    public let metadata: ObjectMeta
    /// From the `kubernetes.io/service-name` label; nil when the label is missing (the
    /// slice then belongs to no Service, and a warning says so).
    public let serviceName: String?
    public let addressType: AddressType
    public let ports: [Port]
    public let endpoints: [Endpoint]

    public init(
        metadata: ObjectMeta, serviceName: String?, addressType: AddressType, ports: [Port], endpoints: [Endpoint]
    ) {
        self.metadata = metadata
        self.serviceName = serviceName
        self.addressType = addressType
        self.ports = ports
        self.endpoints = endpoints
    }
}
