/// What the proxy needs to know about one HTTP/1.x message head, found by
/// `HTTP1HeadParser` without copying the head out of the connection's buffer.
///
/// Offsets are relative to the first byte of the head. The proxy forwards the original
/// bytes, minus `droppedLines` (hop-by-hop fields), so a head is never re-serialised.
struct HTTP1Head {
    enum Framing: Equatable {
        /// No body follows the head.
        case none
        case contentLength(Int)
        case chunked
        /// The body ends when the sender closes (responses only).
        case untilClose
    }

    /// The bytes of the head, including the empty line that ends it.
    var length: Int
    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    var minorVersion: Int
    /// Request heads only.
    var method: HTTP1Method
    /// Request heads only: where the request-target is.
    var target: Range<Int>
    /// Request heads only: where the Host field's value is.
    var host: Range<Int>?
    /// Response heads only.
    var status: Int
    var framing: Framing
    /// `Connection: close` was sent, or HTTP/1.0 without `Connection: keep-alive`.
    var wantsClose: Bool
    /// `Connection: upgrade` together with an `Upgrade` field.
    var isUpgrade: Bool
    /// Lines (field line plus its CRLF) that must not be forwarded: hop-by-hop fields
    /// and fields that `Connection` nominates (RFC 9110 §7.6.1).
    var droppedLines: [Range<Int>]
    /// A `Connection: keep-alive` line (that option alone). RFC 9110 §7.6.1 lets an
    /// intermediary replace Connection with its own options, and keep-alive is the
    /// proxy's own option whenever it keeps the next hop open: so the line is forwarded
    /// as is (sparing a split write), and dropped only when the proxy closes instead.
    var keepAliveLine: Range<Int>?

    init() {
        length = 0
        minorVersion = 1
        method = .other
        target = 0..<0
        host = nil
        status = 0
        framing = .none
        wantsClose = false
        isUpgrade = false
        droppedLines = []
        keepAliveLine = nil
    }
}

/// The request methods whose semantics the proxy must know (framing, retries).
enum HTTP1Method: Equatable {
    case get, head, post, put, delete, options, trace, connect, patch, other

    /// Safe and idempotent methods may be retried on a fresh connection when a pooled
    /// one turns out to be closed before any response byte arrived (RFC 9110 §9.2.2).
    var isIdempotent: Bool {
        switch self {
        case .get, .head, .options, .trace, .put, .delete: return true
        case .post, .connect, .patch, .other: return false
        }
    }

    /// The method's name, nil for `other` (its bytes are in the head): a literal, so a
    /// span names its request without making a string.
    var name: String? {
        switch self {
        case .get: return "GET"
        case .head: return "HEAD"
        case .post: return "POST"
        case .put: return "PUT"
        case .delete: return "DELETE"
        case .options: return "OPTIONS"
        case .trace: return "TRACE"
        case .connect: return "CONNECT"
        case .patch: return "PATCH"
        case .other: return nil
        }
    }
}
