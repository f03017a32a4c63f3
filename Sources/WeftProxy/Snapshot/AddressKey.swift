import Glibc
import NIOCore

/// An IP address and port as a fixed-size binary value: the key the data path looks
/// destinations up by. Made from a `SocketAddress` without building a string (a ClusterIP
/// is looked up on every accepted connection), and from the text addresses of the config
/// when a snapshot is compiled. IPv4 addresses are kept IPv4-mapped (`::ffff:a.b.c.d`).
struct AddressKey: Hashable, Sendable {
    let high: UInt64
    let low: UInt64
    let port: UInt16

    init(high: UInt64, low: UInt64, port: UInt16) {
        self.high = high
        self.low = low
        self.port = port
    }

    /// Nil for a Unix domain socket address.
    init?(_ address: SocketAddress) {
        switch address {
        case .v4(let v4):
            let ip = UInt64(UInt32(bigEndian: v4.address.sin_addr.s_addr))
            self.init(high: 0, low: 0x0000_FFFF_0000_0000 | ip, port: UInt16(bigEndian: v4.address.sin_port))
        case .v6(let v6):
            var bytes = v6.address.sin6_addr
            let (high, low) = withUnsafeBytes(of: &bytes) { raw -> (UInt64, UInt64) in
                var h: UInt64 = 0
                var l: UInt64 = 0
                for i in 0..<8 { h = h << 8 | UInt64(raw[i]) }
                for i in 8..<16 { l = l << 8 | UInt64(raw[i]) }
                return (h, l)
            }
            self.init(high: high, low: low, port: UInt16(bigEndian: v6.address.sin6_port))
        case .unixDomainSocket:
            return nil
        }
    }

    /// From a config's text address; nil if it is not an IP address or the port is out of range.
    init?(ip: String, port: Int) {
        guard (0...65535).contains(port), let address = try? SocketAddress(ipAddress: ip, port: port) else {
            return nil
        }
        self.init(address)
    }

    /// The same address with another port.
    func with(port: Int) -> AddressKey {
        AddressKey(high: high, low: low, port: UInt16(truncatingIfNeeded: port))
    }
}
