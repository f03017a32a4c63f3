import XCTest

@testable import WeftProxy

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

final class RenewalScheduleTests: XCTestCase {
    private let now = Date(timeIntervalSince1970: 1_800_000_000)

    func testRenewsAfterSeventyPercentOfWhatIsLeft() {
        XCTAssertEqual(
            ControlClient.renewalDelay(notAfter: now.addingTimeInterval(86_400), now: now), .seconds(60_480))
        // A one-minute certificate (backdated notBefore or not) renews 42 s after it arrived.
        XCTAssertEqual(ControlClient.renewalDelay(notAfter: now.addingTimeInterval(60), now: now), .seconds(42))
    }

    func testAnExpiredCertificateRenewsAtOnce() {
        XCTAssertEqual(ControlClient.renewalDelay(notAfter: now.addingTimeInterval(-5), now: now), .zero)
    }
}
