import X509

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// The set of trusted roots: what `bundle.crt` holds and every proxy verifies peers against.
///
/// Usually one root. During a root rotation it holds the old and the new root, so
/// leaves under either verify everywhere (docs/operations.md, "Rotating the mesh root").
public struct TrustBundle: Sendable, Hashable {
    /// The roots, in file order, without duplicates.
    public let roots: [Certificate]

    /// The roots, each checked to be a CA certificate.
    /// - Throws: `IdentityError` `.notCertificateAuthority` naming `what` and the root.
    public init(roots: [Certificate], what: String = "trust bundle") throws(IdentityError) {
        var unique: [Certificate] = []
        for root in roots where !unique.contains(root) {
            guard case .isCertificateAuthority = try? root.extensions.basicConstraints else {
                throw IdentityError(
                    .notCertificateAuthority, what: what,
                    reason: "\(root.subject) is not a CA certificate (basicConstraints CA:TRUE missing)")
            }
            unique.append(root)
        }
        if unique.isEmpty {
            throw IdentityError(.badPEM, what: what, reason: "no root certificate")
        }
        self.roots = unique
    }

    /// Parses every `CERTIFICATE` block in `pem`.
    /// - Parameter what: the file or source, named in errors.
    /// - Throws: `IdentityError` (`.badPEM`, `.notCertificateAuthority`) naming `what`.
    public init(pem: String, what: String = "trust bundle") throws(IdentityError) {
        try self.init(roots: PEMFiles.certificates(in: pem, what: what), what: what)
    }

    /// This bundle's roots followed by the other's, without duplicates.
    public func merging(_ other: TrustBundle) -> TrustBundle {
        // Both are already valid, so the combination is too.
        (try? TrustBundle(roots: roots + other.roots)) ?? self
    }

    /// The roots as concatenated PEM blocks, ready for `bundle.crt`.
    public var pem: String {
        (try? PEMFiles.pem(roots)) ?? ""
    }
}
