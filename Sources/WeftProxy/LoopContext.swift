import NIOCore

/// What one event loop decides with: the current `MeshSnapshot`, the loop's balancers
/// (same indices as the snapshot's backends) and endpoints, its random generator, and the
/// requests waiting for a destination's first routes and endpoints. Only its own loop
/// touches it, so nothing here takes a lock.
final class LoopContext {
    let eventLoop: EventLoop
    /// How long a request waits for a just-subscribed destination's routes and endpoints.
    let discoveryTimeout: TimeAmount
    private(set) var snapshot = MeshSnapshot.empty
    /// Counts installs: what a connection or request resolved against names the snapshot by
    /// it (an object identifier could be reused by a later snapshot at the same address).
    private(set) var snapshotSerial: UInt64 = 0
    private(set) var balancers: [LoopBalancer] = []
    /// The retry budget of each Service port (same indices as the snapshot's `servicePorts`).
    private var budgets: [RetryBudget] = []
    /// Which Service ports and backends requests used since the last `takeUsedServices`
    /// (marked with the current `usageTick`: one array store per request, no string), and
    /// the Services used under snapshots installed since.
    private var portUsage: [UInt32] = []
    private var backendUsage: [UInt32] = []
    private var usageTick: UInt32 = 1
    private var usedBeforeInstall: Set<String> = []
    private var endpointsByKey: [AddressKey: LoopEndpoint] = [:]
    var random = LoopRandom()
    private var waiters: [(deadline: NIODeadline, resume: (Bool) -> Void)] = []
    private var waiterTimer: Scheduled<Void>?

    private let meshStore: MeshStore?
    let metrics: ProxyMetrics?
    /// RequestMirror copies out now (bounded by `RequestMirror.maxInFlight`).
    var mirrorsInFlight = 0
    /// The loop's HTTP/2 connections for mirrored copies, made on first use.
    var http2Mirrors: HTTP2MirrorClient {
        if let client = http2MirrorClient { return client }
        let client = HTTP2MirrorClient(eventLoop: eventLoop)
        http2MirrorClient = client
        return client
    }
    private var http2MirrorClient: HTTP2MirrorClient?

    /// Closes the mirror connections (graceful shutdown).
    func closeMirrorConnections() {
        http2MirrorClient?.closeAll()
    }
    /// The route metrics of the current snapshot, by slot.
    private(set) var routeMetrics: [RouteMetrics] = []
    /// Every route metric this loop has made, by labels: its latency counts live here, so a
    /// label set keeps counting across snapshots (bounded by the config's churn, not by traffic).
    private var routeMetricsByLabels: [RouteMetricLabels: RouteMetrics] = [:]
    var allRouteMetrics: Dictionary<RouteMetricLabels, RouteMetrics>.Values { routeMetricsByLabels.values }
    /// The current snapshot's authorization counters; nil when it has no policy and no
    /// STRICT mode (nothing is counted then).
    private(set) var authzCounters: AuthzCounters?

    /// `weft_request_duration_seconds` of this loop, by direction and protocol
    /// (`requestLatency(_:_:)`): counted without a lock, with exemplars.
    private let requestLatencies: [LatencyCounts] = (0..<(2 * RequestProtocol.allCases.count)).map { _ in
        LatencyCounts()
    }

    func requestLatency(_ direction: TrafficDirection, _ proto: RequestProtocol) -> LatencyCounts {
        requestLatencies[(direction == .inbound ? RequestProtocol.allCases.count : 0) + proto.metricIndex]
    }

    /// Where this loop's finished spans wait for export; nil when the proxy exports none.
    let spans: SpanQueue?
    /// The pod's traced inbound requests in flight (shared by the loops), for the links
    /// inferred from them.
    let inflight: InflightRequests

    init(
        eventLoop: EventLoop, discoveryTimeout: TimeAmount, meshStore: MeshStore? = nil, metrics: ProxyMetrics? = nil,
        traceExport: TraceExportSettings? = nil, inflight: InflightRequests = InflightRequests()
    ) {
        self.eventLoop = eventLoop
        self.inflight = inflight
        if let traceExport, let metrics {
            spans = SpanQueue(eventLoop: eventLoop, settings: traceExport, metrics: metrics.spans)
        } else {
            spans = nil
        }
        self.discoveryTimeout = discoveryTimeout
        self.meshStore = meshStore
        self.metrics = metrics
    }

    /// The TLS for mesh traffic (origination and termination), as the control client last
    /// installed it; nil without a control plane or before an identity. Read per new
    /// connection, never per request.
    var meshTLS: MeshTLS? { meshStore?.meshTLS }

    /// Counts a mesh TLS handshake this proxy refused (inbound) or could not complete
    /// (outbound: a failed handshake or a wrong identity), for the control plane.
    func recordTLSFailure(inbound: Bool, detail: String) {
        meshStore?.recordTLSFailure(inbound: inbound, detail: detail)
    }

    /// Counts an outbound connect failure when it was mesh TLS's.
    func recordTLSFailure(_ failure: ConnectFailure) {
        if failure.kind == .tlsHandshake || failure.kind == .peerIdentity {
            recordTLSFailure(inbound: false, detail: failure.detail)
        }
    }

    /// Subscribes to a destination's routes and endpoints (the store sends each Service
    /// to the control plane once).
    func requestDiscovery(of service: String) {
        meshStore?.subscribe(service)
    }

