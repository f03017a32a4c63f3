import SwiftProtobuf
import W3CTraceContext
import WeftOTLP
import XCTest

@testable import WeftTelemetry

/// The sidecar's hand-written OTLP encoding, read back with the generated SwiftProtobuf
/// types the control plane decodes with: what one writes, the other must read.
final class OTLPSpanWriterTests: XCTestCase {
    private let trace = TraceID(bytes: (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16))
    private let span = SpanID(bytes: (0xA1, 0xA2, 0xA3, 0xA4, 0xA5, 0xA6, 0xA7, 0xA8))
    private let parent = SpanID(bytes: (0xB1, 0xB2, 0xB3, 0xB4, 0xB5, 0xB6, 0xB7, 0xB8))

    func testAnExportRequestDecodesAsOTLP() throws {
        var batch: [UInt8] = []
        OTLPSpanWriter.appendSpan(
            SpanRecord(
                traceID: trace, spanID: span, parentSpanID: parent, traceState: "vendor=x", name: "GET web",
                kind: .client, startUnixNano: 1_700_000_000_000_000_000, endUnixNano: 1_700_000_000_030_000_000,
                attributes: [
                    ("http.request.method", .string("GET")), ("http.response.status_code", .int(503)),
                    ("weft.duration.proxy", .int(-1)), ("weft.link.inferred", .bool(true)),
                    ("url.path", .string(String(repeating: "p", count: 300))),
                    ("big", .string(String(repeating: "x", count: 20_000))), ("café", .string("naïve")),
                ],
                links: [
                    SpanRecord.Link(traceID: trace, spanID: parent, attributes: [("weft.link.inferred", .bool(true))])
                ],
                isError: true, statusMessage: "upstream_reset: closed"),
            to: &batch)
        OTLPSpanWriter.appendSpan(
            SpanRecord(
                traceID: trace, spanID: parent, parentSpanID: nil, name: "GET", kind: .server, startUnixNano: 5,
                endUnixNano: 9),
            to: &batch)
        let bytes = OTLPSpanWriter.exportRequest(
            resource: [("service.name", .string("web")), ("k8s.pod.name", .string("web-0"))], scopeName: "weft-proxy",
            scopeVersion: "1.0", batch: batch)

        let request = try Opentelemetry_Proto_Collector_Trace_V1_ExportTraceServiceRequest(
            serializedBytes: bytes)
        XCTAssertEqual(request.resourceSpans.count, 1)
        let resource = request.resourceSpans[0]
        XCTAssertEqual(resource.resource.attributes.map(\.key), ["service.name", "k8s.pod.name"])
        XCTAssertEqual(resource.resource.attributes[0].value.stringValue, "web")
        XCTAssertEqual(resource.scopeSpans.count, 1)
        XCTAssertEqual(resource.scopeSpans[0].scope.name, "weft-proxy")
        XCTAssertEqual(resource.scopeSpans[0].scope.version, "1.0")
        let spans = resource.scopeSpans[0].spans
        XCTAssertEqual(spans.count, 2)

        let first = spans[0]
        XCTAssertEqual(Hex.text(first.traceID), "0102030405060708090a0b0c0d0e0f10")
        XCTAssertEqual(Hex.text(first.spanID), "a1a2a3a4a5a6a7a8")
        XCTAssertEqual(Hex.text(first.parentSpanID), "b1b2b3b4b5b6b7b8")
        XCTAssertEqual(first.traceState, "vendor=x")
        XCTAssertEqual(first.name, "GET web")
        XCTAssertEqual(first.kind, .client)
        XCTAssertEqual(first.startTimeUnixNano, 1_700_000_000_000_000_000)
        XCTAssertEqual(first.endTimeUnixNano, 1_700_000_000_030_000_000)
        let attributes = Dictionary(uniqueKeysWithValues: first.attributes.map { ($0.key, $0.value) })
        XCTAssertEqual(attributes["http.request.method"]?.stringValue, "GET")
        XCTAssertEqual(attributes["http.response.status_code"]?.intValue, 503)
        XCTAssertEqual(attributes["weft.duration.proxy"]?.intValue, -1)
        XCTAssertEqual(attributes["weft.link.inferred"]?.boolValue, true)
        XCTAssertEqual(attributes["url.path"]?.stringValue.count, 300, "a length past one varint byte")
        XCTAssertEqual(attributes["big"]?.stringValue.count, 20_000, "a length of three varint bytes")
        XCTAssertEqual(attributes["café"]?.stringValue, "naïve", "lengths in UTF-8 bytes")
        XCTAssertEqual(first.links.count, 1)
        XCTAssertEqual(Hex.text(first.links[0].spanID), "b1b2b3b4b5b6b7b8")
        XCTAssertEqual(first.links[0].attributes.first?.key, "weft.link.inferred")
        XCTAssertEqual(first.status.code, .error)
        XCTAssertEqual(first.status.message, "upstream_reset: closed")

        let second = spans[1]
        XCTAssertEqual(second.kind, .server)
        XCTAssertTrue(second.parentSpanID.isEmpty)
        XCTAssertEqual(second.status.code, .unset)
        XCTAssertEqual(second.endTimeUnixNano, 9)
    }

