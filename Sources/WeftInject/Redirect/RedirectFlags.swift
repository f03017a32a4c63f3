/// The flags of `weft-proxy init` as typed on the command line, before validation.
///
/// Kept as text so that every value, including one that is not a number, is checked by
/// `RedirectConfig(flags:)` and reported with the flag's name. The defaults are the mesh's.
public struct RedirectFlags: Sendable, Equatable {
    /// The command-line names of the flags, used in error messages.
    public enum Name {
        public static let proxyUID = "--proxy-uid"
        public static let proxyGID = "--proxy-gid"
        public static let inboundPort = "--inbound-port"
        public static let outboundPort = "--outbound-port"
        public static let adminPort = "--admin-port"
        public static let excludeInboundPorts = "--exclude-inbound-ports"
        public static let excludeOutboundPorts = "--exclude-outbound-ports"
        public static let excludeOutboundCIDRs = "--exclude-outbound-cidrs"
    }

    /// `--proxy-uid`: a numeric UID.
    public var proxyUID: String
    /// `--proxy-gid`: a numeric GID.
    public var proxyGID: String
    /// `--inbound-port`: a port.
    public var inboundPort: String
    /// `--outbound-port`: a port.
    public var outboundPort: String
    /// `--admin-port`: a port.
    public var adminPort: String
    /// `--exclude-inbound-ports`: comma-separated ports, may be empty.
    public var excludeInboundPorts: String
    /// `--exclude-outbound-ports`: comma-separated ports, may be empty.
    public var excludeOutboundPorts: String
    /// `--exclude-outbound-cidrs`: comma-separated CIDRs of either family, may be empty.
    public var excludeOutboundCIDRs: String

    /// Creates the flags; each argument defaults to the text of the mesh default.
    public init(
        proxyUID: String = String(RedirectConfig.defaultProxyID),
        proxyGID: String = String(RedirectConfig.defaultProxyID),
        inboundPort: String = String(RedirectConfig.defaultInboundPort),
        outboundPort: String = String(RedirectConfig.defaultOutboundPort),
        adminPort: String = String(RedirectConfig.defaultAdminPort),
        excludeInboundPorts: String = "", excludeOutboundPorts: String = "", excludeOutboundCIDRs: String = ""
    ) {
        self.proxyUID = proxyUID
        self.proxyGID = proxyGID
        self.inboundPort = inboundPort
        self.outboundPort = outboundPort
        self.adminPort = adminPort
        self.excludeInboundPorts = excludeInboundPorts
        self.excludeOutboundPorts = excludeOutboundPorts
        self.excludeOutboundCIDRs = excludeOutboundCIDRs
    }
}
