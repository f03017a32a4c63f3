import WeftManifests
import XCTest

@testable import WeftCore

final class NameRulesTests: XCTestCase {
    func testDNSNames() {
        XCTAssertTrue(NameRules.isDNS1123Label("web-0"))
        XCTAssertTrue(NameRules.isDNS1123Label("0web"))
        XCTAssertFalse(NameRules.isDNS1123Label("-web"))
        XCTAssertFalse(NameRules.isDNS1123Label("web-"))
        XCTAssertFalse(NameRules.isDNS1123Label("Web"))
        XCTAssertFalse(NameRules.isDNS1123Label(String(repeating: "a", count: 64)))
        XCTAssertTrue(NameRules.isDNS1123Label(String(repeating: "a", count: 63)))
        XCTAssertTrue(NameRules.isDNS1123Subdomain("web.demo.svc"))
        XCTAssertFalse(NameRules.isDNS1123Subdomain("web..demo"))
        XCTAssertFalse(NameRules.isDNS1035Label("0web"))
        XCTAssertTrue(NameRules.isDNS1035Label("web0"))
    }

    func testPortNamesAndLabels() {
        XCTAssertTrue(NameRules.isIANAServiceName("http-alt"))
        XCTAssertFalse(NameRules.isIANAServiceName("8080"))
        XCTAssertFalse(NameRules.isIANAServiceName("a--b"))
        XCTAssertFalse(NameRules.isIANAServiceName("sixteen-chars-ab"))
        XCTAssertTrue(NameRules.isLabelKey("app.kubernetes.io/name"))
        XCTAssertFalse(NameRules.isLabelKey("/name"))
        XCTAssertTrue(NameRules.isLabelValue(""))
        XCTAssertTrue(NameRules.isLabelValue("v1.2_3"))
        XCTAssertFalse(NameRules.isLabelValue("v1."))
    }

    func testIPs() {
        XCTAssertTrue(NameRules.isIP("10.0.0.1"))
        XCTAssertTrue(NameRules.isIP("fd00::1"))
        XCTAssertFalse(NameRules.isIP("10.0.0"))
        XCTAssertFalse(NameRules.isIPv4("fd00::1"))
        XCTAssertFalse(NameRules.isIPv6("10.0.0.1"))
    }
}
