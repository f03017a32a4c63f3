/// The names of the save and restore binaries for one family and mode.
///
/// For example `ip6tables-nft-save` and `ip6tables-nft-restore` for IPv6 in nft mode, or
/// `iptables-save` and `iptables-restore` for IPv4 in auto mode.
public struct IptablesTools: Sendable, Equatable {
    /// The binary that prints the table: `*tables[-variant]-save`.
    public let save: String
    /// The binary that replaces the table: `*tables[-variant]-restore`.
    public let restore: String

    /// The tools for `family` in `mode`.
    public init(family: IPFamily, mode: IptablesMode) {
        let base = family == .ipv4 ? "iptables" : "ip6tables"
        let variant = mode == .auto ? base : "\(base)-\(mode.rawValue)"
        save = "\(variant)-save"
        restore = "\(variant)-restore"
    }
}
