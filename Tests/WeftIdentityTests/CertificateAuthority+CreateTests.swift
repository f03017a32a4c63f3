import Crypto
import Foundation
import SwiftASN1
import WeftCore
import X509
import XCTest

@testable import WeftIdentity

/// The root and intermediate `create` makes.
final class CertificateAuthorityCreateTests: XCTestCase {
    func testRootFields() throws {
        let (files, _) = try Fixtures.authority()
        let root = try Certificate(pemEncoded: files.rootCertificatePEM)
        XCTAssertEqual(root.subject, root.issuer)
        XCTAssertTrue(root.publicKey.isValidSignature(root.signature, for: root))
        XCTAssertNotNil(P256.Signing.PublicKey(root.publicKey))
        XCTAssertEqual(root.signatureAlgorithm, .ecdsaWithSHA256)
        XCTAssertEqual(root.notValidBefore, Fixtures.now.addingTimeInterval(-300))
        XCTAssertEqual(root.notValidAfter, Fixtures.now.addingTimeInterval(10 * 365 * 86_400))

        let basic = try XCTUnwrap(root.extensions[oid: .X509ExtensionID.basicConstraints])
        XCTAssertTrue(basic.critical)
        XCTAssertEqual(try root.extensions.basicConstraints, .isCertificateAuthority(maxPathLength: nil))
        let usage = try XCTUnwrap(root.extensions[oid: .X509ExtensionID.keyUsage])
        XCTAssertTrue(usage.critical)
        XCTAssertEqual(try root.extensions.keyUsage, KeyUsage(keyCertSign: true, cRLSign: true))
        XCTAssertEqual(
            try root.extensions.subjectKeyIdentifier?.keyIdentifier,
            SubjectKeyIdentifier(hash: root.publicKey).keyIdentifier)
        XCTAssertEqual(try TrustBundle(pem: files.bundlePEM).roots, [root])
    }

    func testIntermediateFields() throws {
        let (files, authority) = try Fixtures.authority()
        let root = try Certificate(pemEncoded: files.rootCertificatePEM)
        let intermediate = try Certificate(pemEncoded: files.intermediateCertificatePEM)
        XCTAssertEqual(intermediate, authority.intermediate)
        XCTAssertEqual(intermediate.issuer, root.subject)
        XCTAssertTrue(root.publicKey.isValidSignature(intermediate.signature, for: intermediate))
        XCTAssertEqual(intermediate.notValidAfter, Fixtures.now.addingTimeInterval(365 * 86_400))
        XCTAssertEqual(try intermediate.extensions.basicConstraints, .isCertificateAuthority(maxPathLength: 0))
        XCTAssertTrue(try XCTUnwrap(intermediate.extensions[oid: .X509ExtensionID.basicConstraints]).critical)
        XCTAssertTrue(try XCTUnwrap(intermediate.extensions[oid: .X509ExtensionID.keyUsage]).critical)
        XCTAssertEqual(
            try intermediate.extensions.nameConstraints?.permittedSubtrees,
            [.uniformResourceIdentifier("cluster.local")])
        XCTAssertEqual(
            try intermediate.extensions.authorityKeyIdentifier?.keyIdentifier,
            try root.extensions.subjectKeyIdentifier?.keyIdentifier)
        XCTAssertNotNil(try intermediate.extensions.subjectKeyIdentifier)
        XCTAssertNotEqual(intermediate.serialNumber, root.serialNumber)
    }

    func testMalformedTrustDomainIsRefused() {
        for bad in ["", "Cluster.Local", "a/b", ".local", "spiffe://x"] {
            XCTAssertThrowsError(try CertificateAuthority.create(trustDomain: bad, now: Fixtures.now), bad) { error in
                XCTAssertEqual((error as? IdentityError)?.code, .invalidInput)
            }
        }
    }

    func testAlsoTrustingKeepsTheOldRootsAfterTheNewOne() throws {
        let (old, _) = try Fixtures.authority()
        let files = try CertificateAuthority.create(
            now: Fixtures.now, alsoTrusting: try TrustBundle(pem: old.bundlePEM))
        let roots = try TrustBundle(pem: files.bundlePEM).roots
        XCTAssertEqual(roots.count, 2)
        XCTAssertEqual(roots[0], try Certificate(pemEncoded: files.rootCertificatePEM))
        XCTAssertEqual(roots[1], try Certificate(pemEncoded: old.rootCertificatePEM))
    }

    func testSerialsArePositiveSixteenBytes() {
        for _ in 0..<100 {
            let serial = CertificateAuthority.randomSerial()
            XCTAssertEqual(serial.count, 16)
            XCTAssertEqual(serial[0] & 0xC0, 0x40)
        }
    }
}
