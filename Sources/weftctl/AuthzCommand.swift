import ArgumentParser
import WeftCore
import WeftProtocol

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// `weftctl authz POD --from ID --port P [--method M --path P]`: would this call be
/// allowed, and by which rule.
struct AuthzCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "authz",
        abstract: "Answer whether a call to a pod would be allowed, and which policy and rule decide it.",
        discussion: """
            POD is namespace/pod, or a pod name when only one connected pod has it. The answer \
            comes from the policies, mTLS mode and probes the control plane sends that pod's \
            sidecar, evaluated by the sidecar's own code (InboundAuthorizer), so it is what the \
            sidecar would decide. Without --method and --path the call is an opaque TCP connection.

            --from is a SPIFFE ID, namespace/serviceaccount (in the mesh's trust domain), or \
            "plaintext" for a caller without mesh TLS; --address sets the caller's IP (for \
            ipBlocks). Exits 0 when allowed, 3 when denied.
            """
    )

    @Argument(help: "namespace/pod, or pod.")
    var pod: String

    @Option(help: ArgumentHelp("The caller.", valueName: "spiffe://…|namespace/sa|plaintext"))
    var from: String

    @Option(help: "The pod's port the call reaches (the container port).")
    var port: Int

    @Option(help: "The HTTP method (omit both method and path for TCP).")
    var method: String?

    @Option(help: "The HTTP path.")
    var path: String?

    @Option(help: "The caller's IP address.")
    var address: String?

    @OptionGroup var options: ControlPlaneOptions

    struct Answer: Codable {
        var status: ProxyStatus
        var config: ConfigPush
    }

    struct Verdict: Codable {
        var pod: String
        var caller: String
        var port: Int
        var method: String?
        var path: String?
        var allowed: Bool
        var reason: String
        var policy: String?
        var rule: Int?
        var explanation: String
    }

    func validate() throws {
        guard (1...65535).contains(port) else { throw ValidationError("--port: must be 1-65535") }
        if (method == nil) != (path == nil) {
            throw ValidationError("--method and --path go together (neither: a TCP connection)")
        }
        if let path, !path.hasPrefix("/") { throw ValidationError("--path: must start with /") }
        if let address, CIDR.bytes(of: address) == nil { throw ValidationError("--address: not an IP address") }
    }

    func run() throws {
        let http = try options.client()
        let answer = try JSONDecoder().decode(Answer.self, from: Data(try http.proxyConfig(pod)))
        let snapshot = answer.config.snapshot
        let trustDomain = snapshot.mesh?.trustDomain ?? MeshDefaults.trustDomain
        let identity: String?
        switch from {
        case "plaintext", "none": identity = nil
        case let id where id.hasPrefix("spiffe://"): identity = id
        default:
            let parts = from.split(separator: "/")
            guard parts.count == 2 else {
                throw ValidationError("--from: a SPIFFE ID, namespace/serviceaccount, or plaintext; got \(from)")
            }
            identity =
                SPIFFEID(trustDomain: trustDomain, namespace: String(parts[0]), serviceAccount: String(parts[1]))
                .description
        }
        let authorizer: InboundAuthorizer
        do {
            authorizer = try InboundAuthorizer(
                policies: snapshot.policies ?? [], strict: snapshot.mesh?.mtls == "STRICT",
                probes: snapshot.probes ?? [])
        } catch {
            print("the sidecar could not apply this config (it nacks it): \(error)")
            throw ExitCode(1)
        }
        let caller = AuthzCaller(identity: identity, address: address)
        // As the sidecar compares it: case-sensitive (RFC 9110 §9.1).
        let request = AuthzRequest(port: port, method: method, path: path)
        let decision = authorizer.authorize(caller, request)
        let verdict = Verdict(
            pod: "\(answer.status.namespace)/\(answer.status.pod)", caller: identity ?? "plaintext", port: port,
            method: request.method, path: path, allowed: decision.allowed, reason: decision.reason.rawValue,
            policy: decision.policy.map { authorizer.policies[$0].key }, rule: decision.rule,
            explanation: authorizer.explain(decision, caller: caller, request: request))
        if options.output == .json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            print(String(decoding: try encoder.encode(verdict), as: UTF8.self))
        } else {
            let what = request.method.map { "\($0) \(path ?? "/")" } ?? "TCP"
            print("\(verdict.allowed ? "ALLOW" : "DENY")  \(verdict.caller) → \(verdict.pod):\(port) \(what)")
            print("  \(verdict.explanation)")
            let selecting = authorizer.policies.map { "\($0.key) (\($0.isDeny ? "DENY" : "ALLOW"))" }
            print(
                "  policies selecting the pod: \(selecting.isEmpty ? "none" : selecting.joined(separator: ", ")); mTLS \(snapshot.mesh?.mtls ?? "PERMISSIVE")"
            )
        }
        if !decision.allowed { throw ExitCode(3) }
    }
}
