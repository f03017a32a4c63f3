/// A core/v1 Service: the name clients use, its virtual IPs and ports.
public struct Service: Hashable, Sendable {
    /// How the Service is exposed (`spec.type`).
    public enum ServiceType: String, Hashable, Sendable {
        case clusterIP = "ClusterIP"
        case nodePort = "NodePort"
        case loadBalancer = "LoadBalancer"
        case externalName = "ExternalName"
    }

    /// The pod port a Service port forwards to: a number, or the name of a container port.
    public enum TargetPort: Hashable, Sendable {
        case number(Int)
        case name(String)
    }

    /// One entry of `spec.ports`.
    public struct Port: Hashable, Sendable {
        /// Empty when the Service has a single unnamed port.
        public let name: String
        public let port: Int
        /// Defaults to `port`, as Kubernetes does.
        public let targetPort: TargetPort
        public let `protocol`: TransportProtocol
        public let appProtocol: String?

        public init(
            name: String, port: Int, targetPort: TargetPort, `protocol`: TransportProtocol, appProtocol: String?
        ) {
            self.name = name
            self.port = port
            self.targetPort = targetPort
            self.`protocol` = `protocol`
            self.appProtocol = appProtocol
        }
    }

    public let metadata: ObjectMeta
    public let type: ServiceType
    /// The virtual IPs, first the primary one; empty when headless or not yet assigned.
    public let clusterIPs: [String]
    /// `clusterIP: None`: DNS answers with the endpoints' addresses, there is no virtual IP.
    public let isHeadless: Bool
    public let ports: [Port]
    public let selector: [String: String]

    public var name: ServiceName { ServiceName(namespace: metadata.namespace, name: metadata.name) }

    public init(
        metadata: ObjectMeta, type: ServiceType, clusterIPs: [String], isHeadless: Bool, ports: [Port],
        selector: [String: String]
    ) {
        self.metadata = metadata
        self.type = type
        self.clusterIPs = clusterIPs
        self.isHeadless = isHeadless
        self.ports = ports
        self.selector = selector
    }
}
