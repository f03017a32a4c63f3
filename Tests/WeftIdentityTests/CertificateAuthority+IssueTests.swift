import Crypto
import Foundation
import SwiftASN1
import WeftCore
import X509
import XCTest

@testable import WeftIdentity

/// Leaf issuance: the fields of what is issued, and every refusal.
final class CertificateAuthorityIssueTests: XCTestCase {
    func testIssuedLeafFields() throws {
        let (_, authority) = try Fixtures.authority()
        let key = try WorkloadKey(identity: Fixtures.web)
        let issued = try authority.issue(csrPEM: key.csrPEM, for: Fixtures.web, now: Fixtures.now)
        let leaf = try Certificate(pemEncoded: issued.leafPEM)

        XCTAssertEqual(issued.identity, Fixtures.web)
        XCTAssertEqual(leaf.version, .v3)
        XCTAssertEqual(leaf.subject, DistinguishedName())
        XCTAssertEqual(leaf.issuer, authority.intermediate.subject)
        XCTAssertEqual(leaf.signatureAlgorithm, .ecdsaWithSHA256)
        XCTAssertTrue(authority.intermediate.publicKey.isValidSignature(leaf.signature, for: leaf))
        let workloadKey = try P256.Signing.PrivateKey(pemRepresentation: key.privateKeyPEM)
        XCTAssertEqual(leaf.publicKey, Certificate.PublicKey(workloadKey.publicKey))

        let san = try XCTUnwrap(leaf.extensions[oid: .X509ExtensionID.subjectAlternativeName])
        XCTAssertTrue(san.critical, "the subject is empty, so the SAN is critical")
        XCTAssertEqual(
            try leaf.extensions.subjectAlternativeNames,
            SubjectAlternativeNames([.uniformResourceIdentifier("spiffe://cluster.local/ns/default/sa/web")]))
        XCTAssertEqual(try leaf.extensions.basicConstraints, .notCertificateAuthority)
        XCTAssertTrue(try XCTUnwrap(leaf.extensions[oid: .X509ExtensionID.basicConstraints]).critical)
        XCTAssertEqual(try leaf.extensions.keyUsage, KeyUsage(digitalSignature: true))
        XCTAssertTrue(try XCTUnwrap(leaf.extensions[oid: .X509ExtensionID.keyUsage]).critical)
        XCTAssertEqual(try leaf.extensions.extendedKeyUsage, try ExtendedKeyUsage([.serverAuth, .clientAuth]))
        XCTAssertEqual(
            try leaf.extensions.authorityKeyIdentifier?.keyIdentifier,
            try authority.intermediate.extensions.subjectKeyIdentifier?.keyIdentifier)
        XCTAssertEqual(
            try leaf.extensions.subjectKeyIdentifier?.keyIdentifier,
            SubjectKeyIdentifier(hash: leaf.publicKey).keyIdentifier)

        XCTAssertEqual(leaf.notValidBefore, Fixtures.now.addingTimeInterval(-300))
        XCTAssertEqual(leaf.notValidAfter, Fixtures.now.addingTimeInterval(86_400))
        XCTAssertEqual(issued.notBefore, leaf.notValidBefore)
        XCTAssertEqual(issued.notAfter, leaf.notValidAfter)

        let serial = Array(leaf.serialNumber.bytes)
        XCTAssertEqual(serial.count, 16)
        XCTAssertLessThan(serial[0], 0x80, "positive")
        XCTAssertEqual(issued.serialHex, serial.map { String(format: "%02x", $0) }.joined())

        let chain = try PEMDocument.parseMultiple(pemString: issued.chainPEM).map {
            try Certificate(derEncoded: $0.derBytes)
        }
        XCTAssertEqual(chain, [leaf, authority.intermediate])
        XCTAssertTrue(issued.chainPEM.hasPrefix(issued.leafPEM))
    }

    func testLifetimeIsClippedToTheIntermediate() throws {
        let (_, authority) = try Fixtures.authority()
        let key = try WorkloadKey(identity: Fixtures.web)
        let issued = try authority.issue(
            csrPEM: key.csrPEM, for: Fixtures.web, lifetime: .seconds(2 * 365 * 86_400), now: Fixtures.now)
        XCTAssertEqual(issued.notAfter, authority.intermediate.notValidAfter)
        let short = try authority.issue(
            csrPEM: key.csrPEM, for: Fixtures.web, lifetime: .seconds(90), now: Fixtures.now)
        XCTAssertEqual(short.notAfter, Fixtures.now.addingTimeInterval(90))
    }

    func testSerialsDiffer() throws {
        let (_, authority) = try Fixtures.authority()
        let key = try WorkloadKey(identity: Fixtures.web)
        let serials = try (0..<50).map { _ in
            try authority.issue(csrPEM: key.csrPEM, for: Fixtures.web, now: Fixtures.now).serialHex
        }
        XCTAssertEqual(Set(serials).count, 50)
    }

    func testDERAndNewCertificateRequestLabelAreAccepted() throws {
        let (_, authority) = try Fixtures.authority()
        let key = try WorkloadKey(identity: Fixtures.web)
        let document = try PEMDocument(pemString: key.csrPEM)
        XCTAssertNoThrow(try authority.issue(csrDER: document.derBytes, for: Fixtures.web, now: Fixtures.now))
        let legacy = PEMDocument(type: "NEW CERTIFICATE REQUEST", derBytes: document.derBytes).pemString
        XCTAssertNoThrow(try authority.issue(csrPEM: legacy, for: Fixtures.web, now: Fixtures.now))
    }

