import XCTest

@testable import WeftInject

final class IptablesToolsTests: XCTestCase {
    func testNamesPerFamilyAndMode() {
        let expected: [(IPFamily, IptablesMode, String, String)] = [
            (.ipv4, .auto, "iptables-save", "iptables-restore"),
            (.ipv6, .auto, "ip6tables-save", "ip6tables-restore"),
            (.ipv4, .nft, "iptables-nft-save", "iptables-nft-restore"),
            (.ipv6, .nft, "ip6tables-nft-save", "ip6tables-nft-restore"),
            (.ipv4, .legacy, "iptables-legacy-save", "iptables-legacy-restore"),
            (.ipv6, .legacy, "ip6tables-legacy-save", "ip6tables-legacy-restore"),
        ]
        for (family, mode, save, restore) in expected {
            let tools = IptablesTools(family: family, mode: mode)
            XCTAssertEqual(tools.save, save)
            XCTAssertEqual(tools.restore, restore)
        }
    }
}
