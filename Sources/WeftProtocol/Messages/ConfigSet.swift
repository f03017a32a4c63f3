/// The parts of a proxy's config. In a `config` every list is the whole truth (absent means
/// empty); in a `delta` each list holds only the entries that changed (absent means none).
public struct ConfigSet: Codable, Hashable, Sendable {
    /// Mesh-wide settings; in a delta, present only when they changed.
    public var mesh: MeshSettings?
    /// The compact index of every Service in the mesh.
    public var services: [ServiceEntry]?
    /// The AuthorizationPolicies that select this proxy's pod.
    public var policies: [PolicyEntry]?
    /// Routes of each subscribed destination.
    public var routes: [RouteSet]?
    /// Ready and serving endpoints of each subscribed destination.
    public var endpoints: [EndpointSet]?
    /// The meshed Pods of the whole mesh by IP, so traffic to a Pod's own address (a
    /// headless Service, a StatefulSet member) is mesh TLS too, with the Pod's identity.
    public var workloads: [WorkloadEntry]?
    /// The kubelet probes this proxy's Pod declares (accepted in plaintext under STRICT
    /// and by default-deny policies). Sent in a `config`, fixed for the session.
    public var probes: [ProbeEntry]?

    public init(
        mesh: MeshSettings? = nil, services: [ServiceEntry]? = nil, policies: [PolicyEntry]? = nil,
        routes: [RouteSet]? = nil, endpoints: [EndpointSet]? = nil, probes: [ProbeEntry]? = nil,
        workloads: [WorkloadEntry]? = nil
    ) {
        self.workloads = workloads
        self.probes = probes
        self.mesh = mesh
        self.services = services
        self.policies = policies
        self.routes = routes
        self.endpoints = endpoints
    }

    public var isEmpty: Bool {
        mesh == nil && (services ?? []).isEmpty && (policies ?? []).isEmpty && (routes ?? []).isEmpty
            && (endpoints ?? []).isEmpty && (workloads ?? []).isEmpty
    }
}

/// MeshConfig, as a proxy needs it.
public struct MeshSettings: Codable, Hashable, Sendable {
    public var trustDomain: String
    /// "STRICT" or "PERMISSIVE".
    public var mtls: String
    public var retryBudget: RetryBudgetSettings
    /// Fraction of new traces sampled, 0...1.
    public var traceSampling: Double
    /// "ALLOW_ANY" or "REGISTRY_ONLY".
    public var outboundPolicy: String
    /// "HTTP1" or "HTTP2": how HTTP/1 requests travel between sidecars. Absent: "HTTP1".
    public var http1Transport: String?

    public init(
        trustDomain: String, mtls: String, retryBudget: RetryBudgetSettings, traceSampling: Double,
        outboundPolicy: String, http1Transport: String? = nil
    ) {
        self.http1Transport = http1Transport
        self.trustDomain = trustDomain
        self.mtls = mtls
        self.retryBudget = retryBudget
        self.traceSampling = traceSampling
        self.outboundPolicy = outboundPolicy
    }
}

public struct RetryBudgetSettings: Codable, Hashable, Sendable {
    /// Retries allowed as a fraction of requests.
    public var ratio: Double
    public var minRetriesPerSecond: Int
    public var windowMs: Int

    public init(ratio: Double, minRetriesPerSecond: Int, windowMs: Int) {
        self.ratio = ratio
        self.minRetriesPerSecond = minRetriesPerSecond
        self.windowMs = windowMs
    }
}

/// One Service in the mesh index: how a proxy recognizes traffic for it.
public struct ServiceEntry: Codable, Hashable, Sendable {
    /// `namespace/name`.
    public var key: String
    /// ClusterIPs; empty for a headless Service.
    public var clusterIPs: [String]
    /// DNS names: `name.ns.svc.<cluster domain>`, `name.ns.svc`, `name.ns`.
    public var hosts: [String]
    public var ports: [ServicePortEntry]

    public init(key: String, clusterIPs: [String], hosts: [String], ports: [ServicePortEntry]) {
        self.key = key
        self.clusterIPs = clusterIPs
        self.hosts = hosts
        self.ports = ports
    }
}

public struct ServicePortEntry: Codable, Hashable, Sendable {
    public var name: String?
    public var port: Int
    /// The endpoint port as a number, or nil when it is named (`targetPortName`).
    public var targetPort: Int?
    public var targetPortName: String?
    /// "TCP", "UDP" or "SCTP".
    public var `protocol`: String
    public var appProtocol: String?

    public init(
        name: String?, port: Int, targetPort: Int?, targetPortName: String?, protocol: String, appProtocol: String?
    ) {
        self.name = name
        self.port = port
        self.targetPort = targetPort
        self.targetPortName = targetPortName
        self.protocol = `protocol`
        self.appProtocol = appProtocol
    }
}

