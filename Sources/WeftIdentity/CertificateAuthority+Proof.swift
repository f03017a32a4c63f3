import Crypto
import SwiftASN1
import WeftCore
@_spi(FixedExpiryValidationTime) import X509

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

extension CertificateAuthority {
    /// Checks a renewal proof: the chain's leaf was issued under this CA's trust bundle,
    /// is valid at `now`, carries a SPIFFE ID, and its key signed `data`.
    ///
    /// The chain is verified with swift-certificates' `Verifier` (`RFC5280Policy` at
    /// `now`, plus `SPIFFEPeerPolicy`) against every root in the bundle, so leaves of
    /// an old and a new root both pass during a rotation.
    /// - Parameters:
    ///   - chainPEM: the peer's leaf, then its intermediates.
    ///   - data: the signed bytes.
    ///   - signature: `IdentityProof.sign`'s DER ECDSA signature.
    ///   - now: the time to check validity at.
    /// - Returns: the SPIFFE ID the proof authenticates.
    /// - Throws: `IdentityError`: `.badPEM`, `.untrustedPeer` (with the verifier's
    ///   reasons), `.missingSPIFFEID`, `.unsupportedKey` or `.badProof`.
    public func verifyProof(
        chainPEM: String, data: [UInt8], signature: [UInt8], now: Date = Date()
    ) async throws(IdentityError) -> SPIFFEID {
        let certificates = try PEMFiles.certificates(in: chainPEM, what: "peer chain")
        let leaf = certificates[0]
        let claimed = SPIFFEPeer.spiffeID(of: leaf)
        let what = claimed?.description ?? "peer chain"
        var verifier = Verifier(rootCertificates: CertificateStore(trustBundle.roots)) {
            RFC5280Policy(fixedExpiryValidationTime: now)
            SPIFFEPeerPolicy(trustDomain: trustDomain)
        }
        let result = await verifier.validate(
            leaf: leaf, intermediates: CertificateStore(certificates.dropFirst()))
        switch result {
        case .validCertificate:
            break
        case .couldNotValidate(let failures):
            let reasons = failures.map { "\($0.policyFailureReason)" }
            throw IdentityError(
                .untrustedPeer, what: what,
                reason: reasons.isEmpty
                    ? "the chain does not lead to a root in the trust bundle"
                    : "the chain does not verify: " + reasons.joined(separator: "; "))
        }
        guard let identity = claimed else {
            throw IdentityError(.missingSPIFFEID, what: what, reason: "the leaf carries no single SPIFFE URI SAN")
        }
        guard let key = P256.Signing.PublicKey(leaf.publicKey) else {
            throw IdentityError(.unsupportedKey, what: what, reason: "the leaf's key is not ECDSA P-256")
        }
        guard let parsed = try? P256.Signing.ECDSASignature(derRepresentation: signature),
            key.isValidSignature(parsed, for: data)
        else {
            throw IdentityError(
                .badProof, what: what, reason: "the proof's signature does not verify with the leaf's key")
        }
        return identity
    }
}
