/// Transport protocol of a port (`TCP` when the manifest does not say).
public enum TransportProtocol: String, Hashable, Sendable {
    case tcp = "TCP"
    case udp = "UDP"
    case sctp = "SCTP"
}
