/// The state of the config source, as `weftctl check` reports it.
public struct ConfigStatus: Codable, Sendable, Hashable {
    /// Where the config comes from, e.g. the folder.
    public var source: String
    /// The generation in force; increments on every accepted change.
    public var generation: Int
    public var acceptedAt: String
    /// "valid" when the latest change was accepted, "rejected" when the latest change was
    /// refused and the previous generation stays in force.
    public var state: String
    public var rejectedCount: Int
    public var lastRejection: Rejection?
    /// Non-fatal findings of the config in force (unknown kinds, unresolved references).
    public var warnings: [String]

    public struct Rejection: Codable, Sendable, Hashable {
        public var at: String
        public var errors: [String]
    }
}

/// The answer of `GET /api/v1/status`.
public struct ControlStatus: Codable, Sendable, Hashable {
    public var config: ConfigStatus
    public var trustDomain: String
    public var proxies: ProxySummary

    public struct ProxySummary: Codable, Sendable, Hashable {
        public var connected: Int
        /// Proxies that acked the generation in force.
        public var upToDate: Int
        /// `namespace/pod` of proxies that have not acked it yet.
        public var behind: [String]
        /// `namespace/pod: error` of proxies whose last answer was a nack.
        public var nacked: [String]
    }
}
