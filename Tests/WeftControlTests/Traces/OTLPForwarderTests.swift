import Foundation
import XCTest

@testable import WeftControl

/// `--otlp-forward`'s URL: what is taken, and what is refused at start-up.
final class OTLPForwarderTests: XCTestCase {
    func testURLs() {
        let plain = OTLPForwarder.Target(url: "http://otel-collector")
        XCTAssertEqual(plain?.host, "otel-collector")
        XCTAssertEqual(plain?.port, 4318, "OTLP/HTTP's port by default")
        XCTAssertEqual(plain?.path, "/v1/traces")
        let full = OTLPForwarder.Target(url: "http://10.0.0.9:4000/otlp/v1/traces")
        XCTAssertEqual(full.map { [$0.host, "\($0.port)", $0.path] }, ["10.0.0.9", "4000", "/otlp/v1/traces"])
        let v6 = OTLPForwarder.Target(url: "http://[fd00::9]:55681")
        XCTAssertEqual(v6?.host, "fd00::9")
        XCTAssertEqual(v6?.port, 55681)
        XCTAssertEqual(v6?.description, "http://[fd00::9]:55681/v1/traces")
        XCTAssertEqual(plain?.tls, false)
        let secure = OTLPForwarder.Target(url: "https://collector.example:4318/v1/traces")
        XCTAssertEqual(
            secure.map { [$0.host, "\($0.port)", $0.path, "\($0.tls)"] },
            ["collector.example", "4318", "/v1/traces", "true"])
        XCTAssertEqual(
            OTLPForwarder.Target(url: "HTTPS://c")?.description, "https://c:443/v1/traces",
            "https's own port by default")
        for bad in [
            "ftp://collector:4318", "httpss://c", "https://", "collector:4318", "http://", "http://:4318", "http://h:0",
            "http://h:99999",
            "http://h:port", "http://[fd00::9", "http://[fd00::9]x",
        ] {
            XCTAssertNil(OTLPForwarder.Target(url: bad), bad)
            XCTAssertFalse(OTLPForwarderURL.isValid(bad), bad)
        }
    }

    /// `--otlp-forward-ca`: a file that is missing, or holds no certificate, is refused with
    /// its name; the system's roots are the default.
    func testTrustRoots() throws {
        XCTAssertNoThrow(try OTLPForwarder.clientTLS(trusting: nil))
        let missing = "/nonexistent/weft-ca.pem"
        XCTAssertThrowsError(try OTLPForwarder.clientTLS(trusting: missing)) { error in
            XCTAssertTrue("\(error)".contains("--otlp-forward-ca \(missing)"), "\(error)")
        }
        let empty = FileManager.default.temporaryDirectory.appendingPathComponent("weft-empty-\(UUID()).pem")
        try Data("not a certificate\n".utf8).write(to: empty)
        defer { try? FileManager.default.removeItem(at: empty) }
        XCTAssertThrowsError(try OTLPForwarder.clientTLS(trusting: empty.path)) { error in
            XCTAssertTrue("\(error)".contains("--otlp-forward-ca \(empty.path)"), "\(error)")
        }
    }
}
