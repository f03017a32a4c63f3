/// Whether `weft-proxy init` also installs the IPv6 rules.
public enum IPv6Mode: String, Sendable, CaseIterable {
    /// Install them when `ip6tables-restore` exists and the IPv6 nat table is usable; otherwise
    /// skip IPv6 with a note (a node without IPv6 is common and not an error).
    case auto
    /// Install them; failing to is an error.
    case on
    /// Leave IPv6 alone.
    case off
}
