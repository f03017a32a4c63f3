import XCTest

@testable import WeftInject

final class CapabilitySetTests: XCTestCase {
    func testParsesCapEff() {
        let root = "Name:\tinit\nCapInh:\t0000000000000000\nCapPrm:\t000001ffffffffff\nCapEff:\t000001ffffffffff\n"
        XCTAssertEqual(CapabilitySet(procStatus: root)?.hasNetAdmin, true)
        let nobody = "CapEff:\t0000000000000000\n"
        XCTAssertEqual(CapabilitySet(procStatus: nobody)?.hasNetAdmin, false)
        let onlyNetAdmin = "CapEff:\t0000000000001000\n"
        XCTAssertEqual(CapabilitySet(procStatus: onlyNetAdmin)?.hasNetAdmin, true)
        XCTAssertNil(CapabilitySet(procStatus: "Name:\tx\n"))
        XCTAssertNil(CapabilitySet(procStatus: "CapEff:\tzz\n"))
    }

    func testReadsThisProcess() {
        XCTAssertNotNil(CapabilitySet.current())
    }
}
