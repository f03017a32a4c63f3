/// A gateway.networking.k8s.io/v1 HTTPRoute. The mesh acts on routes attached to a
/// Service (GAMMA); routes attached only to Gateways are decoded, warned about, and
/// ignored by `MeshState`.
public struct HTTPRoute: Hashable, Sendable {
    /// Where the route attaches (`spec.parentRefs[]`).
    public struct ParentReference: Hashable, Sendable {
        /// `""` for core (Service); defaults to `gateway.networking.k8s.io`.
        public let group: String
        /// Defaults to `Gateway`.
        public let kind: String
        public let name: String
        /// The route's namespace when the reference names none.
        public let namespace: String
        /// Attach to this Service port only; nil means all ports.
        public let port: Int?

        /// True for `group: ""` (or `core`) and `kind: Service`: a GAMMA mesh route.
        public var isService: Bool { (group == "" || group == "core") && kind == "Service" }

        public init(group: String, kind: String, name: String, namespace: String, port: Int?) {
            self.group = group
            self.kind = kind
            self.name = name
            self.namespace = namespace
            self.port = port
        }
    }

    public let metadata: ObjectMeta
    /// A GRPCRoute, decoded into the same model: its method matches are path matches
    /// (`/service/method`), and it has no timeouts or retry fields of its own.
    public let isGRPC: Bool
    public let parentRefs: [ParentReference]
    public let hostnames: [String]
    /// At least one rule: a route with none gets the default rule (match `/`, no backends).
    public let rules: [HTTPRouteRule]

    public init(
        metadata: ObjectMeta, parentRefs: [ParentReference], hostnames: [String], rules: [HTTPRouteRule],
        isGRPC: Bool = false
    ) {
        self.isGRPC = isGRPC
        self.metadata = metadata
        self.parentRefs = parentRefs
        self.hostnames = hostnames
        self.rules = rules
    }
}
