/// The proxy's certificate, issued from its CSR, and the roots to trust.
public struct Identity: Codable, Hashable, Sendable {
    /// `spiffe://<trust-domain>/ns/<ns>/sa/<sa>`.
    public var spiffeId: String
    /// PEM, leaf first, then the intermediate.
    public var chain: String
    /// PEM roots the mesh trusts; several during a root rotation.
    public var trustBundle: String
    /// RFC 3339 UTC times of the leaf's validity.
    public var notBefore: String
    public var notAfter: String
    /// Names this connection; a `renew` signature covers it.
    public var session: String

    public init(
        spiffeId: String, chain: String, trustBundle: String, notBefore: String, notAfter: String, session: String
    ) {
        self.spiffeId = spiffeId
        self.chain = chain
        self.trustBundle = trustBundle
        self.notBefore = notBefore
        self.notAfter = notAfter
        self.session = session
    }
}

/// A whole config: replaces everything the proxy held.
public struct ConfigPush: Codable, Hashable, Sendable {
    /// Per connection, 1 for the first push, +1 for each later `config` or `delta`.
    public var version: Int
    /// Unique per push; an ack or nack echoes it.
    public var nonce: String
    /// The control plane's config generation this push reflects (for people and `weftctl`).
    public var generation: Int
    public var snapshot: ConfigSet

    public init(version: Int, nonce: String, generation: Int, snapshot: ConfigSet) {
        self.version = version
        self.nonce = nonce
        self.generation = generation
        self.snapshot = snapshot
    }
}

/// A change to the config at version `base`, giving version `version`.
///
/// Removals apply first, then upserts; an upserted entry replaces the entry with the same
/// key whole. A proxy whose version is not `base` nacks it, and the server answers with a
/// full `config`.
public struct DeltaPush: Codable, Hashable, Sendable {
    public var version: Int
    public var base: Int
    public var nonce: String
    public var generation: Int
    public var upserts: ConfigSet
    public var removals: ConfigKeys

    public init(version: Int, base: Int, nonce: String, generation: Int, upserts: ConfigSet, removals: ConfigKeys) {
        self.version = version
        self.base = base
        self.nonce = nonce
        self.generation = generation
        self.upserts = upserts
        self.removals = removals
    }
}

/// Keys of entries a delta removes. Keys are `namespace/name`; for routes and endpoints the
/// key is the destination service's.
public struct ConfigKeys: Codable, Hashable, Sendable {
    public var services: [String]?
    public var policies: [String]?
    public var routes: [String]?
    public var endpoints: [String]?
    /// Pod IPs of `workloads`.
    public var workloads: [String]?

    public init(
        services: [String]? = nil, policies: [String]? = nil, routes: [String]? = nil, endpoints: [String]? = nil,
        workloads: [String]? = nil
    ) {
        self.workloads = workloads
        self.services = services
        self.policies = policies
        self.routes = routes
        self.endpoints = endpoints
    }

    public var isEmpty: Bool {
        (services ?? []).isEmpty && (policies ?? []).isEmpty && (routes ?? []).isEmpty && (endpoints ?? []).isEmpty
            && (workloads ?? []).isEmpty
    }
}
