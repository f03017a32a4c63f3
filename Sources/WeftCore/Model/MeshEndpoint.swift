/// One address behind a Service, merged from its EndpointSlices, with the identity the
/// proxy must see in the peer's certificate.
public struct MeshEndpoint: Hashable, Sendable {
    public let address: String
    /// The ports of the slice this address came from.
    public let ports: [EndpointSlice.Port]
    public let ready: Bool
    public let serving: Bool
    public let terminating: Bool
    public let targetRef: EndpointSlice.TargetReference?
    public let nodeName: String?
    public let zone: String?
    public let hostname: String?
    /// `spiffe://<trust domain>/ns/<pod ns>/sa/<pod sa>` when the target Pod is known;
    /// nil otherwise (the proxy then treats the endpoint as outside the mesh).
    public let identity: SPIFFEID?
    /// Its Pod runs the sidecar (`Pod.isMeshed`): callers reach it over mesh TLS and
    /// expect `identity` in its certificate.
    public let isMeshed: Bool
    /// The EndpointSlice it came from.
    public let sliceName: String

    public init(
        address: String, ports: [EndpointSlice.Port], ready: Bool, serving: Bool, terminating: Bool,
        targetRef: EndpointSlice.TargetReference?, nodeName: String?, zone: String?, hostname: String?,
        identity: SPIFFEID?, sliceName: String, isMeshed: Bool = false
    ) {
        self.isMeshed = isMeshed
        self.address = address
        self.ports = ports
        self.ready = ready
        self.serving = serving
        self.terminating = terminating
        self.targetRef = targetRef
        self.nodeName = nodeName
        self.zone = zone
        self.hostname = hostname
        self.identity = identity
        self.sliceName = sliceName
    }
}
