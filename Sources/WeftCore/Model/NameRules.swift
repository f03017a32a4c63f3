#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The name and value rules Kubernetes applies (apimachinery `validation`), so a manifest
/// the API server would accept is accepted here and one it would reject is rejected.
package enum NameRules {
    private static func isLowerAlnum(_ c: UInt8) -> Bool {
        (c >= UInt8(ascii: "a") && c <= UInt8(ascii: "z")) || (c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9"))
    }

    private static func isAlnum(_ c: UInt8) -> Bool {
        isLowerAlnum(c) || (c >= UInt8(ascii: "A") && c <= UInt8(ascii: "Z"))
    }

    /// RFC 1123 label: lowercase alphanumerics and '-', alphanumeric at both ends, ≤ 63.
    package static func isDNS1123Label(_ s: String) -> Bool {
        let b = Array(s.utf8)
        guard !b.isEmpty, b.count <= 63, isLowerAlnum(b.first!), isLowerAlnum(b.last!) else { return false }
        return b.allSatisfy { isLowerAlnum($0) || $0 == UInt8(ascii: "-") }
    }

    /// RFC 1123 subdomain: dot-separated labels, ≤ 253.
    package static func isDNS1123Subdomain(_ s: String) -> Bool {
        guard !s.isEmpty, s.utf8.count <= 253 else { return false }
        return s.split(separator: ".", omittingEmptySubsequences: false).allSatisfy { isDNS1123Label(String($0)) }
    }

    /// RFC 1035 label (Service names): an RFC 1123 label that starts with a letter.
    package static func isDNS1035Label(_ s: String) -> Bool {
        guard isDNS1123Label(s), let first = s.utf8.first else { return false }
        return first >= UInt8(ascii: "a") && first <= UInt8(ascii: "z")
    }

    /// IANA service name (named ports): ≤ 15, lowercase alphanumerics and '-', at least
    /// one letter, no '-' at either end and no "--".
    package static func isIANAServiceName(_ s: String) -> Bool {
        let b = Array(s.utf8)
        guard !b.isEmpty, b.count <= 15, b.first != UInt8(ascii: "-"), b.last != UInt8(ascii: "-"),
            !s.contains("--"), b.allSatisfy({ isLowerAlnum($0) || $0 == UInt8(ascii: "-") }),
            b.contains(where: { $0 >= UInt8(ascii: "a") && $0 <= UInt8(ascii: "z") })
        else { return false }
        return true
    }

    /// A label value: empty, or ≤ 63 of alphanumerics, '-', '_', '.', alphanumeric at both ends.
    package static func isLabelValue(_ s: String) -> Bool {
        let b = Array(s.utf8)
        if b.isEmpty { return true }
        guard b.count <= 63, isAlnum(b.first!), isAlnum(b.last!) else { return false }
        return b.allSatisfy {
            isAlnum($0) || $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: ".")
        }
    }

    /// A label key: an optional DNS subdomain prefix and '/', then a non-empty label value.
    package static func isLabelKey(_ s: String) -> Bool {
        let parts = s.split(separator: "/", omittingEmptySubsequences: false)
        switch parts.count {
        case 1: return !s.isEmpty && isLabelValue(s)
        case 2: return isDNS1123Subdomain(String(parts[0])) && !parts[1].isEmpty && isLabelValue(String(parts[1]))
        default: return false
        }
    }

    /// An HTTP header name (RFC 9110 token).
    package static func isHeaderName(_ s: String) -> Bool {
        guard !s.isEmpty else { return false }
        return s.utf8.allSatisfy { c in isAlnum(c) || "!#$%&'*+-.^_`|~".utf8.contains(c) }
    }

    /// A Gateway API hostname: a DNS subdomain, optionally starting with `*.`; no IPs.
    package static func isHostname(_ s: String) -> Bool {
        let name = s.hasPrefix("*.") ? String(s.dropFirst(2)) : s
        return isDNS1123Subdomain(name) && !isIPv4(name)
    }

    package static func isIPv4(_ s: String) -> Bool {
        var addr = in_addr()
        return inet_pton(AF_INET, s, &addr) == 1
    }

    package static func isIPv6(_ s: String) -> Bool {
        var addr = in6_addr()
        return inet_pton(AF_INET6, s, &addr) == 1
    }

    package static func isIP(_ s: String) -> Bool { isIPv4(s) || isIPv6(s) }
}
