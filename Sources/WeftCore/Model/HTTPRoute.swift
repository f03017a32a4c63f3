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
    public let parentRefs: [ParentReference]
    public let hostnames: [String]
    /// At least one rule: a route with none gets the default rule (match `/`, no backends).
    public let rules: [HTTPRouteRule]

    public init(metadata: ObjectMeta, parentRefs: [ParentReference], hostnames: [String], rules: [HTTPRouteRule]) {
        self.metadata = metadata
        self.parentRefs = parentRefs
        self.hostnames = hostnames
        self.rules = rules
    }
}

/// One rule of an HTTPRoute: what it matches, where it sends, with which limits.
public struct HTTPRouteRule: Hashable, Sendable {
    public let name: String?
    /// Never empty: a rule without matches matches PathPrefix `/`, as Gateway API says.
    public let matches: [HTTPRouteMatch]
    public let backendRefs: [HTTPBackendRef]
    public let timeouts: Timeouts?
    public let retry: Retry?

    /// `timeouts`: zero means "no timeout" (Gateway API).
    public struct Timeouts: Hashable, Sendable {
        public let request: Duration?
        public let backendRequest: Duration?

        public init(request: Duration?, backendRequest: Duration?) {
            self.request = request
            self.backendRequest = backendRequest
        }
    }

    /// `retry` (GEP-1731).
    public struct Retry: Hashable, Sendable {
        /// HTTP statuses (400...599) that are retried.
        public let codes: [Int]
        public let attempts: Int?
        public let backoff: Duration?

        public init(codes: [Int], attempts: Int?, backoff: Duration?) {
            self.codes = codes
            self.attempts = attempts
            self.backoff = backoff
        }
    }

    public init(
        name: String?, matches: [HTTPRouteMatch], backendRefs: [HTTPBackendRef], timeouts: Timeouts?, retry: Retry?
    ) {
        self.name = name
        self.matches = matches
        self.backendRefs = backendRefs
        self.timeouts = timeouts
        self.retry = retry
    }
}

/// One `matches[]` entry; every field given must match.
public struct HTTPRouteMatch: Hashable, Sendable {
    public enum PathMatchType: String, Hashable, Sendable {
        case exact = "Exact"
        case pathPrefix = "PathPrefix"
        case regularExpression = "RegularExpression"
    }

    public enum ValueMatchType: String, Hashable, Sendable {
        case exact = "Exact"
        case regularExpression = "RegularExpression"
    }

    public struct PathMatch: Hashable, Sendable {
        public let type: PathMatchType
        public let value: String

        public init(type: PathMatchType, value: String) {
            self.type = type
            self.value = value
        }
    }

    /// A header or query parameter match.
    public struct ValueMatch: Hashable, Sendable {
        public let type: ValueMatchType
        public let name: String
        public let value: String

        public init(type: ValueMatchType, name: String, value: String) {
            self.type = type
            self.name = name
            self.value = value
        }
    }

    /// Defaults to PathPrefix `/`.
    public let path: PathMatch
    public let headers: [ValueMatch]
    public let queryParams: [ValueMatch]
    public let method: String?

    /// The match a rule without `matches` has.
    public static let matchAll = HTTPRouteMatch(
        path: PathMatch(type: .pathPrefix, value: "/"), headers: [], queryParams: [], method: nil)

    public init(path: PathMatch, headers: [ValueMatch], queryParams: [ValueMatch], method: String?) {
        self.path = path
        self.headers = headers
        self.queryParams = queryParams
        self.method = method
    }
}

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

    public var isService: Bool { (group == "" || group == "core") && kind == "Service" }

    public init(group: String, kind: String, name: String, namespace: String, port: Int?, weight: Int) {
        self.group = group
        self.kind = kind
        self.name = name
        self.namespace = namespace
        self.port = port
        self.weight = weight
    }
}
