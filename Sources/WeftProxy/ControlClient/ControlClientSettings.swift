import WeftProtocol

/// How the sidecar reaches and authenticates to the control plane.
public struct ControlClientSettings: Sendable {
    public var host: String
    public var port: Int
    /// The bootstrap token's file; read at every connect, since projected tokens rotate.
    public var tokenFile: String
    /// PEM roots to verify the control plane with.
    public var trustBundleFile: String
    /// Where the last good identity and config are kept (0600 files), or nil for none.
    public var cacheDirectory: String?
    public var node: Node
    public var trustDomain: String
    /// The SPIFFE ID the control plane's certificate must carry.
    public var controlPlaneIdentity: String
    public var proxyVersion: String

    public init(
        host: String, port: Int, tokenFile: String, trustBundleFile: String, cacheDirectory: String?, node: Node,
        trustDomain: String, controlPlaneIdentity: String, proxyVersion: String
    ) {
        self.host = host
        self.port = port
        self.tokenFile = tokenFile
        self.trustBundleFile = trustBundleFile
        self.cacheDirectory = cacheDirectory
        self.node = node
        self.trustDomain = trustDomain
        self.controlPlaneIdentity = controlPlaneIdentity
        self.proxyVersion = proxyVersion
    }
}
