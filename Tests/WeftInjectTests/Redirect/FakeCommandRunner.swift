@testable import WeftInject

/// A `CommandRunner` that plays iptables: `*-save` prints the table the last `*-restore` of the
/// same variant wrote, and any binary can be made missing or made to fail.
final class FakeCommandRunner: CommandRunner, @unchecked Sendable {
    struct Call: Equatable {
        let tool: String
        let arguments: [String]
        let input: String
    }

    /// Binaries reported as present, found under `/usr/sbin`.
    var installed: Set<String>
    /// Canned results that replace the simulation, by binary name; consumed in order.
    var failures: [String: [CommandResult]] = [:]
    /// The nat table text per variant (`iptables`, `ip6tables-legacy`, ...).
    var tables: [String: String] = [:]
    /// Every run, in order (used from one test thread only, hence `@unchecked Sendable`).
    private(set) var calls: [Call] = []

    init(installed: Set<String> = FakeCommandRunner.allTools) {
        self.installed = installed
    }

    static let allTools: Set<String> = Set(
        ["iptables", "ip6tables", "iptables-nft", "ip6tables-nft", "iptables-legacy", "ip6tables-legacy"]
            .flatMap { ["\($0)-save", "\($0)-restore"] })

    func locate(_ name: String) -> String? {
        installed.contains(name) ? "/usr/sbin/\(name)" : nil
    }

    func run(_ path: String, arguments: [String], input: String) throws(RedirectError) -> CommandResult {
        let tool = String(path.split(separator: "/").last!)
        calls.append(Call(tool: tool, arguments: arguments, input: input))
        if var queued = failures[tool], !queued.isEmpty {
            let result = queued.removeFirst()
            failures[tool] = queued
            return result
        }
        if tool.hasSuffix("-save") {
            return CommandResult(status: 0, output: tables[String(tool.dropLast("-save".count))] ?? "")
        }
        tables[String(tool.dropLast("-restore".count))] = input
        return CommandResult(status: 0)
    }

    var tools: [String] { calls.map(\.tool) }
}
