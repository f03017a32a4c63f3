/// The part of a core/v1 Pod the mesh needs: labels (policy selection), service account
/// (identity) and IPs.
public struct Pod: Hashable, Sendable {
    public let metadata: ObjectMeta
    /// `default` when the Pod names none, as Kubernetes does.
    public let serviceAccountName: String
    /// `status.podIPs`, or `status.podIP` when only that is set; empty before scheduling.
    public let podIPs: [String]
    /// `status.phase` (`Pending`, `Running`, ...), nil when absent.
    public let phase: String?
    /// The `Ready` condition is `True`.
    public let isReady: Bool
    /// The Pod runs the sidecar: a container named `weft-proxy` (what injection adds).
    /// Only such a Pod's endpoints are reached over mesh TLS.
    public let isMeshed: Bool
    /// The HTTP and gRPC probes its containers declare (liveness, readiness, startup),
    /// named ports resolved: under STRICT mTLS the sidecar accepts them in plaintext.
    public let probes: [Probe]

    /// A kubelet probe: `httpGet` (GET `path`) or `grpc` (the gRPC health check).
    public struct Probe: Hashable, Sendable {
        public let port: Int
        public let path: String
        /// "GET" or "POST" (gRPC).
        public let method: String

        public init(port: Int, path: String, method: String) {
            self.port = port
            self.path = path
            self.method = method
        }
    }

    /// The container name that marks a meshed Pod.
    public static let sidecarContainerName = "weft-proxy"

    /// The workload identity of this Pod in the given trust domain.
    public func identity(trustDomain: String) -> SPIFFEID {
        SPIFFEID(trustDomain: trustDomain, namespace: metadata.namespace, serviceAccount: serviceAccountName)
    }

    public init(
        metadata: ObjectMeta, serviceAccountName: String, podIPs: [String], phase: String?, isReady: Bool,
        isMeshed: Bool = false, probes: [Probe] = []
    ) {
        self.isMeshed = isMeshed
        self.probes = probes
        self.metadata = metadata
        self.serviceAccountName = serviceAccountName
        self.podIPs = podIPs
        self.phase = phase
        self.isReady = isReady
    }
}
