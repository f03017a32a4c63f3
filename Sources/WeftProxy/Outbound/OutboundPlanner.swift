import NIOCore

/// Where an outbound connection was headed, as the mesh sees it; decided when it is
/// accepted and looked up again only when the loop's snapshot changes.
struct OutboundBinding {
    /// The original destination.
    let key: AddressKey
    private var resolvedIn: UInt64?
    private var resolved = Resolved.passthrough

    enum Resolved: Equatable {
        /// A Service port (index in the snapshot): routes apply.
        case servicePort(Int)
        /// An endpoint of the mesh (a pod IP): it gets the request as is, no route applies.
        case endpoint
        /// Outside the mesh, while the mesh allows it (an HTTP request whose Host names a
        /// Service is still routed).
        case passthrough
        /// Outside the mesh, and the mesh is REGISTRY_ONLY (unless the Host names a Service).
        case refused
    }

    init(key: AddressKey) {
        self.key = key
    }

    /// - Parameter serial: the loop's install count for `snapshot` (`LoopContext.snapshotSerial`).
    mutating func resolve(in snapshot: MeshSnapshot, serial: UInt64) -> Resolved {
        if resolvedIn == serial { return resolved }
        resolvedIn = serial
        if let index = snapshot.servicePortByAddress[key] {
            resolved = .servicePort(index)
        } else if snapshot.endpointAddresses.contains(key.with(port: 0)) {
            resolved = .endpoint
        } else if snapshot.isRegistryOnly {
            resolved = .refused
        } else {
            resolved = .passthrough
        }
        return resolved
    }
}

/// An error the proxy answers a request with instead of forwarding it: one value, encoded
/// by each driver (an HTTP/1 response, HTTP/2 HEADERS and DATA, or gRPC status).
struct ProxyAnswer: Error {
    let status: Int
    let kind: ProxyErrorKind
    let detail: String
}

/// Where a request goes: the endpoint, and the rule that chose it (for its timeouts,
/// retries and metrics).
struct PlannedAttempt {
    let endpoint: LoopEndpoint
    /// Index in the snapshot's `servicePorts`.
    let servicePort: Int
    /// Index in that Service port's rules; nil for opaque traffic (no route applies).
    let rule: Int?
    let backend: Int
    /// The rule taken, when it sets timeouts, retries or filters (one reference, so an
    /// attempt stays small on the path of requests that need none of them).
    var policies: RouteRule? = nil
    /// The chosen backendRef's index in the rule's weighted backends (its own header
    /// modifiers are `backendFilters`); an index, so an attempt stays a few words wide.
    var backendEntry = -1
    /// How many bytes of the path the rule's PathPrefix match matched (ReplacePrefixMatch).
    var matchedPrefix = 0
    /// The (route, rule, backend) handles the request is counted in.
    var routeMetrics: RouteMetrics? = nil
    /// The loop's snapshot serial the indices above are of.
    var serial: UInt64 = 0
    /// When it was planned (`LoopContext.now()`): the attempt's start, read once.
    var plannedAt: UInt64 = 0

    var requestTimeoutMs: Int? { policies?.requestTimeoutMs }
    var backendRequestTimeoutMs: Int? { policies?.backendRequestTimeoutMs }
    /// The route's `namespace/name`, for messages.
    var route: String? { policies?.route }
    var retry: RetryPolicy? { policies?.retry }
    var filters: RouteFilters? { policies?.filters }
    /// The chosen backendRef's own header modifiers.
    var backendFilters: RouteFilters? {
        guard backendEntry >= 0, let policies else { return nil }
        return policies.backends.entries[backendEntry].filters
    }

    var hasTimeouts: Bool { requestTimeoutMs != nil || backendRequestTimeoutMs != nil }
    /// Whether a filter edits the request (headers, host or path).
    var editsRequest: Bool { (filters?.editsRequest ?? false) || (backendFilters?.editsRequest ?? false) }
    var editsResponse: Bool { filters?.responseHeaders != nil || backendFilters?.responseHeaders != nil }
}

