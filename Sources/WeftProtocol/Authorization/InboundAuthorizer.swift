import WeftCore

/// Who is calling, as inbound authorization sees it.
public struct AuthzCaller: Sendable, Hashable {
    /// The SPIFFE ID the caller proved over mesh TLS; nil for a plaintext caller.
    public let identity: String?
    /// `identity` parsed (namespace and service account), when it has the mesh's shape.
    public let spiffeID: SPIFFEID?
    /// The caller's IP address (4 or 16 bytes, `CIDR.bytes(of:)`), when known.
    public let address: [UInt8]?
    /// The address as text, for explanations.
    public let addressText: String

    public init(identity: String?, address: String?) {
        self.identity = identity
        self.spiffeID = identity.flatMap { SPIFFEID(parsing: $0) }
        self.address = address.flatMap { CIDR.bytes(of: $0) }
        self.addressText = address ?? "an unknown address"
    }

    /// How explanations name the caller.
    public var described: String {
        if let identity { return identity }
        return "an unauthenticated caller (\(addressText), no mesh TLS)"
    }
}

/// What an inbound connection or request is, for the rules that name operations.
public struct AuthzRequest: Sendable, Hashable {
    /// The pod's own (target) port.
    public let port: Int
    /// Nil for opaque TCP (and TLS passed through), which only operations without methods
    /// and paths match.
    public let method: String?
    public let path: String?

    public init(port: Int, method: String? = nil, path: String? = nil) {
        self.port = port
        self.method = method
        self.path = path
    }

    var described: String {
        guard let method else { return "a TCP connection to port \(port)" }
        return "\(method) \(path ?? "/") on port \(port)"
    }
}

/// One authorization decision: allowed or not, and which policy, rule or setting decided it.
public struct AuthzDecision: Sendable, Hashable {
    public enum Reason: String, Sendable, CaseIterable {
        /// An ALLOW policy's rule matched.
        case rule
        /// A DENY policy's rule matched (DENY wins).
        case denyRule = "deny_rule"
        /// ALLOW policies select the pod and none of their rules matched (default deny).
        case noRule = "no_rule"
        /// MeshConfig `mtls.mode: STRICT` and the caller has no mesh TLS.
        case strict = "mtls_strict"
        /// A kubelet probe the Pod declares, accepted in plaintext.
        case probe
        /// No policy selects the pod (default allow).
        case noPolicy = "no_policy"
    }

    public let allowed: Bool
    public let reason: Reason
    /// Index in `InboundAuthorizer.policies` for `rule` and `denyRule`.
    public let policy: Int?
    /// Index in that policy's rules.
    public let rule: Int?

    static let open = AuthzDecision(allowed: true, reason: .noPolicy, policy: nil, rule: nil)
    static let strict = AuthzDecision(allowed: false, reason: .strict, policy: nil, rule: nil)
    static let probe = AuthzDecision(allowed: true, reason: .probe, policy: nil, rule: nil)
    static let noRule = AuthzDecision(allowed: false, reason: .noRule, policy: nil, rule: nil)
}

/// A kubelet probe the pod declares (`httpGet` or `grpc`), accepted in plaintext under
/// STRICT and by default-deny policies, as Linkerd accepts probes.
public struct ProbeEntry: Codable, Hashable, Sendable {
    /// The container port the kubelet probes.
    public var port: Int
    /// `httpGet.path` (`/` when absent), or the gRPC health-check path.
    public var path: String
    /// "GET" for `httpGet` (HEAD is accepted too), "POST" for `grpc`.
    public var method: String

    public init(port: Int, path: String, method: String) {
        self.port = port
        self.path = path
        self.method = method
    }

    /// The gRPC health-checking protocol's method, what the kubelet's `grpc` probe calls.
    public static let grpcHealthPath = "/grpc.health.v1.Health/Check"
}

