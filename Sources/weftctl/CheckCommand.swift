import ArgumentParser
import WeftCore
import WeftProtocol

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// Where the control plane's HTTP API is; shared by the commands that talk to it.
struct ControlPlaneOptions: ParsableArguments {
    @Option(
        name: .customLong("control-plane"),
        help: ArgumentHelp(
            "The control plane's HTTP API (port \(MeshDefaults.controlHTTPPort)). Default: $WEFT_CONTROL_PLANE, else 127.0.0.1:\(MeshDefaults.controlHTTPPort).",
            valueName: "host:port"))
    var address: String?

    @Option(name: .shortAndLong, help: "Output: text (for people) or json.")
    var output: OutputFormat = .text

    enum OutputFormat: String, ExpressibleByArgument {
        case text, json
    }

    func client() throws -> ControlPlaneHTTP {
        let text =
            address ?? ProcessInfo.processInfo.environment["WEFT_CONTROL_PLANE"]
            ?? "127.0.0.1:\(MeshDefaults.controlHTTPPort)"
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]) else {
            throw ValidationError("--control-plane: \(text) is not host:port")
        }
        var host = String(text[..<colon])
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        return ControlPlaneHTTP(host: host, port: port)
    }
}

/// `weftctl check`: is the mesh healthy?
struct CheckCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract:
            "Check the control plane and its proxies: reachable, config valid, proxies connected and acked, certificates renewed, mesh TLS handshakes succeeding.",
        discussion: "Exits 0 when every check passes, 1 when one fails."
    )

    @OptionGroup var options: ControlPlaneOptions

    func run() throws {
        let http = try options.client()
        let status: ControlStatus
        do {
            status = try http.getJSON("/api/v1/status", as: ControlStatus.self)
        } catch {
            if options.output == .json {
                struct Unreachable: Encodable {
                    var reachable = false
                    var healthy = false
                    var error: String
                }
                print(try Self.json(Unreachable(error: String(describing: error))))
            } else {
                print("✘ \(error)")
            }
            throw ExitCode(1)
        }
        // Certificates and handshake failures are per proxy.
        let proxies = (try? http.getJSON("/api/v1/proxies", as: [ProxyStatus].self)) ?? []
        let checks = Self.checks(status) + Self.identityChecks(proxies, status: status, now: Date())
        if options.output == .json {
            struct Report: Encodable {
                var reachable = true
                var healthy: Bool
                var status: ControlStatus
            }
            print(try Self.json(Report(healthy: checks.allSatisfy(\.passed), status: status)))
        } else {
            print("control plane \(http.host):\(http.port)")
            for check in checks {
                print("\(check.passed ? "✔" : "✘") \(check.summary)")
                for line in check.details { print("    \(line)") }
            }
        }
        if !checks.allSatisfy(\.passed) { throw ExitCode(1) }
    }

    static func json(_ value: some Encodable) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try encoder.encode(value), as: UTF8.self)
    }

    struct Check {
        var passed: Bool
        var summary: String
        var details: [String] = []
    }

    /// How recent a handshake failure must be to fail the check.
    static let recentFailure: TimeInterval = 600

    /// Proxies whose certificate expired or is overdue for renewal (less than 20% of its
    /// lifetime left: proxies renew at 70%), and proxies whose mesh TLS handshakes failed
    /// in the last ten minutes (as their pings report).
    static func identityChecks(_ proxies: [ProxyStatus], status: ControlStatus, now: Date) -> [Check] {
        let expiring = proxies.compactMap { proxy in
            proxy.certificateProblem(now: now, lifetimeSeconds: status.certificateLifetimeSeconds).map {
                "\(proxy.namespace)/\(proxy.pod): \($0)"
            }
        }
        var checks = [
            Check(
                passed: expiring.isEmpty,
                summary: expiring.isEmpty
                    ? "certificates: every proxy's is valid and renewed on time"
                    : "certificates: \(expiring.count) proxies near expiry or expired",
                details: expiring)
        ]
        let failing = proxies.compactMap { proxy in
            proxy.recentTLSFailures(now: now, window: recentFailure).map { "\(proxy.namespace)/\(proxy.pod): \($0)" }
        }
        checks.append(
            Check(
                passed: failing.isEmpty,
                summary: failing.isEmpty
                    ? "mesh TLS: no proxy reported a failed handshake in the last \(Int(recentFailure / 60)) minutes"
                    : "mesh TLS: \(failing.count) proxies reported failed handshakes in the last \(Int(recentFailure / 60)) minutes",
                details: failing))
        return checks
    }

    static func checks(_ status: ControlStatus) -> [Check] {
        var checks = [Check(passed: true, summary: "reachable; trust domain \(status.trustDomain)")]
        let config = status.config
        if config.state == "rejected", let rejection = config.lastRejection {
            checks.append(
                Check(
                    passed: false,
                    summary:
                        "config change rejected at \(rejection.at); generation \(config.generation) (accepted \(config.acceptedAt)) stays in force",
                    details: rejection.errors))
        } else {
            checks.append(
                Check(
                    passed: true,
                    summary:
                        "config valid: generation \(config.generation) from \(config.source), accepted \(config.acceptedAt)"
                        + (config.rejectedCount > 0 ? " (\(config.rejectedCount) earlier changes rejected)" : ""),
                    details: config.warnings.map { "warning: \($0)" }))
        }
        let proxies = status.proxies
        if proxies.behind.isEmpty && proxies.nacked.isEmpty {
            checks.append(
                Check(
                    passed: true,
                    summary: "\(proxies.connected) proxies connected, all acked generation \(config.generation)"))
        } else {
            var details = proxies.behind.map { "not acked yet: \($0)" }
            details += proxies.nacked.map { "nacked: \($0)" }
            checks.append(
                Check(
                    passed: false,
                    summary:
                        "\(proxies.connected) proxies connected, \(proxies.upToDate) acked generation \(config.generation)",
                    details: details))
        }
        return checks
    }
}
