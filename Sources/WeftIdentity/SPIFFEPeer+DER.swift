import WeftCore
import X509

extension SPIFFEPeer {
    /// The SPIFFE ID in a DER certificate's URI SAN; nil when it does not decode or has none.
    ///
    /// For callers that hold NIOSSL's DER bytes and do not link X509 themselves.
    public static func spiffeID(ofDER der: [UInt8]) -> SPIFFEID? {
        guard let certificate = try? Certificate(derEncoded: der) else { return nil }
        return spiffeID(of: certificate)
    }
}
