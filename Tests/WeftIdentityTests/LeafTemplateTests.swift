import XCTest

@testable import WeftIdentity

final class LeafTemplateTests: XCTestCase {
    func testTimesAreUTCTimeThrough2049AndGeneralizedTimeAfter() {
        // 2026-11-25T10:07:41Z
        XCTAssertEqual(LeafTemplate.time(1_795_601_261), [0x17, 0x0D] + Array("261125100741Z".utf8))
        // 2049-12-31T23:59:59Z and 2050-01-01T00:00:00Z
        XCTAssertEqual(LeafTemplate.time(2_524_607_999), [0x17, 0x0D] + Array("491231235959Z".utf8))
        XCTAssertEqual(LeafTemplate.time(2_524_608_000), [0x18, 0x0F] + Array("20500101000000Z".utf8))
    }

    func testDERLengths() {
        XCTAssertEqual(LeafTemplate.tlv(0x04, [UInt8](repeating: 1, count: 0x7F)).prefix(2), [0x04, 0x7F])
        XCTAssertEqual(LeafTemplate.tlv(0x04, [UInt8](repeating: 1, count: 0x80)).prefix(3), [0x04, 0x81, 0x80])
        XCTAssertEqual(
            LeafTemplate.tlv(0x04, [UInt8](repeating: 1, count: 0x1234)).prefix(4), [0x04, 0x82, 0x12, 0x34])
    }
}
