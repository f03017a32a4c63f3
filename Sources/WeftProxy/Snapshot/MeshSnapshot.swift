import NIOCore
import WeftCore
import WeftProtocol
import WeftTelemetry

/// What the data path decides with: the config the proxy acked, compiled once per
/// version off the event loops (`MeshSnapshotCompiler`) and handed to each loop
/// (`LoopContext`). Immutable; a request reads it with no lock, no string key and no
/// allocation: ClusterIP:port by binary key, routes pre-sorted, regexes compiled.
///
/// Indices tie it together: a Service port's route rules name backends by their index in
/// `backends`, and each loop keeps its balancers in an array with the same indices.
final class MeshSnapshot: Sendable {
    let version: Int
    let generation: Int
    /// MeshConfig `outboundPolicy: REGISTRY_ONLY`: destinations outside the mesh are refused.
    let isRegistryOnly: Bool
    /// The namespace of this proxy's pod (consumer routes are chosen by it).
    let namespace: String
    let servicePorts: [ServicePortPlan]
    let backends: [BackendPlan]
    /// ClusterIP:port → index in `servicePorts`.
    let servicePortByAddress: [AddressKey: Int]
    /// Lowercased DNS name (`web`, `web.demo`, `web.demo.svc`, `web.demo.svc.<domain>`)
    /// and port → index in `servicePorts`: for an HTTP request whose destination is not a
    /// ClusterIP, the Host header.
    let servicePortByHost: [HostPort: Int]
    /// The IP addresses (port 0) of the known destinations' endpoints: a pod of the mesh,
    /// at any port, is inside it (REGISTRY_ONLY lets it through), and routes do not apply.
    let endpointAddresses: Set<AddressKey>
    /// Services whose routes or endpoints this snapshot needs but the config lacks (routes'
    /// backends): the control client subscribes to them.
    let missingServices: [String]
    /// MeshConfig `retryBudget`: each loop keeps one budget per Service port.
    let retryBudget: RetryBudgetSettings
    /// The labels of every (route, rule, backend), by the metric slot the weighted backends
    /// of the rules name; each loop makes its handles from them.
    let routeMetricLabels: [RouteMetricLabels]
    /// Who may call this pod: its AuthorizationPolicies, mTLS mode and probes.
    let inbound: InboundAuthorizer
    /// Meshed Pods' IPs (port 0) → their identity: a connection to a Pod's own address is
    /// mesh TLS to that identity (but to the sidecars' own ports, which are not captured).
    let meshedWorkloads: [AddressKey: String]
    /// MeshConfig `mtls.http1Transport: HTTP2`: HTTP/1 requests to meshed endpoints each
    /// take a stream of one HTTP/2 connection per endpoint (`HTTP1MultiplexedSession`).
    let multiplexesHTTP1: Bool
    /// MeshConfig `tracing.sampling`: which requests without a caller's decision are traced.
    let sampler: TraceSampler

    init(
        version: Int, generation: Int, isRegistryOnly: Bool, namespace: String, servicePorts: [ServicePortPlan],
        backends: [BackendPlan], servicePortByAddress: [AddressKey: Int], servicePortByHost: [HostPort: Int],
        endpointAddresses: Set<AddressKey>, missingServices: [String],
        retryBudget: RetryBudgetSettings = RetryBudgetSettings(ratio: 0.2, minRetriesPerSecond: 10, windowMs: 10_000),
        routeMetricLabels: [RouteMetricLabels] = [], inbound: InboundAuthorizer = .open,
        meshedWorkloads: [AddressKey: String] = [:], multiplexesHTTP1: Bool = false,
        sampler: TraceSampler = TraceSampler(ratio: 0)
    ) {
        self.sampler = sampler
        self.multiplexesHTTP1 = multiplexesHTTP1
        self.meshedWorkloads = meshedWorkloads
        self.inbound = inbound
        self.retryBudget = retryBudget
        self.routeMetricLabels = routeMetricLabels
        self.version = version
        self.generation = generation
        self.isRegistryOnly = isRegistryOnly
        self.namespace = namespace
        self.servicePorts = servicePorts
        self.backends = backends
        self.servicePortByAddress = servicePortByAddress
        self.servicePortByHost = servicePortByHost
        self.endpointAddresses = endpointAddresses
        self.missingServices = missingServices
    }

    /// The identity to require when connecting to `address` itself (not through a
    /// Service): its Pod's, when the Pod is meshed; nil for plaintext. The sidecar's own
    /// ports (admin, capture) are never captured inbound, so they stay plaintext.
    func meshIdentity(ofAddress address: SocketAddress) -> String? {
        guard !meshedWorkloads.isEmpty, let port = address.port, !MeshSnapshot.sidecarPorts.contains(port),
            let key = AddressKey(address)
        else { return nil }
        return meshedWorkloads[key.with(port: 0)]
    }

    static let sidecarPorts: Set<Int> = [
        Int(MeshDefaults.adminPort), Int(MeshDefaults.inboundPort), Int(MeshDefaults.outboundPort),
    ]

    /// A snapshot with no mesh: everything passes through.
    static let empty = MeshSnapshot(
        version: 0, generation: 0, isRegistryOnly: false, namespace: "", servicePorts: [], backends: [],
        servicePortByAddress: [:], servicePortByHost: [:], endpointAddresses: [], missingServices: [])
}

/// A DNS name and port, the key of a Host header lookup.
struct HostPort: Hashable, Sendable {
    let host: String
    let port: Int
}

/// One port of one Service: the routes requests to it take.
struct ServicePortPlan: Sendable {
    enum State: Sendable {
        /// Its routes and endpoints have not come from the control plane yet (just
        /// subscribed): requests wait for them, bounded.
        case awaitingDiscovery
        case ready(RouteTable)
    }

    /// `namespace/name`.
    let service: String
    let port: Int
    let state: State
    /// The Service port itself as a backend (routes do not apply to opaque TCP, nor when
    /// the Service has no route): its index in the snapshot's backends.
    let directBackend: Int
}

/// A backend: one port of one Service, and the endpoints behind it.
struct BackendPlan: Sendable {
    enum Resolution: Sendable {
        case endpoints([EndpointTarget])
        /// Its endpoints have not come yet (subscribed when the snapshot was compiled).
        case awaitingDiscovery
        /// The Service or its port does not exist (Gateway API: 500 for its share).
        case unresolved(String)
    }

    let service: String
    let port: Int
    let resolution: Resolution
    /// `service:port`, as spans name the backend (`weft.backend`): made with the snapshot,
    /// not per traced request.
    let spanName: String

    init(service: String, port: Int, resolution: Resolution) {
        self.service = service
        self.port = port
        self.resolution = resolution
        self.spanName = "\(service):\(port)"
    }
}

/// One endpoint address of a backend.
struct EndpointTarget: Sendable, Hashable {
    let address: SocketAddress
    let key: AddressKey
    /// The workload's SPIFFE ID, when the control plane knows its Pod.
    let identity: String?
    /// The identity to require over mesh TLS: set when the endpoint's Pod runs a sidecar
    /// (the control plane says `meshed`); nil means plaintext.
    var meshIdentity: String? = nil
}