enum PlanOutcome {
    case forward(PlannedAttempt)
    /// Not a mesh Service: forward to the original destination as it is.
    case passthrough
    case answer(ProxyAnswer)
    /// The rule redirects (RequestRedirect): answer with it, forward nothing.
    case redirect(RedirectPlan, matchedPrefix: Int)
    /// The Service's routes or a backend's endpoints have not arrived yet.
    case awaitDiscovery
}

/// resolve → route → backend → endpoint, for one request, shared by the HTTP/1 and HTTP/2
/// drivers (each passes a view of its own request head), and for opaque TCP without the
/// route step.
extension LoopContext {
    /// Plans an HTTP request on an outbound connection.
    /// - Parameter avoiding: an endpoint this request already failed to connect to.
    func plan<View: RequestHeadView>(
        _ binding: inout OutboundBinding, request: View, avoiding: LoopEndpoint? = nil
    ) -> PlanOutcome {
        let snapshot = self.snapshot
        let index: Int
        switch binding.resolve(in: snapshot, serial: snapshotSerial) {
        case .endpoint:
            return .passthrough
        case .passthrough:
            guard let named = servicePort(namedBy: request, port: Int(binding.key.port)) else { return .passthrough }
            index = named
        case .refused:
            guard let named = servicePort(namedBy: request, port: Int(binding.key.port)) else {
                return .answer(
                    ProxyAnswer(
                        status: 502, kind: .registryOnly,
                        detail: "the mesh is REGISTRY_ONLY and this destination is no Service or endpoint of it"))
            }
            index = named
        case .servicePort(let port):
            index = port
        }
        return route(servicePort: index, request: request, avoiding: avoiding)
    }

    /// route → backend → endpoint, for a request to a Service port.
    private func route<View: RequestHeadView>(servicePort index: Int, request: View, avoiding: LoopEndpoint?)
        -> PlanOutcome
    {
        let snapshot = self.snapshot
        noteUsed(servicePort: index)
        guard case .ready(let table) = snapshot.servicePorts[index].state else {
            requestDiscovery(of: snapshot.servicePorts[index].service)
            return .awaitDiscovery
        }
        guard let (ruleIndex, matchedPrefix) = table.matchedRule(request) else {
            let plan = snapshot.servicePorts[index]
            return .answer(
                ProxyAnswer(
                    status: 404, kind: .noRoute,
                    detail: "no rule of the routes of \(plan.service):\(plan.port) matches this request"))
        }
        let rule = table.rules[ruleIndex]
        if let redirect = rule.filters?.redirect { return .redirect(redirect, matchedPrefix: matchedPrefix) }
        guard let entry = rule.backends.pickEntry(using: &random) else {
            return .answer(
                ProxyAnswer(
                    status: 500, kind: .unresolvedBackend,
                    detail:
                        "route \(rule.route) rule \(rule.name ?? String(rule.ruleIndex)) has no backend with weight"
                ))
        }
        let backend = rule.backends.entries[entry].backend
        let slot = rule.backends.entries[entry].metricSlot
        var failure: PlanOutcome?
        let now = Self.now()
        guard
            let endpoint = pickEndpoint(backend: backend, now: now, avoiding: avoiding, failure: &failure)
        else { return failure! }
        var attempt = PlannedAttempt(endpoint: endpoint, servicePort: index, rule: ruleIndex, backend: backend)
        attempt.serial = snapshotSerial
        attempt.plannedAt = now
        if slot >= 0 && slot < routeMetrics.count { attempt.routeMetrics = routeMetrics[slot] }
        if rule.hasPolicies || rule.backends.entries[entry].filters != nil {
            attempt.policies = rule
            attempt.backendEntry = entry
            attempt.matchedPrefix = matchedPrefix
        }
        return .forward(attempt)
    }

