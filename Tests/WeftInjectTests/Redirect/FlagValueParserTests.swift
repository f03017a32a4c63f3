import XCTest

@testable import WeftInject

final class FlagValueParserTests: XCTestCase {
    func testDecimal() {
        XCTAssertEqual(FlagValueParser.decimal("0", max: 10), 0)
        XCTAssertEqual(FlagValueParser.decimal("10", max: 10), 10)
        for bad in ["", "11", "-1", "+1", "01", "1a", " 1", "99999999999999999999"] {
            XCTAssertNil(FlagValueParser.decimal(Substring(bad), max: 10), bad)
        }
    }

    func testPort() throws {
        XCTAssertEqual(try FlagValueParser.port("1", flag: "--p"), 1)
        XCTAssertEqual(try FlagValueParser.port("65535", flag: "--p"), 65535)
        XCTAssertEqual(try FlagValueParser.port(" 8080 ", flag: "--p"), 8080)
        for bad in ["0", "65536", "70000", "http", "", "80.0", "-80"] {
            XCTAssertThrowsError(try FlagValueParser.port(bad, flag: "--inbound-port"), bad) { error in
                let error = error as? RedirectError
                XCTAssertEqual(error?.code, .invalidFlag)
                XCTAssertEqual(error?.subject, "--inbound-port")
                XCTAssertTrue(error?.description.contains("'\(bad)'") ?? false, error?.description ?? "")
            }
        }
    }

    func testPortList() throws {
        XCTAssertEqual(try FlagValueParser.portList("", flag: "--p"), [])
        XCTAssertEqual(try FlagValueParser.portList("  ", flag: "--p"), [])
        XCTAssertEqual(try FlagValueParser.portList("8080, 9090,8080", flag: "--p"), [8080, 9090])
    }

    func testPortListNamesTheEntryAndTheList() {
        XCTAssertThrowsError(try FlagValueParser.portList("80,70000", flag: "--exclude-outbound-ports")) { error in
            XCTAssertEqual(
                "\(error)",
                "--exclude-outbound-ports: invalid value '70000' in '80,70000': must be a port number from 1 to 65535")
        }
        XCTAssertThrowsError(try FlagValueParser.portList("80,,90", flag: "--exclude-inbound-ports")) { error in
            XCTAssertEqual(
                "\(error)",
                "--exclude-inbound-ports: invalid value '80,,90': has an empty entry in the comma-separated list")
        }
    }

    func testCIDRList() throws {
        let cidrs = try FlagValueParser.cidrList("10.0.0.0/8, fd00::/8,10.0.0.0/8", flag: "--c")
        XCTAssertEqual(cidrs.map(\.description), ["10.0.0.0/8", "fd00::/8"])
        XCTAssertThrowsError(try FlagValueParser.cidrList("10.0.0.0/8,1.2.3", flag: "--exclude-outbound-cidrs")) {
            XCTAssertEqual(
                "\($0)",
                "--exclude-outbound-cidrs: invalid value '1.2.3' in '10.0.0.0/8,1.2.3': not an IPv4 or IPv6 address or CIDR"
            )
        }
    }

    func testID() throws {
        XCTAssertEqual(try FlagValueParser.id("0", flag: "--u"), 0)
        XCTAssertEqual(try FlagValueParser.id("4294967294", flag: "--u"), 4_294_967_294)
        for bad in ["4294967295", "-1", "proxy", ""] {
            XCTAssertThrowsError(try FlagValueParser.id(bad, flag: "--proxy-uid"), bad) {
                XCTAssertEqual(($0 as? RedirectError)?.subject, "--proxy-uid")
            }
        }
    }
}