/// Inbound authorization for one pod: the AuthorizationPolicies that select it, MeshConfig
/// `mtls.mode`, and the pod's probes, compiled once per config (docs/configuration.md).
///
/// - A DENY rule that matches denies; otherwise, when ALLOW policies select the pod, one of
///   their rules must match; otherwise the call is allowed. Policies have no order.
/// - STRICT refuses callers without mesh TLS, but for the pod's declared probes.
/// - `admit` decides what it can per connection (caller and port: L4); what needs a
///   method or a path is left to `ConnectionAdmission.authorize` per request. The
///   proxy and the control plane (`weftctl authz`) run this same code.
public struct InboundAuthorizer: Sendable {
    public struct Policy: Sendable {
        /// `namespace/name`.
        public let key: String
        public let isDeny: Bool
        public let entry: PolicyEntry
        let rules: [CompiledRule]
    }

    struct CompiledRule: Sendable {
        let from: [CompiledPeer]?
        let to: [PolicyTarget]?
    }

    struct CompiledPeer: Sendable {
        let peer: PolicyPeer
        let blocks: [CIDR]

        func matches(_ caller: AuthzCaller) -> Bool {
            if let ids = peer.identities, !ids.isEmpty {
                guard let id = caller.identity else { return false }
                let ok = ids.contains { $0.hasSuffix("*") ? id.hasPrefix($0.dropLast()) : $0 == id }
                if !ok { return false }
            }
            if let namespaces = peer.namespaces, !namespaces.isEmpty {
                guard let spiffe = caller.spiffeID, namespaces.contains(spiffe.namespace) else { return false }
            }
            if let accounts = peer.serviceAccounts, !accounts.isEmpty {
                guard let spiffe = caller.spiffeID,
                    accounts.contains("\(spiffe.namespace)/\(spiffe.serviceAccount)")
                else { return false }
            }
            if !blocks.isEmpty {
                guard let address = caller.address, blocks.contains(where: { $0.contains(address) }) else {
                    return false
                }
            }
            return true
        }
    }

    /// Every policy selecting the pod, sorted by key (DENY and ALLOW together).
    public let policies: [Policy]
    public let isStrict: Bool
    public let probes: [ProbeEntry]
    /// Indices of the ALLOW policies.
    let allowPolicies: [Int]
    /// No policy selects the pod and mTLS is PERMISSIVE: every call is allowed, and the
    /// data path checks nothing.
    public let isOpen: Bool

    /// - Throws: `AuthzCompileError` naming the policy and field of an invalid entry.
    public init(policies entries: [PolicyEntry], strict: Bool, probes: [ProbeEntry]) throws(AuthzCompileError) {
        var compiled: [Policy] = []
        for entry in entries.sorted(by: { $0.key < $1.key }) {
            var rules: [CompiledRule] = []
            for (r, rule) in entry.rules.enumerated() {
                var from: [CompiledPeer]?
                if let peers = rule.from, !peers.isEmpty {
                    from = []
                    for (f, peer) in peers.enumerated() {
                        var blocks: [CIDR] = []
                        for (b, text) in (peer.ipBlocks ?? []).enumerated() {
                            guard let block = CIDR(parsing: text) else {
                                throw AuthzCompileError(
                                    "policies[\(entry.key)].rules[\(r)].from[\(f)].ipBlocks[\(b)]: \"\(text)\" is not a CIDR"
                                )
                            }
                            blocks.append(block)
                        }
                        from!.append(CompiledPeer(peer: peer, blocks: blocks))
                    }
                }
                let to = (rule.to?.isEmpty ?? true) ? nil : rule.to
                rules.append(CompiledRule(from: from, to: to))
            }
            compiled.append(Policy(key: entry.key, isDeny: entry.action == "DENY", entry: entry, rules: rules))
        }
        self.policies = compiled
        self.isStrict = strict
        self.probes = probes
        self.allowPolicies = compiled.indices.filter { !compiled[$0].isDeny }
        self.isOpen = !strict && compiled.isEmpty
    }

    /// No policy, PERMISSIVE.
    public static let open = try! InboundAuthorizer(policies: [], strict: false, probes: [])

