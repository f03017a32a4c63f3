import Foundation
import X509
import XCTest

@testable import WeftIdentity

final class SPIFFEPeerTests: XCTestCase {
    func testReadsTheLeafsSPIFFEID() throws {
        let (_, authority) = try Fixtures.authority()
        let key = try WorkloadKey(identity: Fixtures.db)
        let issued = try authority.issue(csrPEM: key.csrPEM, for: Fixtures.db, now: Fixtures.now)
        XCTAssertEqual(SPIFFEPeer.spiffeID(ofLeafPEM: issued.chainPEM), Fixtures.db)
        XCTAssertEqual(SPIFFEPeer.spiffeID(of: try Certificate(pemEncoded: issued.leafPEM)), Fixtures.db)
    }

    func testNilWithoutASPIFFEID() throws {
        let (_, authority) = try Fixtures.authority()
        XCTAssertNil(SPIFFEPeer.spiffeID(of: authority.intermediate))
        XCTAssertNil(SPIFFEPeer.spiffeID(ofLeafPEM: "garbage"))
    }
}
