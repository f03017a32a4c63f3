import Foundation
import WeftProtocol
import XCTest

/// What `weftctl check` flags per proxy: certificates past due for renewal, and recent
/// mesh TLS handshake failures.
final class ProxyStatusChecksTests: XCTestCase {
    private func status(notAfter: String, failures: TLSFailureReport? = nil, grewAt: String? = nil) -> ProxyStatus {
        var s = ProxyStatus(
            session: "s", pod: "web-0", namespace: "demo", serviceAccount: "web", ip: "10.0.0.2",
            identity: "spiffe://cluster.local/ns/demo/sa/web", connectedAt: "t", certificateNotAfter: notAfter,
            version: 1, ackedVersion: 1, sentGeneration: 1, ackedGeneration: 1, nacks: 0, lastNack: nil,
            subscriptions: [])
        s.tlsFailures = failures
        s.tlsFailuresGrewAt = grewAt
        return s
    }

    private let now = try! Date("2026-12-05T12:00:00Z", strategy: .iso8601)

    func testCertificates() {
        let day = 86_400
        XCTAssertNil(status(notAfter: "2026-12-06T00:00:00Z").certificateProblem(now: now, lifetimeSeconds: day))
        XCTAssertEqual(
            status(notAfter: "2026-12-05T13:00:00Z").certificateProblem(now: now, lifetimeSeconds: day),
            "certificate expires at 2026-12-05T13:00:00Z, 3600 s left of 86400 s: its renewal (due at 70%) is overdue")
        XCTAssertNil(
            status(notAfter: "2026-12-05T13:00:00Z").certificateProblem(now: now, lifetimeSeconds: nil),
            "without the lifetime only expiry counts")
        XCTAssertEqual(
            status(notAfter: "2026-12-05T11:59:00Z").certificateProblem(now: now, lifetimeSeconds: day),
            "certificate expired at 2026-12-05T11:59:00Z")
        XCTAssertNil(status(notAfter: "not a date").certificateProblem(now: now, lifetimeSeconds: day))
    }

    func testRecentHandshakeFailures() {
        let report = TLSFailureReport(inbound: 2, outbound: 1, last: "refused a caller at 10.0.0.9: unknown CA")
        XCTAssertEqual(
            status(notAfter: "x", failures: report, grewAt: "2026-12-05T11:58:00Z").recentTLSFailures(
                now: now, window: 600),
            "2 inbound refused, 1 outbound failed, the last at 2026-12-05T11:58:00Z: refused a caller at 10.0.0.9: unknown CA"
        )
        XCTAssertNil(
            status(notAfter: "x", failures: report, grewAt: "2026-12-05T11:40:00Z").recentTLSFailures(
                now: now, window: 600), "an old failure is not reported")
        XCTAssertNil(status(notAfter: "x").recentTLSFailures(now: now, window: 600))
    }

    func testPingCarriesTheReportAndOlderPingsStillDecode() throws {
        let ping = Ping(id: 3, tlsFailures: TLSFailureReport(inbound: 1, outbound: 0, last: "x"))
        let decoded = try JSONDecoder().decode(Ping.self, from: JSONEncoder().encode(ping))
        XCTAssertEqual(decoded, ping)
        XCTAssertEqual(try JSONDecoder().decode(Ping.self, from: Data(#"{"id": 4}"#.utf8)), Ping(id: 4))
    }
}
