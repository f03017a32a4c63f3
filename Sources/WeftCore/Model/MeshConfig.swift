/// weft.dev/v1alpha1 MeshConfig: mesh-wide settings. At most one exists; without one,
/// `MeshConfig.default` applies.
public struct MeshConfig: Hashable, Sendable {
    public enum MTLSMode: String, Hashable, Sendable {
        /// Inbound plaintext is refused.
        case strict = "STRICT"
        /// Inbound plaintext is accepted next to mesh TLS (the default: a mesh being
        /// adopted has clients without sidecars; Istio and Linkerd start the same way).
        case permissive = "PERMISSIVE"
    }

    /// How HTTP/1 requests travel between sidecars over mesh TLS (docs/configuration.md).
    public enum HTTP1Transport: String, Hashable, Sendable {
        /// Pooled, reused HTTP/1.1 connections per endpoint.
        case http1 = "HTTP1"
        /// Each request on its own stream of one HTTP/2 connection per endpoint (Linkerd's
        /// way: fewer connections and handshakes); the called sidecar speaks HTTP/1.1 to its app.
        case http2 = "HTTP2"
    }

    public enum OutboundPolicy: String, Hashable, Sendable {
        /// Unknown destinations pass through as plain TCP (the default).
        case allowAny = "ALLOW_ANY"
        /// Only destinations that are Services of the mesh are reachable.
        case registryOnly = "REGISTRY_ONLY"
    }

    /// How many retries the proxy may add: `ratio` of requests plus `minRetriesPerSecond`,
    /// over `window` (Linkerd's retry budget; DESIGN.md "Defaults").
    public struct RetryBudget: Hashable, Sendable {
        public let ratio: Double
        public let minRetriesPerSecond: Int
        public let window: Duration

        public static let `default` = RetryBudget(ratio: 0.2, minRetriesPerSecond: 10, window: .seconds(10))

        public init(ratio: Double, minRetriesPerSecond: Int, window: Duration) {
            self.ratio = ratio
            self.minRetriesPerSecond = minRetriesPerSecond
            self.window = window
        }
    }

    public struct Tracing: Hashable, Sendable {
        /// The fraction of new traces sampled, 0...1. Defaults to 1: traces are Weft's
        /// headline feature and the control plane keeps them in bounded memory.
        public let sampling: Double

        public static let `default` = Tracing(sampling: 1.0)

        public init(sampling: Double) {
            self.sampling = sampling
        }
    }

    /// nil for the built-in default.
    public let metadata: ObjectMeta?
    /// SPIFFE trust domain, `cluster.local` by default.
    public let trustDomain: String
    /// Kubernetes cluster DNS domain used for Service names, `cluster.local` by default.
    public let clusterDomain: String
    public let mtlsMode: MTLSMode
    public let http1Transport: HTTP1Transport
    public let retryBudget: RetryBudget
    public let tracing: Tracing
    public let outboundPolicy: OutboundPolicy

    /// The settings in force when no MeshConfig is given.
    public static let `default` = MeshConfig(
        metadata: nil, trustDomain: MeshDefaults.trustDomain, clusterDomain: MeshDefaults.clusterDomain,
        mtlsMode: .permissive, retryBudget: .default, tracing: .default, outboundPolicy: .allowAny)

    public init(
        metadata: ObjectMeta?, trustDomain: String, clusterDomain: String, mtlsMode: MTLSMode, retryBudget: RetryBudget,
        tracing: Tracing, outboundPolicy: OutboundPolicy, http1Transport: HTTP1Transport = .http1
    ) {
        self.http1Transport = http1Transport
        self.metadata = metadata
        self.trustDomain = trustDomain
        self.clusterDomain = clusterDomain
        self.mtlsMode = mtlsMode
        self.retryBudget = retryBudget
        self.tracing = tracing
        self.outboundPolicy = outboundPolicy
    }
}
