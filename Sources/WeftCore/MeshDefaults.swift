/// The mesh's well-known ports, identities and limits (DESIGN.md, "Defaults").
///
/// Every binary takes these as flag defaults, so a sidecar, its init step and the
/// control plane agree without configuration.
public enum MeshDefaults {
    /// Where the init step redirects a Pod's outbound TCP.
    public static let outboundPort = 15001
    /// Where the init step redirects a Pod's inbound TCP.
    public static let inboundPort = 15006
    /// The proxy's admin server: `/live`, `/ready`, `/metrics`, `POST /shutdown`.
    public static let adminPort = 15000
    /// The proxy's UID and GID; traffic from them is never redirected.
    public static let proxyUID = 2102
    public static let proxyGID = 2102
    /// The control plane's push port (JSON over TLS).
    public static let controlPushPort = 15012
    /// The control plane's HTTP port (metrics, trace API and UI).
    public static let controlHTTPPort = 15014
    /// The control plane's OTLP/HTTP span intake (OpenTelemetry's default port).
    public static let otlpPort = 4318
    /// Seconds the proxy waits for a client's first bytes before treating it as opaque TCP.
    public static let detectTimeoutSeconds = 10
    /// Ports whose protocols speak first or are known not to be HTTP; they skip detection.
    /// The same list as Linkerd's default opaque ports.
    public static let opaquePorts: [Int] = [25, 587, 3306, 4444, 5432, 6379, 9300, 11211]
    /// Where the control plane runs; its SPIFFE ID is
    /// `spiffe://<trust-domain>/ns/weft-system/sa/weft-control`.
    public static let controlPlaneNamespace = "weft-system"
    public static let controlPlaneServiceAccount = "weft-control"
    /// The release, reported in hellos and `--version`.
    public static let version = "0.2.0"
    /// The default SPIFFE trust domain.
    public static let trustDomain = "cluster.local"
    /// The default Kubernetes cluster DNS domain (`name.ns.svc.cluster.local`).
    public static let clusterDomain = "cluster.local"
}
