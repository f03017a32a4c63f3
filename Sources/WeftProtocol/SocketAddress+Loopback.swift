import NIOCore

extension SocketAddress {
    /// Whether this is a loopback address: 127.0.0.0/8, ::1, or 127.0.0.0/8 mapped into
    /// IPv6. The sidecar's admin server and the control plane's API answer some endpoints
    /// only to loopback, that is to the same pod (`kubectl port-forward` arrives there).
    public var isLoopback: Bool {
        switch self {
        case .v4(let v4):
            return UInt32(bigEndian: v4.address.sin_addr.s_addr) >> 24 == 127
        case .v6(let v6):
            let b = withUnsafeBytes(of: v6.address.sin6_addr) { Array($0) }
            if b[0..<15].allSatisfy({ $0 == 0 }) && b[15] == 1 { return true }
            return b[0..<10].allSatisfy({ $0 == 0 }) && b[10] == 0xFF && b[11] == 0xFF && b[12] == 127
        default:
            return false
        }
    }
}
