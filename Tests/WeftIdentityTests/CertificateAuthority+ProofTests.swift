import Crypto
import Foundation
import WeftCore
import XCTest

@testable import WeftIdentity

/// Renewal proofs, and trust across a root rotation.
final class CertificateAuthorityProofTests: XCTestCase {
    private let data = Array("renew spiffe://cluster.local/ns/default/sa/web nonce 42".utf8)

    func testProofByTheCurrentLeafVerifies() async throws {
        let (_, authority) = try Fixtures.authority()
        let (key, issued) = try issue(authority, Fixtures.web)
        let signature = try IdentityProof.sign(data: data, keyPEM: key.privateKeyPEM)
        let identity = try await authority.verifyProof(
            chainPEM: issued.chainPEM, data: data, signature: signature, now: Fixtures.now)
        XCTAssertEqual(identity, Fixtures.web)
    }

    func testProofOverOtherDataOrByAnotherKeyIsRefused() async throws {
        let (_, authority) = try Fixtures.authority()
        let (key, issued) = try issue(authority, Fixtures.web)
        let signature = try IdentityProof.sign(data: data, keyPEM: key.privateKeyPEM)
        await assertProofFails(authority, issued.chainPEM, Array("other".utf8), signature, .badProof)

        let stranger = try WorkloadKey(identity: Fixtures.web)
        let strangerSignature = try IdentityProof.sign(data: data, keyPEM: stranger.privateKeyPEM)
        await assertProofFails(authority, issued.chainPEM, data, strangerSignature, .badProof)
        await assertProofFails(authority, issued.chainPEM, data, [0x30, 0x00], .badProof)
    }

    func testProofByAForeignCAsLeafIsRefused() async throws {
        let (_, authority) = try Fixtures.authority()
        let (_, foreign) = try Fixtures.authority()
        let (key, issued) = try issue(foreign, Fixtures.web)
        let signature = try IdentityProof.sign(data: data, keyPEM: key.privateKeyPEM)
        await assertProofFails(authority, issued.chainPEM, data, signature, .untrustedPeer)
    }

    func testProofByAnExpiredLeafIsRefused() async throws {
        let (_, authority) = try Fixtures.authority()
        let (key, issued) = try issue(authority, Fixtures.web)
        let signature = try IdentityProof.sign(data: data, keyPEM: key.privateKeyPEM)
        await assertProofFails(
            authority, issued.chainPEM, data, signature, .untrustedPeer,
            now: Fixtures.now.addingTimeInterval(2 * 86_400))
    }

    func testProofWithoutTheIntermediateIsRefused() async throws {
        let (_, authority) = try Fixtures.authority()
        let (key, issued) = try issue(authority, Fixtures.web)
        let signature = try IdentityProof.sign(data: data, keyPEM: key.privateKeyPEM)
        await assertProofFails(authority, issued.leafPEM, data, signature, .untrustedPeer)
    }

    func testMultiRootBundleTrustsLeavesOfBothRoots() async throws {
        // Rotation: the old CA keeps issuing while the bundle already trusts both roots.
        let (oldFiles, oldAuthority) = try Fixtures.authority()
        let newFiles = try CertificateAuthority.create(
            now: Fixtures.now, alsoTrusting: try TrustBundle(pem: oldFiles.bundlePEM))
        let newAuthority = try CertificateAuthority(files: newFiles, now: Fixtures.now)
        XCTAssertEqual(newAuthority.trustBundle.roots.count, 2)

        // The old intermediate loads against the merged bundle too (it chains to its root).
        var oldWithMergedBundle = oldFiles
        oldWithMergedBundle.bundlePEM = newFiles.bundlePEM
        let oldAuthorityMerged = try CertificateAuthority(files: oldWithMergedBundle, now: Fixtures.now)

        for issuer in [oldAuthority, newAuthority, oldAuthorityMerged] {
            let (key, issued) = try issue(issuer, Fixtures.web)
            let signature = try IdentityProof.sign(data: data, keyPEM: key.privateKeyPEM)
            for verifier in [newAuthority, oldAuthorityMerged] {
                let identity = try await verifier.verifyProof(
                    chainPEM: issued.chainPEM, data: data, signature: signature, now: Fixtures.now)
                XCTAssertEqual(identity, Fixtures.web)
            }
        }
        // A verifier with only the old root does not trust the new root's leaves.
        let (key, issued) = try issue(newAuthority, Fixtures.web)
        let signature = try IdentityProof.sign(data: data, keyPEM: key.privateKeyPEM)
        await assertProofFails(oldAuthority, issued.chainPEM, data, signature, .untrustedPeer)
    }

    // MARK: helpers

    private func issue(_ authority: CertificateAuthority, _ identity: SPIFFEID) throws -> (
        WorkloadKey, IssuedCertificate
    ) {
        let key = try WorkloadKey(identity: identity)
        return (key, try authority.issue(csrPEM: key.csrPEM, for: identity, now: Fixtures.now))
    }

    private func assertProofFails(
        _ authority: CertificateAuthority, _ chain: String, _ data: [UInt8], _ signature: [UInt8],
        _ code: IdentityError.Code, now: Date = Fixtures.now, line: UInt = #line
    ) async {
        do {
            let identity = try await authority.verifyProof(chainPEM: chain, data: data, signature: signature, now: now)
            XCTFail("accepted as \(identity)", line: line)
        } catch {
            XCTAssertEqual(error.code, code, error.description, line: line)
        }
    }
}
