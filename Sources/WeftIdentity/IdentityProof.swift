import Crypto

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// Proof that a proxy holds the key of its current certificate: an ECDSA P-256 /
/// SHA-256 signature (DER) over data the verifier chose or can check for freshness.
///
/// Renewal is authenticated by the current certificate (docs/protocol): the proxy
/// signs the renewal request with its current key and sends its chain; the CA checks
/// both with `CertificateAuthority.verifyProof(chainPEM:data:signature:now:)`.
public enum IdentityProof {
    /// Signs `data` with a P-256 private key.
    /// - Parameters:
    ///   - data: the bytes to sign (hashed with SHA-256).
    ///   - keyPEM: the signer's key, PKCS#8 or SEC1 PEM.
    /// - Returns: the DER ECDSA signature.
    /// - Throws: `IdentityError` `.badPEM` / `.unsupportedKey` for the key, `.cryptoFailure`.
    public static func sign(data: [UInt8], keyPEM: String) throws(IdentityError) -> [UInt8] {
        let key = try PEMFiles.p256Key(in: keyPEM, what: "proof key")
        do {
            return Array(try key.signature(for: data).derRepresentation)
        } catch {
            throw IdentityError(.cryptoFailure, what: "proof key", reason: "cannot sign: \(error)")
        }
    }
}
