import NIOCore
import NIOHTTP1
import NIOPosix

/// Sends OTLP/HTTP exports (`POST`, protobuf) to one receiver from one event loop, on a
/// keep-alive connection made when first needed and again after it fails: the sidecar's
/// span export (`SpanQueue`) and the control plane's forwarding (`--otlp-forward`) both
/// post through it. One export at a time; the caller queues.
///
/// Plain HTTP unless the owner secures the connection (`secure`: the control plane adds a
/// TLS client handler for an `https://` collector; this module does not link TLS).
public final class OTLPHTTPExporter {
    /// How long an export may take before its connection is closed and it counts as failed.
    public static let timeout = TimeAmount.seconds(5)

    private let eventLoop: EventLoop
    private let host: String
    private let port: Int
    private let path: String
    private let secure: (@Sendable (Channel) throws -> Void)?
    private var connection: OTLPHTTPConnection?
    /// Why the last export that failed did (cannot connect, a status, a TLS error, no
    /// answer in time), for the owner's log.
    public private(set) var lastFailure: String?

    /// - Parameter secure: adds the handlers that secure a new connection (TLS), first in
    ///   its pipeline; nil for plain HTTP.
    public init(
        eventLoop: EventLoop, host: String, port: Int, path: String = "/v1/traces",
        secure: (@Sendable (Channel) throws -> Void)? = nil
    ) {
        self.eventLoop = eventLoop
        self.host = host
        self.port = port
        self.path = path
        self.secure = secure
    }

    /// Posts the export whose body is `parts`, in order; `done(true)` on a 2xx answer.
    /// Call on the exporter's event loop.
    public func post(_ parts: [ByteBuffer], done: @escaping (Bool) -> Void) {
        if let connection, connection.isUsable {
            connection.post(parts, done: noting(connection, done))
            return
        }
        connection = nil
        let made = OTLPHTTPConnection(host: host, port: port, path: path)
        let secure = self.secure
        ClientBootstrap(group: eventLoop)
            .connectTimeout(.seconds(1))
            .channelOption(.tcpOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try secure?(channel)
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    try channel.pipeline.syncOperations.addHandler(made)
                }
            }
            .connect(host: host, port: port)
            .whenComplete { [self] result in
                switch result {
                case .success:
                    connection = made
                    made.post(parts, done: noting(made, done))
                case .failure(let error):
                    lastFailure = "cannot connect to \(host):\(port): \(error)"
                    done(false)
                }
            }
    }

    private func noting(_ connection: OTLPHTTPConnection, _ done: @escaping (Bool) -> Void) -> (Bool) -> Void {
        { [self] ok in
            if !ok { lastFailure = connection.failure ?? "the connection failed" }
            done(ok)
        }
    }
}

@available(*, unavailable)
extension OTLPHTTPExporter: Sendable {}

/// One keep-alive HTTP/1.1 connection to an OTLP/HTTP receiver: one `POST` at a time,
/// answered by a status (2xx: the spans were taken).
final class OTLPHTTPConnection: ChannelInboundHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundOut = HTTPClientRequestPart

    private let host: String
    private let port: Int
    private let path: String
    private var context: ChannelHandlerContext?
    private var pending: ((Bool) -> Void)?
    private var status: HTTPResponseStatus?
    private var timeout: Scheduled<Void>?
    private var closeAfter = false
    private(set) var isUsable = true
    /// The first reason this connection's export failed.
    private(set) var failure: String?

    init(host: String, port: Int, path: String) {
        self.host = host
        self.port = port
        self.path = path
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func post(_ body: [ByteBuffer], done: @escaping (Bool) -> Void) {
        guard let context, isUsable else {
            done(false)
            return
        }
        pending = done
        status = nil
        var head = HTTPRequestHead(version: .http1_1, method: .POST, uri: path)
        head.headers.add(name: "host", value: host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)")
        head.headers.add(name: "content-type", value: "application/x-protobuf")
        head.headers.add(name: "content-length", value: String(body.reduce(0) { $0 + $1.readableBytes }))
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        for part in body { context.write(wrapOutboundOut(.body(.byteBuffer(part))), promise: nil) }
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        timeout = context.eventLoop.scheduleTask(in: OTLPHTTPExporter.timeout) { [self] in
            note("no answer within \(OTLPHTTPExporter.timeout.nanoseconds / 1_000_000_000) s")
            finish(ok: false)
            context.close(promise: nil)
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            status = head.status
            if !head.isKeepAlive { closeAfter = true }
        case .body:
            break
        case .end:
            let ok = status.map { (200..<300).contains($0.code) } ?? false
            if !ok { note("answered \(status.map { "\($0.code) \($0.reasonPhrase)" } ?? "without a status")") }
            // Unusable before `done` runs: the owner's next export must not be posted on a
            // connection the receiver closes (an HTTP/1.0 or `Connection: close` answer).
            if closeAfter { isUsable = false }
            finish(ok: ok)
            if closeAfter { context.close(promise: nil) }
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        isUsable = false
        note("the connection closed before an answer")
        finish(ok: false)
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        isUsable = false
        note("\(error)")
        context.close(promise: nil)
    }

    /// Keeps the first reason (a TLS error, not the close that follows it).
    private func note(_ reason: String) {
        if failure == nil, pending != nil { failure = reason }
    }

    private func finish(ok: Bool) {
        timeout?.cancel()
        timeout = nil
        guard let done = pending else { return }
        pending = nil
        if !ok {
            // Not used again: closed, not left open until the peer's idle timeout.
            isUsable = false
            context?.close(promise: nil)
        }
        done(ok)
    }
}

@available(*, unavailable)
extension OTLPHTTPConnection: Sendable {}
