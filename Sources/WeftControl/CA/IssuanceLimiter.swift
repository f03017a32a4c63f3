/// Rate limits on certificate issuance: one token bucket per pod and one per source
/// address, and an issuance needs a token from both (docs/operations.md, "The bootstrap
/// token's threat model").
///
/// A pod that reconnects gets its identity again at once (the buckets start full and the
/// burst covers restarts); a client that asks again and again is refused with
/// `rate_limited` until its bucket refills. Time is passed in, so the limiter is a value
/// tested with a fake clock.
struct IssuanceLimiter: Sendable {
    /// A bucket's size and refill rate.
    struct Rate: Sendable, Equatable {
        var burst: Int
        /// Seconds for one token to come back.
        var secondsPerToken: Int
    }

    /// Why an issuance was refused, and when to try again.
    struct Refusal: Sendable, Equatable, CustomStringConvertible {
        var key: String
        var rate: Rate
        var retryAfterSeconds: Int

        var description: String {
            "issuance for \(key) is rate-limited (\(rate.burst) at once, then one every \(rate.secondsPerToken) s); retry in \(retryAfterSeconds) s"
        }
    }

    /// 10 at once per pod, then one every 6 s: restarts and renewals never come near it.
    static let defaultPerPod = Rate(burst: 10, secondsPerToken: 6)
    /// 40 at once per address, then one a second: a node's pods start together, and one
    /// client can no longer mint a certificate per request.
    static let defaultPerSource = Rate(burst: 40, secondsPerToken: 1)

    private var perPod: Buckets
    private var perSource: Buckets

    init(perPod: Rate = defaultPerPod, perSource: Rate = defaultPerSource, maxKeys: Int = 10_000) {
        self.perPod = Buckets(rate: perPod, maxKeys: maxKeys)
        self.perSource = Buckets(rate: perSource, maxKeys: maxKeys)
    }

    /// Takes a token for `pod` ("namespace/name") and one for `source` (an IP address), or
    /// neither.
    /// - Parameter nowNanoseconds: a monotonic clock reading.
    /// - Returns: nil when admitted, else the bucket that refused.
    mutating func admit(pod: String, source: String, nowNanoseconds: UInt64) -> Refusal? {
        if let refusal = perPod.refusal(pod, label: "pod \(pod)", now: nowNanoseconds) { return refusal }
        if let refusal = perSource.refusal(source, label: "address \(source)", now: nowNanoseconds) { return refusal }
        perPod.take(pod, now: nowNanoseconds)
        perSource.take(source, now: nowNanoseconds)
        return nil
    }

    /// Token buckets by key, kept in fixed-point (one token is `scale` units) so that no
    /// floating point drifts. Full buckets are forgotten when the table grows past
    /// `maxKeys`: a forgotten bucket and a full one admit the same.
    struct Buckets: Sendable {
        private static let scale: UInt64 = 1_000_000_000  // one token per second, in nanoseconds
        let rate: Rate
        let maxKeys: Int
        /// Per key: the instant at which the bucket is full again.
        private var fullAt: [String: UInt64] = [:]

        init(rate: Rate, maxKeys: Int) {
            self.rate = rate
            self.maxKeys = maxKeys
        }

        private var tokenNanoseconds: UInt64 { UInt64(rate.secondsPerToken) * Self.scale }
        private var capacityNanoseconds: UInt64 { UInt64(rate.burst) * tokenNanoseconds }

        /// Nanoseconds of tokens missing from the bucket at `now` (0 when full).
        private func deficit(_ key: String, now: UInt64) -> UInt64 {
            guard let full = fullAt[key], full > now else { return 0 }
            return full - now
        }

        func refusal(_ key: String, label: String, now: UInt64) -> Refusal? {
            let missing = deficit(key, now: now)
            // A token is available while the deficit leaves room for one more.
            guard missing + tokenNanoseconds > capacityNanoseconds else { return nil }
            let wait = missing + tokenNanoseconds - capacityNanoseconds
            let seconds = Int((wait + Self.scale - 1) / Self.scale)
            return Refusal(key: label, rate: rate, retryAfterSeconds: max(1, seconds))
        }

        mutating func take(_ key: String, now: UInt64) {
            fullAt[key] = now + deficit(key, now: now) + tokenNanoseconds
            if fullAt.count > maxKeys {
                fullAt = fullAt.filter { $0.value > now }
            }
        }

        var count: Int { fullAt.count }
    }

    /// Keys held, for tests of the table's bound.
    var keysHeld: (pods: Int, sources: Int) { (perPod.count, perSource.count) }
}
