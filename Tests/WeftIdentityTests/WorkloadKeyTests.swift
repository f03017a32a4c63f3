import Crypto
import Foundation
import X509
import XCTest

@testable import WeftIdentity

final class WorkloadKeyTests: XCTestCase {
    func testCSRCarriesTheIdentityAndTheKey() throws {
        let key = try WorkloadKey(identity: Fixtures.web)
        let csr = try CertificateSigningRequest(pemEncoded: key.csrPEM)
        let privateKey = try P256.Signing.PrivateKey(pemRepresentation: key.privateKeyPEM)
        XCTAssertEqual(csr.publicKey, Certificate.PublicKey(privateKey.publicKey))
        XCTAssertTrue(csr.publicKey.isValidSignature(csr.signature, for: csr))
        XCTAssertEqual(
            try csr.attributes.extensionRequest?.extensions.subjectAlternativeNames,
            SubjectAlternativeNames([.uniformResourceIdentifier("spiffe://cluster.local/ns/default/sa/web")]))
        XCTAssertTrue(key.privateKeyPEM.hasPrefix("-----BEGIN PRIVATE KEY-----"))
    }

    func testExistingKeyIsReused() throws {
        let first = try WorkloadKey(identity: Fixtures.web)
        let second = try WorkloadKey(identity: Fixtures.web, privateKeyPEM: first.privateKeyPEM)
        XCTAssertEqual(
            try CertificateSigningRequest(pemEncoded: first.csrPEM).publicKey,
            try CertificateSigningRequest(pemEncoded: second.csrPEM).publicKey)
    }

    func testNonP256KeyIsRefused() {
        XCTAssertThrowsError(try WorkloadKey(identity: Fixtures.web, privateKeyPEM: "nope")) { error in
            XCTAssertEqual((error as? IdentityError)?.code, .badPEM)
        }
    }
}
