#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// An IP network, `10.0.0.0/8` or `fd00::/64`; a bare address is a /32 or /128.
/// IPv4-mapped IPv6 addresses (`::ffff:10.0.0.1`) are compared as IPv4.
public struct CIDR: Hashable, Sendable, CustomStringConvertible {
    /// 4 or 16 bytes, with the bits past the prefix cleared.
    public let network: [UInt8]
    public let prefixLength: Int

    /// Parses `address/prefix` or `address`; nil for anything else (a prefix longer than
    /// the address, host bits set past the prefix are allowed and cleared).
    public init?(parsing text: String) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count <= 2, let bytes = Self.bytes(of: String(parts[0])) else { return nil }
        let bits = bytes.count * 8
        var prefix = bits
        if parts.count == 2 {
            guard !parts[1].isEmpty, parts[1].allSatisfy(\.isNumber), parts[1].count <= 3, let p = Int(parts[1]),
                p <= bits
            else { return nil }
            prefix = p
        }
        self.prefixLength = prefix
        self.network = Self.masked(bytes, prefix)
    }

    /// True when `address` (4 or 16 bytes, as `bytes(of:)` returns) is inside.
    public func contains(_ address: [UInt8]) -> Bool {
        address.count == network.count && Self.masked(address, prefixLength) == network
    }

    public var description: String {
        var text = [CChar](repeating: 0, count: 64)
        let family = network.count == 4 ? AF_INET : AF_INET6
        _ = network.withUnsafeBytes { inet_ntop(family, $0.baseAddress, &text, 64) }
        let prefix = String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return "\(prefix)/\(prefixLength)"
    }

    /// An address as 4 (IPv4, also when IPv4-mapped IPv6) or 16 bytes; nil when not an address.
    public static func bytes(of text: String) -> [UInt8]? {
        var v4 = in_addr()
        if inet_pton(AF_INET, text, &v4) == 1 {
            return withUnsafeBytes(of: &v4) { Array($0) }
        }
        var v6 = in6_addr()
        guard inet_pton(AF_INET6, text, &v6) == 1 else { return nil }
        let bytes = withUnsafeBytes(of: &v6) { Array($0) }
        if bytes[0..<10].allSatisfy({ $0 == 0 }) && bytes[10] == 0xff && bytes[11] == 0xff {
            return Array(bytes[12..<16])
        }
        return bytes
    }

    private static func masked(_ bytes: [UInt8], _ prefix: Int) -> [UInt8] {
        var out = bytes
        for i in 0..<out.count {
            let keep = max(0, min(8, prefix - i * 8))
            out[i] &= keep == 0 ? 0 : ~UInt8((1 << (8 - keep)) &- 1)
        }
        return out
    }
}
