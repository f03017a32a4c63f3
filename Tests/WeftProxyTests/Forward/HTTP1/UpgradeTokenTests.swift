import XCTest

@testable import WeftProxy

/// Which upgrades the inbound gate refuses where rules decide per request: h2c (its streams
/// would reach the app past the per-request check), not WebSocket.
final class UpgradeTokenTests: XCTestCase {
    private func h2c(_ head: String) -> Bool {
        Array(head.utf8).withUnsafeBytes { HTTP1ProxyHandler.upgradesToH2C($0) }
    }

    func testH2CIsFoundInTheUpgradeFieldOnly() {
        XCTAssertTrue(h2c("GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n\r\n"))
        XCTAssertTrue(h2c("GET / HTTP/1.1\r\nupgrade: websocket, H2C\r\n\r\n"))
        XCTAssertFalse(h2c("GET / HTTP/1.1\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n"))
        XCTAssertFalse(h2c("GET /h2c HTTP/1.1\r\nX-Upgrade: h2c\r\n\r\n"), "another field, or the path")
    }
}
