import WeftCore

/// Everything `weft-control` was told.
public struct ControlPlaneSettings: Sendable {
    /// The standalone config folder (`--config`).
    public var configDirectory: String
    /// The CA folder (`--ca`): intermediate certificate and key, trust bundle.
    public var caDirectory: String
    /// The shared bootstrap token's file (`--token-file`), standalone mode.
    public var tokenFile: String
    public var pushHost = "0.0.0.0"
    public var pushPort = MeshDefaults.controlPushPort
    public var httpHost = "0.0.0.0"
    public var httpPort = MeshDefaults.controlHTTPPort
    /// The OTLP/HTTP span intake (`--otlp-port`; 0: off), on `pushHost`.
    public var otlpPort = MeshDefaults.otlpPort
    /// Bytes the kept traces may be charged (`--trace-memory`).
    public var traceMemory = 64 << 20
    /// The largest export the intake reads.
    public var otlpMaxBody = 4 << 20
    /// Exports a second each client address may send the intake (`--otlp-rate-limit`; 0: no limit).
    public var otlpRateLimit = 100
    /// An external OTLP/HTTP collector every export is also sent to (`--otlp-forward`).
    public var otlpForward: String? = nil
    /// For an `https://` forward: a PEM file of the CA certificates to trust instead of the
    /// system's (`--otlp-forward-ca`).
    public var otlpForwardCA: String? = nil
    /// Who may read `/api/` on the HTTP port (`--api-access`).
    public var apiAccess = APIAccess.loopback
    public var threads = 2
    /// Lifetime of workload certificates.
    public var certificateLifetime: Duration = .seconds(86_400)
    /// How long the push waits after a change for more changes before it pushes them as one.
    public var debounce: Duration = .milliseconds(100)
    /// How long a proxy may stay above its write high-water mark (unread pushes) before it
    /// is closed as a slow consumer.
    public var slowConsumerGrace: Duration = .seconds(10)
    /// The control plane's own identity (its serving certificate's SPIFFE ID).
    public var namespace = MeshDefaults.controlPlaneNamespace
    public var serviceAccount = MeshDefaults.controlPlaneServiceAccount

    public init(configDirectory: String, caDirectory: String, tokenFile: String) {
        self.configDirectory = configDirectory
        self.caDirectory = caDirectory
        self.tokenFile = tokenFile
    }
}

/// Who may read the control plane's API (`/api/v1/...`: every proxy's pod, identity,
/// address and config). `/live`, `/ready` and `/metrics` answer everyone.
public enum APIAccess: String, Sendable, CaseIterable {
    /// Only connections from loopback: `weftctl` in the control plane's pod, or through
    /// `kubectl port-forward` (the default).
    case loopback
    /// Every address that reaches the port; restrict it with a NetworkPolicy.
    case any
}
