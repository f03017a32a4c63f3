/// Why the CA refused to issue a leaf certificate for a CSR.
///
/// Every refusal names the identity the caller expected, and where the CSR asked for
/// another one, that one too, so a log line is enough to tell a misconfigured workload
/// from an impersonation attempt. Compare `code`, not the text.
public struct IssueError: Error, CustomStringConvertible, Sendable {
    /// What kind of refusal this is. New codes may be added; switch with a `default`.
    public enum Code: String, Sendable {
        /// The CSR is not PEM/DER or not a PKCS#10 request.
        case malformedCSR
        /// The CSR's self-signature does not verify (no proof of key possession).
        case badSignature
        /// The CSR's key is not ECDSA P-256, or it is signed with another algorithm.
        case unsupportedKey
        /// The CSR carries no extensionRequest or no URI SAN.
        case missingIdentity
        /// The CSR asks for more than one name, or for a name that is not a SPIFFE ID.
        case unexpectedNames
        /// The CSR asks for a SPIFFE ID other than the expected one.
        case identityMismatch
        /// The expected identity is outside the CA's trust domain.
        case foreignTrustDomain
        /// The lifetime is zero or negative, or the CA's intermediate has expired.
        case invalidValidity
        /// Building or signing the certificate failed.
        case signingFailed
    }

    public let code: Code
    /// The identity the caller authenticated and asked to issue for.
    public let expected: String
    /// The identity the CSR asked for, when it asked for one.
    public let requested: String?
    public let reason: String

    public init(_ code: Code, expected: String, requested: String? = nil, reason: String) {
        self.code = code
        self.expected = expected
        self.requested = requested
        self.reason = reason
    }

    public var description: String {
        if let requested {
            return "issuing for \(expected): CSR asks for \(requested): \(reason)"
        }
        return "issuing for \(expected): \(reason)"
    }
}
