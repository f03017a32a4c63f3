import XCTest

final class WeftControlPlaceholderTests: XCTestCase {
    func testModuleLinks() {}
}
