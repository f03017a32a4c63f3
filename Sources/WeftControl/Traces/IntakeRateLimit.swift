import Synchronization

/// Requests per second each client address may make to the span intake: one token bucket
/// per address (`rate` a second, up to `burst`), so a client that floods the intake is
/// answered 429 while every other client goes on.
///
/// Sidecars send one export a second per event loop, and one per 512 spans under load
/// (about 20 a second per sidecar at 10,000 sampled requests a second): the default leaves
/// them plenty. The buckets of at most `maxClients` addresses are kept; past that, those
/// idle longest go first (a full bucket is as good as a new one).
final class IntakeRateLimit: Sendable {
    let rate: Double
    let burst: Double
    let maxClients: Int
    private let buckets = Mutex<[String: Bucket]>([:])

    private struct Bucket {
        var tokens: Double
        var updated: UInt64
    }

    /// - Parameters:
    ///   - rate: requests a second per client address; 0 turns the limit off.
    ///   - burst: requests at once (default: two seconds' worth, at least 1).
    init(rate: Double, burst: Double? = nil, maxClients: Int = 10_000) {
        self.rate = rate
        self.burst = burst ?? max(1, rate * 2)
        self.maxClients = maxClients
    }

    /// Takes a token for a request from `client` at `now` (nanoseconds of a monotonic
    /// clock); false when it has none left.
    func admit(_ client: String, now: UInt64) -> Bool {
        guard rate > 0 else { return true }
        return buckets.withLock { buckets in
            var bucket = buckets[client] ?? Bucket(tokens: burst, updated: now)
            let elapsed = Double(now &- min(now, bucket.updated)) / 1e9
            bucket.tokens = min(burst, bucket.tokens + elapsed * rate)
            bucket.updated = now
            let admitted = bucket.tokens >= 1
            if admitted { bucket.tokens -= 1 }
            if buckets[client] == nil && buckets.count >= maxClients { forgetIdlest(&buckets) }
            buckets[client] = bucket
            return admitted
        }
    }

    /// Addresses with a bucket (for tests).
    var clients: Int { buckets.withLock { $0.count } }

    private func forgetIdlest(_ buckets: inout [String: Bucket]) {
        // Rare (a new client past `maxClients`): drop the idlest tenth at once.
        let idlest = buckets.sorted { $0.value.updated < $1.value.updated }.prefix(max(1, maxClients / 10))
        for (client, _) in idlest { buckets[client] = nil }
    }
}
