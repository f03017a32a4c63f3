import XCTest

@testable import WeftProxy

final class ProxyMetricsTests: XCTestCase {
    /// The handle arrays are built in `allCases` order and indexed by `metricIndex`.
    func testMetricIndexesFollowAllCases() {
        for (index, value) in RequestProtocol.allCases.enumerated() { XCTAssertEqual(value.metricIndex, index) }
        for (index, value) in ProxyErrorKind.allCases.enumerated() { XCTAssertEqual(value.metricIndex, index) }
    }

    func testRequestsLandOnTheirLabels() {
        let metrics = ProxyMetrics()
        metrics.outbound.requestFinished(.grpc, status: 503)
        metrics.inbound.error(.noOriginalDestination)
        let text = metrics.registry.emitToString()
        XCTAssertTrue(
            text.contains(#"weft_requests_total{direction="outbound",protocol="grpc",status_class="5xx"} 1"#), text)
        XCTAssertTrue(
            text.contains(#"weft_errors_total{direction="inbound",error="no_original_destination"} 1"#), text)
        XCTAssertFalse(
            text.contains("weft_request_duration_seconds"), "kept per loop, with exemplars (LatencyExemplarTests)")
    }
}
