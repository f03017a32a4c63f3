import NIOCore
import XCTest

@testable import WeftProxy

final class ExchangeDeadlinesTests: XCTestCase {
    let t0 = NIODeadline.uptimeNanoseconds(1_000_000_000)

    func testTheEarliestLimitWinsAndIsNamed() {
        let proxyOnly = ExchangeDeadlines(
            start: t0, requestTimeoutMs: nil, backendRequestTimeoutMs: nil, proxyTimeout: .seconds(15))
        XCTAssertEqual(proxyOnly.responseDeadline(attemptSentAt: t0).limit, .proxy(.seconds(15)))

        let both = ExchangeDeadlines(
            start: t0, requestTimeoutMs: 500, backendRequestTimeoutMs: 200, proxyTimeout: .seconds(15))
        // The first attempt: its own 200 ms runs out first.
        XCTAssertEqual(both.responseDeadline(attemptSentAt: t0).deadline, t0 + .milliseconds(200))
        XCTAssertEqual(both.responseDeadline(attemptSentAt: t0).limit, .backendRequest(.milliseconds(200)))
        // A later attempt: the whole request's 500 ms runs out first.
        let late = both.responseDeadline(attemptSentAt: t0 + .milliseconds(400))
        XCTAssertEqual(late.deadline, t0 + .milliseconds(500))
        XCTAssertEqual(late.limit, .request(.milliseconds(500)))
    }

    func testGRPCTimeoutShortensOnlyWhenEarlier() {
        var deadlines = ExchangeDeadlines(
            start: t0, requestTimeoutMs: 1000, backendRequestTimeoutMs: nil, proxyTimeout: .seconds(15))
        deadlines.limitByGRPCTimeout(.seconds(5), start: t0)
        XCTAssertEqual(deadlines.responseDeadline(attemptSentAt: t0).limit, .request(.seconds(1)))
        deadlines.limitByGRPCTimeout(.milliseconds(100), start: t0)
        XCTAssertEqual(deadlines.responseDeadline(attemptSentAt: t0).limit, .grpcTimeout(.milliseconds(100)))
    }

    func testGRPCTimeoutValues() {
        XCTAssertEqual(ExchangeDeadlines.grpcTimeout("100m"), .milliseconds(100))
        XCTAssertEqual(ExchangeDeadlines.grpcTimeout("2S"), .seconds(2))
        XCTAssertEqual(ExchangeDeadlines.grpcTimeout("1H"), .hours(1))
        XCTAssertEqual(ExchangeDeadlines.grpcTimeout("30u"), .microseconds(30))
        for bad in ["", "m", "100", "10x", "123456789m", "-1S", "1.5S"] {
            XCTAssertNil(ExchangeDeadlines.grpcTimeout(bad), bad)
        }
    }

    func testTheAnswerIsA504NamingTheLimit() {
        let answer = ExchangeDeadlines.answer(
            .request(.milliseconds(500)), destination: "10.0.0.1:8080", route: "demo/web")
        XCTAssertEqual(answer.status, 504)
        XCTAssertEqual(answer.kind, .upstreamTimeout)
        XCTAssertEqual(answer.detail, "route demo/web timeouts.request (500ms) ran out")
    }

    func testGRPCErrorEncoding() {
        XCTAssertEqual(HTTP2RelayedStream.grpcStatus(for: 504), 4)
        XCTAssertEqual(HTTP2RelayedStream.grpcStatus(for: 503), 14)
        XCTAssertEqual(HTTP2RelayedStream.percentEncoded("a b%c\u{e9}"), "a b%25c%C3%A9")
    }
}