    /// What can be decided for a connection from `caller` to `port` before any request.
    public func admit(_ caller: AuthzCaller, port: Int) -> ConnectionAdmission {
        var admission = ConnectionAdmission(caller: caller, port: port)
        if isOpen { return admission }
        admission.fixed = nil
        let plaintext = caller.identity == nil
        admission.probes = plaintext ? probes.filter { $0.port == port } : []
        admission.strictPlaintext = isStrict && plaintext
        var allowAtL4: AuthzDecision?
        for (p, policy) in policies.enumerated() {
            for (r, rule) in policy.rules.enumerated() {
                if let from = rule.from, !from.contains(where: { $0.matches(caller) }) { continue }
                var pending: [PolicyTarget] = []
                var matchesNow = rule.to == nil
                for target in rule.to ?? [] {
                    if let ports = target.ports, !ports.isEmpty, !ports.contains(port) { continue }
                    if (target.methods ?? []).isEmpty && (target.paths ?? []).isEmpty {
                        matchesNow = true
                        break
                    }
                    pending.append(target)
                }
                if policy.isDeny {
                    if matchesNow {
                        admission.fixed = AuthzDecision(allowed: false, reason: .denyRule, policy: p, rule: r)
                        return admission
                    }
                    if !pending.isEmpty { admission.denyIf.append((p, r, pending)) }
                } else if matchesNow {
                    if allowAtL4 == nil { allowAtL4 = AuthzDecision(allowed: true, reason: .rule, policy: p, rule: r) }
                } else if !pending.isEmpty {
                    admission.allowIf.append((p, r, pending))
                }
            }
        }
        admission.allowAtL4 = allowPolicies.isEmpty ? .open : allowAtL4
        if admission.strictPlaintext {
            if admission.probes.isEmpty { admission.fixed = .strict }
            return admission
        }
        if admission.denyIf.isEmpty {
            if let allow = admission.allowAtL4 {
                admission.fixed = allow
            } else if admission.allowIf.isEmpty && admission.probes.isEmpty {
                admission.fixed = .noRule
            }
        }
        return admission
    }

    /// The decision for one request (or a TCP connection: `method` and `path` nil).
    public func authorize(_ caller: AuthzCaller, _ request: AuthzRequest) -> AuthzDecision {
        admit(caller, port: request.port).authorize(method: request.method, path: request.path)
    }

    /// A decision in words: which policy and rule decided, and for a denial by default what
    /// each ALLOW rule would have needed, so the reader sees what to change.
    public func explain(_ decision: AuthzDecision, caller: AuthzCaller, request: AuthzRequest) -> String {
        let who = caller.described
        switch decision.reason {
        case .noPolicy:
            return "allowed: no AuthorizationPolicy selects this pod (default allow)"
        case .probe:
            return "allowed: \(request.described) is a kubelet probe the pod declares, accepted in plaintext"
        case .strict:
            return
                "mTLS is STRICT: \(who) is refused; only meshed pods may call (probes the pod declares excepted)"
        case .rule:
            return "allowed by \(ruleName(decision)) for \(who)"
        case .denyRule:
            return "denied by \(ruleName(decision)) (DENY): it matches \(who), \(request.described)"
        case .noRule:
            let selectors = allowPolicies.map { policies[$0].key }.joined(separator: ", ")
            var text = "pod selected by \(selectors); no rule allows \(who) to \(request.described)"
            let hints = allowPolicies.flatMap { p in
                policies[p].rules.indices.map { r in (p, r) }
            }
            .prefix(3).map { p, r in
                "\(policies[p].key) rules[\(r)] \(miss(policies[p].rules[r], caller: caller, request: request))"
            }
            if !hints.isEmpty { text += " (" + hints.joined(separator: "; ") + ")" }
            return text
        }
    }

    private func ruleName(_ decision: AuthzDecision) -> String {
        guard let p = decision.policy, let r = decision.rule else { return "?" }
        return "\(policies[p].key) rules[\(r)]"
    }

