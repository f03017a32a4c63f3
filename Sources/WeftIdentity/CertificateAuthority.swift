import Crypto
import SwiftASN1
import WeftCore
import X509

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// The mesh CA: issues the 24-hour SPIFFE leaf certificates that proxies present in mTLS.
///
/// The CA is two-tier. A long-lived root (10 years) is only used to sign an intermediate
/// (1 year, `pathLen 0`, name-constrained to the trust domain); the intermediate signs
/// leaves. Running the CA needs the intermediate and its key, and the trust bundle;
/// `root.key` can stay offline. See `CAFiles` for the files.
///
/// Issuance is on the control plane's path for every proxy start and renewal, so what
/// does not change between leaves (the issuer name, the AKI, the constant extensions,
/// the intermediate's PEM) is computed once, at load. An instance is immutable and
/// `Sendable`: share one between threads.
public final class CertificateAuthority: Sendable {
    /// The trust domain the intermediate is constrained to (its permitted URI name
    /// constraint); `nil` if the intermediate has no such constraint. Identities outside
    /// it are refused.
    public let trustDomain: String?
    /// The issuing certificate.
    public let intermediate: Certificate
    /// The trusted roots (`bundle.crt`).
    public let trustBundle: TrustBundle
    /// The trusted roots as PEM, for proxies (the `identity` message's `trustBundle`).
    public let trustBundlePEM: String
    /// The intermediate as PEM, appended to every issued leaf.
    public let intermediatePEM: String

    let signingKey: Certificate.PrivateKey
    let issuerName: DistinguishedName
    let intermediateNotAfter: Date
    /// basicConstraints, keyUsage, extendedKeyUsage and authorityKeyIdentifier: the same in every leaf.
    let constantLeafExtensions: [Certificate.Extension]
    /// The leaf's DER parts that never change (`LeafTemplate`).
    let leafTemplate: LeafTemplate

    /// Loads a CA from the directory `weftctl ca init` wrote.
    ///
    /// Reads `intermediate.crt`, `intermediate.key` and `bundle.crt`; `root.crt` and
    /// `root.key` are not needed.
    /// - Parameters:
    ///   - directory: the CA directory.
    ///   - now: the time to check validity against.
    /// - Throws: `IdentityError` naming the file: `.missingFile`, `.badPEM`,
    ///   `.unsupportedKey`, `.keyMismatch`, `.notCertificateAuthority`,
    ///   `.untrustedIntermediate` (not signed by any root in the bundle) or `.expired`.
    public convenience init(loadingFrom directory: URL, now: Date = Date()) throws(IdentityError) {
        let certificateURL = directory.appendingPathComponent(CAFiles.intermediateCertificateFile)
        let keyURL = directory.appendingPathComponent(CAFiles.intermediateKeyFile)
        let bundleURL = directory.appendingPathComponent(CAFiles.bundleFile)
        try self.init(
            intermediatePEM: PEMFiles.readText(certificateURL), intermediateWhat: certificateURL.path,
            keyPEM: PEMFiles.readText(keyURL), keyWhat: keyURL.path,
            bundlePEM: PEMFiles.readText(bundleURL), bundleWhat: bundleURL.path,
            now: now
        )
    }

    /// Loads a CA from a directory path; see `init(loadingFrom:now:)`.
    public convenience init(loadingFrom path: String, now: Date = Date()) throws(IdentityError) {
        try self.init(loadingFrom: URL(fileURLWithPath: path), now: now)
    }

    /// Loads a CA from files in memory, as `create` returns them; errors name the file
    /// each text would be written to.
    public convenience init(files: CAFiles, now: Date = Date()) throws(IdentityError) {
        try self.init(
            intermediatePEM: files.intermediateCertificatePEM, intermediateWhat: CAFiles.intermediateCertificateFile,
            keyPEM: files.intermediateKeyPEM, keyWhat: CAFiles.intermediateKeyFile,
            bundlePEM: files.bundlePEM, bundleWhat: CAFiles.bundleFile,
            now: now
        )
    }

