import WeftCore
import WeftProtocol

/// A certificate the control plane issued for a proxy, in the form `identity` carries.
public struct IssuedIdentity: Sendable {
    public let spiffeID: SPIFFEID
    public let chainPEM: String
    public let notBefore: String
    public let notAfter: String

    public init(spiffeID: SPIFFEID, chainPEM: String, notBefore: String, notAfter: String) {
        self.spiffeID = spiffeID
        self.chainPEM = chainPEM
        self.notBefore = notBefore
        self.notAfter = notAfter
    }
}

/// What the push server needs from the CA. Errors come back as protocol errors, so the
/// server sends them as they are.
public protocol WorkloadIssuer: Sendable {
    var trustDomain: String { get }
    var trustBundlePEM: String { get }
    /// Issues a leaf for `identity` from a PEM CSR.
    /// - Throws: `.invalidCSR`, or `.forbiddenIdentity` when the CSR names someone else.
    func issue(csrPEM: String, for identity: SPIFFEID) throws(ProtocolError) -> IssuedIdentity
    /// Checks a renewal proof: the chain is ours and current, and `signature` (base64 DER)
    /// over `data` verifies with its leaf's key.
    /// - Returns: the identity the chain proves.
    func verifyRenewal(chainPEM: String, data: [UInt8], signatureBase64: String) async throws(ProtocolError) -> SPIFFEID
}
