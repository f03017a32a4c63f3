import Foundation
import XCTest

@testable import WeftIdentity

final class TrustBundleTests: XCTestCase {
    func testMergingDeduplicatesAndKeepsOrder() throws {
        let (a, _) = try Fixtures.authority()
        let (b, _) = try Fixtures.authority()
        let bundleA = try TrustBundle(pem: a.bundlePEM)
        let bundleB = try TrustBundle(pem: b.bundlePEM)
        let merged = bundleA.merging(bundleB).merging(bundleA)
        XCTAssertEqual(merged.roots, bundleA.roots + bundleB.roots)
        XCTAssertEqual(try TrustBundle(pem: merged.pem).roots, merged.roots)
        XCTAssertEqual(try TrustBundle(pem: a.bundlePEM + b.bundlePEM + a.rootCertificatePEM).roots.count, 2)
    }

    func testLeafInBundleIsRefusedNamingTheFile() throws {
        let (_, authority) = try Fixtures.authority()
        let key = try WorkloadKey(identity: Fixtures.web)
        let leaf = try authority.issue(csrPEM: key.csrPEM, for: Fixtures.web, now: Fixtures.now).leafPEM
        XCTAssertThrowsError(try TrustBundle(pem: leaf, what: "extra.crt")) { error in
            XCTAssertEqual((error as? IdentityError)?.code, .notCertificateAuthority)
            XCTAssertEqual((error as? IdentityError)?.what, "extra.crt")
        }
    }

    func testEmptyTextIsBadPEM() {
        XCTAssertThrowsError(try TrustBundle(pem: "", what: "empty.crt")) { error in
            XCTAssertEqual((error as? IdentityError)?.code, .badPEM)
        }
    }
}
