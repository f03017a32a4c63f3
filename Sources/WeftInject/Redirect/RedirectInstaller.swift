/// Installs, replaces and removes the redirect rules in the current network namespace.
///
/// For each family it reads the nat table with `*tables-save -t nat`, swaps our lines for new
/// ones (`NatTable`), and writes the whole nat table back with one `*tables-restore`, which
/// the kernel applies atomically; other tables are not in the input and stay untouched. Both
/// tables are read before either is written, so a missing IPv6 tool with `--ipv6 on` fails
/// before anything changes. All process execution goes through `CommandRunner`.
public struct RedirectInstaller: Sendable {
    /// How long restore waits for the xtables lock held by another iptables run.
    public static let lockWaitSeconds = 30

    /// Runs the iptables binaries.
    public let runner: any CommandRunner
    /// Which iptables variant to use.
    public let mode: IptablesMode
    /// Whether to handle IPv6 too.
    public let ipv6: IPv6Mode
    /// Whether this process has `CAP_NET_ADMIN`; when it does not, every tool failure is
    /// reported as a missing capability, whatever the tool said.
    public let hasNetAdmin: Bool

    /// Creates an installer.
    ///
    /// - Parameters:
    ///   - runner: finds and runs the binaries.
    ///   - mode: the iptables variant.
    ///   - ipv6: whether to handle IPv6.
    ///   - hasNetAdmin: pass `CapabilitySet.current()?.hasNetAdmin ?? true`.
    public init(runner: any CommandRunner, mode: IptablesMode = .auto, ipv6: IPv6Mode = .auto, hasNetAdmin: Bool = true)
    {
        self.runner = runner
        self.mode = mode
        self.ipv6 = ipv6
        self.hasNetAdmin = hasNetAdmin
    }

    /// The rules `apply` would merge, in `iptables-restore` format, one fragment per family,
    /// each after a comment naming its binary. Runs nothing and needs no privileges.
    public func dryRun(_ config: RedirectConfig) -> String {
        families.map { family in
            let tools = IptablesTools(family: family, mode: mode)
            let condition = family == .ipv6 && ipv6 == .auto ? ", if the IPv6 nat table is usable" : ""
            return "# \(tools.restore) (\(family.label)\(condition)): replaces the WEFT_ lines of the nat table\n"
                + RedirectRules(config: config, family: family).fragment
        }.joined()
    }

    /// Installs the rules of `config`, replacing any of ours already there.
    ///
    /// - Returns: one note per family saying what was done or why IPv6 was skipped.
    /// - Throws: `RedirectError` (`.toolNotFound`, `.permissionDenied`, `.toolFailed`,
    ///   `.unreadableSave`, `.spawnFailed`) naming the binary and quoting its message.
    public func apply(_ config: RedirectConfig) throws(RedirectError) -> [String] {
        var notes: [String] = []
        for table in try loadTables(notes: &notes) {
            let input = table.nat.installing(RedirectRules(config: config, family: table.family)).restoreInput
            do throws(RedirectError) {
                try restore(input, table)
                notes.append(
                    "\(table.tools.restore): installed the redirect rules in the \(table.family.label) nat table")
            } catch let error where table.family == .ipv6 && ipv6 == .auto {
                notes.append(Self.skipNote(error))
            }
        }
        return notes
    }

    /// Removes our jumps and chains from both families; succeeds when none are installed.
    ///
    /// - Returns: one note per family saying what was removed, or that nothing was there.
    /// - Throws: `RedirectError` as for `apply(_:)`.
    public func cleanup() throws(RedirectError) -> [String] {
        var notes: [String] = []
        for table in try loadTables(notes: &notes) {
            guard table.nat.hasRedirectLines else {
                notes.append("\(table.tools.save): no redirect rules in the \(table.family.label) nat table")
                continue
            }
            try restore(table.nat.removingRedirectLines().restoreInput, table)
            notes.append("\(table.tools.restore): removed the redirect rules from the \(table.family.label) nat table")
        }
        return notes
    }

    private struct LoadedTable {
        let family: IPFamily
        let tools: IptablesTools
        let restorePath: String
        let nat: NatTable
    }

    private var families: [IPFamily] { ipv6 == .off ? [.ipv4] : [.ipv4, .ipv6] }

    /// Reads the nat table of each family; with `--ipv6 auto`, an IPv6 failure becomes a note.
    private func loadTables(notes: inout [String]) throws(RedirectError) -> [LoadedTable] {
        var tables: [LoadedTable] = []
        for family in families {
            do throws(RedirectError) {
                tables.append(try loadTable(family))
            } catch let error where family == .ipv6 && ipv6 == .auto {
                notes.append(Self.skipNote(error))
            }
        }
        return tables
    }

    private func loadTable(_ family: IPFamily) throws(RedirectError) -> LoadedTable {
        let tools = IptablesTools(family: family, mode: mode)
        guard let restorePath = runner.locate(tools.restore) else { throw .toolNotFound(tools.restore) }
        guard let savePath = runner.locate(tools.save) else { throw .toolNotFound(tools.save) }
        let result = try runner.run(savePath, arguments: ["-t", "nat"], input: "")
        guard result.succeeded else { throw failure(of: tools.save, result) }
        let nat = try NatTable(saved: result.output, tool: tools.save)
        return LoadedTable(family: family, tools: tools, restorePath: restorePath, nat: nat)
    }

    /// Restores `input`, waiting for the xtables lock; retries without `--wait` for an old
    /// iptables that does not know the flag (nft variants accept and ignore it).
    private func restore(_ input: String, _ table: LoadedTable) throws(RedirectError) {
        var result = try runner.run(table.restorePath, arguments: ["--wait=\(Self.lockWaitSeconds)"], input: input)
        if !result.succeeded && Self.rejectsWaitFlag(result.errorOutput) {
            result = try runner.run(table.restorePath, arguments: [], input: input)
        }
        guard result.succeeded else {
            var error = failure(of: table.tools.restore, result)
            if error.code == .toolFailed {
                error = RedirectError(
                    code: .toolFailed, subject: error.subject,
                    detail: error.detail + " (--dry-run prints the rules that were being installed)")
            }
            throw error
        }
    }

    /// Classifies a failed run: a permission problem, or any other failure.
    private func failure(of tool: String, _ result: CommandResult) -> RedirectError {
        let message = Self.message(result)
        let permissionWords = ["Permission denied", "Operation not permitted", "you must be root"]
        if !hasNetAdmin || permissionWords.contains(where: message.contains) {
            return RedirectError(code: .permissionDenied, subject: tool, detail: message)
        }
        return RedirectError(code: .toolFailed, subject: tool, detail: "exit status \(result.status): \(message)")
    }

    private static func message(_ result: CommandResult) -> String {
        let text = result.errorOutput.isEmpty ? result.output : result.errorOutput
        let lines = text.split(separator: "\n").map { String($0) }.filter { !$0.hasPrefix("# Warning:") }
        return lines.isEmpty ? "no message" : lines.joined(separator: "; ")
    }

    private static func rejectsWaitFlag(_ errorOutput: String) -> Bool {
        errorOutput.contains("--wait") && (errorOutput.contains("unrecognized") || errorOutput.contains("invalid"))
    }

    private static func skipNote(_ error: RedirectError) -> String {
        "IPv6 skipped (--ipv6 auto): \(error); IPv6 connections are not redirected (--ipv6 on makes this an error)"
    }
}
