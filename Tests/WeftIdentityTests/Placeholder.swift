import XCTest

final class WeftIdentityPlaceholderTests: XCTestCase {
    func testModuleLinks() {}
}