    /// Why one ALLOW rule did not match, as the first condition that failed.
    private func miss(_ rule: CompiledRule, caller: AuthzCaller, request: AuthzRequest) -> String {
        if let from = rule.from, !from.contains(where: { $0.matches(caller) }) {
            return "allows only " + from.map { Self.describe($0.peer) }.joined(separator: " or ")
        }
        if let to = rule.to {
            return "matches the caller but allows only " + to.map(Self.describe).joined(separator: " or ")
        }
        return "matches"
    }

    static func describe(_ peer: PolicyPeer) -> String {
        var parts: [String] = []
        if let ids = peer.identities, !ids.isEmpty { parts.append(ids.joined(separator: ", ")) }
        if let ns = peer.namespaces, !ns.isEmpty { parts.append("namespaces " + ns.joined(separator: ", ")) }
        if let sa = peer.serviceAccounts, !sa.isEmpty {
            parts.append("service accounts " + sa.joined(separator: ", "))
        }
        if let blocks = peer.ipBlocks, !blocks.isEmpty { parts.append("addresses " + blocks.joined(separator: ", ")) }
        return parts.joined(separator: " and ")
    }

    static func describe(_ target: PolicyTarget) -> String {
        var parts: [String] = []
        if let methods = target.methods, !methods.isEmpty { parts.append(methods.joined(separator: "|")) }
        if let paths = target.paths, !paths.isEmpty { parts.append(paths.joined(separator: "|")) }
        if let ports = target.ports, !ports.isEmpty {
            parts.append("on port " + ports.map(String.init).joined(separator: "|"))
        }
        return parts.joined(separator: " ")
    }
}

/// An invalid policy entry, found when the proxy compiles its config (the push is nacked).
public struct AuthzCompileError: Error, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}

/// What `InboundAuthorizer.admit` decided for a connection: the whole decision when the
/// caller and port settle it (`fixed`), or what is left to check per request.
public struct ConnectionAdmission: Sendable {
    public let caller: AuthzCaller
    public let port: Int
    /// Set when no request can change the outcome.
    public internal(set) var fixed: AuthzDecision? = .open
    var denyIf: [(policy: Int, rule: Int, targets: [PolicyTarget])] = []
    var allowIf: [(policy: Int, rule: Int, targets: [PolicyTarget])] = []
    /// The ALLOW decision already reached at L4, if any (`.open` when no ALLOW policy).
    var allowAtL4: AuthzDecision?
    var probes: [ProbeEntry] = []
    var strictPlaintext = false

    init(caller: AuthzCaller, port: Int) {
        self.caller = caller
        self.port = port
    }

    /// The decision for one request on this connection (`method` and `path` nil for opaque TCP).
    public func authorize(method: String?, path: String?) -> AuthzDecision {
        if let fixed { return fixed }
        for deny in denyIf where Self.matches(deny.targets, method: method, path: path) {
            return AuthzDecision(allowed: false, reason: .denyRule, policy: deny.policy, rule: deny.rule)
        }
        let isProbe = !probes.isEmpty && Self.isProbe(probes, method: method, path: path)
        if strictPlaintext { return isProbe ? .probe : .strict }
        if let allow = allowAtL4 { return allow }
        for allow in allowIf where Self.matches(allow.targets, method: method, path: path) {
            return AuthzDecision(allowed: true, reason: .rule, policy: allow.policy, rule: allow.rule)
        }
        return isProbe ? .probe : .noRule
    }

    static func matches(_ targets: [PolicyTarget], method: String?, path: String?) -> Bool {
        let path = path.map(AuthzPath.normalized)
        return targets.contains { target in
            if let methods = target.methods, !methods.isEmpty {
                guard let method, methods.contains(method) else { return false }
            }
            if let paths = target.paths, !paths.isEmpty {
                guard let path else { return false }
                return paths.contains { $0.hasSuffix("*") ? path.hasPrefix($0.dropLast()) : $0 == path }
            }
            return true
        }
    }

