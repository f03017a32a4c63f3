import WeftCore
import XCTest

final class GatewayDurationTests: XCTestCase {
    func testParsesGEP2257() {
        XCTAssertEqual(GatewayDuration.parse("10s"), .seconds(10))
        XCTAssertEqual(GatewayDuration.parse("500ms"), .milliseconds(500))
        XCTAssertEqual(GatewayDuration.parse("1h30m"), .seconds(5400))
        XCTAssertEqual(GatewayDuration.parse("0s"), .zero)
        XCTAssertEqual(GatewayDuration.parse("1h1m1s1ms"), .milliseconds(3_661_001))
        XCTAssertEqual(GatewayDuration.parse("99999ms"), .milliseconds(99999))
        XCTAssertEqual(GatewayDuration.parse("1m1m"), .seconds(120), "the grammar allows repeated units")
    }

    func testRejectsEverythingElse() {
        for text in ["", "10", "s", "1.5s", "-1s", "10 s", "1d", "100000s", "1h1m1s1ms1h", "1us", "10S", " 1s"] {
            XCTAssertNil(GatewayDuration.parse(text), text)
        }
    }

    func testFormats() {
        XCTAssertEqual(GatewayDuration.format(.seconds(5400)), "1h30m")
        XCTAssertEqual(GatewayDuration.format(.milliseconds(1500)), "1s500ms")
        XCTAssertEqual(GatewayDuration.format(.zero), "0s")
    }
}
