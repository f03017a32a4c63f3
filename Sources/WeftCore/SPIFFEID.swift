/// A workload identity, `spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>`.
///
/// The mesh names every workload by its Kubernetes namespace and service account, as
/// Istio and Linkerd do, so an authorization policy can be written without IP addresses.
public struct SPIFFEID: Hashable, Sendable, CustomStringConvertible {
    public let trustDomain: String
    public let namespace: String
    public let serviceAccount: String

    public init(trustDomain: String = MeshDefaults.trustDomain, namespace: String, serviceAccount: String) {
        self.trustDomain = trustDomain
        self.namespace = namespace
        self.serviceAccount = serviceAccount
    }

    /// Parses `spiffe://td/ns/NS/sa/SA`; returns nil for any other shape.
    public init?(parsing uri: String) {
        let prefix = "spiffe://"
        guard uri.hasPrefix(prefix) else { return nil }
        let parts = uri.dropFirst(prefix.count).split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 5, parts[1] == "ns", parts[3] == "sa",
            !parts[0].isEmpty, !parts[2].isEmpty, !parts[4].isEmpty
        else { return nil }
        self.init(trustDomain: String(parts[0]), namespace: String(parts[2]), serviceAccount: String(parts[4]))
    }

    public var description: String { "spiffe://\(trustDomain)/ns/\(namespace)/sa/\(serviceAccount)" }
}
