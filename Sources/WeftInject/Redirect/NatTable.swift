/// One family's nat table as `*tables-save -t nat` prints it: chain declarations and rules.
///
/// The installer reads the table, replaces our lines and restores the whole table in one
/// `*tables-restore` call, which is atomic and leaves the other tables alone. Because our lines
/// are recognised by the `WEFT_` chain prefix, not by their exact text, a rerun replaces rules
/// rendered from other flags (or by an older version) instead of adding a second copy, and the
/// rules of other owners in the nat table are kept as they are.
public struct NatTable: Sendable, Equatable {
    /// The built-in chains of the nat table, declared with policy ACCEPT when missing.
    public static let builtinChains = ["PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"]

    /// Chain declarations, such as `:PREROUTING ACCEPT [0:0]` or `:KUBE-SERVICES - [0:0]`.
    public private(set) var declarations: [String]
    /// Rules, such as `-A OUTPUT -p tcp -j WEFT_OUTBOUND`.
    public private(set) var rules: [String]

    /// Creates a table from its lines.
    public init(declarations: [String] = [], rules: [String] = []) {
        self.declarations = declarations
        self.rules = rules
    }

    /// Parses the output of `*tables-save -t nat`.
    ///
    /// Comments and blank lines are skipped. Output without a `*nat` section (nft prints
    /// nothing for a table that does not exist yet) is an empty table.
    /// - Parameters:
    ///   - saved: the text the tool printed.
    ///   - tool: the tool's name, for the error message.
    /// - Throws: `RedirectError.unreadableSave` for a line that is neither a declaration nor a
    ///   rule inside the `*nat` section, or a section without `COMMIT`.
    public init(saved: String, tool: String) throws(RedirectError) {
        self.init()
        var inNat = false
        for raw in saved.split(separator: "\n", omittingEmptySubsequences: true) {
            let line = Self.trimmed(raw)
            if line.isEmpty || line.hasPrefix("#") { continue }
            if !inNat {
                inNat = line == "*nat"
                continue
            }
            if line == "COMMIT" { return }
            if line.hasPrefix(":") {
                declarations.append(line)
            } else if line.hasPrefix("-A ") {
                rules.append(line)
            } else {
                throw RedirectError(code: .unreadableSave, subject: tool, detail: "unexpected line '\(line)'")
            }
        }
        if inNat {
            throw RedirectError(code: .unreadableSave, subject: tool, detail: "the *nat section has no COMMIT")
        }
    }

    /// Whether any line defines or references one of our chains.
    public var hasRedirectLines: Bool {
        declarations.contains(where: Self.isOurs) || rules.contains(where: Self.isOurs)
    }

    /// The table without any line that defines or references a `WEFT_` chain.
    public func removingRedirectLines() -> NatTable {
        NatTable(
            declarations: declarations.filter { !Self.isOurs($0) },
            rules: rules.filter { !Self.isOurs($0) })
    }

    /// The table with our previous lines replaced by `redirect`, appended after the others.
    ///
    /// Built-in chains missing from the table are declared with policy ACCEPT, so the result
    /// restores even into a namespace whose nat table does not exist yet.
    public func installing(_ redirect: RedirectRules) -> NatTable {
        var table = removingRedirectLines()
        let declared = Set(table.declarations.map(Self.chainName))
        let missing = Self.builtinChains.filter { !declared.contains($0) }.map { ":\($0) ACCEPT [0:0]" }
        table.declarations = missing + table.declarations + redirect.declarations
        table.rules += redirect.rules
        return table
    }

    /// The table in `*tables-restore` syntax, `*nat` to `COMMIT`.
    public var restoreInput: String {
        (["*nat"] + declarations + rules + ["COMMIT"]).map { $0 + "\n" }.joined()
    }

    /// Whether a declaration or rule line defines or references a `WEFT_` chain.
    ///
    /// Looks only at chain positions (the declared name, and the words after `-A`, `-j`, `-g`
    /// and their long forms), so a comment that merely mentions WEFT_ is not taken for ours.
    public static func isOurs(_ line: String) -> Bool {
        if line.hasPrefix(":") { return chainName(line).hasPrefix(RedirectRules.chainPrefix) }
        let words = words(line)
        let chainFlags: Set<String> = ["-A", "--append", "-j", "--jump", "-g", "--goto"]
        return zip(words, words.dropFirst()).contains { flag, value in
            chainFlags.contains(flag) && value.hasPrefix(RedirectRules.chainPrefix)
        }
    }

    private static func trimmed(_ line: Substring) -> String {
        guard let first = line.firstIndex(where: { !$0.isWhitespace }) else { return "" }
        return String(line[first...line.lastIndex(where: { !$0.isWhitespace })!])
    }

    private static func chainName(_ declaration: String) -> String {
        String(declaration.dropFirst().prefix { $0 != " " })
    }

    /// Splits a rule into words the way iptables-save quotes them: double quotes group, `\"` escapes.
    private static func words(_ line: String) -> [String] {
        var words: [String] = []
        var word = ""
        var isQuoted = false
        var isEscaped = false
        var hasWord = false
        for character in line {
            if isEscaped {
                word.append(character)
                isEscaped = false
            } else if character == "\\" {
                isEscaped = true
            } else if character == "\"" {
                isQuoted.toggle()
                hasWord = true
            } else if character == " " && !isQuoted {
                if hasWord { words.append(word) }
                word = ""
                hasWord = false
            } else {
                word.append(character)
                hasWord = true
            }
        }
        if hasWord { words.append(word) }
        return words
    }
}
