import WeftTelemetry

/// Which capture port a connection came through.
enum TrafficDirection: String, CaseIterable, Sendable {
    case inbound, outbound
}

/// Why the proxy failed or refused a connection or request; the `error` metric label
/// and, for HTTP, the `weft-error` response header (with `-` for `_`).
enum ProxyErrorKind: String, CaseIterable, Sendable {
    case connectFailed = "connect_failed"
    case upstreamReset = "upstream_reset"
    case upstreamTimeout = "upstream_timeout"
    case upstreamProtocol = "upstream_protocol"
    case badRequest = "bad_request"
    case requestTimeout = "request_timeout"
    case loop
    case noOriginalDestination = "no_original_destination"
    /// accept(2) failed (out of file descriptors: EMFILE, ENFILE; or memory); the
    /// listener backs off (`AcceptBackoff`).
    case acceptFailed = "accept_failed"
    /// No rule of the destination Service's routes matches the request (404).
    case noRoute = "no_route"
    /// The chosen backend has no ready endpoint (503).
    case noEndpoints = "no_endpoints"
    /// The chosen backend names a Service or port that does not exist, or the rule has no
    /// backend with weight (500, as Gateway API asks).
    case unresolvedBackend = "unresolved_backend"
    /// A just-subscribed destination's routes and endpoints did not arrive in time (503).
    case discoveryTimeout = "discovery_timeout"
    /// The mesh is REGISTRY_ONLY and the destination is not in it (HTTP 502; TCP reset).
    case registryOnly = "registry_only"
    /// A meshed endpoint presented another SPIFFE ID than the control plane gave for it (502).
    case peerIdentity = "peer_identity"
    /// The mesh TLS handshake with an endpoint failed (502): an unknown root, an expired
    /// certificate, a peer that does not speak mesh TLS.
    case tlsHandshake = "tls_handshake"
    /// An AuthorizationPolicy denied the call (HTTP 403 naming the decision; TCP closed).
    case authzDenied = "authz_denied"
    /// MeshConfig `mtls.mode: STRICT` refused a caller without mesh TLS (HTTP 403; TCP closed).
    case mtlsRequired = "mtls_required"

    /// The `weft-error` header value.
    var headerValue: String { rawValue.replacingUnderscores() }
}

extension String {
    fileprivate func replacingUnderscores() -> String {
        String(self.map { $0 == "_" ? "-" : $0 })
    }
}

/// Why a request was sent again (`weft_retries_total{reason}`).
enum RetryReason: String, CaseIterable, Sendable {
    /// The response's status is one the route retries.
    case status
    /// The attempt failed before any response (reset, connection closed).
    case reset
    /// The attempt's `timeouts.backendRequest` ran out.
    case timeout

    var metricIndex: Int {
        switch self {
        case .status: return 0
        case .reset: return 1
        case .timeout: return 2
        }
    }
}

/// Statuses the proxy records that no peer sent.
enum HTTPStatus {
    /// The client closed or reset its request before the response ended (nginx's 499).
    static let clientClosedRequest = 499
}

/// The request protocols the proxy counts.
enum RequestProtocol: String, CaseIterable, Sendable {
    case http1, http2, grpc
}

/// Every metric handle of the proxy, created once at start-up, but the latency histograms:
/// those are counted per event loop (`LoopContext.requestLatency`, `RouteMetrics`), so
/// their buckets carry exemplars and a request takes no lock for them.
///
/// Labels come from fixed enums, so the label set is closed: no peer address or path
/// ever becomes a label. The hot path indexes arrays; it never builds a string.
final class ProxyMetrics: Sendable {
    let registry: PrometheusCollectorRegistry
    let inbound: DirectionMetrics
    let outbound: DirectionMetrics
    let spans: SpanMetrics

    init(registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry()) {
        self.registry = registry
        self.spans = SpanMetrics(registry: registry)
        self.inbound = DirectionMetrics(registry: registry, direction: .inbound)
        self.outbound = DirectionMetrics(registry: registry, direction: .outbound)
    }

    private static let endpointsName = MetricNameDescriptor(
        metricName: "weft_service_endpoints",
        helpText: "Endpoints the proxy balances over, per Service port it has routes and endpoints for.")

    /// Sets `weft_service_endpoints{service, port}` for every Service port whose endpoints
    /// the snapshot holds.
    func setEndpointCounts(_ snapshot: MeshSnapshot) {
        for plan in snapshot.servicePorts {
            guard case .ready = plan.state,
                case .endpoints(let targets) = snapshot.backends[plan.directBackend].resolution
            else { continue }
            registry.makeGauge(
                descriptor: Self.endpointsName, labels: [("service", plan.service), ("port", String(plan.port))]
            ).set(Double(targets.count))
        }
    }

    func direction(_ direction: TrafficDirection) -> DirectionMetrics {
        direction == .inbound ? inbound : outbound
    }
}

/// The handles for one direction.
final class DirectionMetrics: Sendable {
    let connectionsOpen: Gauge
    private let connectionsTotal: [Counter]  // by DetectedProtocol label
    let readFromSource: Counter
    let writtenToSource: Counter
    let readFromDestination: Counter
    let writtenToDestination: Counter
    private let requests: [Counter]  // protocol × status class
    /// `weft_request_duration_seconds` is kept per loop (`LoopContext.requestLatency`),
    /// with exemplars; this is its direction label.
    let direction: TrafficDirection
    private let errors: [Counter]  // by ProxyErrorKind
    private let retries: [Counter]  // by RetryReason
    private let budgetExhausted: Counter
    private let mirrors: [Counter]  // by MirrorResult
    /// Endpoints ejected after repeated failures (outbound).
    let ejections: Counter

