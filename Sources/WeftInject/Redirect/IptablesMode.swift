/// Which iptables variant `weft-proxy init` drives.
///
/// Nodes run either the nf_tables or the legacy (x_tables) backend, and rules installed
/// through one are invisible to the other, so the init step must use the node's choice.
public enum IptablesMode: String, Sendable, CaseIterable {
    /// Plain `iptables-save`/`iptables-restore`: whatever the image's alternatives point at.
    case auto
    /// `iptables-nft-save`/`iptables-nft-restore`.
    case nft
    /// `iptables-legacy-save`/`iptables-legacy-restore`.
    case legacy
}
