import NIOCore

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// A frame a proxy sends to the control plane.
public enum ClientMessage: Hashable, Sendable {
    case hello(Hello)
    case ack(Ack)
    case nack(Nack)
    case subscribe(Subscription)
    case unsubscribe(Subscription)
    case renew(Renew)
    case ping(Ping)
    case pong(Ping)
    case error(ErrorMessage)

    /// The `type` field's value.
    public var type: String {
        switch self {
        case .hello: "hello"
        case .ack: "ack"
        case .nack: "nack"
        case .subscribe: "subscribe"
        case .unsubscribe: "unsubscribe"
        case .renew: "renew"
        case .ping: "ping"
        case .pong: "pong"
        case .error: "error"
        }
    }

    /// Decodes one frame's payload.
    /// - Throws: `ProtocolError` `.invalidJSON`, `.unknownType` or `.invalidMessage`.
    public static func decode(_ payload: ByteBuffer) throws(ProtocolError) -> ClientMessage {
        let coder = MessageCoder(payload)
        switch try coder.type() {
        case "hello":
            // The version first (§15): a later version's hello may not decode as this one.
            let version = try coder.body(HelloVersion.self).protocol
            guard version == ControlProtocol.version else {
                throw ProtocolError(
                    .unsupportedProtocol,
                    "protocol \(version) is not supported; this control plane speaks \(ControlProtocol.version)")
            }
            return .hello(try coder.body())
        case "ack": return .ack(try coder.body())
        case "nack": return .nack(try coder.body())
        case "subscribe": return .subscribe(try coder.body())
        case "unsubscribe": return .unsubscribe(try coder.body())
        case "renew": return .renew(try coder.body())
        case "ping": return .ping(try coder.body())
        case "pong": return .pong(try coder.body())
        case "error": return .error(try coder.body())
        case let other: throw ProtocolError(.unknownType, "unknown message type \"\(other)\" from a proxy")
        }
    }

    /// The frame payload: one JSON object with `type` and the message's fields.
    public func encode(allocator: ByteBufferAllocator = ByteBufferAllocator()) -> ByteBuffer {
        switch self {
        case .hello(let m): MessageCoder.encode(type: type, m, allocator: allocator)
        case .ack(let m): MessageCoder.encode(type: type, m, allocator: allocator)
        case .nack(let m): MessageCoder.encode(type: type, m, allocator: allocator)
        case .subscribe(let m), .unsubscribe(let m): MessageCoder.encode(type: type, m, allocator: allocator)
        case .renew(let m): MessageCoder.encode(type: type, m, allocator: allocator)
        case .ping(let m), .pong(let m): MessageCoder.encode(type: type, m, allocator: allocator)
        case .error(let m): MessageCoder.encode(type: type, m, allocator: allocator)
        }
    }
}

/// A frame the control plane sends to a proxy.
public enum ServerMessage: Hashable, Sendable {
    case identity(Identity)
    case config(ConfigPush)
    case delta(DeltaPush)
    case ping(Ping)
    case pong(Ping)
    case error(ErrorMessage)

    public var type: String {
        switch self {
        case .identity: "identity"
        case .config: "config"
        case .delta: "delta"
        case .ping: "ping"
        case .pong: "pong"
        case .error: "error"
        }
    }

    /// Decodes one frame's payload.
    /// - Throws: `ProtocolError` `.invalidJSON`, `.unknownType` or `.invalidMessage`.
    public static func decode(_ payload: ByteBuffer) throws(ProtocolError) -> ServerMessage {
        let coder = MessageCoder(payload)
        switch try coder.type() {
        case "identity": return .identity(try coder.body())
        case "config": return .config(try coder.body())
        case "delta": return .delta(try coder.body())
        case "ping": return .ping(try coder.body())
        case "pong": return .pong(try coder.body())
        case "error": return .error(try coder.body())
        case let other: throw ProtocolError(.unknownType, "unknown message type \"\(other)\" from the control plane")
        }
    }

    public func encode(allocator: ByteBufferAllocator = ByteBufferAllocator()) -> ByteBuffer {
        switch self {
        case .identity(let m): MessageCoder.encode(type: type, m, allocator: allocator)
        case .config(let m): MessageCoder.encode(type: type, m, allocator: allocator)
        case .delta(let m): MessageCoder.encode(type: type, m, allocator: allocator)
        case .ping(let m), .pong(let m): MessageCoder.encode(type: type, m, allocator: allocator)
        case .error(let m): MessageCoder.encode(type: type, m, allocator: allocator)
        }
    }
}

