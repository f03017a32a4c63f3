import Foundation
import SwiftProtobuf
import WeftOTLP
import XCTest

/// The committed OTLP code (scripts/generate-otlp.sh) speaks OTLP's wire format: a span's
/// fields land at opentelemetry-proto's field numbers, and a request round-trips.
final class OTLPMessagesTests: XCTestCase {
    func testASpanEncodesAtOTLPsFieldNumbersAndRoundTrips() throws {
        var span = Opentelemetry_Proto_Trace_V1_Span()
        span.traceID = Data((1...16).map { UInt8($0) })
        span.spanID = Data((1...8).map { UInt8($0) })
        span.name = "GET /"
        span.kind = .client
        span.startTimeUnixNano = 1_000
        span.endTimeUnixNano = 31_000
        var attribute = Opentelemetry_Proto_Common_V1_KeyValue()
        attribute.key = "weft.duration.upstream"
        attribute.value.intValue = 30
        span.attributes = [attribute]

        let bytes = try span.serializedData()
        // field 1 (trace_id), length-delimited: tag 0x0A, length 16, then the id.
        XCTAssertEqual(Array(bytes.prefix(3)), [0x0A, 0x10, 0x01])
        // field 6 (kind), varint: tag 0x30, SPAN_KIND_CLIENT = 3.
        XCTAssertTrue(bytes.windows(ofCount: 2).contains([0x30, 0x03]))

        var request = Opentelemetry_Proto_Collector_Trace_V1_ExportTraceServiceRequest()
        var resourceSpans = Opentelemetry_Proto_Trace_V1_ResourceSpans()
        var scope = Opentelemetry_Proto_Trace_V1_ScopeSpans()
        scope.spans = [span]
        resourceSpans.scopeSpans = [scope]
        request.resourceSpans = [resourceSpans]
        let decoded = try Opentelemetry_Proto_Collector_Trace_V1_ExportTraceServiceRequest(
            serializedBytes: try request.serializedData())
        XCTAssertEqual(decoded, request)
        XCTAssertEqual(decoded.resourceSpans[0].scopeSpans[0].spans[0].attributes[0].value.intValue, 30)
    }
}

extension Data {
    fileprivate func windows(ofCount count: Int) -> [[UInt8]] {
        let bytes = Array(self)
        return bytes.count < count ? [] : (0...(bytes.count - count)).map { Array(bytes[$0..<$0 + count]) }
    }
}
