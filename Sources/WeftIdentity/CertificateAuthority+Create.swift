import Crypto
import SwiftASN1
import WeftCore
import X509

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

extension CertificateAuthority {
    /// How long a new root is valid.
    public static let rootLifetime: TimeInterval = 10 * 365 * 86_400
    /// How long a new intermediate is valid (never past its root).
    public static let intermediateLifetime: TimeInterval = 365 * 86_400
    /// How far back notBefore is set, for peers whose clocks run behind.
    public static let clockSkew: TimeInterval = 5 * 60

    /// Makes a new CA: a self-signed root and an intermediate signed by it, both ECDSA P-256.
    ///
    /// The root: 10 years, `CA:TRUE` and `keyCertSign, cRLSign`, both critical, with an SKI.
    /// The intermediate: 1 year, `CA:TRUE, pathlen:0`, the same key usages, a name
    /// constraint permitting only URIs in `trustDomain` (so even a stolen intermediate
    /// key cannot mint identities for another mesh), AKI and SKI.
    /// - Parameters:
    ///   - trustDomain: the SPIFFE trust domain, e.g. `cluster.local`.
    ///   - now: the start of validity (minus `clockSkew`).
    ///   - alsoTrusting: roots to keep in the bundle next to the new one (root rotation).
    /// - Returns: the files' contents; `write(to:force:)` puts them on disk.
    /// - Throws: `IdentityError` `.invalidInput` for a malformed trust domain.
    public static func create(
        trustDomain: String = MeshDefaults.trustDomain, now: Date = Date(), alsoTrusting: TrustBundle? = nil
    ) throws(IdentityError) -> CAFiles {
        try validate(trustDomain: trustDomain)
        let rootKey = P256.Signing.PrivateKey()
        let intermediateKey = P256.Signing.PrivateKey()
        let notBefore = now.addingTimeInterval(-clockSkew)
        let rootNotAfter = now.addingTimeInterval(rootLifetime)
        let intermediateNotAfter = min(now.addingTimeInterval(intermediateLifetime), rootNotAfter)
        do {
            let rootName = try DistinguishedName {
                OrganizationName("Weft")
                CommonName("Weft mesh root CA (\(trustDomain))")
            }
            let intermediateName = try DistinguishedName {
                OrganizationName("Weft")
                CommonName("Weft mesh intermediate CA (\(trustDomain))")
            }
            let rootPublicKey = Certificate.PublicKey(rootKey.publicKey)
            let intermediatePublicKey = Certificate.PublicKey(intermediateKey.publicKey)
            let rootKeyID = SubjectKeyIdentifier(hash: rootPublicKey)
            let caUsage = KeyUsage(keyCertSign: true, cRLSign: true)
            let root = try Certificate(
                version: .v3,
                serialNumber: Certificate.SerialNumber(bytes: randomSerial()),
                publicKey: rootPublicKey,
                notValidBefore: notBefore,
                notValidAfter: rootNotAfter,
                issuer: rootName,
                subject: rootName,
                signatureAlgorithm: .ecdsaWithSHA256,
                extensions: Certificate.Extensions {
                    Critical(BasicConstraints.isCertificateAuthority(maxPathLength: nil))
                    Critical(caUsage)
                    rootKeyID
                },
                issuerPrivateKey: Certificate.PrivateKey(rootKey)
            )
            let intermediate = try Certificate(
                version: .v3,
                serialNumber: Certificate.SerialNumber(bytes: randomSerial()),
                publicKey: intermediatePublicKey,
                notValidBefore: notBefore,
                notValidAfter: intermediateNotAfter,
                issuer: rootName,
                subject: intermediateName,
                signatureAlgorithm: .ecdsaWithSHA256,
                extensions: Certificate.Extensions {
                    Critical(BasicConstraints.isCertificateAuthority(maxPathLength: 0))
                    Critical(caUsage)
                    Critical(NameConstraints(permittedURIDomains: [trustDomain]))
                    SubjectKeyIdentifier(hash: intermediatePublicKey)
                    AuthorityKeyIdentifier(keyIdentifier: rootKeyID.keyIdentifier)
                },
                issuerPrivateKey: Certificate.PrivateKey(rootKey)
            )
            var bundle = try TrustBundle(roots: [root], what: "new root")
            if let alsoTrusting {
                bundle = bundle.merging(alsoTrusting)
            }
            return CAFiles(
                rootCertificatePEM: try PEMFiles.pem([root]),
                rootKeyPEM: rootKey.pemRepresentation + "\n",
                intermediateCertificatePEM: try PEMFiles.pem([intermediate]),
                intermediateKeyPEM: intermediateKey.pemRepresentation + "\n",
                bundlePEM: bundle.pem
            )
        } catch let error as IdentityError {
            throw error
        } catch {
            throw IdentityError(.cryptoFailure, what: "new CA", reason: "cannot build the certificates: \(error)")
        }
    }

    /// Checks a trust domain's shape: SPIFFE allows lowercase letters, digits, `.`, `-`
    /// and `_`, and a name constraint needs a host-like value.
    static func validate(trustDomain: String) throws(IdentityError) {
        let allowed = Set("abcdefghijklmnopqrstuvwxyz0123456789.-_")
        guard !trustDomain.isEmpty, trustDomain.count <= 255, trustDomain.allSatisfy(allowed.contains),
            !trustDomain.hasPrefix("."), !trustDomain.hasSuffix(".")
        else {
            throw IdentityError(
                .invalidInput, what: "trust domain \"\(trustDomain)\"",
                reason: "a trust domain is lowercase letters, digits, '.', '-' and '_', e.g. cluster.local")
        }
    }

    /// 16 random bytes as a positive DER INTEGER of exactly 16 bytes (RFC 5280: ≤ 20
    /// bytes, positive; CA/B forum: ≥ 64 random bits). The top bit is cleared so the
    /// value is positive, and the next one set so no leading zero byte is dropped.
    static func randomSerial() -> [UInt8] {
        var generator = SystemRandomNumberGenerator()
        let high = generator.next() as UInt64
        let low = generator.next() as UInt64
        var bytes = [UInt8](repeating: 0, count: 16)
        for index in 0..<8 {
            bytes[index] = UInt8(truncatingIfNeeded: high >> (56 - 8 * index))
            bytes[8 + index] = UInt8(truncatingIfNeeded: low >> (56 - 8 * index))
        }
        bytes[0] = (bytes[0] & 0x7F) | 0x40
        return bytes
    }
}
