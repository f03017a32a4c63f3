/// The address family a set of redirect rules is written for.
///
/// IPv4 rules go to `iptables-restore`, IPv6 rules to `ip6tables-restore`; the two families
/// have separate nat tables, so every rule set, saved table and tool is per family.
public enum IPFamily: String, Sendable, CaseIterable {
    case ipv4
    case ipv6

    /// The loopback range, whose traffic is never redirected.
    public var loopback: String {
        switch self {
        case .ipv4: "127.0.0.0/8"
        case .ipv6: "::1/128"
        }
    }

    /// The label used in notes and comments: `IPv4` or `IPv6`.
    public var label: String {
        switch self {
        case .ipv4: "IPv4"
        case .ipv6: "IPv6"
        }
    }
}