    func testASpanWrittenFromItsHeaderAndAttributes() throws {
        // The sidecar's path: measured, then written into reserved space, attributes added
        // by a closure that runs once per pass; the name joined from two parts.
        let header = SpanHeader(
            traceID: trace, spanID: span, parentSpanID: nil, name: "GET", nameSuffix: "web-route", kind: .server,
            startUnixNano: 1, endUnixNano: 2, isError: true, statusMessage: "HTTP 503")
        let fill: (inout SpanAttributes) -> Void = { out in
            out.add("http.response.status_code", Int64(503))
            out.add("weft.endpoint", "10.0.0.2:8080")
            out.add("weft.link.inferred", false)
        }
        let (total, content) = OTLPSpanWriter.measure(header, attributes: fill)
        var batch = [UInt8](repeating: 0xEE, count: total + 1)
        let written = batch.withUnsafeMutableBufferPointer {
            OTLPSpanWriter.write(header, content: content, attributes: fill, to: $0.baseAddress!)
        }
        XCTAssertEqual(written, total)
        XCTAssertEqual(batch.last, 0xEE, "nothing past the measured size")
        batch.removeLast()
        let request = try Opentelemetry_Proto_Collector_Trace_V1_ExportTraceServiceRequest(
            serializedBytes: OTLPSpanWriter.exportRequest(resource: [], scopeName: "s", scopeVersion: "v", batch: batch)
        )
        let decoded = try XCTUnwrap(request.resourceSpans.first?.scopeSpans.first?.spans.first)
        XCTAssertEqual(decoded.name, "GET web-route")
        XCTAssertEqual(decoded.kind, .server)
        XCTAssertEqual(
            decoded.attributes.map(\.key), ["http.response.status_code", "weft.endpoint", "weft.link.inferred"])
        XCTAssertEqual(decoded.attributes[2].value.boolValue, false)
        XCTAssertEqual(decoded.status.message, "HTTP 503")
    }

    func testAttributesEncodedOnceAreWrittenAsTheyWereAdded() throws {
        // An endpoint's attributes are encoded when it is first traced and copied into
        // every span after: the span decodes as if they had been added one by one.
        let peer = EncodedAttributes { out in
            out.add("network.peer.address", "10.0.0.2")
            out.add("weft.destination.identity", "spiffe://cluster.local/ns/demo/sa/web-é")
        }
        let header = SpanHeader(
            traceID: trace, spanID: span, parentSpanID: nil, name: "GET", kind: .client, startUnixNano: 1,
            endUnixNano: 2)
        let fill: (inout SpanAttributes) -> Void = { out in
            out.add("http.response.status_code", Int64(200))
            out.add(peer)
            out.add(EncodedAttributes.none)
            out.add("weft.retry_count", Int64(1))
        }
        let (total, content) = OTLPSpanWriter.measure(header, attributes: fill)
        var batch = [UInt8](repeating: 0, count: total)
        let written = batch.withUnsafeMutableBufferPointer {
            OTLPSpanWriter.write(header, content: content, attributes: fill, to: $0.baseAddress!)
        }
        XCTAssertEqual(written, total)
        let request = try Opentelemetry_Proto_Collector_Trace_V1_ExportTraceServiceRequest(
            serializedBytes: OTLPSpanWriter.exportRequest(resource: [], scopeName: "s", scopeVersion: "v", batch: batch)
        )
        let decoded = try XCTUnwrap(request.resourceSpans.first?.scopeSpans.first?.spans.first)
        XCTAssertEqual(
            decoded.attributes.map(\.key),
            ["http.response.status_code", "network.peer.address", "weft.destination.identity", "weft.retry_count"])
        XCTAssertEqual(decoded.attributes[1].value.stringValue, "10.0.0.2")
        XCTAssertEqual(decoded.attributes[2].value.stringValue, "spiffe://cluster.local/ns/demo/sa/web-é")
        var collected = SpanAttributes.collecting()
        fill(&collected)
        XCTAssertEqual(collected.collected.map(\.0), decoded.attributes.map(\.key), "kept as values alike")
        XCTAssertEqual(collected.collected[2].1, .string("spiffe://cluster.local/ns/demo/sa/web-é"))
    }

