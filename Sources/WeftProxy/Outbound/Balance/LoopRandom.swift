import W3CTraceContext

/// A per-event-loop pseudo-random generator (xoshiro256**), seeded once from the system.
///
/// `SystemRandomNumberGenerator` makes a `getrandom` syscall per call on Linux; a
/// balancer draws two numbers per request, so each loop keeps its own generator instead.
/// Not cryptographic: it only spreads load. Tests seed it for repeatable picks.
struct LoopRandom: RandomNumberGenerator {
    private var state: (UInt64, UInt64, UInt64, UInt64)

    /// Seeded from the system generator (one syscall, at start-up).
    init() {
        var system = SystemRandomNumberGenerator()
        self.init(seed: system.next())
    }

    /// Seeded from `seed` through SplitMix64, so that any seed, 0 included, gives a
    /// well-mixed state.
    init(seed: UInt64) {
        var mix = seed
        func splitMix() -> UInt64 {
            mix &+= 0x9E37_79B9_7F4A_7C15
            var z = mix
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        state = (splitMix(), splitMix(), splitMix(), splitMix())
    }

    mutating func next() -> UInt64 {
        let result = rotl(state.1 &* 5, 7) &* 9
        let t = state.1 << 17
        state.2 ^= state.0
        state.3 ^= state.1
        state.1 ^= state.2
        state.0 ^= state.3
        state.2 ^= t
        state.3 = rotl(state.3, 45)
        return result
    }

    @inline(__always)
    private func rotl(_ x: UInt64, _ k: UInt64) -> UInt64 { (x << k) | (x >> (64 - k)) }

    /// A random trace id. swift-w3c-trace-context's `TraceID.random(using:)` is generic
    /// and not inlinable: it reached this generator through its protocol witness, and
    /// `rotl` uninlined, about 230 instructions a traced request for its three ids.
    mutating func traceID() -> TraceID {
        let bytes = (next().bigEndian, next().bigEndian)
        return TraceID(bytes: withUnsafeBytes(of: bytes) { $0.loadUnaligned(as: TraceID.Bytes.self) })
    }

    /// A random span id (see `traceID()`).
    mutating func spanID() -> SpanID {
        let bytes = next().bigEndian
        return SpanID(bytes: withUnsafeBytes(of: bytes) { $0.loadUnaligned(as: SpanID.Bytes.self) })
    }
}