    static let protocolLabels = ["http1", "http2", "tls", "opaque"]

    init(registry: PrometheusCollectorRegistry, direction: TrafficDirection) {
        let d = ("direction", direction.rawValue)
        self.direction = direction
        connectionsOpen = registry.makeGauge(
            descriptor: .init(metricName: "weft_connections_open", helpText: "Connections open through the proxy."),
            labels: [d])
        let connections = MetricNameDescriptor(
            metricName: "weft_connections", unitName: "total", helpText: "Connections accepted, by detected protocol.")
        connectionsTotal = Self.protocolLabels.map {
            registry.makeCounter(descriptor: connections, labels: [d, ("protocol", $0)])
        }
        let read = MetricNameDescriptor(
            metricName: "weft_tcp_read_bytes", unitName: "total",
            helpText: "Bytes read, from the source (client) or the destination (upstream).")
        let written = MetricNameDescriptor(
            metricName: "weft_tcp_write_bytes", unitName: "total",
            helpText: "Bytes written, to the source (client) or the destination (upstream).")
        readFromSource = registry.makeCounter(descriptor: read, labels: [d, ("peer", "src")])
        readFromDestination = registry.makeCounter(descriptor: read, labels: [d, ("peer", "dst")])
        writtenToSource = registry.makeCounter(descriptor: written, labels: [d, ("peer", "src")])
        writtenToDestination = registry.makeCounter(descriptor: written, labels: [d, ("peer", "dst")])
        let requestName = MetricNameDescriptor(
            metricName: "weft_requests", unitName: "total",
            helpText: "Requests proxied, by protocol and response status class.")
        requests = RequestProtocol.allCases.flatMap { proto in
            Telemetry.StatusClass.allCases.map { status in
                registry.makeCounter(
                    descriptor: requestName, labels: [d, ("protocol", proto.rawValue), ("status_class", status.label)])
            }
        }
        let errorName = MetricNameDescriptor(
            metricName: "weft_errors", unitName: "total",
            helpText: "Connections or requests the proxy failed or refused, by reason.")
        errors = ProxyErrorKind.allCases.map {
            registry.makeCounter(descriptor: errorName, labels: [d, ("error", $0.rawValue)])
        }
        let retryName = MetricNameDescriptor(
            metricName: "weft_retries", unitName: "total",
            helpText: "Requests sent again under an HTTPRoute retry policy, by reason.")
        retries = RetryReason.allCases.map {
            registry.makeCounter(descriptor: retryName, labels: [d, ("reason", $0.rawValue)])
        }
        ejections = registry.makeCounter(
            descriptor: MetricNameDescriptor(
                metricName: "weft_endpoint_ejections", unitName: "total",
                helpText: "Endpoints taken out of balancing after repeated failures (connect failures, resets, 5xx)."),
            labels: [d])
        budgetExhausted = registry.makeCounter(
            descriptor: MetricNameDescriptor(
                metricName: "weft_retry_budget_exhausted", unitName: "total",
                helpText: "Retries not made because the Service port's retry budget was spent."),
            labels: [d])
        let mirrorName = MetricNameDescriptor(
            metricName: "weft_mirror_requests", unitName: "total",
            helpText:
                "Copies of requests for an HTTPRoute RequestMirror filter, by how they ended or why none was sent.")
        mirrors = MirrorResult.allCases.map {
            registry.makeCounter(descriptor: mirrorName, labels: [d, ("result", $0.rawValue)])
        }
    }

    func connectionAccepted(_ detected: DetectedProtocol) {
        let index: Int
        switch detected {
        case .http1: index = 0
        case .http2: index = 1
        case .tls: index = 2
        case .opaque: index = 3
        }
        connectionsTotal[index].increment()
    }

    /// Counts a finished request (its duration goes to the loop's `requestLatency`).
    func requestFinished(_ proto: RequestProtocol, status: Int) {
        let statusIndex = Telemetry.statusClass(status).rawValue - 1
        requests[proto.metricIndex * Self.statusClassCount + statusIndex].increment()
    }

    func error(_ kind: ProxyErrorKind) {
        errors[kind.metricIndex].increment()
    }

    func retried(_ reason: RetryReason) {
        retries[reason.metricIndex].increment()
    }

    func retryBudgetExhausted() {
        budgetExhausted.increment()
    }

    func mirrored(_ result: MirrorResult) {
        mirrors[result.metricIndex].increment()
    }

    private static let statusClassCount = Telemetry.StatusClass.allCases.count
}

// Array positions of the handles, by switch: `allCases` builds a new array on every
// access, which the per-request path must not do.
extension RequestProtocol {
    var metricIndex: Int {
        switch self {
        case .http1: return 0
        case .http2: return 1
        case .grpc: return 2
        }
    }
}

extension ProxyErrorKind {
    var metricIndex: Int {
        switch self {
        case .connectFailed: return 0
        case .upstreamReset: return 1
        case .upstreamTimeout: return 2
        case .upstreamProtocol: return 3
        case .badRequest: return 4
        case .requestTimeout: return 5
        case .loop: return 6
        case .noOriginalDestination: return 7
        case .acceptFailed: return 8
        case .noRoute: return 9
        case .noEndpoints: return 10
        case .unresolvedBackend: return 11
        case .discoveryTimeout: return 12
        case .registryOnly: return 13
        case .peerIdentity: return 14
        case .tlsHandshake: return 15
        case .authzDenied: return 16
        case .mtlsRequired: return 17
        }
    }
}
