import XCTest

@testable import WeftTelemetry

final class OpenMetricsTests: XCTestCase {
    func testCounterFamiliesLoseTheirTotalSuffix() {
        let prometheus = """
            # HELP weft_requests_total Requests.
            # TYPE weft_requests_total counter
            weft_requests_total{direction="outbound"} 3
            # HELP weft_odd A counter without the suffix.
            # TYPE weft_odd counter
            weft_odd 1
            # HELP weft_open Open.
            # TYPE weft_open gauge
            weft_open 2

            """
        XCTAssertEqual(
            OpenMetrics.fromPrometheusText(prometheus) + OpenMetrics.eof,
            """
            # HELP weft_requests Requests.
            # TYPE weft_requests counter
            weft_requests_total{direction="outbound"} 3
            # HELP weft_odd A counter without the suffix.
            # TYPE weft_odd unknown
            weft_odd 1
            # HELP weft_open Open.
            # TYPE weft_open gauge
            weft_open 2
            # EOF

            """)
        XCTAssertTrue(OpenMetrics.isAccepted("application/openmetrics-text; version=1.0.0,text/plain;q=0.5"))
        XCTAssertFalse(OpenMetrics.isAccepted("text/plain"))
        XCTAssertFalse(OpenMetrics.isAccepted(nil))
    }
}
