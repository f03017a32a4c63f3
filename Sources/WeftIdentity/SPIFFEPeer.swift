import SwiftASN1
import WeftCore
import X509

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// Reads the SPIFFE ID a peer's leaf certificate carries; for mTLS peer checks.
public enum SPIFFEPeer {
    /// The SPIFFE ID in the certificate's URI SAN, or nil when the certificate has no
    /// SAN, more than one URI, or a URI that is not `spiffe://td/ns/NS/sa/SA`.
    ///
    /// Exactly one URI is required (the SPIFFE X.509-SVID rule): a certificate naming
    /// two workloads names none.
    public static func spiffeID(of certificate: Certificate) -> SPIFFEID? {
        guard let names = try? certificate.extensions.subjectAlternativeNames else { return nil }
        var found: String?
        for case .uniformResourceIdentifier(let uri) in names {
            if found != nil { return nil }
            found = uri
        }
        return found.flatMap(SPIFFEID.init(parsing:))
    }

    /// The SPIFFE ID of the first certificate in `pem` (a leaf, or a chain whose first
    /// block is the leaf); nil if it does not decode or has no single SPIFFE URI.
    public static func spiffeID(ofLeafPEM pem: String) -> SPIFFEID? {
        guard let documents = try? PEMDocument.parseMultiple(pemString: pem),
            let first = documents.first(where: { $0.discriminator == "CERTIFICATE" }),
            let certificate = try? Certificate(derEncoded: first.derBytes)
        else { return nil }
        return spiffeID(of: certificate)
    }
}
