/// A protocol violation or refusal, with a stable wire code.
///
/// The code is what travels in an `error` frame (`code`), so a second implementation can
/// match on it; the reason is for people. Codes never change meaning once published.
public struct ProtocolError: Error, Hashable, Sendable, CustomStringConvertible {
    /// Stable error codes; the raw value is the wire form.
    public enum Code: String, Sendable, Hashable, Codable, CaseIterable {
        /// A frame's length exceeds the receiver's limit.
        case oversizedFrame = "oversized_frame"
        /// A frame of length zero.
        case emptyFrame = "empty_frame"
        /// The connection closed in the middle of a frame.
        case truncatedFrame = "truncated_frame"
        /// The payload is not a UTF-8 JSON object.
        case invalidJSON = "invalid_json"
        /// The object has no string `type`, or one the receiver does not know.
        case unknownType = "unknown_type"
        /// A known message is missing a field or has one of the wrong type or range.
        case invalidMessage = "invalid_message"
        /// The hello's `protocol` is not one the server speaks.
        case unsupportedProtocol = "unsupported_protocol"
        /// A message that is not allowed in the connection's current state (e.g. `ack`
        /// before `hello`, a second `hello`).
        case unexpectedMessage = "unexpected_message"
        /// The hello's token is missing or not accepted.
        case unauthenticated = "unauthenticated"
        /// The CSR asks for an identity other than the one the credentials prove.
        case forbiddenIdentity = "forbidden_identity"
        /// The CSR itself is unusable (bad PEM, signature, key type).
        case invalidCSR = "invalid_csr"
        /// No hello arrived within the server's hello timeout.
        case helloTimeout = "hello_timeout"
        /// The peer stopped reading and its unsent data exceeded the sender's bound.
        case slowConsumer = "slow_consumer"
        /// Nothing arrived from the peer within the idle timeout.
        case idleTimeout = "idle_timeout"
        /// The subscribed service does not exist (non-fatal; answered, connection stays).
        case unknownService = "unknown_service"
        /// The server failed in a way that is not the client's fault.
        case internalError = "internal_error"
        /// The server is shutting down; reconnect elsewhere or later.
        case shuttingDown = "shutting_down"
        /// Too many certificates were asked for by one pod or one address; the message
        /// says when to retry (docs/protocol.md, "Issuance limits").
        case rateLimited = "rate_limited"
    }

    public let code: Code
    public let reason: String

    public init(_ code: Code, _ reason: String) {
        self.code = code
        self.reason = reason
    }

    public var description: String { "\(code.rawValue): \(reason)" }
}
