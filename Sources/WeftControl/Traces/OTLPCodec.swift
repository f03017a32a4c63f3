import SwiftProtobuf
import WeftOTLP
import WeftTelemetry

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// OTLP/HTTP's two encodings of trace data (opentelemetry-proto, "OTLP/HTTP"): binary
/// protobuf, and JSON, which is proto3's JSON mapping with two differences: trace and span
/// ids are hex strings, not base64, and enums are integers.
///
/// The ids are carried through SwiftProtobuf's own JSON codec: a 32- or 16-character hex
/// id is also valid base64 (hex digits are base64 letters, and those lengths are whole
/// 4-character groups), so decoding yields the bytes whose base64 is the hex text, which
/// `fromBase64Text` turns back into it and then into the real id; encoding does the
/// reverse. No second JSON parser, no re-serialization.
enum OTLPCodec {
    enum Encoding: Sendable, Equatable {
        case protobuf, json

        /// From a Content-Type: `application/x-protobuf` or `application/json` (parameters
        /// and case ignored); nil for anything else.
        init?(contentType: String?) {
            guard let contentType else { return nil }
            let media = contentType.split(separator: ";", maxSplits: 1).first.map {
                String(
                    $0.drop(while: { $0 == " " || $0 == "\t" }).reversed().drop(while: { $0 == " " || $0 == "\t" })
                        .reversed()
                )
                .lowercased()
            }
            switch media {
            case "application/x-protobuf", "application/protobuf": self = .protobuf
            case "application/json": self = .json
            default: return nil
            }
        }

        var contentType: String {
            self == .protobuf ? "application/x-protobuf" : "application/json"
        }
    }

    struct DecodeError: Error, CustomStringConvertible {
        let description: String
    }

    static func decodeRequest(_ body: [UInt8], as encoding: Encoding) throws(DecodeError)
        -> Opentelemetry_Proto_Collector_Trace_V1_ExportTraceServiceRequest
    {
        do {
            switch encoding {
            case .protobuf:
                return try Opentelemetry_Proto_Collector_Trace_V1_ExportTraceServiceRequest(serializedBytes: body)
            case .json:
                var options = JSONDecodingOptions()
                options.ignoreUnknownFields = true
                var request = try Opentelemetry_Proto_Collector_Trace_V1_ExportTraceServiceRequest(
                    jsonUTF8Bytes: body, options: options)
                try convertIDs(&request.resourceSpans, fromHexText: true)
                return request
            }
        } catch let error as DecodeError {
            throw error
        } catch {
            throw DecodeError(description: "not an OTLP ExportTraceServiceRequest (\(encoding)): \(error)")
        }
    }

    /// OTLP JSON of `resourceSpans` (`{"resourceSpans": [...]}`), ids in hex, enums as integers.
    static func json(_ resourceSpans: [Opentelemetry_Proto_Trace_V1_ResourceSpans]) -> [UInt8] {
        var data = Opentelemetry_Proto_Trace_V1_TracesData()
        data.resourceSpans = resourceSpans
        try? convertIDs(&data.resourceSpans, fromHexText: false)
        var options = JSONEncodingOptions()
        options.alwaysPrintEnumsAsInts = true
        return (try? data.jsonUTF8Bytes(options: options)) ?? Array("{}".utf8)
    }

    /// The answer to an export: an empty ExportTraceServiceResponse, or one with a partial
    /// success naming how many spans were rejected and why.
    static func response(rejected: Int, message: String, as encoding: Encoding) -> [UInt8] {
        var response = Opentelemetry_Proto_Collector_Trace_V1_ExportTraceServiceResponse()
        if rejected > 0 {
            response.partialSuccess.rejectedSpans = Int64(rejected)
            response.partialSuccess.errorMessage = message
        }
        switch encoding {
        case .protobuf: return (try? response.serializedBytes()) ?? []
        case .json: return (try? response.jsonUTF8Bytes()) ?? Array("{}".utf8)
        }
    }

    /// Rewrites every trace, span and parent id (links' too): from "bytes whose base64 is
    /// the hex text" to the id's bytes, or back.
    private static func convertIDs(
        _ resourceSpans: inout [Opentelemetry_Proto_Trace_V1_ResourceSpans], fromHexText: Bool
    ) throws(DecodeError) {
        let convert: (Data, String) throws(DecodeError) -> Data = fromHexText ? decodeHexID : encodeHexID
        for r in resourceSpans.indices {
            for s in resourceSpans[r].scopeSpans.indices {
                for i in resourceSpans[r].scopeSpans[s].spans.indices {
                    var span = resourceSpans[r].scopeSpans[s].spans[i]
                    span.traceID = try convert(span.traceID, "traceId")
                    span.spanID = try convert(span.spanID, "spanId")
                    span.parentSpanID = try convert(span.parentSpanID, "parentSpanId")
                    for l in span.links.indices {
                        span.links[l].traceID = try convert(span.links[l].traceID, "links.traceId")
                        span.links[l].spanID = try convert(span.links[l].spanID, "links.spanId")
                    }
                    resourceSpans[r].scopeSpans[s].spans[i] = span
                }
            }
        }
    }

    private static func decodeHexID(_ misread: Data, _ field: String) throws(DecodeError) -> Data {
        guard !misread.isEmpty else { return misread }
        let text = misread.base64EncodedString()
        guard text.utf8.count % 2 == 0, let bytes = Hex.bytes(text) else {
            throw DecodeError(description: "\(field): \"\(text)\" is not a hex id")
        }
        return Data(bytes)
    }

    private static func encodeHexID(_ id: Data, _ field: String) throws(DecodeError) -> Data {
        guard !id.isEmpty else { return id }
        return Data(base64Encoded: Hex.text(id)) ?? id
    }
}
