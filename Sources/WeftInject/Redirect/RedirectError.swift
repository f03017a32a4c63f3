/// A failure of `weft-proxy init`: a stable code, what failed, and what to do about it.
///
/// A struct rather than an enum so codes can be added without breaking callers; tests compare
/// `code` and `subject`, people read `description`.
public struct RedirectError: Error, CustomStringConvertible, Sendable, Equatable {
    /// The kind of failure; stable across releases.
    public enum Code: Sendable, Equatable {
        /// A flag has a value that does not parse or is out of range.
        case invalidFlag
        /// An iptables binary is not in `PATH`.
        case toolNotFound
        /// An iptables binary failed because the process lacks `CAP_NET_ADMIN`.
        case permissionDenied
        /// An iptables binary failed for another reason.
        case toolFailed
        /// `*tables-save` printed a nat table that cannot be parsed.
        case unreadableSave
        /// A binary could not be started at all.
        case spawnFailed
    }

    /// The kind of failure.
    public let code: Code
    /// What failed: the flag (`--inbound-port`) or the binary (`iptables-nft-restore`).
    public let subject: String
    /// The details: the bad value and the rule it breaks, or the binary's own message.
    public let detail: String

    /// Creates an error; prefer the static factories, which word `detail` consistently.
    public init(code: Code, subject: String, detail: String) {
        self.code = code
        self.subject = subject
        self.detail = detail
    }

    /// The message for the operator: what failed and what to do.
    public var description: String {
        switch code {
        case .invalidFlag:
            "\(subject): \(detail)"
        case .toolNotFound:
            "\(subject) not found in PATH: \(detail)"
        case .permissionDenied:
            "weft-proxy init needs the NET_ADMIN capability (run the init container as root with NET_ADMIN / NET_RAW); \(subject) said: \(detail)"
        case .toolFailed:
            "\(subject) failed: \(detail)"
        case .unreadableSave:
            "cannot parse the nat table printed by \(subject): \(detail)"
        case .spawnFailed:
            "cannot run \(subject): \(detail)"
        }
    }

    /// A flag value that does not parse; `list` is the whole flag value when `value` is one entry.
    public static func invalidFlag(_ flag: String, value: String, in list: String?, problem: String) -> RedirectError {
        let quoted = list.map { $0 == value ? "'\(value)'" : "'\(value)' in '\($0)'" } ?? "'\(value)'"
        return RedirectError(code: .invalidFlag, subject: flag, detail: "invalid value \(quoted): \(problem)")
    }

    /// A binary missing from `PATH`, with the install hint.
    public static func toolNotFound(_ tool: String) -> RedirectError {
        RedirectError(
            code: .toolNotFound, subject: tool,
            detail: "install the iptables package (Debian: apt-get install iptables) or pass --iptables-mode")
    }
}
