/// The part of Kubernetes `metadata` the mesh reads. Everything else (managedFields, uid,
/// resourceVersion...) is ignored.
public struct ObjectMeta: Hashable, Sendable {
    public let name: String
    /// `default` when the manifest names none, as `kubectl apply` would do.
    public let namespace: String
    public let labels: [String: String]
    /// RFC 3339 text as the API server writes it; nil in hand-written files. Only used to
    /// order HTTPRoutes (Gateway API: the oldest route wins a tie).
    public let creationTimestamp: String?
    /// Only the mesh's own (`*.weft.dev/*`) are kept, e.g. `retry.weft.dev/grpc` on a route.
    public let annotations: [String: String]

    public init(
        name: String, namespace: String, labels: [String: String], creationTimestamp: String?,
        annotations: [String: String] = [:]
    ) {
        self.annotations = annotations
        self.name = name
        self.namespace = namespace
        self.labels = labels
        self.creationTimestamp = creationTimestamp
    }
}
