/// The nat rules that send a pod's TCP through the proxy, for one address family.
///
/// Everything lives in four chains of our own, entered by one jump from each built-in chain:
/// ```
/// PREROUTING -p tcp → WEFT_INBOUND:  admin port and excluded ports RETURN, the rest → WEFT_IN_REDIRECT
/// OUTPUT -p tcp     → WEFT_OUTBOUND: proxy UID/GID, loopback, excluded ports and CIDRs RETURN,
///                                    the rest → WEFT_OUT_REDIRECT
/// ```
/// The owner rules come first so nothing the proxy sends, whatever its destination, is caught.
/// Every line that defines or references a chain starting with `WEFT_` is ours; `NatTable`
/// relies on that to replace our rules without touching anyone else's.
public struct RedirectRules: Sendable, Equatable {
    /// The prefix that marks a chain as ours.
    public static let chainPrefix = "WEFT_"
    /// Entered from PREROUTING; decides which inbound connections are redirected.
    public static let inboundChain = "WEFT_INBOUND"
    /// Redirects to the inbound capture port.
    public static let inboundRedirectChain = "WEFT_IN_REDIRECT"
    /// Entered from OUTPUT; decides which outbound connections are redirected.
    public static let outboundChain = "WEFT_OUTBOUND"
    /// Redirects to the outbound capture port.
    public static let outboundRedirectChain = "WEFT_OUT_REDIRECT"
    /// Our chains, in the order they are declared.
    public static let chains = [inboundChain, inboundRedirectChain, outboundChain, outboundRedirectChain]

    /// The family these rules are for.
    public let family: IPFamily
    /// The rules in `iptables-restore` syntax (`-A CHAIN ...`), in the order they are appended.
    public let rules: [String]

    /// Renders the rules of `config` for `family`; CIDRs of the other family are left out.
    public init(config: RedirectConfig, family: IPFamily) {
        self.family = family
        var rules = [
            "-A PREROUTING -p tcp -j \(Self.inboundChain)",
            "-A OUTPUT -p tcp -j \(Self.outboundChain)",
        ]
        for port in config.inboundBypassPorts {
            rules.append("-A \(Self.inboundChain) -p tcp --dport \(port) -j RETURN")
        }
        rules += [
            "-A \(Self.inboundChain) -p tcp -j \(Self.inboundRedirectChain)",
            "-A \(Self.inboundRedirectChain) -p tcp -j REDIRECT --to-ports \(config.inboundPort)",
            "-A \(Self.outboundChain) -m owner --uid-owner \(config.proxyUID) -j RETURN",
            "-A \(Self.outboundChain) -m owner --gid-owner \(config.proxyGID) -j RETURN",
            "-A \(Self.outboundChain) -d \(family.loopback) -j RETURN",
        ]
        for port in config.excludedOutboundPorts {
            rules.append("-A \(Self.outboundChain) -p tcp --dport \(port) -j RETURN")
        }
        for cidr in config.excludedOutboundCIDRs where cidr.family == family {
            rules.append("-A \(Self.outboundChain) -d \(cidr) -j RETURN")
        }
        rules += [
            "-A \(Self.outboundChain) -p tcp -j \(Self.outboundRedirectChain)",
            "-A \(Self.outboundRedirectChain) -p tcp -j REDIRECT --to-ports \(config.outboundPort)",
        ]
        self.rules = rules
    }

    /// The declarations of our chains in `iptables-restore` syntax (`:WEFT_INBOUND - [0:0]`).
    public var declarations: [String] { Self.chains.map { ":\($0) - [0:0]" } }

    /// Our part of the nat table alone, `*nat` to `COMMIT`, as `--dry-run` prints it.
    public var fragment: String {
        (["*nat"] + declarations + rules + ["COMMIT"]).map { $0 + "\n" }.joined()
    }
}
