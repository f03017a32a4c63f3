import XCTest

@testable import WeftInject

final class RedirectRulesTests: XCTestCase {
    func testDefaultIPv4Fragment() {
        XCTAssertEqual(
            RedirectRules(config: RedirectConfig(), family: .ipv4).fragment,
            """
            *nat
            :WEFT_INBOUND - [0:0]
            :WEFT_IN_REDIRECT - [0:0]
            :WEFT_OUTBOUND - [0:0]
            :WEFT_OUT_REDIRECT - [0:0]
            -A PREROUTING -p tcp -j WEFT_INBOUND
            -A OUTPUT -p tcp -j WEFT_OUTBOUND
            -A WEFT_INBOUND -p tcp --dport 15000 -j RETURN
            -A WEFT_INBOUND -p tcp -j WEFT_IN_REDIRECT
            -A WEFT_IN_REDIRECT -p tcp -j REDIRECT --to-ports 15006
            -A WEFT_OUTBOUND -m owner --uid-owner 2102 -j RETURN
            -A WEFT_OUTBOUND -m owner --gid-owner 2102 -j RETURN
            -A WEFT_OUTBOUND -d 127.0.0.0/8 -j RETURN
            -A WEFT_OUTBOUND -p tcp -j WEFT_OUT_REDIRECT
            -A WEFT_OUT_REDIRECT -p tcp -j REDIRECT --to-ports 15001
            COMMIT

            """)
    }

    private func configWithExclusions() throws -> RedirectConfig {
        try RedirectConfig(
            flags: RedirectFlags(
                proxyUID: "1337", proxyGID: "1338", inboundPort: "16006", outboundPort: "16001",
                excludeInboundPorts: "22,15000,8081", excludeOutboundPorts: "5432,6379",
                excludeOutboundCIDRs: "10.0.0.0/8,fd00::/8,169.254.169.254,2001:db8::1"))
    }

    func testIPv4FragmentWithExclusionsKeepsOnlyIPv4CIDRs() throws {
        XCTAssertEqual(
            RedirectRules(config: try configWithExclusions(), family: .ipv4).fragment,
            """
            *nat
            :WEFT_INBOUND - [0:0]
            :WEFT_IN_REDIRECT - [0:0]
            :WEFT_OUTBOUND - [0:0]
            :WEFT_OUT_REDIRECT - [0:0]
            -A PREROUTING -p tcp -j WEFT_INBOUND
            -A OUTPUT -p tcp -j WEFT_OUTBOUND
            -A WEFT_INBOUND -p tcp --dport 15000 -j RETURN
            -A WEFT_INBOUND -p tcp --dport 22 -j RETURN
            -A WEFT_INBOUND -p tcp --dport 8081 -j RETURN
            -A WEFT_INBOUND -p tcp -j WEFT_IN_REDIRECT
            -A WEFT_IN_REDIRECT -p tcp -j REDIRECT --to-ports 16006
            -A WEFT_OUTBOUND -m owner --uid-owner 1337 -j RETURN
            -A WEFT_OUTBOUND -m owner --gid-owner 1338 -j RETURN
            -A WEFT_OUTBOUND -d 127.0.0.0/8 -j RETURN
            -A WEFT_OUTBOUND -p tcp --dport 5432 -j RETURN
            -A WEFT_OUTBOUND -p tcp --dport 6379 -j RETURN
            -A WEFT_OUTBOUND -d 10.0.0.0/8 -j RETURN
            -A WEFT_OUTBOUND -d 169.254.169.254/32 -j RETURN
            -A WEFT_OUTBOUND -p tcp -j WEFT_OUT_REDIRECT
            -A WEFT_OUT_REDIRECT -p tcp -j REDIRECT --to-ports 16001
            COMMIT

            """)
    }

    func testIPv6FragmentWithExclusionsKeepsOnlyIPv6CIDRs() throws {
        XCTAssertEqual(
            RedirectRules(config: try configWithExclusions(), family: .ipv6).fragment,
            """
            *nat
            :WEFT_INBOUND - [0:0]
            :WEFT_IN_REDIRECT - [0:0]
            :WEFT_OUTBOUND - [0:0]
            :WEFT_OUT_REDIRECT - [0:0]
            -A PREROUTING -p tcp -j WEFT_INBOUND
            -A OUTPUT -p tcp -j WEFT_OUTBOUND
            -A WEFT_INBOUND -p tcp --dport 15000 -j RETURN
            -A WEFT_INBOUND -p tcp --dport 22 -j RETURN
            -A WEFT_INBOUND -p tcp --dport 8081 -j RETURN
            -A WEFT_INBOUND -p tcp -j WEFT_IN_REDIRECT
            -A WEFT_IN_REDIRECT -p tcp -j REDIRECT --to-ports 16006
            -A WEFT_OUTBOUND -m owner --uid-owner 1337 -j RETURN
            -A WEFT_OUTBOUND -m owner --gid-owner 1338 -j RETURN
            -A WEFT_OUTBOUND -d ::1/128 -j RETURN
            -A WEFT_OUTBOUND -p tcp --dport 5432 -j RETURN
            -A WEFT_OUTBOUND -p tcp --dport 6379 -j RETURN
            -A WEFT_OUTBOUND -d fd00::/8 -j RETURN
            -A WEFT_OUTBOUND -d 2001:db8::1/128 -j RETURN
            -A WEFT_OUTBOUND -p tcp -j WEFT_OUT_REDIRECT
            -A WEFT_OUT_REDIRECT -p tcp -j REDIRECT --to-ports 16001
            COMMIT

            """)
    }

    func testEveryLineIsRecognisedAsOurs() throws {
        let rules = RedirectRules(config: try configWithExclusions(), family: .ipv4)
        XCTAssertTrue((rules.declarations + rules.rules).allSatisfy(NatTable.isOurs))
    }
}
