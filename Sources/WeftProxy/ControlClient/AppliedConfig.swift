import Glibc
import WeftCore
import WeftProtocol

/// The config a proxy runs on: the last `config` or `delta` it acked, applied.
///
/// An immutable value, swapped whole when an update is accepted, so the data path reads
/// one consistent version without locks held across a request.
public struct AppliedConfig: Codable, Sendable, Hashable {
    public var version: Int
    public var generation: Int
    public var mesh: MeshSettings?
    public var services: [String: ServiceEntry]
    public var policies: [String: PolicyEntry]
    public var routes: [String: RouteSet]
    public var endpoints: [String: EndpointSet]
    /// The kubelet probes this proxy's Pod declares.
    public var probes: [ProbeEntry] = []
    /// Meshed Pods by IP.
    public var workloads: [String: WorkloadEntry] = [:]

    public init(
        version: Int = 0, generation: Int = 0, mesh: MeshSettings? = nil, services: [String: ServiceEntry] = [:],
        policies: [String: PolicyEntry] = [:], routes: [String: RouteSet] = [:], endpoints: [String: EndpointSet] = [:]
    ) {
        self.version = version
        self.generation = generation
        self.mesh = mesh
        self.services = services
        self.policies = policies
        self.routes = routes
        self.endpoints = endpoints
    }
}

/// Applies pushes to an `AppliedConfig`, checking everything the proxy will rely on.
///
/// A push that fails a check is refused whole (the caller nacks it) and the previous
/// config stays in force. The control plane validates too; these checks catch what only
/// the proxy can judge (its own regular-expression dialect) and version skew.
public enum ConfigApplier {
    /// The config a `config` push describes.
    /// - Throws: `ConfigRefusal` naming the entry and field.
    public static func apply(_ push: ConfigPush) throws(ConfigRefusal) -> AppliedConfig {
        var config = AppliedConfig(version: push.version, generation: push.generation, mesh: push.snapshot.mesh)
        guard push.snapshot.mesh != nil else { throw ConfigRefusal(.missingField, "snapshot.mesh: missing") }
        try upsert(push.snapshot, into: &config)
        return config
    }

    /// `current` with a `delta` applied.
    /// - Throws: `ConfigRefusal`, e.g. when `base` is not `current.version`.
    public static func apply(_ push: DeltaPush, to current: AppliedConfig) throws(ConfigRefusal) -> AppliedConfig {
        guard push.base == current.version else {
            throw ConfigRefusal(
                .baseMismatch,
                "base mismatch: delta \(push.version) applies to \(push.base), this proxy is at \(current.version)")
        }
        var config = current
        config.version = push.version
        config.generation = push.generation
        for key in push.removals.services ?? [] { config.services[key] = nil }
        for key in push.removals.policies ?? [] { config.policies[key] = nil }
        for key in push.removals.routes ?? [] { config.routes[key] = nil }
        for key in push.removals.endpoints ?? [] { config.endpoints[key] = nil }
        for key in push.removals.workloads ?? [] { config.workloads[key] = nil }
        if let mesh = push.upserts.mesh { config.mesh = mesh }
        try upsert(push.upserts, into: &config)
        return config
    }

