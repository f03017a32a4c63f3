/// One decoded resource, of the six kinds the mesh reads.
public enum MeshResource: Hashable, Sendable {
    case service(Service)
    case endpointSlice(EndpointSlice)
    case pod(Pod)
    case httpRoute(HTTPRoute)
    case authorizationPolicy(AuthorizationPolicy)
    case meshConfig(MeshConfig)

    /// The kind as manifests spell it.
    public var kind: String {
        switch self {
        case .service: return "Service"
        case .endpointSlice: return "EndpointSlice"
        case .pod: return "Pod"
        case .httpRoute(let r): return r.isGRPC ? "GRPCRoute" : "HTTPRoute"
        case .authorizationPolicy: return "AuthorizationPolicy"
        case .meshConfig: return "MeshConfig"
        }
    }

    public var metadata: ObjectMeta {
        switch self {
        case .service(let r): return r.metadata
        case .endpointSlice(let r): return r.metadata
        case .pod(let r): return r.metadata
        case .httpRoute(let r): return r.metadata
        case .authorizationPolicy(let r): return r.metadata
        case .meshConfig(let r):
            return r.metadata ?? ObjectMeta(name: "", namespace: "default", labels: [:], creationTimestamp: nil)
        }
    }

    public var id: ResourceID { ResourceID(kind: kind, namespace: metadata.namespace, name: metadata.name) }
}
