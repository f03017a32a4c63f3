/// The ALPN protocols that mark mesh TLS between sidecars, and what each carries.
enum MeshALPN: String, CaseIterable, Sendable {
    case http1 = "weft/1+http1.1"
    case http2 = "weft/1+h2"
    case tcp = "weft/1+tcp"
    /// HTTP/1.1 exchanges, each on its own stream of one HTTP/2 connection (MeshConfig
    /// `mtls.http1Transport: HTTP2`); the called sidecar speaks HTTP/1.1 to its app.
    case http1OverHTTP2 = "weft/1+http1.1+h2"

    /// The mesh protocol a ClientHello offers first, if any.
    static func first(in offers: [String]) -> MeshALPN? {
        for offer in offers { if let known = MeshALPN(rawValue: offer) { return known } }
        return nil
    }
}
