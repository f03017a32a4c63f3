import NIOCore
import NIOEmbedded
import NIOHTTP1
import WeftTelemetry
import XCTest

@testable import WeftProxy

/// The admin endpoints through the real handler: `/config` and `/shutdown` answer only
/// loopback; the probes and `/metrics` answer everyone.
final class AdminHandlerTests: XCTestCase {
    private func request(
        _ method: HTTPMethod, _ path: String, from address: SocketAddress, state: ProxyState = ProxyState()
    ) throws -> HTTPResponseStatus {
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(
            AdminHandler(state: state, registry: PrometheusCollectorRegistry()))
        // An embedded channel's remote address is the one it "connects" to.
        try channel.connect(to: address).wait()
        try channel.writeInbound(
            HTTPServerRequestPart.head(HTTPRequestHead(version: .http1_1, method: method, uri: path)))
        try channel.writeInbound(HTTPServerRequestPart.end(nil))
        guard case .head(let head) = try channel.readOutbound(as: HTTPServerResponsePart.self) else {
            XCTFail("no response head")
            return .internalServerError
        }
        return head.status
    }

    private let pod = try! SocketAddress(ipAddress: "10.0.0.7", port: 40000)

    func testShutdownFromAnotherPodIsForbiddenAndDoesNotDrain() throws {
        let state = ProxyState()
        XCTAssertEqual(try request(.POST, "/shutdown", from: pod, state: state), .forbidden)
        XCTAssertEqual(state.shutdownRequestCount, 0)
        XCTAssertEqual(
            try request(.POST, "/shutdown", from: try SocketAddress(ipAddress: "127.0.0.1", port: 1), state: state), .ok
        )
        XCTAssertEqual(state.shutdownRequestCount, 1)
    }

    func testConfigOnlyOnLoopback() throws {
        XCTAssertEqual(try request(.GET, "/config", from: pod), .forbidden)
        XCTAssertEqual(
            try request(.GET, "/config?x=1", from: try SocketAddress(ipAddress: "::ffff:10.0.0.7", port: 1)), .forbidden
        )
        XCTAssertEqual(try request(.GET, "/config", from: try SocketAddress(ipAddress: "127.0.0.1", port: 1)), .ok)
        XCTAssertEqual(try request(.GET, "/config", from: try SocketAddress(ipAddress: "::1", port: 1)), .ok)
        XCTAssertEqual(
            try request(.GET, "/config", from: try SocketAddress(ipAddress: "::ffff:127.0.0.2", port: 1)), .ok)
    }

    func testDebugEndpointsOnlyOnLoopback() throws {
        XCTAssertEqual(try request(.GET, "/debug/endpoints", from: pod), .forbidden)
        // Without a data path (this test's handler has none) it says so, from loopback.
        XCTAssertEqual(
            try request(.GET, "/debug/endpoints", from: try SocketAddress(ipAddress: "127.0.0.1", port: 1)), .notFound)
    }

    func testProbesAndMetricsAnswerEveryone() throws {
        XCTAssertEqual(try request(.GET, "/live", from: pod), .ok)
        XCTAssertEqual(try request(.GET, "/metrics", from: pod), .ok)
        XCTAssertEqual(try request(.GET, "/ready", from: pod), .serviceUnavailable)  // not listening yet
    }
}
