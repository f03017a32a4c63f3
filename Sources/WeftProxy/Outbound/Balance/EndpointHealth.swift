/// Whether the balancer may send an endpoint requests: failure accrual with exponential
/// backoff and a probe, as Linkerd's balancer does.
///
/// - Healthy: `threshold` consecutive failures (a connect failure or a 5xx; any success
///   resets the count) eject the endpoint.
/// - Ejected: no request until the backoff ends: 1 s, doubling per ejection in a row,
///   at most 60 s.
/// - Probing: the backoff has ended; one request (the probe) may go. Its success makes
///   the endpoint healthy; its failure ejects it again, for twice as long.
///
/// When every endpoint of a balancer is ejected, the balancer picks among all of them
/// rather than fail every request (Envoy's panic mode); that decision is the balancer's,
/// so `isEligible` only answers for one endpoint. A value type with time passed in
/// (nanoseconds of a monotonic clock): tested with a fake clock.
struct EndpointHealth: Sendable, Equatable {
    static let threshold = 7
    static let baseBackoffNanoseconds: UInt64 = 1_000_000_000
    static let maxBackoffNanoseconds: UInt64 = 60_000_000_000

    enum State: Sendable, Equatable {
        case healthy(consecutiveFailures: Int)
        /// `ejections`: how many ejections in a row, the first being 1.
        case ejected(until: UInt64, ejections: Int)
        case probing(ejections: Int, probeInFlight: Bool)
    }

    private(set) var state = State.healthy(consecutiveFailures: 0)

    /// Whether a request may go to this endpoint now (a probe only once at a time).
    /// Moves an ejection whose backoff ended to probing.
    mutating func isEligible(now: UInt64) -> Bool {
        switch state {
        case .healthy:
            return true
        case .ejected(let until, let ejections):
            guard now >= until else { return false }
            state = .probing(ejections: ejections, probeInFlight: false)
            return true
        case .probing(_, let probeInFlight):
            return !probeInFlight
        }
    }

    /// A request leaves for the endpoint (the probe, when probing).
    mutating func requestStarted() {
        if case .probing(let ejections, _) = state { state = .probing(ejections: ejections, probeInFlight: true) }
    }

    /// The endpoint answered without failing.
    mutating func succeeded() {
        state = .healthy(consecutiveFailures: 0)
    }

    /// The endpoint failed a request (connect failure, reset or 5xx).
    /// - Returns: true when this failure ejects it.
    @discardableResult
    mutating func failed(now: UInt64) -> Bool {
        switch state {
        case .healthy(let failures):
            guard failures + 1 >= Self.threshold else {
                state = .healthy(consecutiveFailures: failures + 1)
                return false
            }
            state = .ejected(until: now + Self.backoff(ejections: 1), ejections: 1)
            return true
        case .probing(let ejections, _):
            state = .ejected(until: now + Self.backoff(ejections: ejections + 1), ejections: ejections + 1)
            return true
        case .ejected:
            return false  // a request that was already in flight when it was ejected
        }
    }

    /// A request to the endpoint ended without a verdict on it (cancelled by its client):
    /// a probe that did not finish frees the probe slot.
    mutating func abandoned() {
        if case .probing(let ejections, true) = state { state = .probing(ejections: ejections, probeInFlight: false) }
    }

    static func backoff(ejections: Int) -> UInt64 {
        let doublings = min(max(0, ejections - 1), 16)
        return min(baseBackoffNanoseconds << UInt64(doublings), maxBackoffNanoseconds)
    }

    var isEjected: Bool {
        if case .ejected = state { return true }
        return false
    }
}
