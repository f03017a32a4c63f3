import Logging
import NIOCore
import WeftProtocol
import WeftTelemetry

/// Inbound authorization for one connection: the caller (its mesh TLS identity, or none,
/// and its address) and what the loop's snapshot admits for it (`InboundAuthorizer`).
///
/// The admission is made at the first request and again only when the loop installs
/// another snapshot, so a policy change applies to the next request of a connection
/// already open. A pod no policy selects, under PERMISSIVE, costs a comparison per request
/// and nothing per connection.
struct InboundGate {
    let mesh: LoopContext
    /// The caller's mesh TLS identity; nil for plaintext.
    let identity: String?
    let remote: SocketAddress?
    /// The pod's own port the caller reached (the original destination's).
    let port: Int
    /// The snapshot the admission is of (`LoopContext.snapshotSerial`); none yet at first.
    private var serial = UInt64.max
    /// Nil while no policy selects the pod and mTLS is PERMISSIVE: nothing to check.
    private var admission: ConnectionAdmission?
    /// Made on the first admission that needs it (it parses the address).
    private var caller: AuthzCaller?

    init(mesh: LoopContext, identity: String?, remote: SocketAddress?, port: Int) {
        self.mesh = mesh
        self.identity = identity
        self.remote = remote
        self.port = port
    }

    /// A denied call: the answer's kind, and the decision in words.
    struct Denial {
        let kind: ProxyErrorKind
        let explanation: String

        /// Refuses an opaque TCP connection (TCP has no error message): counted, logged,
        /// reset.
        func reset(_ channel: Channel, metrics: DirectionMetrics, logger: Logger) {
            metrics.error(kind)
            logger.debug(
                "refused connection",
                metadata: ["src": "\(channel.remoteAddress?.ipAddress ?? "?")", "reason": "\(explanation)"])
            SpliceHandler.reset(channel)
        }

        /// The `weft-error` value: the kind, then the explanation as one header-safe line.
        var header: String {
            var text = explanation.utf8.prefix(400).map { (0x20...0x7e).contains($0) ? $0 : UInt8(ascii: "?") }
            if explanation.utf8.count > 400 { text += Array("...".utf8) }
            return "\(kind.headerValue); " + String(decoding: text, as: UTF8.self)
        }
    }

    /// The caller and port leave decisions to each request (rules name methods or paths):
    /// a protocol upgrade that would carry more requests past this check is refused.
    var decidesPerRequest: Bool { admission.map { $0.fixed == nil } ?? false }

    /// The decision for an opaque TCP connection (no method, no path).
    mutating func checkConnection() -> Denial? {
        check(method: nil, path: nil)
    }

    /// The decision for one HTTP request (or a TCP connection: both nil); nil when allowed.
    /// Decisions made by a policy or STRICT are counted (`weft_authz_decisions_total`).
    mutating func check(method: @autoclosure () -> String?, path: @autoclosure () -> String?) -> Denial? {
        if serial != mesh.snapshotSerial {
            serial = mesh.snapshotSerial
            if mesh.snapshot.inbound.isOpen {
                admission = nil
            } else {
                let caller = self.caller ?? AuthzCaller(identity: identity, address: remote?.ipAddress)
                self.caller = caller
                admission = mesh.snapshot.inbound.admit(caller, port: port)
            }
        }
        guard let admission, let caller else { return nil }
        if let fixed = admission.fixed, fixed.reason == .noPolicy { return nil }
        let method = method()
        let path = path()
        let decision = admission.authorize(method: method, path: path)
        mesh.authzCounters?.record(decision)
        if decision.allowed { return nil }
        let authorizer = mesh.snapshot.inbound
        let explanation = authorizer.explain(
            decision, caller: caller, request: AuthzRequest(port: port, method: method, path: path))
        return Denial(kind: decision.reason == .strict ? .mtlsRequired : .authzDenied, explanation: explanation)
    }
}

/// The authorization decisions of one snapshot's policies, as registry counters
/// (`weft_authz_decisions_total{policy,decision,reason}`), made when a loop installs the
/// snapshot. Labels come from the config, never from a request. Calls no policy selects
/// (default allow, PERMISSIVE) are not counted.
final class AuthzCounters {
    private let allowed: [Counter]  // by policy index
    private let denied: [Counter]  // by policy index
    private let noRule: Counter
    private let strict: Counter
    private let probe: Counter

    init(registry: PrometheusCollectorRegistry, authorizer: InboundAuthorizer) {
        let name = MetricNameDescriptor(
            metricName: "weft_authz_decisions", unitName: "total",
            helpText:
                "Inbound authorization decisions by the policy that decided, decision and reason (requests, and TCP connections)."
        )
        func counter(_ policy: String, _ allowed: Bool, _ reason: AuthzDecision.Reason) -> Counter {
            registry.makeCounter(
                descriptor: name,
                labels: [("policy", policy), ("decision", allowed ? "allow" : "deny"), ("reason", reason.rawValue)])
        }
        allowed = authorizer.policies.map { counter($0.key, true, .rule) }
        denied = authorizer.policies.map { counter($0.key, false, .denyRule) }
        let selecting = authorizer.policies.filter { !$0.isDeny }.map(\.key).joined(separator: ",")
        noRule = counter(selecting, false, .noRule)
        strict = counter("", false, .strict)
        probe = counter("", true, .probe)
    }

    func record(_ decision: AuthzDecision) {
        switch decision.reason {
        case .rule: allowed[decision.policy!].increment()
        case .denyRule: denied[decision.policy!].increment()
        case .noRule: noRule.increment()
        case .strict: strict.increment()
        case .probe: probe.increment()
        case .noPolicy: break
        }
    }
}
