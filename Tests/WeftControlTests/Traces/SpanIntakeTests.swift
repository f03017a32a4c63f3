import Foundation
import NIOCore
import NIOEmbedded
import NIOHTTP1
import WeftOTLP
import XCTest

@testable import WeftControl

final class SpanIntakeTests: XCTestCase {
    typealias F = OTLPFixture

    // MARK: OTLP JSON

    /// An export as the OTLP spec's own JSON example writes it: hex ids, integer enums,
    /// lowerCamelCase names, 64-bit integers as strings.
    static let specJSON = """
        {"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"my.service"}}]},
        "scopeSpans":[{"scope":{"name":"my.library","version":"1.0.0"},"spans":[
        {"traceId":"5B8EFFF798038103D269B633813FC60C","spanId":"EEE19B7EC3C1B174","parentSpanId":"EEE19B7EC3C1B173",
         "name":"I'm a server span","startTimeUnixNano":"1544712660000000000","endTimeUnixNano":"1544712661000000000",
         "kind":2,"attributes":[{"key":"my.span.attr","value":{"stringValue":"some value"}}],
         "status":{"code":2,"message":"boom"}}]}]}]}
        """

    func testOTLPJSONHexIDsAndIntegerEnumsDecode() throws {
        let request = try OTLPCodec.decodeRequest(Array(Self.specJSON.utf8), as: .json)
        let span = request.resourceSpans[0].scopeSpans[0].spans[0]
        XCTAssertEqual(F.hex(span.traceID), "5b8efff798038103d269b633813fc60c")
        XCTAssertEqual(F.hex(span.spanID), "eee19b7ec3c1b174")
        XCTAssertEqual(F.hex(span.parentSpanID), "eee19b7ec3c1b173")
        XCTAssertEqual(span.kind, .server)
        XCTAssertEqual(span.status.code, .error)
        XCTAssertEqual(span.startTimeUnixNano, 1_544_712_660_000_000_000)
    }

    func testOTLPJSONOutHasHexIDsAndIntegerEnums() throws {
        let request = try OTLPCodec.decodeRequest(Array(Self.specJSON.utf8), as: .json)
        let text = String(decoding: OTLPCodec.json(request.resourceSpans), as: UTF8.self)
        XCTAssertTrue(text.contains("\"traceId\":\"5b8efff798038103d269b633813fc60c\""), text)
        XCTAssertTrue(text.contains("\"spanId\":\"eee19b7ec3c1b174\""), text)
        XCTAssertTrue(text.contains("\"kind\":2"), text)
        XCTAssertTrue(text.hasPrefix("{\"resourceSpans\":["), text)
        // And it reads back as the same spans.
        let again = try OTLPCodec.decodeRequest(Array(text.utf8), as: .json)
        XCTAssertEqual(again.resourceSpans, request.resourceSpans)
    }

    func testMalformedBodiesAreClearErrors() {
        for (body, encoding) in [
            ("{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{\"traceId\":\"zz!\"}]}]}]}", OTLPCodec.Encoding.json),
            ("{\"resourceSpans\": 7}", .json),
            ("not json", .json),
            ("\u{0A}\u{FF}garbage", .protobuf),
        ] {
            XCTAssertThrowsError(try OTLPCodec.decodeRequest(Array(body.utf8), as: encoding), body) { error in
                XCTAssertTrue("\(error)".contains("OTLP") || "\(error)".contains("hex"), "\(error)")
            }
        }
    }

    // MARK: the intake on :4318

    private func intake(_ store: SpanStore, maxBody: Int = 1 << 20) throws -> EmbeddedChannel {
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(SpanIntakeHandler(store: store, maxBody: maxBody))
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        return channel
    }

    private func post(
        _ channel: EmbeddedChannel, path: String = "/v1/traces", method: HTTPMethod = .POST,
        contentType: String? = "application/x-protobuf", headers extra: [(String, String)] = [], body: [UInt8]
    ) throws -> (status: Int, contentType: String?, body: [UInt8], closed: Bool) {
        var headers = HTTPHeaders()
        if let contentType { headers.add(name: "content-type", value: contentType) }
        headers.add(name: "content-length", value: "\(body.count)")
        for (k, v) in extra { headers.add(name: k, value: v) }
        try channel.writeInbound(
            HTTPServerRequestPart.head(.init(version: .http1_1, method: method, uri: path, headers: headers)))
        if channel.isActive {
            try channel.writeInbound(HTTPServerRequestPart.body(ByteBuffer(bytes: body)))
        }
        if channel.isActive { try channel.writeInbound(HTTPServerRequestPart.end(nil)) }
        guard case .head(let head) = try channel.readOutbound(as: HTTPServerResponsePart.self) else {
            XCTFail("no response head")
            return (0, nil, [], !channel.isActive)
        }
        var out: [UInt8] = []
        while let part = try channel.readOutbound(as: HTTPServerResponsePart.self) {
            if case .body(.byteBuffer(var b)) = part { out += b.readBytes(length: b.readableBytes) ?? [] }
        }
        return (Int(head.status.code), head.headers.first(name: "content-type"), out, !channel.isActive)
    }

