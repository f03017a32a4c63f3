import XCTest

@testable import WeftInject

final class RedirectConfigTests: XCTestCase {
    func testDefaultFlagsGiveTheMeshDefaults() throws {
        let config = try RedirectConfig(flags: RedirectFlags())
        XCTAssertEqual(config, RedirectConfig())
        XCTAssertEqual(config.proxyUID, 2102)
        XCTAssertEqual(config.proxyGID, 2102)
        XCTAssertEqual(config.inboundPort, 15006)
        XCTAssertEqual(config.outboundPort, 15001)
        XCTAssertEqual(config.adminPort, 15000)
        XCTAssertEqual(config.inboundBypassPorts, [15000])
    }

    func testParsesEveryFlag() throws {
        let flags = RedirectFlags(
            proxyUID: "1337", proxyGID: "1338", inboundPort: "16006", outboundPort: "16001", adminPort: "16000",
            excludeInboundPorts: "22,16000", excludeOutboundPorts: "5432", excludeOutboundCIDRs: "10.0.0.0/8,fd00::/8")
        let config = try RedirectConfig(flags: flags)
        XCTAssertEqual(
            config,
            RedirectConfig(
                proxyUID: 1337, proxyGID: 1338, inboundPort: 16006, outboundPort: 16001, adminPort: 16000,
                excludedInboundPorts: [22, 16000], excludedOutboundPorts: [5432],
                excludedOutboundCIDRs: [try CIDR(parsing: "10.0.0.0/8"), try CIDR(parsing: "fd00::/8")]))
        XCTAssertEqual(config.inboundBypassPorts, [16000, 22])
    }

    func testEachBadFlagIsNamedWithItsValue() {
        let cases: [(RedirectFlags, String, String)] = [
            (RedirectFlags(proxyUID: "nobody"), "--proxy-uid", "nobody"),
            (RedirectFlags(proxyGID: "-5"), "--proxy-gid", "-5"),
            (RedirectFlags(inboundPort: "0"), "--inbound-port", "0"),
            (RedirectFlags(outboundPort: "70000"), "--outbound-port", "70000"),
            (RedirectFlags(adminPort: "admin"), "--admin-port", "admin"),
            (RedirectFlags(excludeInboundPorts: "80,x"), "--exclude-inbound-ports", "x"),
            (RedirectFlags(excludeOutboundPorts: "0"), "--exclude-outbound-ports", "0"),
            (RedirectFlags(excludeOutboundCIDRs: "10.0.0.0/33"), "--exclude-outbound-cidrs", "10.0.0.0/33"),
            (RedirectFlags(excludeOutboundCIDRs: "1.2.3"), "--exclude-outbound-cidrs", "1.2.3"),
        ]
        for (flags, flag, value) in cases {
            XCTAssertThrowsError(try RedirectConfig(flags: flags), flag) { error in
                let error = error as? RedirectError
                XCTAssertEqual(error?.code, .invalidFlag)
                XCTAssertEqual(error?.subject, flag)
                let text = error?.description ?? ""
                XCTAssertTrue(text.hasPrefix("\(flag): invalid value '\(value)'"), text)
            }
        }
    }

    func testProxyPortsMustDiffer() {
        XCTAssertThrowsError(try RedirectConfig(flags: RedirectFlags(outboundPort: "15006"))) { error in
            XCTAssertEqual(
                "\(error)",
                "--outbound-port: invalid value '15006': is also the --inbound-port; the proxy ports must differ")
        }
        XCTAssertThrowsError(try RedirectConfig(flags: RedirectFlags(adminPort: "15001"))) { error in
            XCTAssertEqual((error as? RedirectError)?.subject, "--admin-port")
        }
    }
}
