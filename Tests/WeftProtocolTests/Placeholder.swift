import XCTest

final class WeftProtocolPlaceholderTests: XCTestCase {
    func testModuleLinks() {}
}