    /// The Service port a request's Host (`:authority`) names as a cluster DNS name (`web`,
    /// `web.demo`, `web.demo.svc`, `web.demo.svc.cluster.local`, with or without a port),
    /// for a destination that is not itself in the mesh.
    private func servicePort<View: RequestHeadView>(namedBy request: View, port: Int) -> Int? {
        guard !snapshot.servicePortByHost.isEmpty else { return nil }
        return request.withAuthority { authority -> Int? in
            guard let authority, !authority.isEmpty else { return nil }
            var host = String(decoding: authority, as: UTF8.self).lowercased()
            var hostPort = port
            if let colon = host.lastIndex(of: ":"), !host.hasSuffix("]"),
                let number = Int(host[host.index(after: colon)...])
            {
                hostPort = number
                host = String(host[..<colon])
            }
            if host.hasSuffix(".") { host.removeLast() }
            return snapshot.servicePortByHost[HostPort(host: host, port: hostPort)]
        }
    }

    /// Plans an opaque (TCP or TLS) connection: a Service port goes to one of its own
    /// endpoints; routes do not apply.
    func planConnection(_ binding: inout OutboundBinding, avoiding: LoopEndpoint? = nil) -> PlanOutcome {
        let snapshot = self.snapshot
        switch binding.resolve(in: snapshot, serial: snapshotSerial) {
        case .passthrough, .endpoint: return .passthrough
        case .refused:
            return .answer(ProxyAnswer(status: 502, kind: .registryOnly, detail: "the mesh is REGISTRY_ONLY"))
        case .servicePort(let index):
            noteUsed(servicePort: index)
            let plan = snapshot.servicePorts[index]
            if case .awaitingDiscovery = plan.state {
                requestDiscovery(of: plan.service)
                return .awaitDiscovery
            }
            return pick(backend: plan.directBackend, servicePort: index, rule: nil, avoiding: avoiding)
        }
    }

    /// The endpoint of `backend` for this request, or (in `failure`) why there is none.
    private func pickEndpoint(backend: Int, now: UInt64, avoiding: LoopEndpoint?, failure: inout PlanOutcome?)
        -> LoopEndpoint?
    {
        noteUsed(backend: backend)
        if case .endpoints = snapshot.backends[backend].resolution,
            let endpoint = balancers[backend].pick(now: now, random: &random, avoiding: avoiding)
        {
            return endpoint
        }
        let plan = snapshot.backends[backend]
        switch plan.resolution {
        case .endpoints:
            failure = .answer(
                ProxyAnswer(
                    status: 503, kind: .noEndpoints,
                    detail: "backend \(plan.service):\(plan.port) has no ready endpoint"))
        case .awaitingDiscovery:
            requestDiscovery(of: plan.service)
            failure = .awaitDiscovery
        case .unresolved(let reason):
            failure = .answer(ProxyAnswer(status: 500, kind: .unresolvedBackend, detail: "backend: \(reason)"))
        }
        return nil
    }

    private func pick(backend: Int, servicePort: Int, rule: Int?, avoiding: LoopEndpoint?) -> PlanOutcome {
        noteUsed(backend: backend)
        let plan = snapshot.backends[backend]
        switch plan.resolution {
        case .awaitingDiscovery:
            requestDiscovery(of: plan.service)
            return .awaitDiscovery
        case .unresolved(let reason):
            return .answer(ProxyAnswer(status: 500, kind: .unresolvedBackend, detail: "backend: \(reason)"))
        case .endpoints:
            let now = Self.now()
            guard let endpoint = balancers[backend].pick(now: now, random: &random, avoiding: avoiding) else {
                return .answer(
                    ProxyAnswer(
                        status: 503, kind: .noEndpoints,
                        detail: "backend \(plan.service):\(plan.port) has no ready endpoint"))
            }
            var attempt = PlannedAttempt(endpoint: endpoint, servicePort: servicePort, rule: rule, backend: backend)
            attempt.plannedAt = now
            return .forward(attempt)
        }
    }

    /// The answer for a request whose destination's routes or endpoints did not arrive in time.
    func discoveryTimedOut(_ binding: OutboundBinding) -> ProxyAnswer {
        var binding = binding
        let service: String
        if case .servicePort(let index) = binding.resolve(in: snapshot, serial: snapshotSerial) {
            service = snapshot.servicePorts[index].service
        } else {
            service = "the destination"
        }
        return ProxyAnswer(
            status: 503, kind: .discoveryTimeout,
            detail:
                "routes and endpoints of \(service) did not arrive from the control plane within \(seconds(discoveryTimeout))"
        )
    }
}
