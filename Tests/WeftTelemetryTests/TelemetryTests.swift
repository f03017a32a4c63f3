import WeftTelemetry
import XCTest

final class TelemetryTests: XCTestCase {
    func testStatusClassBoundaries() {
        XCTAssertEqual(Telemetry.statusClass(100).label, "1xx")
        XCTAssertEqual(Telemetry.statusClass(204).label, "2xx")
        XCTAssertEqual(Telemetry.statusClass(399).label, "3xx")
        XCTAssertEqual(Telemetry.statusClass(404).label, "4xx")
        XCTAssertEqual(Telemetry.statusClass(504).label, "5xx")
        // Out-of-range codes clamp instead of inventing a label.
        XCTAssertEqual(Telemetry.statusClass(999).label, "5xx")
        XCTAssertEqual(Telemetry.statusClass(0).label, "1xx")
    }

    func testLatencyBucketsAscend() {
        XCTAssertEqual(Telemetry.latencyBuckets, Telemetry.latencyBuckets.sorted())
    }
}
