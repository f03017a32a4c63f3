import WeftTelemetry

/// One endpoint as one event loop sees it: its load (peak EWMA and requests in flight),
/// its health (failure accrual, ejection, probe) and its HTTP/1 pool bucket.
///
/// Shared by every backend of the loop that lists the same address (a pod behind both
/// `web` and `web-v1` is one endpoint with one latency), and carried from one snapshot to
/// the next while the address stays, so a config change keeps what was learnt. An
/// exchange holds its endpoint until it ends, so an endpoint removed from the config
/// still gets its in-flight requests' feedback, then goes with the last of them.
final class LoopEndpoint {
    let target: EndpointTarget
    private(set) var load: PeakEWMA
    private(set) var health = EndpointHealth()
    /// Set by the HTTP/1 driver on first use: requests to this endpoint check connections
    /// out of it without a lookup.
    var http1Bucket: HTTP1UpstreamPool.Bucket?
    /// Its address and identity as spans name them, made once.
    private(set) lazy var spanPeer = SpanPeer(endpoint: target.address, identity: target.identity)

    /// Counts this endpoint's ejections (`weft_endpoint_ejections_total`).
    private let ejections: Counter?

    init(target: EndpointTarget, now: UInt64, ejections: Counter? = nil) {
        self.target = target
        self.load = PeakEWMA(now: now)
        self.ejections = ejections
    }

    /// A request leaves for this endpoint.
    func requestStarted() {
        load.start()
        health.requestStarted()
    }

    /// A request's response head came (or it failed) after `rtt`.
    /// - Parameter failed: a connect failure, a reset before the response, or a 5xx.
    /// - Returns: true when this failure ejected the endpoint.
    @discardableResult
    func requestFinished(rttNanoseconds rtt: UInt64, now: UInt64, failed: Bool) -> Bool {
        load.finish(rttNanoseconds: rtt, now: now)
        if failed {
            let ejected = health.failed(now: now)
            if ejected { ejections?.increment() }
            return ejected
        }
        health.succeeded()
        return false
    }

    /// A request ended with no verdict on the endpoint (its client went).
    func requestAbandoned() {
        load.abandon()
        health.abandoned()
    }

    /// Whether the balancer may pick it now (moves an ended ejection to probing).
    func isEligible(now: UInt64) -> Bool { health.isEligible(now: now) }

    func cost(now: UInt64) -> Double { load.cost(now: now) }
}

@available(*, unavailable)
extension LoopEndpoint: Sendable {}

/// The endpoints of one backend on one event loop, and the pick: power of two choices
/// over peak-EWMA cost among the eligible endpoints (Linkerd's balancer). When every
/// endpoint is ejected, it picks among all of them rather than fail every request
/// (Envoy's panic mode).
final class LoopBalancer {
    let endpoints: [LoopEndpoint]

    init(endpoints: [LoopEndpoint]) {
        self.endpoints = endpoints
    }

    /// The endpoint for the next request; nil when the backend has none.
    /// - Parameter avoiding: an endpoint that just failed this request's connect; picked
    ///   only when it is the only one.
    func pick<R: RandomNumberGenerator>(now: UInt64, random: inout R, avoiding: LoopEndpoint? = nil) -> LoopEndpoint? {
        let count = endpoints.count
        switch count {
        case 0: return nil
        case 1:
            _ = endpoints[0].isEligible(now: now)
            return endpoints[0]
        default: break
        }
        let first = Int(random.next(upperBound: UInt64(count)))
        var second = Int(random.next(upperBound: UInt64(count - 1)))
        if second >= first { second += 1 }
        let a = endpoints[first]
        let b = endpoints[second]
        let aOK = a !== avoiding && a.isEligible(now: now)
        let bOK = b !== avoiding && b.isEligible(now: now)
        switch (aOK, bOK) {
        case (true, true): return b.cost(now: now) < a.cost(now: now) ? b : a
        case (true, false): return a
        case (false, true): return b
        case (false, false): break
        }
        // Both draws were ejected (or the one to avoid): the first eligible endpoint from a
        // random start, so that ejections do not pile load on one neighbour.
        for step in 0..<count {
            let endpoint = endpoints[(first + step) % count]
            if endpoint !== avoiding && endpoint.isEligible(now: now) { return endpoint }
        }
        // Panic mode: every endpoint is ejected; balance over all of them.
        if let avoiding, a === avoiding { return b }
        if let avoiding, b === avoiding { return a }
        return b.cost(now: now) < a.cost(now: now) ? b : a
    }
}

@available(*, unavailable)
extension LoopBalancer: Sendable {}