    func testCSRForAnotherIdentityIsRefusedNamingBoth() throws {
        let (_, authority) = try Fixtures.authority()
        let key = try WorkloadKey(identity: Fixtures.db)
        let error = try XCTUnwrap(issueError(authority, key.csrPEM, for: Fixtures.web))
        XCTAssertEqual(error.code, .identityMismatch)
        XCTAssertEqual(error.expected, "spiffe://cluster.local/ns/default/sa/web")
        XCTAssertEqual(error.requested, "spiffe://cluster.local/ns/default/sa/db")
        XCTAssertTrue(error.description.contains("sa/web") && error.description.contains("sa/db"), error.description)
    }

    func testRSAAndP384KeysAreRefused() throws {
        let (_, authority) = try Fixtures.authority()
        for csr in [Fixtures.rsaCSR, Fixtures.p384CSR] {
            let error = try XCTUnwrap(issueError(authority, csr, for: Fixtures.web))
            XCTAssertEqual(error.code, .unsupportedKey, error.description)
        }
        XCTAssertTrue(
            try XCTUnwrap(issueError(authority, Fixtures.p384CSR, for: Fixtures.web)).reason.contains("P-384"))
    }

    func testTamperedCSRIsRefused() throws {
        let (_, authority) = try Fixtures.authority()
        let key = try WorkloadKey(identity: Fixtures.web)
        var der = try PEMDocument(pemString: key.csrPEM).derBytes
        // Turn ".../sa/web" into ".../sa/wex" inside the signed part: the request now
        // names an identity its signature does not cover.
        let needle = Array("sa/web".utf8)
        let at = try XCTUnwrap((0...(der.count - needle.count)).first { Array(der[$0..<$0 + needle.count]) == needle })
        der[at + needle.count - 1] = UInt8(ascii: "x")
        let tampered = PEMDocument(type: "CERTIFICATE REQUEST", derBytes: der).pemString
        let wex = SPIFFEID(namespace: "default", serviceAccount: "wex")
        XCTAssertEqual(try XCTUnwrap(issueError(authority, tampered, for: wex)).code, .badSignature)

        // A flipped bit in the signature itself.
        var flipped = try PEMDocument(pemString: key.csrPEM).derBytes
        flipped[flipped.count - 5] ^= 0x01
        let flippedPEM = PEMDocument(type: "CERTIFICATE REQUEST", derBytes: flipped).pemString
        XCTAssertEqual(try XCTUnwrap(issueError(authority, flippedPEM, for: Fixtures.web)).code, .badSignature)
    }

    func testCSRWithoutSANIsRefused() throws {
        let (_, authority) = try Fixtures.authority()
        let key = P256.Signing.PrivateKey()
        let csr = try CertificateSigningRequest(
            version: .v1, subject: DistinguishedName { CommonName("web") },
            privateKey: Certificate.PrivateKey(key), attributes: CertificateSigningRequest.Attributes(),
            signatureAlgorithm: .ecdsaWithSHA256)
        let error = try XCTUnwrap(issueError(authority, try csr.serializeAsPEM().pemString, for: Fixtures.web))
        XCTAssertEqual(error.code, .missingIdentity)
    }

    func testCSRWithTwoNamesIsRefused() throws {
        let (_, authority) = try Fixtures.authority()
        let key = P256.Signing.PrivateKey()
        let san = SubjectAlternativeNames([
            .uniformResourceIdentifier(Fixtures.web.description), .dnsName("web.default.svc"),
        ])
        let request = ExtensionRequest(extensions: try Certificate.Extensions { san })
        let csr = try CertificateSigningRequest(
            version: .v1, subject: DistinguishedName(), privateKey: Certificate.PrivateKey(key),
            attributes: CertificateSigningRequest.Attributes([try .init(request)]),
            signatureAlgorithm: .ecdsaWithSHA256)
        let error = try XCTUnwrap(issueError(authority, try csr.serializeAsPEM().pemString, for: Fixtures.web))
        XCTAssertEqual(error.code, .unexpectedNames)
    }

    func testGarbageIsMalformed() throws {
        let (_, authority) = try Fixtures.authority()
        XCTAssertEqual(try XCTUnwrap(issueError(authority, "hello", for: Fixtures.web)).code, .malformedCSR)
        let certificate = authority.intermediatePEM
        XCTAssertEqual(try XCTUnwrap(issueError(authority, certificate, for: Fixtures.web)).code, .malformedCSR)
    }

    func testForeignTrustDomainIsRefused() throws {
        let (_, authority) = try Fixtures.authority()
        let foreign = SPIFFEID(trustDomain: "other.example", namespace: "default", serviceAccount: "web")
        let key = try WorkloadKey(identity: foreign)
        XCTAssertEqual(try XCTUnwrap(issueError(authority, key.csrPEM, for: foreign)).code, .foreignTrustDomain)
    }

    func testNonPositiveLifetimeIsRefused() throws {
        let (_, authority) = try Fixtures.authority()
        let key = try WorkloadKey(identity: Fixtures.web)
        XCTAssertThrowsError(
            try authority.issue(csrPEM: key.csrPEM, for: Fixtures.web, lifetime: .zero, now: Fixtures.now)
        ) { error in
            XCTAssertEqual((error as? IssueError)?.code, .invalidValidity)
        }
    }

    private func issueError(_ authority: CertificateAuthority, _ csr: String, for identity: SPIFFEID) -> IssueError? {
        do {
            _ = try authority.issue(csrPEM: csr, for: identity, now: Fixtures.now)
            return nil
        } catch {
            return error
        }
    }
}