/// A meshed Pod's address and identity (its sidecar answers mesh TLS there).
public struct WorkloadEntry: Codable, Hashable, Sendable {
    /// A Pod IP; the key.
    public var ip: String
    /// Its SPIFFE ID.
    public var identity: String

    public init(ip: String, identity: String) {
        self.ip = ip
        self.identity = identity
    }
}

/// An AuthorizationPolicy that selects this proxy's pod.
public struct PolicyEntry: Codable, Hashable, Sendable {
    /// `namespace/name`.
    public var key: String
    /// "ALLOW" or "DENY".
    public var action: String
    public var rules: [PolicyRule]

    public init(key: String, action: String, rules: [PolicyRule]) {
        self.key = key
        self.action = action
        self.rules = rules
    }
}

/// A rule matches when any `from` matches the peer and any `to` matches the request; an
/// absent or empty list matches everything.
public struct PolicyRule: Codable, Hashable, Sendable {
    public var from: [PolicyPeer]?
    public var to: [PolicyTarget]?

    public init(from: [PolicyPeer]?, to: [PolicyTarget]?) {
        self.from = from
        self.to = to
    }
}

public struct PolicyPeer: Codable, Hashable, Sendable {
    /// SPIFFE IDs; a trailing `*` matches any suffix.
    public var identities: [String]?
    public var namespaces: [String]?
    public var serviceAccounts: [String]?
    /// Source networks (`10.0.0.0/8`, an address alone is a /32 or /128): the caller's IP
    /// address. The only kind of source a caller without mesh TLS can match.
    public var ipBlocks: [String]?

    public init(
        identities: [String]?, namespaces: [String]?, serviceAccounts: [String]?, ipBlocks: [String]? = nil
    ) {
        self.identities = identities
        self.namespaces = namespaces
        self.serviceAccounts = serviceAccounts
        self.ipBlocks = ipBlocks
    }
}

public struct PolicyTarget: Codable, Hashable, Sendable {
    public var ports: [Int]?
    public var methods: [String]?
    public var paths: [String]?

    public init(ports: [Int]?, methods: [String]?, paths: [String]?) {
        self.ports = ports
        self.methods = methods
        self.paths = paths
    }
}

/// The HTTPRoutes attached to one destination Service, in precedence order.
public struct RouteSet: Codable, Hashable, Sendable {
    /// The destination's `namespace/name`.
    public var service: String
    public var routes: [RouteEntry]

    public init(service: String, routes: [RouteEntry]) {
        self.service = service
        self.routes = routes
    }
}

public struct RouteEntry: Codable, Hashable, Sendable {
    /// The HTTPRoute's `namespace/name`.
    public var name: String
    /// The Service port the route attaches to; nil means every port.
    public var port: Int?
    public var hostnames: [String]?
    public var rules: [RouteRuleEntry]

    public init(name: String, port: Int?, hostnames: [String]?, rules: [RouteRuleEntry]) {
        self.name = name
        self.port = port
        self.hostnames = hostnames
        self.rules = rules
    }
}

public struct RouteRuleEntry: Codable, Hashable, Sendable {
    /// `rules[].name`, when given (it labels the rule's metrics).
    public var name: String?
    /// `rules[].filters`, in order; absent when none.
    public var filters: [RouteFilterEntry]?
    public var matches: [RouteMatchEntry]
    public var backends: [BackendEntry]
    public var requestTimeoutMs: Int?
    public var backendRequestTimeoutMs: Int?
    public var retry: RetryEntry?

    public init(
        matches: [RouteMatchEntry], backends: [BackendEntry], requestTimeoutMs: Int?, backendRequestTimeoutMs: Int?,
        retry: RetryEntry?, name: String? = nil, filters: [RouteFilterEntry]? = nil
    ) {
        self.name = name
        self.filters = filters
        self.matches = matches
        self.backends = backends
        self.requestTimeoutMs = requestTimeoutMs
        self.backendRequestTimeoutMs = backendRequestTimeoutMs
        self.retry = retry
    }
}

public struct RouteMatchEntry: Codable, Hashable, Sendable {
    /// "Exact", "PathPrefix" or "RegularExpression".
    public var pathType: String?
    public var path: String?
    public var headers: [ValueMatchEntry]?
    public var queryParams: [ValueMatchEntry]?
    public var method: String?

    public init(
        pathType: String?, path: String?, headers: [ValueMatchEntry]?, queryParams: [ValueMatchEntry]?, method: String?
    ) {
        self.pathType = pathType
        self.path = path
        self.headers = headers
        self.queryParams = queryParams
        self.method = method
    }
}

