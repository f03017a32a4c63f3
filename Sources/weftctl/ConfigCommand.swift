import ArgumentParser
import WeftProtocol
import WeftProxy

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// `weftctl config PROXY`: what the control plane sent one proxy.
struct ConfigCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "config",
        abstract:
            "Show what the control plane sent one proxy: identity, versions, mesh settings, services, policies, routes, endpoints.",
        discussion: """
            PROXY is namespace/pod, or a pod name when only one connected pod has it.

            --explain METHOD URL shows which route, rule, backends and endpoints that request would \
            take at this proxy, and why: the candidate matches in precedence order, each with the \
            first condition it failed. It runs the proxy's own route compiler on the config the \
            control plane sent it. URL is http://HOST[:PORT]/PATH with HOST a ClusterIP or a \
            Service DNS name; add headers with -H 'name: value'.
            """
    )

    @Argument(help: "namespace/pod, or pod.")
    var proxy: String

    @Option(
        name: .customLong("explain"), parsing: .upToNextOption,
        help: ArgumentHelp("Explain the routing of a request.", valueName: "METHOD URL"))
    var explain: [String] = []

    @Option(name: .customShort("H"), help: ArgumentHelp("A request header for --explain.", valueName: "name: value"))
    var headers: [String] = []

    @OptionGroup var options: ControlPlaneOptions

    struct Answer: Codable {
        var status: ProxyStatus
        var config: ConfigPush
    }

    func run() throws {
        let http = try options.client()
        let body = try http.proxyConfig(proxy)
        if options.output == .json {
            print(String(decoding: body, as: UTF8.self), terminator: "")
            return
        }
        let answer = try JSONDecoder().decode(Answer.self, from: Data(body))
        if !explain.isEmpty {
            guard explain.count == 2 else {
                print("--explain takes a method and a URL, e.g. --explain GET http://web.demo/api")
                throw ExitCode(2)
            }
            var parsed: [(String, String)] = []
            for header in headers {
                guard let colon = header.firstIndex(of: ":") else {
                    print("-H \(header): expected 'name: value'")
                    throw ExitCode(2)
                }
                parsed.append(
                    (
                        String(header[..<colon]).trimmingCharacters(in: .whitespaces),
                        String(header[header.index(after: colon)...]).trimmingCharacters(in: .whitespaces)
                    ))
            }
            do {
                print(
                    try RouteExplainer.explain(
                        config: answer.config, namespace: answer.status.namespace, method: explain[0].uppercased(),
                        url: explain[1], headers: parsed),
                    terminator: "")
            } catch {
                print("the proxy could not apply this config (it nacked it): \(error)")
                throw ExitCode(1)
            }
            return
        }
        print(Self.render(answer.status, answer.config))
    }

    static func render(_ status: ProxyStatus, _ push: ConfigPush) -> String {
        var lines: [String] = []
        lines.append("proxy \(status.namespace)/\(status.pod) (\(status.ip))  \(status.identity)")
        lines.append("  connected since \(status.connectedAt); certificate valid until \(status.certificateNotAfter)")
        let acked = status.ackedVersion == status.version ? "acked" : "acked \(status.ackedVersion)"
        lines.append(
            "  config version \(status.version) (\(acked)), generation \(status.sentGeneration) (acked \(status.ackedGeneration)), \(status.nacks) nacks"
        )
        if let nack = status.lastNack { lines.append("  last nack: \(nack)") }
        let snapshot = push.snapshot
        if let mesh = snapshot.mesh {
            let budget = mesh.retryBudget
            lines.append(
                "  mesh: trust domain \(mesh.trustDomain), mTLS \(mesh.mtls), outbound \(mesh.outboundPolicy), retry budget \(Int(budget.ratio * 100))% + \(budget.minRetriesPerSecond)/s over \(budget.windowMs) ms, trace sampling \(mesh.traceSampling)"
            )
        }
        let services = snapshot.services ?? []
        lines.append("  services (\(services.count)):")
        for service in services {
            let ports = service.ports.map { port in
                "\(port.port)→\(port.targetPort.map(String.init) ?? port.targetPortName ?? "?")/\(port.protocol)"
            }
            lines.append(
                "    \(service.key)  \(service.clusterIPs.isEmpty ? "headless" : service.clusterIPs.joined(separator: ","))  \(ports.joined(separator: " "))"
            )
        }
        let policies = snapshot.policies ?? []
        lines.append("  policies selecting this pod (\(policies.count)):")
        for policy in policies { lines.append("    \(policy.key)  \(policy.action), \(policy.rules.count) rules") }
        lines.append("  subscribed destinations (\(status.subscriptions.count)):")
        let routes = Dictionary((snapshot.routes ?? []).map { ($0.service, $0) }, uniquingKeysWith: { a, _ in a })
        let endpoints = Dictionary((snapshot.endpoints ?? []).map { ($0.service, $0) }, uniquingKeysWith: { a, _ in a })
        for service in status.subscriptions {
            lines.append("    \(service)")
            for route in routes[service]?.routes ?? [] {
                lines.append(
                    "      route \(route.name)\(route.port.map { " port \($0)" } ?? ""): \(route.rules.count) rules")
                for rule in route.rules {
                    let backends = rule.backends.map { "\($0.service)\($0.port.map { ":\($0)" } ?? "") w\($0.weight)" }
                    var extras: [String] = []
                    if let t = rule.requestTimeoutMs { extras.append("timeout \(t) ms") }
                    if let r = rule.retry { extras.append("retry \(r.attempts ?? 0)×") }
                    lines.append(
                        "        → \(backends.joined(separator: ", "))\(extras.isEmpty ? "" : "  (" + extras.joined(separator: ", ") + ")")"
                    )
                }
            }
            let eps = endpoints[service]?.endpoints ?? []
            if eps.isEmpty { lines.append("      no endpoints") }
            for ep in eps {
                let state = ep.ready ? "ready" : (ep.serving ? "serving" : "not ready")
                let ports = ep.ports.map { "\($0.port)" }.joined(separator: ",")
                lines.append("      endpoint \(ep.address):\(ports) \(state)\(ep.identity.map { "  " + $0 } ?? "")")
            }
        }
        return lines.joined(separator: "\n")
    }
}