    private static func upsert(_ set: ConfigSet, into config: inout AppliedConfig) throws(ConfigRefusal) {
        if let mesh = set.mesh { try check(mesh) }
        if let probes = set.probes {
            for (i, probe) in probes.enumerated() where !(1...65535).contains(probe.port) || !probe.path.hasPrefix("/")
            {
                throw ConfigRefusal(
                    .invalidSetting, "probes[\(i)]: port \(probe.port), path \"\(probe.path)\" is not a probe")
            }
            config.probes = probes
        }
        for service in set.services ?? [] {
            for ip in service.clusterIPs where !IPText.isValid(ip) {
                throw ConfigRefusal(
                    .invalidAddress, "services[\(service.key)].clusterIPs: \"\(ip)\" is not an IP address")
            }
            config.services[service.key] = service
        }
        for policy in set.policies ?? [] {
            guard policy.action == "ALLOW" || policy.action == "DENY" else {
                throw ConfigRefusal(
                    .invalidSetting, "policies[\(policy.key)].action: \"\(policy.action)\" is not ALLOW or DENY")
            }
            config.policies[policy.key] = policy
        }
        for workload in set.workloads ?? [] {
            guard IPText.isValid(workload.ip) else {
                throw ConfigRefusal(.invalidAddress, "workloads[\(workload.ip)]: not an IP address")
            }
            config.workloads[workload.ip] = workload
        }
        for routeSet in set.routes ?? [] {
            for route in routeSet.routes {
                for (r, rule) in route.rules.enumerated() {
                    for (m, match) in rule.matches.enumerated() {
                        let field = "routes[\(route.name)].rules[\(r)].matches[\(m)]"
                        if match.pathType == "RegularExpression", let path = match.path {
                            try compile(path, field: "\(field).path")
                        }
                        for (h, header) in (match.headers ?? []).enumerated() where header.type == "RegularExpression" {
                            try compile(header.value, field: "\(field).headers[\(h)].value")
                        }
                    }
                }
            }
            config.routes[routeSet.service] = routeSet
        }
        for endpointSet in set.endpoints ?? [] {
            for endpoint in endpointSet.endpoints where !IPText.isValid(endpoint.address) {
                throw ConfigRefusal(
                    .invalidAddress, "endpoints[\(endpointSet.service)]: \"\(endpoint.address)\" is not an IP address")
            }
            config.endpoints[endpointSet.service] = endpointSet
        }
    }

    private static func check(_ mesh: MeshSettings) throws(ConfigRefusal) {
        guard ["STRICT", "PERMISSIVE"].contains(mesh.mtls) else {
            throw ConfigRefusal(.invalidSetting, "mesh.mtls: \"\(mesh.mtls)\" is not STRICT or PERMISSIVE")
        }
        if let transport = mesh.http1Transport, !["HTTP1", "HTTP2"].contains(transport) {
            throw ConfigRefusal(.invalidSetting, "mesh.http1Transport: \"\(transport)\" is not HTTP1 or HTTP2")
        }
        guard ["ALLOW_ANY", "REGISTRY_ONLY"].contains(mesh.outboundPolicy) else {
            throw ConfigRefusal(
                .invalidSetting, "mesh.outboundPolicy: \"\(mesh.outboundPolicy)\" is not ALLOW_ANY or REGISTRY_ONLY")
        }
    }

    /// The proxy matches regular expressions with Swift's `Regex`; a pattern it cannot
    /// compile is refused here rather than failing requests later.
    private static func compile(_ pattern: String, field: String) throws(ConfigRefusal) {
        do {
            _ = try Regex(pattern)
        } catch {
            throw ConfigRefusal(
                .invalidRegex, "\(field): \"\(pattern)\" is not a regular expression this proxy can compile")
        }
    }
}

/// Why a proxy refused a push: a stable code (the `nack`'s `code`, which tools and tests
/// compare) and a reason naming the entry and field (its `error`).
public struct ConfigRefusal: Error, Sendable, CustomStringConvertible {
    public enum Code: String, Sendable, Codable {
        /// A `delta` whose base is not the version the proxy runs.
        case baseMismatch = "base_mismatch"
        case missingField = "missing_field"
        /// An IP address the proxy cannot parse.
        case invalidAddress = "invalid_address"
        /// A regular expression the proxy's engine cannot compile.
        case invalidRegex = "invalid_regex"
        /// A route the proxy cannot apply (a path that is not absolute, a negative weight…).
        case invalidRoute = "invalid_route"
        /// A mesh or policy setting outside its allowed values.
        case invalidSetting = "invalid_setting"
    }

    public let code: Code
    public let reason: String

    public init(_ code: Code, _ reason: String) {
        self.code = code
        self.reason = reason
    }

    public var description: String { "\(code.rawValue): \(reason)" }
}

/// Textual IP checks, via inet_pton.
enum IPText {
    static func isValid(_ text: String) -> Bool {
        var v4 = in_addr()
        var v6 = in6_addr()
        return inet_pton(AF_INET, text, &v4) == 1 || inet_pton(AF_INET6, text, &v6) == 1
    }
}
