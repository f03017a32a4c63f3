import Glibc

/// The effective Linux capabilities of this process, as `/proc/self/status` shows them.
///
/// Used to explain iptables failures: legacy iptables without `CAP_NET_ADMIN` may say only
/// "unable to initialize table 'nat'", which does not tell the operator that a capability is
/// missing.
public struct CapabilitySet: Sendable, Equatable {
    /// The bit number of `CAP_NET_ADMIN`.
    public static let netAdminBit = 12

    /// The effective capability mask.
    public let effective: UInt64

    /// Creates a set from a mask.
    public init(effective: UInt64) {
        self.effective = effective
    }

    /// Parses the `CapEff:` line of a `/proc/<pid>/status` text; `nil` when there is none.
    public init?(procStatus: String) {
        for line in procStatus.split(separator: "\n") where line.hasPrefix("CapEff:") {
            let hex = line.dropFirst("CapEff:".count).filter { !$0.isWhitespace }
            guard let mask = UInt64(hex, radix: 16) else { return nil }
            self.init(effective: mask)
            return
        }
        return nil
    }

    /// The capabilities of the running process, or `nil` when `/proc` cannot be read.
    public static func current() -> CapabilitySet? {
        let fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { break }
            bytes += chunk[..<count]
        }
        return CapabilitySet(procStatus: String(decoding: bytes, as: UTF8.self))
    }

    /// Whether `CAP_NET_ADMIN`, which changing netfilter rules needs, is effective.
    public var hasNetAdmin: Bool { effective & (1 << UInt64(Self.netAdminBit)) != 0 }
}
