import Glibc

/// An IPv4 or IPv6 network in CIDR notation, such as `10.0.0.0/8` or `fd00::/8`.
///
/// Parsing is strict: the address must be a full IPv4 dotted quad or an IPv6 address as
/// `inet_pton` accepts it (no zone, no shortened IPv4 such as `1.2.3`), and the prefix length a
/// plain decimal number of at most 32 (IPv4) or 128 (IPv6). An address without a prefix is a
/// single host (`/32` or `/128`). Host bits below the prefix are cleared, as iptables does, so
/// `description` is always the canonical network (`10.1.2.3/8` becomes `10.0.0.0/8`).
public struct CIDR: Sendable, Hashable, CustomStringConvertible {
    /// The family of the address; a CIDR only ever goes into the rules of its own family.
    public let family: IPFamily
    /// The network address, masked to the prefix, in canonical text form.
    public let address: String
    /// The prefix length: 0-32 for IPv4, 0-128 for IPv6.
    public let prefixLength: Int

    /// The CIDR as iptables takes it after `-d`: `address/prefixLength`.
    public var description: String { "\(address)/\(prefixLength)" }

    /// Parses a CIDR or a bare address.
    ///
    /// - Parameter text: for example `10.0.0.0/8`, `192.168.1.7`, `fd00::/8` or `::1`.
    /// - Throws: `CIDRSyntaxError` saying what is wrong with the text.
    public init(parsing text: String) throws(CIDRSyntaxError) {
        let parts = text.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        let addressText = String(parts[0])
        var bytes: [UInt8]
        if let v4 = Self.bytes(of: addressText, family: AF_INET, count: 4) {
            family = .ipv4
            bytes = v4
        } else if let v6 = Self.bytes(of: addressText, family: AF_INET6, count: 16) {
            family = .ipv6
            bytes = v6
        } else {
            throw CIDRSyntaxError(
                reason: parts.count == 2
                    ? "'\(addressText)' is not an IPv4 or IPv6 address" : "not an IPv4 or IPv6 address or CIDR")
        }
        let maxPrefix = bytes.count * 8
        if parts.count == 2 {
            guard let length = FlagValueParser.decimal(parts[1], max: maxPrefix) else {
                throw CIDRSyntaxError(
                    reason: "prefix length '\(parts[1])' must be a number from 0 to \(maxPrefix) for \(family.label)")
            }
            prefixLength = length
        } else {
            prefixLength = maxPrefix
        }
        for index in bytes.indices {
            let bitsKept = min(max(prefixLength - index * 8, 0), 8)
            bytes[index] &= bitsKept == 0 ? 0 : ~UInt8(0) << (8 - bitsKept)
        }
        address = Self.text(of: bytes, family: family == .ipv4 ? AF_INET : AF_INET6)
    }

    private static func bytes(of text: String, family: Int32, count: Int) -> [UInt8]? {
        var bytes = [UInt8](repeating: 0, count: count)
        let status = bytes.withUnsafeMutableBytes { inet_pton(family, text, $0.baseAddress) }
        return status == 1 ? bytes : nil
    }

    private static func text(of bytes: [UInt8], family: Int32) -> String {
        var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        _ = bytes.withUnsafeBytes { inet_ntop(family, $0.baseAddress, &buffer, socklen_t(buffer.count)) }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

/// Why a text is not a valid CIDR; `FlagValueParser` wraps it in a `RedirectError` naming the flag.
public struct CIDRSyntaxError: Error, Sendable, Equatable {
    /// What is wrong, quoting the offending part.
    public let reason: String
}
