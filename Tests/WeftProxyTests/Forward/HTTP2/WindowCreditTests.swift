import XCTest

@testable import WeftProxy

final class WindowCreditTests: XCTestCase {
    func testCreditIsHeldUntilHalfTheDefaultWindowThenReturnedWhole() {
        var credit = WindowCredit()
        XCTAssertNil(credit.add(16_384))
        XCTAssertNil(credit.add(16_383))
        XCTAssertEqual(credit.add(1), 32_768)
        // Starts again from nothing.
        XCTAssertNil(credit.add(100))
        XCTAssertEqual(credit.add(40_000), 40_100)
    }

    func testOneLargeFrameIsReturnedAtOnce() {
        var credit = WindowCredit()
        XCTAssertEqual(credit.add(65_535), 65_535)
        XCTAssertNil(credit.add(0))
    }
}
