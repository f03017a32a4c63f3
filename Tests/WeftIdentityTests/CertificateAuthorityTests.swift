import Foundation
import WeftCore
import XCTest

@testable import WeftIdentity

/// Loading a CA from disk, and every way the files can be wrong.
final class CertificateAuthorityTests: XCTestCase {
    func testWriteAndLoadRoundTrip() throws {
        let (files, _) = try Fixtures.authority()
        let directory = try Fixtures.temporaryDirectory(self)
        let written = try files.write(to: directory)
        XCTAssertEqual(
            written.map(\.lastPathComponent),
            ["root.crt", "root.key", "intermediate.crt", "intermediate.key", "bundle.crt"])
        for (name, mode) in [
            ("root.key", 0o600), ("intermediate.key", 0o600), ("root.crt", 0o644), ("bundle.crt", 0o644),
        ] {
            let attributes = try FileManager.default.attributesOfItem(
                atPath: directory.appendingPathComponent(name).path)
            XCTAssertEqual((attributes[.posixPermissions] as? NSNumber)?.intValue, mode, name)
        }

        let authority = try CertificateAuthority(loadingFrom: directory, now: Fixtures.now)
        XCTAssertEqual(authority.trustDomain, "cluster.local")
        XCTAssertEqual(authority.trustBundlePEM, files.bundlePEM)
        XCTAssertEqual(authority.intermediatePEM, files.intermediateCertificatePEM)
        let key = try WorkloadKey(identity: Fixtures.web)
        XCTAssertEqual(
            try authority.issue(csrPEM: key.csrPEM, for: Fixtures.web, now: Fixtures.now).identity, Fixtures.web)
    }

    func testRootKeyIsNotNeededToRun() throws {
        let (files, _) = try Fixtures.authority()
        let directory = try Fixtures.temporaryDirectory(self)
        try files.write(to: directory)
        try FileManager.default.removeItem(at: directory.appendingPathComponent("root.key"))
        try FileManager.default.removeItem(at: directory.appendingPathComponent("root.crt"))
        XCTAssertNoThrow(try CertificateAuthority(loadingFrom: directory.path, now: Fixtures.now))
    }

    func testWriteRefusesToOverwriteUnlessForced() throws {
        let (files, _) = try Fixtures.authority()
        let directory = try Fixtures.temporaryDirectory(self)
        try files.write(to: directory)
        let (other, _) = try Fixtures.authority()
        XCTAssertThrowsError(try other.write(to: directory)) { error in
            let error = error as! IdentityError
            XCTAssertEqual(error.code, .alreadyExists)
            XCTAssertTrue(error.what.hasSuffix("root.crt"), error.description)
        }
        XCTAssertNoThrow(try other.write(to: directory, force: true))
        let loaded = try CertificateAuthority(loadingFrom: directory, now: Fixtures.now)
        XCTAssertEqual(loaded.trustBundlePEM, other.bundlePEM)
        let attributes = try FileManager.default.attributesOfItem(
            atPath: directory.appendingPathComponent("intermediate.key").path)
        XCTAssertEqual((attributes[.posixPermissions] as? NSNumber)?.intValue, 0o600)
    }

    func testMissingFileIsNamed() throws {
        let directory = try writtenCA()
        try FileManager.default.removeItem(at: directory.appendingPathComponent("intermediate.key"))
        assertLoadFails(directory, .missingFile, file: "intermediate.key")
    }

    func testBadPEMIsNamed() throws {
        let directory = try writtenCA()
        try "not a certificate\n".write(
            to: directory.appendingPathComponent("intermediate.crt"), atomically: false, encoding: .utf8)
        assertLoadFails(directory, .badPEM, file: "intermediate.crt")

        let other = try writtenCA()
        try "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n".write(
            to: other.appendingPathComponent("bundle.crt"), atomically: false, encoding: .utf8)
        assertLoadFails(other, .badPEM, file: "bundle.crt")
    }

    func testKeyThatDoesNotMatchTheCertificateIsRefused() throws {
        let directory = try writtenCA()
        let rootKey = try String(contentsOf: directory.appendingPathComponent("root.key"), encoding: .utf8)
        try rootKey.write(to: directory.appendingPathComponent("intermediate.key"), atomically: false, encoding: .utf8)
        assertLoadFails(directory, .keyMismatch, file: "intermediate.key")
    }

    func testNonP256KeyIsRefused() throws {
        let directory = try writtenCA()
        // `openssl genpkey -algorithm ed25519`
        let ed25519Key =
            "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIGIIi+Dhgh8xvGntaICbq+IUD3raVJ/EWjm/NWvl7J0P\n-----END PRIVATE KEY-----\n"
        try ed25519Key.write(
            to: directory.appendingPathComponent("intermediate.key"), atomically: false, encoding: .utf8)
        assertLoadFails(directory, .unsupportedKey, file: "intermediate.key")
    }

    func testIntermediateNotSignedByAnyRootInTheBundleIsRefused() throws {
        let directory = try writtenCA()
        let (foreign, _) = try Fixtures.authority()
        try foreign.bundlePEM.write(
            to: directory.appendingPathComponent("bundle.crt"), atomically: false, encoding: .utf8)
        assertLoadFails(directory, .untrustedIntermediate, file: "intermediate.crt", reasonMentions: "bundle.crt")
    }

    func testExpiredIntermediateIsRefused() throws {
        let directory = try writtenCA()
        let later = Fixtures.now.addingTimeInterval(400 * 86_400)
        XCTAssertThrowsError(try CertificateAuthority(loadingFrom: directory, now: later)) { error in
            let error = error as! IdentityError
            XCTAssertEqual(error.code, .expired)
            XCTAssertTrue(error.what.hasSuffix("intermediate.crt"), error.description)
        }
    }

    func testLeafAsIntermediateIsRefused() throws {
        let directory = try writtenCA()
        let authority = try CertificateAuthority(loadingFrom: directory, now: Fixtures.now)
        let key = try WorkloadKey(identity: Fixtures.web)
        let issued = try authority.issue(csrPEM: key.csrPEM, for: Fixtures.web, now: Fixtures.now)
        try issued.leafPEM.write(
            to: directory.appendingPathComponent("intermediate.crt"), atomically: false, encoding: .utf8)
        try key.privateKeyPEM.write(
            to: directory.appendingPathComponent("intermediate.key"), atomically: false, encoding: .utf8)
        assertLoadFails(directory, .notCertificateAuthority, file: "intermediate.crt")
    }

    // MARK: helpers

    private func writtenCA() throws -> URL {
        let (files, _) = try Fixtures.authority()
        let directory = try Fixtures.temporaryDirectory(self)
        try files.write(to: directory)
        return directory
    }

    private func assertLoadFails(
        _ directory: URL, _ code: IdentityError.Code, file: String, reasonMentions: String? = nil,
        line: UInt = #line
    ) {
        XCTAssertThrowsError(try CertificateAuthority(loadingFrom: directory, now: Fixtures.now), line: line) {
            error in
            guard let error = error as? IdentityError else {
                return XCTFail("not an IdentityError: \(error)", line: line)
            }
            XCTAssertEqual(error.code, code, error.description, line: line)
            XCTAssertTrue(error.what.hasSuffix(file), "names \(error.what), not \(file)", line: line)
            if let reasonMentions {
                XCTAssertTrue(error.reason.contains(reasonMentions), error.reason, line: line)
            }
        }
    }
}
