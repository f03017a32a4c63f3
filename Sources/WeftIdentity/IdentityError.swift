/// A failure to create, load or use the mesh CA's files, or to verify a peer's identity.
///
/// Like swift-certificates' `CertificateError`, the `code` is stable and is what callers
/// and tests compare; `what` names the thing that failed (a file path, a peer's SPIFFE ID
/// or "chain"), and `reason` says what is wrong with it in words.
public struct IdentityError: Error, CustomStringConvertible, Sendable {
    /// What kind of failure this is. New codes may be added; switch with a `default`.
    public enum Code: String, Sendable {
        /// A file the CA needs does not exist.
        case missingFile
        /// A file exists but could not be read or written.
        case fileAccess
        /// A file holds no PEM block of the expected type, or the block does not decode.
        case badPEM
        /// A key is not an ECDSA P-256 key.
        case unsupportedKey
        /// A private key does not belong to the certificate next to it.
        case keyMismatch
        /// A certificate that must be a CA (basicConstraints CA:TRUE) is not one.
        case notCertificateAuthority
        /// The intermediate is not signed by any root in the trust bundle.
        case untrustedIntermediate
        /// A certificate is outside its validity period.
        case expired
        /// The CA files already exist and `force` was not given.
        case alreadyExists
        /// A trust domain, identity or other input is malformed.
        case invalidInput
        /// Key generation, signing or encoding failed.
        case cryptoFailure
        /// A peer's chain does not lead to a root in the trust bundle.
        case untrustedPeer
        /// A peer's certificate carries no SPIFFE ID (or more than one URI).
        case missingSPIFFEID
        /// A proof's signature does not verify with the peer's certificate key.
        case badProof
    }

    public let code: Code
    /// The file, peer or field that failed.
    public let what: String
    public let reason: String

    public init(_ code: Code, what: String, reason: String) {
        self.code = code
        self.what = what
        self.reason = reason
    }

    public var description: String { "\(what): \(reason)" }
}
