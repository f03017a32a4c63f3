import WeftCore
import WeftIdentity
import WeftProtocol

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// The push server's `WorkloadIssuer`: the mesh CA, with its errors turned into protocol
/// error codes.
public struct CAWorkloadIssuer: WorkloadIssuer {
    public let ca: CertificateAuthority
    public let trustDomain: String
    public let lifetime: Duration

    public init(ca: CertificateAuthority, trustDomain: String, lifetime: Duration = .seconds(86_400)) {
        self.ca = ca
        self.trustDomain = trustDomain
        self.lifetime = lifetime
    }

    public var trustBundlePEM: String { ca.trustBundlePEM }

    public func issue(csrPEM: String, for identity: SPIFFEID) throws(ProtocolError) -> IssuedIdentity {
        do {
            let issued = try ca.issue(csrPEM: csrPEM, for: identity, lifetime: lifetime)
            return IssuedIdentity(
                spiffeID: identity, chainPEM: issued.chainPEM, notBefore: issued.notBefore.formatted(.iso8601),
                notAfter: issued.notAfter.formatted(.iso8601))
        } catch {
            switch error.code {
            case .identityMismatch, .foreignTrustDomain:
                throw ProtocolError(.forbiddenIdentity, error.description)
            case .signingFailed, .invalidValidity:
                throw ProtocolError(.internalError, error.description)
            default:
                throw ProtocolError(.invalidCSR, error.description)
            }
        }
    }

    public func verifyRenewal(
        chainPEM: String, data: [UInt8], signatureBase64: String
    ) async throws(ProtocolError) -> SPIFFEID {
        guard let signature = Data(base64Encoded: signatureBase64) else {
            throw ProtocolError(.invalidMessage, "signature: not base64")
        }
        do {
            return try await ca.verifyProof(chainPEM: chainPEM, data: data, signature: Array(signature))
        } catch {
            throw ProtocolError(.unauthenticated, "renewal proof refused: \(error.description)")
        }
    }
}
