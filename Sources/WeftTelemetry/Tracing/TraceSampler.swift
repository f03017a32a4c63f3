import W3CTraceContext

/// Whether a hop records its span: OpenTelemetry's ParentBased(TraceIdRatioBased) sampler.
///
/// - A caller's decision is followed (sampled or not), so a trace is whole or absent,
///   never a hop here and there.
/// - A request with no decision (no context, or B3 that defers) is sampled by its trace
///   id: the id's last 8 bytes, read as a big-endian integer, below `ratio × 2⁶⁴`. Every
///   hop that sees the same id without a decision decides the same way.
public struct TraceSampler: Sendable, Equatable {
    /// MeshConfig `tracing.sampling`, 0…1.
    public let ratio: Double
    private let threshold: UInt64

    public init(ratio: Double) {
        self.ratio = min(max(ratio, 0), 1)
        if self.ratio >= 1 {
            threshold = .max
        } else {
            // 2⁶⁴ × ratio, computed without overflowing: ratio < 1.
            threshold = UInt64(self.ratio * 18_446_744_073_709_551_616.0)
        }
    }

    /// The decision for a trace `id`, following `parent` when it made one.
    public func isSampled(_ id: TraceID, parent: Bool?) -> Bool {
        if let parent { return parent }
        if ratio >= 1 { return true }
        if ratio <= 0 { return false }
        let b = id.bytes
        let low =
            UInt64(b.8) << 56 | UInt64(b.9) << 48 | UInt64(b.10) << 40 | UInt64(b.11) << 32 | UInt64(b.12) << 24
            | UInt64(b.13) << 16 | UInt64(b.14) << 8 | UInt64(b.15)
        return low < threshold
    }
}
