import NIOCore

/// The attempts of one routed request, shared by the HTTP/1 and HTTP/2 drivers: the
/// endpoint the current attempt went to and since when, the connect failures, the retry
/// state, the Service port whose budget it draws on, and the route metrics it is counted
/// in. It decides what happens after each event (another endpoint, a retry after a
/// backoff, or the failure goes back to the client) and reports every attempt's outcome
/// to its endpoint exactly once; the driver does the I/O.
struct ExchangeAttempts {
    /// Endpoints one attempt may try to connect to (nothing was sent to the others).
    static let maxConnects = 3

    /// The current attempt's endpoint, until its outcome is reported.
    private(set) var endpoint: LoopEndpoint?
    private var startedAt: UInt64 = 0
    private var connectFailures = 0
    private(set) var retry: ExchangeRetry?
    /// The Service port the request went to (its retry budget) and the snapshot serial
    /// that index is of; nil until the first attempt.
    private(set) var servicePort: Int?
    private var serial: UInt64 = 0
    /// The (route, rule, backend) the request is counted in, when routed.
    private(set) var routeMetrics: RouteMetrics?

    /// Retries made so far (0 on the first attempt).
    var retries: Int { retry?.retries ?? 0 }
    /// Whether the planner has sent the request anywhere yet.
    var hasBegun: Bool { servicePort != nil }

    /// The planner chose `attempt.endpoint`. The first attempt of a request adds to its
    /// Service port's retry budget and takes the rule's retry policy and metrics; returns
    /// whether this was it.
    @discardableResult @inline(__always)
    mutating func begin(_ attempt: PlannedAttempt, mesh: LoopContext) -> Bool {
        attempt.endpoint.requestStarted()
        endpoint = attempt.endpoint
        startedAt = attempt.plannedAt
        guard servicePort == nil else { return false }
        servicePort = attempt.servicePort
        serial = attempt.serial
        routeMetrics = attempt.routeMetrics
        mesh.requestSent(servicePort: attempt.servicePort, now: attempt.plannedAt)
        if let policy = attempt.retry { retry = ExchangeRetry(policy: policy) }
        return true
    }

    enum Verdict { case succeeded, failed, abandoned }

    /// Reports the current attempt's outcome to its endpoint (latency, health), once.
    @inline(__always)
    mutating func settle(_ verdict: Verdict) {
        guard let endpoint else { return }
        self.endpoint = nil
        switch verdict {
        case .abandoned:
            endpoint.requestAbandoned()
        case .succeeded, .failed:
            let now = LoopContext.now()
            endpoint.requestFinished(rttNanoseconds: now &- startedAt, now: now, failed: verdict == .failed)
        }
    }

    /// The connect for the current attempt failed (nothing was sent): the endpoint to
    /// avoid when another one may be tried, nil when the request fails.
    mutating func connectFailed() -> LoopEndpoint? {
        let failed = endpoint
        settle(.failed)
        connectFailures += 1
        guard let failed, connectFailures < Self.maxConnects else { return nil }
        return failed
    }

    /// Counts body bytes sent on the first attempt for its replay; false once they no
    /// longer fit (or the route does not retry): the driver stops keeping them.
    mutating func keep(bodyBytes count: Int) -> Bool {
        guard retry != nil else { return false }
        return retry!.keep(bodyBytes: count)
    }

    /// After a failed attempt (a status the rule retries, a reset before any response, the
    /// attempt's timeout; `grpcStatus`: a trailers-only gRPC status): when the policy, the
    /// replay buffer and the budget allow a retry, settles the failed attempt and returns
    /// the backoff, the retry's number and the endpoint to avoid. Counted in `metrics`.
    mutating func retryAfterFailure(
        status: Int?, grpcStatus: Int? = nil, requestComplete: Bool, reason: RetryReason, metrics: DirectionMetrics,
        mesh: LoopContext
    ) -> (backoff: TimeAmount, attempt: Int, avoiding: LoopEndpoint?)? {
        guard var state = retry, let servicePort else { return nil }
        let serial = self.serial
        let next = state.next(
            status: status, grpcStatus: grpcStatus, requestComplete: requestComplete, reason: reason,
            metrics: metrics
        ) { mesh.withdrawRetry(servicePort: servicePort, serial: serial) }
        retry = state
        guard let (backoff, attempt) = next else { return nil }
        let failed = endpoint
        settle(.failed)
        connectFailures = 0
        return (backoff, attempt, failed)
    }

    /// Records the finished request in its route metrics, once; a traced request's span
    /// becomes its latency bucket's exemplar.
    @inline(__always)
    mutating func recordFinished(status: Int, nanoseconds: UInt64, span: ExchangeSpan? = nil) {
        routeMetrics.take()?.record(status: status, nanoseconds: nanoseconds, span: span)
    }

    /// Ready for the connection's next request (HTTP/1 keep-alive). An attempt still
    /// unsettled is abandoned (it taught its endpoint nothing).
    @inline(__always)
    mutating func reset() {
        if endpoint != nil { settle(.abandoned) }
        guard servicePort != nil || connectFailures > 0 else { return }
        connectFailures = 0
        retry = nil
        servicePort = nil
        routeMetrics = nil
    }
}
