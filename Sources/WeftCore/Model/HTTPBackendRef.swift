/// A weighted backend of a rule (`backendRefs[]`).
public struct HTTPBackendRef: Hashable, Sendable {
    /// `""` (core) by default.
    public let group: String
    /// `Service` by default.
    public let kind: String
    public let name: String
    /// The route's namespace when the reference names none.
    public let namespace: String
    public let port: Int?
    /// 0...1_000_000, default 1. Zero weight gets no traffic.
    public let weight: Int
    /// Header modifiers for requests sent to this backend only.
    public let filters: [HTTPRouteFilter]

    public var isService: Bool { (group == "" || group == "core") && kind == "Service" }

    public init(
        group: String, kind: String, name: String, namespace: String, port: Int?, weight: Int,
        filters: [HTTPRouteFilter] = []
    ) {
        self.filters = filters
        self.group = group
        self.kind = kind
        self.name = name
        self.namespace = namespace
        self.port = port
        self.weight = weight
    }
}
