/// The ALPN protocols that mark mesh TLS between sidecars, and what each carries.
enum MeshALPN: String, CaseIterable, Sendable {
    case http1 = "weft/1+http1.1"
    case http2 = "weft/1+h2"
    case tcp = "weft/1+tcp"

    /// The mesh protocol a ClientHello offers first, if any.
    static func first(in offers: [String]) -> MeshALPN? {
        for offer in offers { if let known = MeshALPN(rawValue: offer) { return known } }
        return nil
    }
}