/// JSON for one message: the `type` key beside the message's own fields.
///
/// Unknown keys are ignored when decoding, so a newer peer may add optional fields
/// without a protocol version bump (docs/protocol.md, "Versioning").
public struct MessageCoder {
    private let bytes: [UInt8]

    public init(_ payload: ByteBuffer) {
        self.bytes = Array(payload.readableBytesView)
    }

    private struct TypeProbe: Decodable {
        let type: String
    }

    private enum TypeKey: String, CodingKey { case type }

    private struct Envelope<Body: Encodable>: Encodable {
        let type: String
        let body: Body

        func encode(to encoder: Encoder) throws {
            try body.encode(to: encoder)
            var container = encoder.container(keyedBy: TypeKey.self)
            try container.encode(type, forKey: .type)
        }
    }

    /// The message's `type`. Call it first: it also checks that the whole payload is UTF-8
    /// JSON (`JSONSyntax`), which JSONDecoder does not do for what it never reads.
    public func type() throws(ProtocolError) -> String {
        guard String(validating: bytes, as: UTF8.self) != nil else {
            throw ProtocolError(.invalidJSON, "the frame is not valid UTF-8")
        }
        if let problem = JSONSyntax.firstError(in: bytes) {
            throw ProtocolError(.invalidJSON, "the frame is not valid JSON: \(problem)")
        }
        do {
            return try JSONDecoder().decode(TypeProbe.self, from: Data(bytes)).type
        } catch DecodingError.keyNotFound {
            throw ProtocolError(.unknownType, "the object has no \"type\" field")
        } catch DecodingError.valueNotFound {
            throw ProtocolError(.unknownType, "\"type\" is null")
        } catch DecodingError.typeMismatch {
            throw ProtocolError(.unknownType, "\"type\" must be a string (or the frame is not a JSON object)")
        } catch {
            throw ProtocolError(.invalidJSON, "the frame is not valid UTF-8 JSON")
        }
    }

    /// The message's fields, as `Body`.
    public func body<Body: Decodable>(_: Body.Type = Body.self) throws(ProtocolError) -> Body {
        do {
            return try JSONDecoder().decode(Body.self, from: Data(bytes))
        } catch let DecodingError.keyNotFound(key, context) {
            throw ProtocolError(.invalidMessage, "\(Self.path(context.codingPath + [key])): missing")
        } catch let DecodingError.typeMismatch(_, context) {
            throw ProtocolError(.invalidMessage, "\(Self.path(context.codingPath)): wrong type")
        } catch let DecodingError.valueNotFound(_, context) {
            throw ProtocolError(.invalidMessage, "\(Self.path(context.codingPath)): null")
        } catch let DecodingError.dataCorrupted(context) where context.codingPath.isEmpty {
            // Not a field's value but the document itself (e.g. a string that is not UTF-8).
            throw ProtocolError(.invalidJSON, "the frame is not valid UTF-8 JSON: \(context.debugDescription)")
        } catch let DecodingError.dataCorrupted(context) {
            throw ProtocolError(.invalidMessage, "\(Self.path(context.codingPath)): \(context.debugDescription)")
        } catch {
            throw ProtocolError(.invalidJSON, "the frame is not valid JSON")
        }
    }

    private static func path(_ keys: [any CodingKey]) -> String {
        var out = ""
        for key in keys {
            if let index = key.intValue {
                out += "[\(index)]"
            } else {
                out += out.isEmpty ? key.stringValue : ".\(key.stringValue)"
            }
        }
        return out.isEmpty ? "message" : out
    }

    /// Encodes `body` as one JSON object with `type` added.
    public static func encode<Body: Encodable>(
        type: String, _ body: Body, allocator: ByteBufferAllocator = ByteBufferAllocator()
    ) -> ByteBuffer {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        // Encoding our own value types cannot fail (no non-finite doubles reach here).
        let data = (try? encoder.encode(Envelope(type: type, body: body))) ?? Data("{}".utf8)
        var buffer = allocator.buffer(capacity: data.count)
        buffer.writeBytes(data)
        return buffer
    }

    /// Encodes a value as JSON with sorted keys: the form deltas are assembled from, so
    /// equal values give equal bytes.
    public static func encodeValue<Value: Encodable>(_ value: Value) -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return (try? Array(encoder.encode(value))) ?? Array("null".utf8)
    }
}
