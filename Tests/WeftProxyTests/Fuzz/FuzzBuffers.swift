/// Helpers shared by the fuzz invariants (see `HTTP1FuzzInvariants`).
///
/// This file is compiled twice: into `WeftProxyTests`, and by `fuzz/run.sh` together
/// with the pure parser sources into one module, so it imports nothing.
enum FuzzBuffers {
    /// Runs `body` over a copy of `bytes` in an allocation of exactly `bytes.count` bytes,
    /// so that AddressSanitizer (or a debug build's bounds check) catches a read past the end.
    static func withExactCopy<C: Collection, R>(_ bytes: C, _ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R
    where C.Element == UInt8 {
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: bytes.count, alignment: 1)
        defer { buffer.deallocate() }
        buffer.copyBytes(from: bytes)
        return try body(UnsafeRawBufferPointer(buffer))
    }

    /// A stable hash of the input, from which the invariants derive split points and
    /// parameters, so that a crash reproduces from the input file alone.
    static func fnv1a(_ bytes: [UInt8]) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in bytes {
            hash ^= UInt64(byte)
            hash = hash &* 0x100_0000_01b3
        }
        return hash
    }

    /// Splits `count` into pieces at up to `pieces - 1` cut points derived from `seed`;
    /// returns the ends of the pieces (the last is always `count`).
    static func cuts(count: Int, seed: UInt64, pieces: Int) -> [Int] {
        var ends: [Int] = []
        var state = seed
        for _ in 1..<max(pieces, 1) {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            ends.append(Int((state >> 33) % UInt64(count + 1)))
        }
        ends.sort()
        ends.append(count)
        return ends
    }
}
