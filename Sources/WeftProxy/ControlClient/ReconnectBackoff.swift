/// How long the control client waits before it reconnects (docs/protocol.md §13).
///
/// Full-jitter exponential backoff: before retry *n* (n = 0 first) a uniformly random
/// delay in [100 ms, min(30 s, 0.5 s × 2ⁿ)]. The 100 ms floor keeps a fleet of proxies
/// that lost the same control plane from reconnecting in the same instant. The retry
/// count starts over only after a session that lasted `resetAfter`: a control plane
/// that accepts connections and then drops them (a crash loop, a refusal after hello)
/// still sees backoff grow, not a reconnect every 100 ms.
struct ReconnectBackoff {
    static let floor = Duration.milliseconds(100)
    static let base = Duration.milliseconds(500)
    static let ceiling = Duration.seconds(30)
    static let resetAfter = Duration.seconds(30)

    /// Retries since the last session that lasted `resetAfter`.
    private(set) var retries = 0

    /// The delay before the next attempt, given how long the session that just ended lasted.
    mutating func delay(afterSessionOf lasted: Duration, using random: inout some RandomNumberGenerator) -> Duration {
        if lasted >= Self.resetAfter { retries = 0 }
        let upperMs = Self.milliseconds(Self.upperBound(retry: retries))
        retries += 1
        let floorMs = Self.milliseconds(Self.floor)
        return .milliseconds(Int.random(in: floorMs...max(floorMs, upperMs), using: &random))
    }

    /// The largest delay retry `n` can draw.
    static func upperBound(retry n: Int) -> Duration {
        .milliseconds(min(milliseconds(ceiling), milliseconds(base) << min(n, 16)))
    }

    private static func milliseconds(_ d: Duration) -> Int {
        Int(d.components.seconds) * 1000 + Int(d.components.attoseconds / 1_000_000_000_000_000)
    }
}