public struct ValueMatchEntry: Codable, Hashable, Sendable {
    /// "Exact" or "RegularExpression".
    public var type: String
    public var name: String
    public var value: String

    public init(type: String, name: String, value: String) {
        self.type = type
        self.name = name
        self.value = value
    }
}

public struct BackendEntry: Codable, Hashable, Sendable {
    /// The backend Service's `namespace/name`.
    public var service: String
    public var port: Int?
    public var weight: Int
    /// Header modifiers for requests to this backend only; absent when none.
    public var filters: [RouteFilterEntry]?

    public init(service: String, port: Int?, weight: Int, filters: [RouteFilterEntry]? = nil) {
        self.service = service
        self.port = port
        self.weight = weight
        self.filters = filters
    }
}

/// An HTTPRoute filter. `type` says which fields apply:
/// - `RequestHeaderModifier`, `ResponseHeaderModifier`: `set`, `add`, `remove`;
/// - `RequestRedirect`: `scheme`, `hostname`, `port`, `statusCode`, `pathType` and `path`;
/// - `URLRewrite`: `hostname`, `pathType` and `path`;
/// - `RequestMirror`: `mirror` (a backend) and `percent`.
/// `pathType` is `ReplaceFullPath` or `ReplacePrefixMatch`.
public struct RouteFilterEntry: Codable, Hashable, Sendable {
    public var type: String
    public var set: [HeaderEntry]?
    public var add: [HeaderEntry]?
    public var remove: [String]?
    public var scheme: String?
    public var hostname: String?
    public var port: Int?
    public var statusCode: Int?
    public var pathType: String?
    public var path: String?
    public var mirror: BackendEntry?
    public var percent: Int?

    public init(
        type: String, set: [HeaderEntry]? = nil, add: [HeaderEntry]? = nil, remove: [String]? = nil,
        scheme: String? = nil, hostname: String? = nil, port: Int? = nil, statusCode: Int? = nil,
        pathType: String? = nil, path: String? = nil, mirror: BackendEntry? = nil, percent: Int? = nil
    ) {
        self.type = type
        self.set = set
        self.add = add
        self.remove = remove
        self.scheme = scheme
        self.hostname = hostname
        self.port = port
        self.statusCode = statusCode
        self.pathType = pathType
        self.path = path
        self.mirror = mirror
        self.percent = percent
    }
}

public struct HeaderEntry: Codable, Hashable, Sendable {
    public var name: String
    public var value: String

    public init(name: String, value: String) {
        self.name = name
        self.value = value
    }
}

public struct RetryEntry: Codable, Hashable, Sendable {
    public var attempts: Int?
    public var codes: [Int]?
    public var backoffMs: Int?
    /// gRPC status codes retried when a call ends trailers-only with one (GRPCRoute,
    /// `retry.weft.dev/grpc`); absent when none.
    public var grpcCodes: [Int]?

    public init(attempts: Int?, codes: [Int]?, backoffMs: Int?, grpcCodes: [Int]? = nil) {
        self.attempts = attempts
        self.codes = codes
        self.backoffMs = backoffMs
        self.grpcCodes = grpcCodes
    }
}

/// The endpoints of one destination Service, merged from its EndpointSlices.
public struct EndpointSet: Codable, Hashable, Sendable {
    public var service: String
    public var endpoints: [EndpointEntry]

    public init(service: String, endpoints: [EndpointEntry]) {
        self.service = service
        self.endpoints = endpoints
    }
}

public struct EndpointEntry: Codable, Hashable, Sendable {
    public var address: String
    /// Endpoint ports by name (the Service port's name, "" when unnamed).
    public var ports: [EndpointPortEntry]
    public var ready: Bool
    public var serving: Bool
    public var terminating: Bool
    /// The workload's SPIFFE ID, when its Pod is known; the proxy expects it in mTLS.
    public var identity: String?
    public var zone: String?
    /// True when its Pod runs a sidecar: the proxy reaches it over mesh TLS and expects
    /// `identity`; absent otherwise (plaintext).
    public var meshed: Bool?

    public init(
        address: String, ports: [EndpointPortEntry], ready: Bool, serving: Bool, terminating: Bool, identity: String?,
        zone: String?, meshed: Bool? = nil
    ) {
        self.meshed = meshed
        self.address = address
        self.ports = ports
        self.ready = ready
        self.serving = serving
        self.terminating = terminating
        self.identity = identity
        self.zone = zone
    }
}

public struct EndpointPortEntry: Codable, Hashable, Sendable {
    public var name: String
    public var port: Int
    public var appProtocol: String?

    public init(name: String, port: Int, appProtocol: String?) {
        self.name = name
        self.port = port
        self.appProtocol = appProtocol
    }
}