    func testProtobufAndJSONExportsAreStoredAndAnsweredInKind() throws {
        let store = SpanStore(limit: 1 << 20)
        let channel = try intake(store)
        let proto = try F.request(service: "web", [F.span(trace: 1, span: 1)]).serializedBytes() as [UInt8]
        let first = try post(channel, body: proto)
        XCTAssertEqual(first.status, 200)
        XCTAssertEqual(first.contentType, "application/x-protobuf")
        XCTAssertEqual(
            try Opentelemetry_Proto_Collector_Trace_V1_ExportTraceServiceResponse(serializedBytes: first.body),
            .init(), "a full success is an empty response")
        let json = try post(channel, contentType: "application/json; charset=utf-8", body: Array(Self.specJSON.utf8))
        XCTAssertEqual(json.status, 200)
        XCTAssertEqual(json.contentType, "application/json")
        XCTAssertFalse(json.closed, "keep-alive: the next export uses the same connection")
        XCTAssertEqual(store.usage.traces, 2)
        XCTAssertNotNil(store.trace("5b8efff798038103d269b633813fc60c"))
    }

    func testInvalidSpansGetAPartialSuccess() throws {
        let store = SpanStore(limit: 1 << 20)
        var bad = F.span(trace: 2, span: 2)
        bad.spanID = Data()
        let body = try F.request(service: "web", [F.span(trace: 1, span: 1), bad]).serializedBytes() as [UInt8]
        let answer = try post(try intake(store), body: body)
        XCTAssertEqual(answer.status, 200)
        let response = try Opentelemetry_Proto_Collector_Trace_V1_ExportTraceServiceResponse(
            serializedBytes: answer.body)
        XCTAssertEqual(response.partialSuccess.rejectedSpans, 1)
        XCTAssertTrue(response.partialSuccess.errorMessage.contains("spanId 8"), response.partialSuccess.errorMessage)
        XCTAssertEqual(store.usage.traces, 1)
    }

    func testBadRequestsGetClearFourHundreds() throws {
        let store = SpanStore(limit: 1 << 20)
        let cases: [(String, HTTPMethod, String?, [(String, String)], [UInt8], Int, String)] = [
            ("/v1/metrics", .POST, "application/x-protobuf", [], [], 404, "POST /v1/traces"),
            ("/v1/traces", .GET, "application/x-protobuf", [], [], 405, "POST"),
            ("/v1/traces", .POST, "text/plain", [], [1], 415, "application/x-protobuf or application/json"),
            ("/v1/traces", .POST, nil, [], [1], 415, "is not application/x-protobuf"),
            ("/v1/traces", .POST, "application/json", [("content-encoding", "gzip")], [1], 415, "uncompressed"),
            ("/v1/traces", .POST, "application/json", [], Array("{\"resourceSpans\": 7}".utf8), 400, "OTLP"),
            ("/v1/traces", .POST, "application/x-protobuf", [], Array(repeating: 0xFF, count: 10), 400, "OTLP"),
        ]
        for (path, method, type, headers, body, status, text) in cases {
            let answer = try post(
                try intake(store), path: path, method: method, contentType: type, headers: headers, body: body)
            XCTAssertEqual(answer.status, status, "\(method) \(path) \(type ?? "-")")
            XCTAssertTrue(
                String(decoding: answer.body, as: UTF8.self).contains(text),
                String(decoding: answer.body, as: UTF8.self))
        }
        XCTAssertEqual(store.usage.traces, 0, "nothing of a refused export is kept")
    }

    func testAnOversizedBodyIsRefusedAndItsConnectionClosed() throws {
        let store = SpanStore(limit: 1 << 20)
        let declared = try post(try intake(store, maxBody: 100), body: Array(repeating: 0, count: 101))
        XCTAssertEqual(declared.status, 413)
        XCTAssertTrue(declared.closed, "the rest of the body is never read")
        // Without a Content-Length (chunked), refused once the limit is passed.
        let channel = try intake(store, maxBody: 100)
        var headers = HTTPHeaders()
        headers.add(name: "content-type", value: "application/x-protobuf")
        headers.add(name: "transfer-encoding", value: "chunked")
        try channel.writeInbound(
            HTTPServerRequestPart.head(.init(version: .http1_1, method: .POST, uri: "/v1/traces", headers: headers)))
        try channel.writeInbound(HTTPServerRequestPart.body(ByteBuffer(bytes: Array(repeating: 0, count: 60))))
        XCTAssertNil(try channel.readOutbound(as: HTTPServerResponsePart.self))
        try channel.writeInbound(HTTPServerRequestPart.body(ByteBuffer(bytes: Array(repeating: 0, count: 60))))
        guard case .head(let head) = try channel.readOutbound(as: HTTPServerResponsePart.self) else {
            return XCTFail("no answer")
        }
        XCTAssertEqual(head.status.code, 413)
        XCTAssertFalse(channel.isActive)
    }
}
