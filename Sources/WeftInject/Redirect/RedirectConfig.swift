/// The validated settings the redirect rules are rendered from.
///
/// Invariants, checked by `init(flags:)` (the memberwise init trusts its caller): every port is
/// 1-65535 and the three proxy ports differ. The capture ports are not excluded from redirection:
/// the proxy refuses looped connections itself. The admin port always is, so kubelet probes
/// reach the proxy directly.
public struct RedirectConfig: Sendable, Equatable {
    /// The default proxy UID and GID, whose traffic is never redirected.
    public static let defaultProxyID: UInt32 = 2102
    /// The default inbound capture port.
    public static let defaultInboundPort: UInt16 = 15006
    /// The default outbound capture port.
    public static let defaultOutboundPort: UInt16 = 15001
    /// The default proxy admin port (`/live`, `/ready`, `/metrics`).
    public static let defaultAdminPort: UInt16 = 15000

    /// The UID the proxy runs as; its connections are never redirected.
    public var proxyUID: UInt32
    /// The GID the proxy runs as; its connections are never redirected.
    public var proxyGID: UInt32
    /// Where inbound TCP is redirected to.
    public var inboundPort: UInt16
    /// Where outbound TCP is redirected to.
    public var outboundPort: UInt16
    /// The proxy's admin port, always excluded from inbound redirection.
    public var adminPort: UInt16
    /// Destination ports whose inbound connections go straight to the app.
    public var excludedInboundPorts: [UInt16]
    /// Destination ports whose outbound connections bypass the proxy.
    public var excludedOutboundPorts: [UInt16]
    /// Destination networks (either family) whose outbound connections bypass the proxy.
    public var excludedOutboundCIDRs: [CIDR]

    /// Creates a config from typed values; every argument defaults to the mesh default.
    public init(
        proxyUID: UInt32 = defaultProxyID, proxyGID: UInt32 = defaultProxyID,
        inboundPort: UInt16 = defaultInboundPort, outboundPort: UInt16 = defaultOutboundPort,
        adminPort: UInt16 = defaultAdminPort, excludedInboundPorts: [UInt16] = [],
        excludedOutboundPorts: [UInt16] = [], excludedOutboundCIDRs: [CIDR] = []
    ) {
        self.proxyUID = proxyUID
        self.proxyGID = proxyGID
        self.inboundPort = inboundPort
        self.outboundPort = outboundPort
        self.adminPort = adminPort
        self.excludedInboundPorts = excludedInboundPorts
        self.excludedOutboundPorts = excludedOutboundPorts
        self.excludedOutboundCIDRs = excludedOutboundCIDRs
    }

    /// Validates the flags of `weft-proxy init` into a config.
    ///
    /// - Throws: `RedirectError.invalidFlag` naming the first bad flag and its value, including
    ///   two proxy ports that are the same.
    public init(flags: RedirectFlags) throws(RedirectError) {
        typealias Parse = FlagValueParser
        self.init(
            proxyUID: try Parse.id(flags.proxyUID, flag: RedirectFlags.Name.proxyUID),
            proxyGID: try Parse.id(flags.proxyGID, flag: RedirectFlags.Name.proxyGID),
            inboundPort: try Parse.port(flags.inboundPort, flag: RedirectFlags.Name.inboundPort),
            outboundPort: try Parse.port(flags.outboundPort, flag: RedirectFlags.Name.outboundPort),
            adminPort: try Parse.port(flags.adminPort, flag: RedirectFlags.Name.adminPort),
            excludedInboundPorts: try Parse.portList(
                flags.excludeInboundPorts, flag: RedirectFlags.Name.excludeInboundPorts),
            excludedOutboundPorts: try Parse.portList(
                flags.excludeOutboundPorts, flag: RedirectFlags.Name.excludeOutboundPorts),
            excludedOutboundCIDRs: try Parse.cidrList(
                flags.excludeOutboundCIDRs, flag: RedirectFlags.Name.excludeOutboundCIDRs))
        let named: [(String, UInt16)] = [
            (RedirectFlags.Name.inboundPort, inboundPort), (RedirectFlags.Name.outboundPort, outboundPort),
            (RedirectFlags.Name.adminPort, adminPort),
        ]
        for (index, (flag, port)) in named.enumerated() {
            if let clash = named[..<index].first(where: { $0.1 == port }) {
                throw .invalidFlag(
                    flag, value: String(port), in: nil, problem: "is also the \(clash.0); the proxy ports must differ")
            }
        }
    }

    /// The inbound ports that skip the proxy: the admin port first, then the excluded ones.
    public var inboundBypassPorts: [UInt16] {
        [adminPort] + excludedInboundPorts.filter { $0 != adminPort }
    }
}
