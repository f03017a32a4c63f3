import NIOCore
import NIOHTTP1
import WeftOTLP

/// OTLP/HTTP span intake on :4318 (`POST /v1/traces`), for sidecars and for apps with an
/// OpenTelemetry SDK alike: binary protobuf or JSON, answered in the same encoding.
///
/// Bad input gets a clear 4xx and costs only its own connection:
/// - another path 404, another method 405, another content type 415 (naming the two
///   accepted), a compressed body 415 (compression is not read here);
/// - a body over `maxBody` 413, at once from Content-Length or as soon as it is exceeded;
///   the connection is closed, so the rest is never read;
/// - a client address over its rate (`IntakeRateLimit`) 429 with `Retry-After`, before
///   its body is read: a flood from one client leaves the others served;
/// - a body that does not decode 400, naming the first problem;
/// - spans with invalid ids are rejected and counted in a partial success (200), the
///   rest kept.
final class SpanIntakeHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    static let path = "/v1/traces"
    /// The most a body's buffer is sized for before its bytes come.
    static let reservedBody = 512 * 1024

    private let store: SpanStore
    private let maxBody: Int
    private let onExport: @Sendable (SpanStore.Outcome) -> Void
    private let limit: IntakeRateLimit?
    private let onLimited: @Sendable () -> Void
    /// `--otlp-forward`: an export taken, as protobuf, and its span count.
    private let forward: (@Sendable ([UInt8], Int) -> Void)?
    private var head: HTTPRequestHead?
    private var encoding = OTLPCodec.Encoding.protobuf
    private var body: [UInt8] = []
    /// The request was answered early (an error): the rest of it is ignored.
    private var refused = false

    init(
        store: SpanStore, maxBody: Int, limit: IntakeRateLimit? = nil, onLimited: @escaping @Sendable () -> Void = {},
        forward: (@Sendable ([UInt8], Int) -> Void)? = nil,
        onExport: @escaping @Sendable (SpanStore.Outcome) -> Void = { _ in }
    ) {
        self.forward = forward
        self.limit = limit
        self.onLimited = onLimited
        self.store = store
        self.maxBody = maxBody
        self.onExport = onExport
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            self.head = head
            body = []
            refused = false
            let path = head.uri.split(separator: "?", maxSplits: 1).first.map(String.init) ?? head.uri
            guard path == Self.path else {
                return refuse(context, 404, "no endpoint \(path); OTLP/HTTP spans go to POST \(Self.path)")
            }
            if let limit, let client = context.channel.remoteAddress?.ipAddress,
                !limit.admit(client, now: NIODeadline.now().uptimeNanoseconds)
            {
                onLimited()
                return refuse(
                    context, 429,
                    "too many exports from \(client): at most \(Int(limit.rate)) a second per client address (--otlp-rate-limit); retry later",
                    retryAfter: true)
            }
            guard head.method == .POST else {
                return refuse(context, 405, "\(head.method.rawValue) \(path): spans are sent with POST")
            }
            guard let encoding = OTLPCodec.Encoding(contentType: head.headers.first(name: "content-type")) else {
                return refuse(
                    context, 415,
                    "content type \"\(head.headers.first(name: "content-type") ?? "")\" is not application/x-protobuf or application/json"
                )
            }
            if let coding = head.headers.first(name: "content-encoding"), coding.lowercased() != "identity" {
                return refuse(context, 415, "content encoding \"\(coding)\" is not read here; send spans uncompressed")
            }
            let length = head.headers.first(name: "content-length").flatMap(Int.init)
            if let length, length > maxBody {
                return refuse(context, 413, "body of \(length) bytes is over the intake's limit of \(maxBody)")
            }
            // The body's own buffer, handed to the store's reader whole; sized from
            // Content-Length up to a sidecar export's usual size (a client's word alone
            // does not pin megabytes per connection).
            if let length, length > 0 { body.reserveCapacity(min(length, Self.reservedBody)) }
            self.encoding = encoding
        case .body(let chunk):
            guard !refused else { return }
            guard body.count + chunk.readableBytes <= maxBody else {
                return refuse(context, 413, "body is over the intake's limit of \(maxBody) bytes")
            }
            chunk.withUnsafeReadableBytes { body.append(contentsOf: $0) }
        case .end:
            guard !refused, let head else { return }
            self.head = nil
            // Protobuf is read at the wire level, never decoded (`OTLPWire`); JSON is decoded
            // and encoded as protobuf first.
            let wire: OTLPWire
            do {
                switch encoding {
                case .protobuf:
                    wire = try OTLPWire(body)
                case .json:
                    let bytes: [UInt8] = try OTLPCodec.decodeRequest(body, as: .json).serializedBytes()
                    wire = try OTLPWire(bytes)
                }
            } catch {
                let message =
                    error is OTLPWire.Malformed
                    ? "not an OTLP ExportTraceServiceRequest (\(encoding)): \(error)" : "\(error)"
                return respond(
                    context, head, 400, "text/plain; charset=utf-8", Array("\(message)\n".utf8), close: false)
            }
            body = []
            let outcome = store.add(wire)
            // Forwarded as protobuf (collectors take both; protobuf is OTLP/HTTP's default).
            if let forward, outcome.accepted > 0 { forward(wire.bytes, outcome.accepted) }
            onExport(outcome)
            respond(
                context, head, 200, encoding.contentType,
                OTLPCodec.response(rejected: outcome.rejected, message: outcome.reason, as: encoding), close: false)
        }
    }

    private func refuse(_ context: ChannelHandlerContext, _ status: Int, _ message: String, retryAfter: Bool = false) {
        refused = true
        body.removeAll()
        guard let head else { return }
        self.head = nil
        respond(
            context, head, status, "text/plain; charset=utf-8", Array((message + "\n").utf8), close: true,
            retryAfter: retryAfter)
    }

    private func respond(
        _ context: ChannelHandlerContext, _ request: HTTPRequestHead, _ status: Int, _ contentType: String,
        _ body: [UInt8], close: Bool, retryAfter: Bool = false
    ) {
        var headers = HTTPHeaders()
        // OTLP/HTTP: a client told to retry waits at least this long.
        if retryAfter { headers.add(name: "retry-after", value: "1") }
        headers.add(name: "content-type", value: contentType)
        headers.add(name: "content-length", value: "\(body.count)")
        let keepAlive = request.isKeepAlive && !close
        if !keepAlive { headers.add(name: "connection", value: "close") }
        context.write(
            wrapOutboundOut(
                .head(HTTPResponseHead(version: request.version, status: .init(statusCode: status), headers: headers))),
            promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(bytes: body)))), promise: nil)
        let done = context.writeAndFlush(wrapOutboundOut(.end(nil)))
        if !keepAlive { done.whenComplete { _ in context.close(promise: nil) } }
    }
}

@available(*, unavailable) extension SpanIntakeHandler: Sendable {}