    /// Makes `snapshot` current: balancers are rebuilt, each endpoint that stays keeps its
    /// load and health, and requests waiting for discovery try again.
    func install(_ snapshot: MeshSnapshot) {
        eventLoop.preconditionInEventLoop()
        let now = Self.now()
        var kept: [AddressKey: LoopEndpoint] = [:]
        balancers = snapshot.backends.map { backend in
            guard case .endpoints(let targets) = backend.resolution else { return LoopBalancer(endpoints: []) }
            return LoopBalancer(
                endpoints: targets.map { target in
                    if let endpoint = kept[target.key] { return endpoint }
                    let endpoint =
                        endpointsByKey[target.key].flatMap { $0.target == target ? $0 : nil }
                        ?? LoopEndpoint(target: target, now: now, ejections: metrics?.outbound.ejections)
                    kept[target.key] = endpoint
                    return endpoint
                })
        }
        endpointsByKey = kept
        usedBeforeInstall.formUnion(usedServices())
        portUsage = Array(repeating: 0, count: snapshot.servicePorts.count)
        backendUsage = Array(repeating: 0, count: snapshot.backends.count)
        // Budgets carry over per Service port while the mesh's budget settings stay.
        var oldBudgets: [String: RetryBudget] = [:]
        if snapshot.retryBudget == self.snapshot.retryBudget {
            for (index, plan) in self.snapshot.servicePorts.enumerated() where index < budgets.count {
                oldBudgets["\(plan.service):\(plan.port)"] = budgets[index]
            }
        }
        let settings = snapshot.retryBudget
        budgets = snapshot.servicePorts.map { plan in
            oldBudgets["\(plan.service):\(plan.port)"]
                ?? RetryBudget(
                    ratio: settings.ratio, minPerSecond: settings.minRetriesPerSecond,
                    windowSeconds: max(1, settings.windowMs / 1000), now: now)
        }
        if let metrics {
            routeMetrics = snapshot.routeMetricLabels.map { labels in
                if let existing = routeMetricsByLabels[labels] { return existing }
                let made = RouteMetrics(registry: metrics.registry, labels: labels)
                routeMetricsByLabels[labels] = made
                return made
            }
            metrics.setEndpointCounts(snapshot)
            authzCounters =
                snapshot.inbound.isOpen ? nil : AuthzCounters(registry: metrics.registry, authorizer: snapshot.inbound)
        }
        self.snapshot = snapshot
        snapshotSerial &+= 1
        let waiting = waiters
        waiters = []
        waiterTimer?.cancel()
        waiterTimer = nil
        for waiter in waiting { waiter.resume(true) }
    }

    /// Calls `resume(true)` when the next snapshot is installed, or `resume(false)` at
    /// `deadline`, whichever comes first.
    func waitForDiscovery(until deadline: NIODeadline, _ resume: @escaping (Bool) -> Void) {
        waiters.append((deadline, resume))
        scheduleWaiterTimer()
    }

    private func scheduleWaiterTimer() {
        guard waiterTimer == nil, let earliest = waiters.map(\.deadline).min() else { return }
        waiterTimer = eventLoop.scheduleTask(deadline: earliest) { [self] in
            waiterTimer = nil
            let now = eventLoop.now
            let expired = waiters.filter { $0.deadline <= now }
            waiters.removeAll { $0.deadline <= now }
            for waiter in expired { waiter.resume(false) }
            scheduleWaiterTimer()
        }
    }

    /// Marks a Service port as used by a request.
    func noteUsed(servicePort: Int) {
        if servicePort < portUsage.count { portUsage[servicePort] = usageTick }
    }

    /// Marks a backend as used by a request.
    func noteUsed(backend: Int) {
        if backend < backendUsage.count { backendUsage[backend] = usageTick }
    }

    private func usedServices() -> Set<String> {
        var used = Set<String>()
        for (index, tick) in portUsage.enumerated() where tick == usageTick && index < snapshot.servicePorts.count {
            used.insert(snapshot.servicePorts[index].service)
        }
        for (index, tick) in backendUsage.enumerated() where tick == usageTick && index < snapshot.backends.count {
            used.insert(snapshot.backends[index].service)
        }
        return used
    }

    /// The Services requests used since the last call (for idle unsubscription).
    func takeUsedServices() -> Set<String> {
        let used = usedServices().union(usedBeforeInstall)
        usedBeforeInstall = []
        usageTick &+= 1
        if usageTick == 0 { usageTick = 1 }
        return used
    }

    /// A request to a Service port was sent (it adds to that port's retry budget).
    /// - Parameter now: `now()`, when the caller has read it already.
    func requestSent(servicePort: Int, now: UInt64 = now()) {
        guard servicePort < budgets.count else { return }
        budgets[servicePort].deposit(now: now)
    }

    /// Takes one retry from a Service port's budget; false when it is spent.
    /// - Parameter serial: the snapshot the index is of; a retry under another one (the
    ///   config changed meanwhile, so the index may name another Service port) is not made.
    func withdrawRetry(servicePort: Int, serial: UInt64) -> Bool {
        guard serial == snapshotSerial, servicePort < budgets.count else { return false }
        return budgets[servicePort].withdraw(now: Self.now())
    }

    /// Nanoseconds of the monotonic clock the balancers' state is kept in.
    static func now() -> UInt64 { NIODeadline.now().uptimeNanoseconds }
}

@available(*, unavailable)
extension LoopContext: Sendable {}
