import Glibc

/// One endpoint's load as Linkerd's balancer sees it: a peak-sensitive exponentially
/// weighted moving average of its response latency, times the requests in flight.
///
/// - A sample above the estimate replaces it at once (peak): a slowing endpoint is
///   avoided from its first slow response.
/// - Otherwise the estimate moves towards the sample by `1 - e^(-Δt/τ)`, where Δt is the
///   time since the last update and τ the decay (10 s, Linkerd's default): an endpoint
///   that recovers is trusted again over seconds, not at once.
/// - Cost is `estimate × (pending + 1)`: of two endpoints equally fast, the less busy
///   wins; an idle slow endpoint can still beat a busy fast one.
///
/// A new endpoint is tried first: while it has no sample and nothing in flight its cost is
/// zero, so it gets a request as soon as the balancer draws it, and its first response
/// sets its estimate. While that first request is in flight it costs `defaultRTT` (30 ms,
/// Linkerd's default) per pending request, so it is not flooded before it has answered.
/// (Starting every new endpoint at 30 ms, as Linkerd does, leaves a new endpoint untried
/// under light load for as long as the others answer faster than its decaying default.) Time is passed in (nanoseconds of a monotonic clock), so the
/// type is tested with a fake clock.
struct PeakEWMA: Sendable, Equatable {
    static let defaultRTTNanoseconds: Double = 30_000_000
    static let decayNanoseconds: Double = 10_000_000_000

    /// The latency estimate, in nanoseconds.
    private(set) var estimate: Double
    /// When `estimate` was last updated.
    private var stamp: UInt64
    /// Requests sent and not yet answered.
    private(set) var pending = 0

    init(now: UInt64, defaultRTTNanoseconds: Double = PeakEWMA.defaultRTTNanoseconds) {
        estimate = defaultRTTNanoseconds
        stamp = now
    }

    /// Whether a response has set the estimate yet.
    private(set) var isSampled = false

    /// The balancer's cost of sending this endpoint one more request.
    func cost(now: UInt64) -> Double {
        if !isSampled && pending == 0 { return 0 }
        return decayed(now: now) * Double(pending + 1)
    }

    /// A request leaves for this endpoint.
    mutating func start() { pending += 1 }

    /// A request ends after `rtt` nanoseconds (its response head, or its failure).
    mutating func finish(rttNanoseconds rtt: UInt64, now: UInt64) {
        pending = max(0, pending - 1)
        observe(Double(rtt), now: now)
    }

    /// A request ends without a latency worth learning from (cancelled by its client).
    mutating func abandon() { pending = max(0, pending - 1) }

    private mutating func observe(_ sample: Double, now: UInt64) {
        if !isSampled {
            isSampled = true
            estimate = sample
        } else if sample > estimate {
            estimate = sample
        } else {
            let elapsed = Double(now &- stamp)
            let weight = now > stamp ? exp(-elapsed / Self.decayNanoseconds) : 1
            estimate = estimate * weight + sample * (1 - weight)
        }
        stamp = max(stamp, now)
    }

    /// The estimate decayed towards zero for the time without samples, as Linkerd does,
    /// so that an endpoint not used for a while is tried again.
    private func decayed(now: UInt64) -> Double {
        guard now > stamp else { return estimate }
        return estimate * exp(-Double(now - stamp) / Self.decayNanoseconds)
    }
}