    init(
        intermediatePEM: String, intermediateWhat: String,
        keyPEM: String, keyWhat: String,
        bundlePEM: String, bundleWhat: String,
        now: Date
    ) throws(IdentityError) {
        let intermediate = try PEMFiles.certificates(in: intermediatePEM, what: intermediateWhat)[0]
        let key = try PEMFiles.p256Key(in: keyPEM, what: keyWhat)
        guard let certificateKey = P256.Signing.PublicKey(intermediate.publicKey) else {
            throw IdentityError(
                .unsupportedKey, what: intermediateWhat, reason: "the certificate's key is not ECDSA P-256")
        }
        guard certificateKey.rawRepresentation == key.publicKey.rawRepresentation else {
            throw IdentityError(
                .keyMismatch, what: keyWhat,
                reason: "the key does not match the public key of \(intermediateWhat) (\(intermediate.subject))")
        }
        guard case .isCertificateAuthority = try? intermediate.extensions.basicConstraints else {
            throw IdentityError(
                .notCertificateAuthority, what: intermediateWhat,
                reason: "\(intermediate.subject) is not a CA certificate (basicConstraints CA:TRUE missing)")
        }
        let bundle = try TrustBundle(pem: bundlePEM, what: bundleWhat)
        guard
            let root = bundle.roots.first(where: {
                $0.subject == intermediate.issuer
                    && $0.publicKey.isValidSignature(intermediate.signature, for: intermediate)
            })
        else {
            throw IdentityError(
                .untrustedIntermediate, what: intermediateWhat,
                reason:
                    "\(intermediate.subject) (issuer \(intermediate.issuer)) is not signed by any of the \(bundle.roots.count) root(s) in \(bundleWhat)"
            )
        }
        for (certificate, what) in [(intermediate, intermediateWhat), (root, bundleWhat)] {
            if now < certificate.notValidBefore || now > certificate.notValidAfter {
                throw IdentityError(
                    .expired, what: what,
                    reason:
                        "\(certificate.subject) is valid from \(certificate.notValidBefore) to \(certificate.notValidAfter), not at \(now)"
                )
            }
        }

        var trustDomain: String?
        if let constraints = try? intermediate.extensions.nameConstraints {
            for case .uniformResourceIdentifier(let domain) in constraints.permittedSubtrees {
                trustDomain = domain
                break
            }
        }

        let authorityKeyID =
            (try? intermediate.extensions.subjectKeyIdentifier)?.keyIdentifier
            ?? SubjectKeyIdentifier(hash: intermediate.publicKey).keyIdentifier
        do {
            self.constantLeafExtensions = [
                try Certificate.Extension(BasicConstraints.notCertificateAuthority, critical: true),
                try Certificate.Extension(KeyUsage(digitalSignature: true), critical: true),
                try Certificate.Extension(ExtendedKeyUsage([.serverAuth, .clientAuth]), critical: false),
                try Certificate.Extension(AuthorityKeyIdentifier(keyIdentifier: authorityKeyID), critical: false),
            ]
        } catch {
            throw IdentityError(
                .cryptoFailure, what: intermediateWhat, reason: "cannot encode leaf extensions: \(error)")
        }
        self.trustDomain = trustDomain
        self.intermediate = intermediate
        self.trustBundle = bundle
        self.trustBundlePEM = bundle.pem
        self.intermediatePEM = try PEMFiles.pem([intermediate])
        self.signingKey = Certificate.PrivateKey(key)
        do {
            self.leafTemplate = try LeafTemplate(
                issuer: intermediate.subject, constantExtensions: constantLeafExtensions, signingKey: key)
        } catch {
            throw IdentityError(
                .cryptoFailure, what: intermediateWhat, reason: "cannot encode the leaf template: \(error)")
        }
        self.issuerName = intermediate.subject
        self.intermediateNotAfter = intermediate.notValidAfter
    }
}