    func testASpanWrittenInOnePassIsTheSameBytesAsMeasuredThenWritten() throws {
        // The sidecar writes each span once into room at the batch's end and moves it back
        // by what its length did not need: the bytes must be those measuring first makes,
        // for lengths of one, two and three varint bytes, and a link and an error status
        // after the attributes.
        let peer = EncodedAttributes { $0.add("network.peer.address", "10.0.0.2") }
        for pathLength in [1, 300, 20_000] {
            for isError in [false, true] {
                let header = SpanHeader(
                    traceID: trace, spanID: span, parentSpanID: isError ? parent : nil, name: "GET",
                    nameSuffix: isError ? "web" : nil, kind: .client, startUnixNano: 1, endUnixNano: 2,
                    link: isError
                        ? SpanRecord.Link(
                            traceID: trace, spanID: parent, attributes: [("weft.link.inferred", .bool(true))])
                        : nil,
                    isError: isError, statusMessage: isError ? "HTTP 503" : nil)
                let path = String(repeating: "p", count: pathLength)
                let fill: (inout SpanAttributes) -> Void = { out in
                    if pathLength > 1 { out.add("url.path", path) }
                    out.add(peer)
                    out.add("weft.retry_count", Int64(pathLength))
                }
                let (total, content) = OTLPSpanWriter.measure(header, attributes: fill)
                var measured = [UInt8](repeating: 0, count: total)
                measured.withUnsafeMutableBufferPointer {
                    _ = OTLPSpanWriter.write(header, content: content, attributes: fill, to: $0.baseAddress!)
                }
                var once = [UInt8](repeating: 0xEE, count: total + 64)
                let written = once.withUnsafeMutableBufferPointer {
                    OTLPSpanWriter.writeOnce(header, attributes: fill, to: $0.baseAddress!, capacity: $0.count)
                }
                XCTAssertEqual(written, total, "path of \(pathLength), error \(isError)")
                XCTAssertEqual(Array(once.prefix(total)), measured, "path of \(pathLength), error \(isError)")
                let tight = once.withUnsafeMutableBufferPointer {
                    OTLPSpanWriter.writeOnce(header, attributes: fill, to: $0.baseAddress!, capacity: total + 2)
                }
                XCTAssertEqual(tight, total, "room for the span and a length of three bytes is enough")
                XCTAssertEqual(Array(once.prefix(total)), measured)
                let short = once.withUnsafeMutableBufferPointer {
                    OTLPSpanWriter.writeOnce(header, attributes: fill, to: $0.baseAddress!, capacity: total - 1)
                }
                XCTAssertNil(short, "a span that does not fit is not written: it is measured, then written")
            }
        }
    }

    func testAnEmptyBatchIsAValidRequest() throws {
        let bytes = OTLPSpanWriter.exportRequest(resource: [], scopeName: "s", scopeVersion: "v", batch: [])
        let request = try Opentelemetry_Proto_Collector_Trace_V1_ExportTraceServiceRequest(serializedBytes: bytes)
        XCTAssertEqual(request.resourceSpans.first?.scopeSpans.first?.spans.count, 0)
    }
}
