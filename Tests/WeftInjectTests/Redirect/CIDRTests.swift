import XCTest

@testable import WeftInject

final class CIDRTests: XCTestCase {
    func testParsesIPv4AndIPv6() throws {
        let v4 = try CIDR(parsing: "10.0.0.0/8")
        XCTAssertEqual(v4.family, .ipv4)
        XCTAssertEqual(v4.description, "10.0.0.0/8")
        let v6 = try CIDR(parsing: "FD00:0:0::/8")
        XCTAssertEqual(v6.family, .ipv6)
        XCTAssertEqual(v6.description, "fd00::/8")
    }

    func testBareAddressIsAHost() throws {
        XCTAssertEqual(try CIDR(parsing: "192.168.1.7").description, "192.168.1.7/32")
        XCTAssertEqual(try CIDR(parsing: "::1").description, "::1/128")
    }

    func testHostBitsAreCleared() throws {
        XCTAssertEqual(try CIDR(parsing: "10.1.2.3/8").description, "10.0.0.0/8")
        XCTAssertEqual(try CIDR(parsing: "172.31.255.255/12").description, "172.16.0.0/12")
        XCTAssertEqual(try CIDR(parsing: "fd12:3456::1/20").description, "fd12:3000::/20")
        XCTAssertEqual(try CIDR(parsing: "8.8.8.8/0").description, "0.0.0.0/0")
    }

    func testPrefixBounds() throws {
        XCTAssertEqual(try CIDR(parsing: "1.2.3.4/32").prefixLength, 32)
        XCTAssertEqual(try CIDR(parsing: "::/128").prefixLength, 128)
        for bad in ["10.0.0.0/33", "::/129", "10.0.0.0/", "10.0.0.0/-1", "10.0.0.0/08", "10.0.0.0/+8", "10.0.0.0/8/8"] {
            XCTAssertThrowsError(try CIDR(parsing: bad), bad)
        }
    }

    func testRejectsMalformedAddresses() {
        for bad in [
            "1.2.3", "1.2.3.4.5", "256.0.0.0", "01.2.3.4", " 1.2.3.4", "fe80::1%eth0", "::g", "", "/8", "localhost",
        ] {
            XCTAssertThrowsError(try CIDR(parsing: bad), bad)
        }
    }

    func testErrorQuotesTheProblem() {
        XCTAssertThrowsError(try CIDR(parsing: "10.0.0.0/33")) { error in
            XCTAssertEqual(
                (error as? CIDRSyntaxError)?.reason, "prefix length '33' must be a number from 0 to 32 for IPv4")
        }
        XCTAssertThrowsError(try CIDR(parsing: "1.2.3/24")) { error in
            XCTAssertEqual((error as? CIDRSyntaxError)?.reason, "'1.2.3' is not an IPv4 or IPv6 address")
        }
    }
}
