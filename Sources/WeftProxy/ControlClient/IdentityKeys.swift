import WeftCore
import WeftIdentity

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// `WorkloadKeyMaking` on WeftIdentity (swift-crypto and swift-certificates).
public struct IdentityKeys: WorkloadKeyMaking {
    public init() {}

    public func makeKeyAndCSR(for identity: SPIFFEID) throws -> (keyPEM: String, csrPEM: String) {
        let key = try WorkloadKey(identity: identity)
        return (key.privateKeyPEM, key.csrPEM)
    }

    public func sign(_ data: [UInt8], keyPEM: String) throws -> String {
        Data(try IdentityProof.sign(data: data, keyPEM: keyPEM)).base64EncodedString()
    }

    public func spiffeID(ofCertificateDER der: [UInt8]) -> String? {
        SPIFFEPeer.spiffeID(ofDER: der)?.description
    }
}
