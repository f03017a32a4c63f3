import SwiftProtobuf
import WeftOTLP
import XCTest

@testable import WeftControl

/// The intake's wire-level reading of exports, against SwiftProtobuf's encoding and
/// decoding of the same messages.
final class OTLPWireTests: XCTestCase {
    private func span(_ trace: UInt8, _ id: UInt8, parent: UInt8? = nil, name: String, error: Bool = false)
        -> Opentelemetry_Proto_Trace_V1_Span
    {
        var span = Opentelemetry_Proto_Trace_V1_Span()
        span.traceID = Data(repeating: trace, count: 16)
        span.spanID = Data(repeating: id, count: 8)
        if let parent { span.parentSpanID = Data(repeating: parent, count: 8) }
        span.name = name
        span.kind = .client
        span.startTimeUnixNano = 1000 + UInt64(id)
        span.endTimeUnixNano = 5000 + UInt64(id)
        var attribute = Opentelemetry_Proto_Common_V1_KeyValue()
        attribute.key = "http.request.method"
        attribute.value.stringValue = "GET"
        span.attributes = [attribute]
        if error {
            span.status.code = .error
            span.status.message = "boom"
        }
        return span
    }

    private func export() -> Opentelemetry_Proto_Collector_Trace_V1_ExportTraceServiceRequest {
        var resource = Opentelemetry_Proto_Trace_V1_ResourceSpans()
        var name = Opentelemetry_Proto_Common_V1_KeyValue()
        name.key = "service.name"
        name.value.stringValue = "web"
        var pod = Opentelemetry_Proto_Common_V1_KeyValue()
        pod.key = "k8s.pod.name"
        pod.value.stringValue = "web-0"
        resource.resource.attributes = [pod, name]
        resource.schemaURL = "https://opentelemetry.io/schemas/1.26.0"
        var first = Opentelemetry_Proto_Trace_V1_ScopeSpans()
        first.scope.name = "weft-proxy"
        first.spans = [span(0xA, 1, name: "a1"), span(0xB, 2, name: "b2", error: true)]
        var second = Opentelemetry_Proto_Trace_V1_ScopeSpans()
        second.scope.name = "app"
        second.schemaURL = "s"
        second.spans = [span(0xA, 3, parent: 1, name: "a3")]
        resource.scopeSpans = [first, second]
        var request = Opentelemetry_Proto_Collector_Trace_V1_ExportTraceServiceRequest()
        request.resourceSpans = [resource]
        return request
    }

    func testSpansAndFragmentsMatchSwiftProtobuf() throws {
        let bytes: [UInt8] = try export().serializedBytes()
        let wire = try OTLPWire(bytes)
        XCTAssertEqual(wire.resources.count, 1)
        let resource = wire.resources[0]
        XCTAssertEqual(resource.serviceName.map { String(decoding: bytes[$0], as: UTF8.self) }, "web")
        let spans = resource.scopes.flatMap(\.spans)
        XCTAssertEqual(spans.map { String(decoding: bytes[$0.name!], as: UTF8.self) }, ["a1", "b2", "a3"])
        XCTAssertEqual(spans.map(\.isError), [false, true, false])
        XCTAssertEqual(spans.map(\.start), [1001, 1002, 1003])
        XCTAssertEqual(spans.map(\.end), [5001, 5002, 5003])
        XCTAssertEqual(spans[2].parentSpanID.map { Array(bytes[$0]) }, Array(repeating: 1, count: 8))
        XCTAssertNil(spans[0].parentSpanID)

        // Trace A's fragment: the resource, both scopes (A has a span in each), A's spans only.
        let fragment = wire.fragment(resource) { bytes[$0.traceID!].first == 0xA }
        let decoded = try Opentelemetry_Proto_Trace_V1_ResourceSpans(serializedBytes: fragment)
        XCTAssertEqual(decoded.resource, export().resourceSpans[0].resource)
        XCTAssertEqual(decoded.schemaURL, "https://opentelemetry.io/schemas/1.26.0")
        XCTAssertEqual(decoded.scopeSpans.map(\.scope.name), ["weft-proxy", "app"])
        XCTAssertEqual(decoded.scopeSpans.map { $0.spans.map(\.name) }, [["a1"], ["a3"]])
        XCTAssertEqual(decoded.scopeSpans[1].schemaURL, "s")
        XCTAssertEqual(decoded.scopeSpans[0].spans[0], export().resourceSpans[0].scopeSpans[0].spans[0])
        // Trace B's: only the first scope.
        let other = try Opentelemetry_Proto_Trace_V1_ResourceSpans(
            serializedBytes: wire.fragment(resource) { bytes[$0.traceID!].first == 0xB })
        XCTAssertEqual(other.scopeSpans.map { $0.spans.map(\.name) }, [["b2"]])
        XCTAssertEqual(other.scopeSpans[0].spans[0].status.message, "boom")
    }

    func testUnknownFieldsAreSkipped() throws {
        var bytes: [UInt8] = try export().serializedBytes()
        // An unknown varint field (99) and an unknown length-delimited one (100) at the top.
        bytes += [0x98, 0x06, 0x2A, 0xA2, 0x06, 0x03, 0x01, 0x02, 0x03]
        let wire = try OTLPWire(bytes)
        XCTAssertEqual(wire.resources.first?.scopes.flatMap(\.spans).count, 3)
    }

    func testMalformedExportsAreRefused() throws {
        let good: [UInt8] = try export().serializedBytes()
        let cases: [(String, [UInt8])] = [
            ("truncated", Array(good.dropLast(5))),
            ("length past the end", [0x0A, 0x7F, 0x01]),
            ("truncated varint", [0x08, 0xFF]),
            ("wire type 3", [0x0B]),
            ("field number 0", [0x00, 0x01]),
            ("resource_spans as a varint", [0x08, 0x01]),
            // ResourceSpans { ScopeSpans { Span { trace_id as a varint } } }
            ("trace_id as a varint", [0x0A, 0x06, 0x12, 0x04, 0x12, 0x02, 0x08, 0x01]),
            ("start time as a varint", [0x0A, 0x06, 0x12, 0x04, 0x12, 0x02, 0x38, 0x01]),
        ]
        for (what, bytes) in cases {
            XCTAssertThrowsError(try OTLPWire(bytes), what) { error in
                XCTAssertTrue(error is OTLPWire.Malformed, "\(what): \(error)")
            }
        }
        XCTAssertEqual(try OTLPWire([]).resources.count, 0, "an empty export is valid")
    }
}
