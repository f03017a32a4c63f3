import Crypto
import SwiftASN1
import WeftCore
import X509

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// A proxy's own P-256 key and the CSR that asks the mesh CA for a leaf for it.
///
/// The key is made where it is used and never leaves the pod (DESIGN.md: cached only in
/// the pod's memory-backed folder); only the CSR, which carries the public key and the
/// SPIFFE ID as a URI SAN in its extensionRequest, goes to the control plane.
public struct WorkloadKey: Sendable {
    /// The identity the CSR asks for.
    public let identity: SPIFFEID
    /// The private key, PKCS#8 PEM. Keep it secret (files: mode 0600).
    public let privateKeyPEM: String
    /// The CSR, PEM (`CERTIFICATE REQUEST`), signed with the private key.
    public let csrPEM: String

    /// Generates a new key and its CSR for `identity`.
    /// - Throws: `IdentityError` `.cryptoFailure` if the CSR cannot be built.
    public init(identity: SPIFFEID) throws(IdentityError) {
        try self.init(identity: identity, key: P256.Signing.PrivateKey())
    }

    /// A CSR for `identity` with an existing key (PKCS#8 or SEC1 PEM).
    /// - Throws: `IdentityError` `.badPEM` / `.unsupportedKey` for the key, `.cryptoFailure`.
    public init(identity: SPIFFEID, privateKeyPEM: String) throws(IdentityError) {
        try self.init(identity: identity, key: PEMFiles.p256Key(in: privateKeyPEM, what: "workload key"))
    }

    init(identity: SPIFFEID, key: P256.Signing.PrivateKey) throws(IdentityError) {
        self.identity = identity
        self.privateKeyPEM = key.pemRepresentation + "\n"
        do {
            let san = try Certificate.Extension(
                SubjectAlternativeNames([.uniformResourceIdentifier(identity.description)]), critical: true)
            let request = ExtensionRequest(extensions: try Certificate.Extensions([san]))
            let attributes = CertificateSigningRequest.Attributes([try CertificateSigningRequest.Attribute(request)])
            let csr = try CertificateSigningRequest(
                version: .v1,
                subject: DistinguishedName(),
                privateKey: Certificate.PrivateKey(key),
                attributes: attributes,
                signatureAlgorithm: .ecdsaWithSHA256
            )
            self.csrPEM = try csr.serializeAsPEM().pemString + "\n"
        } catch {
            throw IdentityError(.cryptoFailure, what: identity.description, reason: "cannot build the CSR: \(error)")
        }
    }
}
