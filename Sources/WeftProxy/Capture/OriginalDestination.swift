import Glibc
import NIOCore

/// Recovers where a redirected connection was going before iptables' REDIRECT
/// rewrote it to the proxy (`SO_ORIGINAL_DST`, `IP6T_SO_ORIGINAL_DST`).
enum OriginalDestination {
    /// `SO_ORIGINAL_DST` from linux/netfilter_ipv4.h and `IP6T_SO_ORIGINAL_DST` from
    /// linux/netfilter_ipv6/ip6_tables.h; both are 80, at the IP and IPv6 levels.
    private static let optionName: CInt = 80

    enum Failure: Error, CustomStringConvertible {
        case unavailable(errno: CInt)
        case notASocket

        var description: String {
            switch self {
            case .unavailable(let code):
                return
                    "no original destination (SO_ORIGINAL_DST failed: \(String(cString: strerror(code)))); is the redirect installed (weft-proxy init)?"
            case .notASocket:
                return "channel has no socket options"
            }
        }
    }

    /// Reads the original destination of an accepted connection. Call on its event loop.
    static func read(_ channel: Channel) -> Result<SocketAddress, Failure> {
        guard let provider = channel as? SocketOptionProvider else { return .failure(.notASocket) }
        let isIPv6: Bool
        if case .v6(let local) = channel.localAddress {
            // An IPv4 peer on a dual-stack socket shows as ::ffff:a.b.c.d; netfilter tracks it as IPv4.
            isIPv6 = !isMappedIPv4(local.address.sin6_addr)
        } else {
            isIPv6 = false
        }
        var outcome: Result<SocketAddress, Failure> = .failure(.notASocket)
        if isIPv6 {
            let future: EventLoopFuture<sockaddr_in6> = provider.unsafeGetSocketOption(
                level: SocketOptionLevel(IPPROTO_IPV6), name: SocketOptionName(optionName))
            future.whenComplete { result in
                outcome = result.map { SocketAddress($0, host: "") }.mapError { failure($0) }
            }
        } else {
            let future: EventLoopFuture<sockaddr_in> = provider.unsafeGetSocketOption(
                level: SocketOptionLevel(IPPROTO_IP), name: SocketOptionName(optionName))
            future.whenComplete { result in
                outcome = result.map { SocketAddress($0, host: "") }.mapError { failure($0) }
            }
        }
        return outcome
    }

    private static func failure(_ error: Error) -> Failure {
        if let io = error as? IOError { return .unavailable(errno: io.errnoCode) }
        return .unavailable(errno: ENOENT)
    }

    private static func isMappedIPv4(_ address: in6_addr) -> Bool {
        var copy = address
        return withUnsafeBytes(of: &copy) { bytes in
            bytes[0..<10].allSatisfy { $0 == 0 } && bytes[10] == 0xFF && bytes[11] == 0xFF
        }
    }
}
