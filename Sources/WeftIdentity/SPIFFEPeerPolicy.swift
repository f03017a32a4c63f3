import SwiftASN1
import WeftCore
import X509

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// A swift-certificates `VerifierPolicy` for mesh peers: the leaf must carry exactly
/// one SPIFFE ID, in `trustDomain` when one is given, and must not be a CA.
///
/// Use it next to `RFC5280Policy`. It also declares the SAN extension as handled: mesh
/// leaves have an empty subject, so their SAN is critical (RFC 5280 §4.2.1.6), and
/// `RFC5280Policy` alone would reject them for an unhandled critical extension.
public struct SPIFFEPeerPolicy: VerifierPolicy, Sendable {
    public let verifyingCriticalExtensions: [ASN1ObjectIdentifier] = [.X509ExtensionID.subjectAlternativeName]
    /// The trust domain peers must belong to; nil accepts any.
    public let trustDomain: String?

    public init(trustDomain: String?) {
        self.trustDomain = trustDomain
    }

    public mutating func chainMeetsPolicyRequirements(chain: UnverifiedCertificateChain) async
        -> PolicyEvaluationResult
    {
        let leaf = chain.leaf
        guard let identity = SPIFFEPeer.spiffeID(of: leaf) else {
            return .failsToMeetPolicy(reason: "the leaf \(leaf.serialNumber) carries no single SPIFFE URI SAN")
        }
        if let trustDomain, identity.trustDomain != trustDomain {
            return .failsToMeetPolicy(reason: "\(identity) is not in trust domain \(trustDomain)")
        }
        if case .isCertificateAuthority = try? leaf.extensions.basicConstraints {
            return .failsToMeetPolicy(reason: "the leaf for \(identity) is a CA certificate")
        }
        return .meetsPolicy
    }
}
