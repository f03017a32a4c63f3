import WeftCore

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// A leaf certificate the CA issued, ready to hand to a proxy.
///
/// `chainPEM` is what a proxy presents in its handshakes: the leaf followed by the
/// intermediate, so a peer that holds only the trust bundle (roots) can build the path.
public struct IssuedCertificate: Sendable {
    /// The leaf alone, PEM.
    public let leafPEM: String
    /// The leaf followed by the intermediate, PEM.
    public let chainPEM: String
    /// The leaf's notBefore (whole seconds, as encoded in the certificate).
    public let notBefore: Date
    /// The leaf's notAfter (whole seconds); never after the intermediate's.
    public let notAfter: Date
    /// The serial number, lowercase hex, as `openssl x509 -serial` prints it (without colons).
    public let serialHex: String
    /// The SPIFFE ID in the leaf's URI SAN.
    public let identity: SPIFFEID

    public init(
        leafPEM: String, chainPEM: String, notBefore: Date, notAfter: Date, serialHex: String, identity: SPIFFEID
    ) {
        self.leafPEM = leafPEM
        self.chainPEM = chainPEM
        self.notBefore = notBefore
        self.notAfter = notAfter
        self.serialHex = serialHex
        self.identity = identity
    }
}
