// The JSON schema of the control plane's HTTP API on :15014 (`/api/v1/...`), shared by
// weft-control, which serves it, and weftctl, which reads it.

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

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

        public init(at: String, errors: [String]) {
            self.at = at
            self.errors = errors
        }
    }

    public init(
        source: String, generation: Int, acceptedAt: String, state: String, rejectedCount: Int,
        lastRejection: Rejection?, warnings: [String]
    ) {
        self.source = source
        self.generation = generation
        self.acceptedAt = acceptedAt
        self.state = state
        self.rejectedCount = rejectedCount
        self.lastRejection = lastRejection
        self.warnings = warnings
    }
}

/// The answer of `GET /api/v1/status`.
public struct ControlStatus: Codable, Sendable, Hashable {
    public var config: ConfigStatus
    public var trustDomain: String
    public var proxies: ProxySummary
    /// The lifetime of the workload certificates it issues (`--certificate-lifetime`).
    public var certificateLifetimeSeconds: Int?

    public struct ProxySummary: Codable, Sendable, Hashable {
        public var connected: Int
        /// Proxies that acked the generation in force.
        public var upToDate: Int
        /// `namespace/pod` of proxies that have not acked it yet.
        public var behind: [String]
        /// `namespace/pod: error` of proxies whose last answer was a nack.
        public var nacked: [String]

        public init(connected: Int, upToDate: Int, behind: [String], nacked: [String]) {
            self.connected = connected
            self.upToDate = upToDate
            self.behind = behind
            self.nacked = nacked
        }
    }

    public init(
        config: ConfigStatus, trustDomain: String, proxies: ProxySummary, certificateLifetimeSeconds: Int? = nil
    ) {
        self.certificateLifetimeSeconds = certificateLifetimeSeconds
        self.config = config
        self.trustDomain = trustDomain
        self.proxies = proxies
    }
}

/// One proxy as `weftctl check` and `weftctl config` see it.
public struct ProxyStatus: Codable, Sendable, Hashable {
    public init(
        session: String, pod: String, namespace: String, serviceAccount: String, ip: String, identity: String,
        connectedAt: String, certificateNotAfter: String, version: Int, ackedVersion: Int, sentGeneration: Int,
        ackedGeneration: Int, nacks: Int, lastNack: String?, subscriptions: [String]
    ) {
        self.session = session
        self.pod = pod
        self.namespace = namespace
        self.serviceAccount = serviceAccount
        self.ip = ip
        self.identity = identity
        self.connectedAt = connectedAt
        self.certificateNotAfter = certificateNotAfter
        self.version = version
        self.ackedVersion = ackedVersion
        self.sentGeneration = sentGeneration
        self.ackedGeneration = ackedGeneration
        self.nacks = nacks
        self.lastNack = lastNack
        self.subscriptions = subscriptions
    }

    public var session: String
    public var pod: String
    public var namespace: String
    public var serviceAccount: String
    public var ip: String
    public var identity: String
    public var connectedAt: String
    public var certificateNotAfter: String
    public var version: Int
    public var ackedVersion: Int
    public var sentGeneration: Int
    public var ackedGeneration: Int
    public var nacks: Int
    public var lastNack: String?
    public var subscriptions: [String]
    /// Its mesh TLS handshake failures, as its last ping reported them; nil when none.
    public var tlsFailures: TLSFailureReport?
    /// When the control plane last saw that count grow.
    public var tlsFailuresGrewAt: String?
}

extension ProxyStatus {
    /// Why its certificate needs attention at `now`, or nil: expired, or less than 20% of
    /// its lifetime left, which means the renewal due at 70% did not happen.
    public func certificateProblem(now: Date, lifetimeSeconds: Int?) -> String? {
        guard let notAfter = try? Date(certificateNotAfter, strategy: .iso8601) else { return nil }
        let left = notAfter.timeIntervalSince(now)
        if left <= 0 { return "certificate expired at \(certificateNotAfter)" }
        if let lifetimeSeconds, left < 0.2 * Double(lifetimeSeconds) {
            return
                "certificate expires at \(certificateNotAfter), \(Int(left)) s left of \(lifetimeSeconds) s: its renewal (due at 70%) is overdue"
        }
        return nil
    }

    /// Its mesh TLS handshake failures in words, when their count grew within `window`
    /// seconds of `now`; nil otherwise.
    public func recentTLSFailures(now: Date, window: TimeInterval) -> String? {
        guard let report = tlsFailures, let grewText = tlsFailuresGrewAt,
            let grew = try? Date(grewText, strategy: .iso8601), now.timeIntervalSince(grew) < window
        else { return nil }
        return
            "\(report.inbound) inbound refused, \(report.outbound) outbound failed, the last at \(grewText): \(report.last ?? "?")"
    }
}