    static func isProbe(_ probes: [ProbeEntry], method: String?, path: String?) -> Bool {
        guard let method, let path else { return false }
        let plain = AuthzPath.normalized(path)
        return probes.contains { probe in
            (probe.method == method || (probe.method == "GET" && method == "HEAD"))
                && AuthzPath.normalized(probe.path) == plain
        }
    }
}

/// The path rules compare, made from a request target as an app would resolve it, so that
/// `/admin` cannot be reached past a rule as `http://x/admin`, `//admin`, `/./admin`,
/// `/%61dmin` or `/public/../admin`: the absolute form's scheme and authority, the query
/// and the fragment go; percent-encoded unreserved characters are decoded (others stay,
/// hex upper-cased); runs of slashes become one; dot segments are removed (RFC 3986
/// §5.2.4, never above the root).
public enum AuthzPath {
    public static func normalized(_ target: String) -> String {
        var bytes = Array(target.utf8)
        if let end = bytes.firstIndex(where: { $0 == UInt8(ascii: "?") || $0 == UInt8(ascii: "#") }) {
            bytes.removeSubrange(end...)
        }
        if bytes == Array("*".utf8) { return "*" }
        if bytes.first != UInt8(ascii: "/") {
            if let scheme = bytes.firstIndex(of: UInt8(ascii: ":")), bytes.count > scheme + 2,
                bytes[scheme + 1] == UInt8(ascii: "/"), bytes[scheme + 2] == UInt8(ascii: "/")
            {
                // Absolute form (scheme://authority/path): the path part only.
                let authority = scheme + 3
                bytes = Array(bytes[(bytes[authority...].firstIndex(of: UInt8(ascii: "/")) ?? bytes.endIndex)...])
            } else {
                bytes.insert(UInt8(ascii: "/"), at: 0)
            }
        }
        // Percent-decoding of unreserved characters.
        var decoded: [UInt8] = []
        decoded.reserveCapacity(bytes.count)
        var i = 0
        while i < bytes.count {
            if bytes[i] == UInt8(ascii: "%"), i + 2 < bytes.count, let hi = hex(bytes[i + 1]),
                let lo = hex(bytes[i + 2])
            {
                let c = hi << 4 | lo
                if isUnreserved(c) {
                    decoded.append(c)
                } else {
                    decoded.append(UInt8(ascii: "%"))
                    decoded.append(upperHex(hi))
                    decoded.append(upperHex(lo))
                }
                i += 3
            } else {
                decoded.append(bytes[i])
                i += 1
            }
        }
        // Segments: empty ones (runs of slashes) and "." dropped, ".." pops.
        var segments: [ArraySlice<UInt8>] = []
        let endsWithSlash = decoded.last == UInt8(ascii: "/")
        var lastWasDot = false
        for segment in decoded.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: true) {
            lastWasDot = false
            if segment.elementsEqual([UInt8(ascii: ".")]) {
                lastWasDot = true
            } else if segment.elementsEqual([UInt8(ascii: "."), UInt8(ascii: ".")]) {
                if !segments.isEmpty { segments.removeLast() }
                lastWasDot = true
            } else {
                segments.append(segment)
            }
        }
        var out = "/" + segments.map { String(decoding: $0, as: UTF8.self) }.joined(separator: "/")
        if (endsWithSlash || lastWasDot) && !segments.isEmpty { out += "/" }
        return out
    }

    private static func hex(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return c - UInt8(ascii: "A") + 10
        default: return nil
        }
    }

    private static func upperHex(_ v: UInt8) -> UInt8 {
        v < 10 ? UInt8(ascii: "0") + v : UInt8(ascii: "A") + v - 10
    }

    private static func isUnreserved(_ c: UInt8) -> Bool {
        (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(c) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(c)
            || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(c) || c == UInt8(ascii: "-") || c == UInt8(ascii: ".")
            || c == UInt8(ascii: "_") || c == UInt8(ascii: "~")
    }
}
