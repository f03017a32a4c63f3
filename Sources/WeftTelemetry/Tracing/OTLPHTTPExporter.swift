import NIOCore
import NIOHTTP1
import NIOPosix

/// Sends OTLP/HTTP exports (`POST`, protobuf) to one receiver from one event loop, on a
/// keep-alive connection made when first needed and again after it fails: the sidecar's
/// span export (`SpanQueue`) and the control plane's forwarding (`--otlp-forward`) both
/// post through it. One export at a time; the caller queues.
public final class OTLPHTTPExporter {
    /// How long an export may take before its connection is closed and it counts as failed.
    public static let timeout = TimeAmount.seconds(5)

    private let eventLoop: EventLoop
    private let host: String
    private let port: Int
    private let path: String
    private var connection: OTLPHTTPConnection?

    public init(eventLoop: EventLoop, host: String, port: Int, path: String = "/v1/traces") {
        self.eventLoop = eventLoop
        self.host = host
        self.port = port
        self.path = path
    }

    /// Posts the export whose body is `parts`, in order; `done(true)` on a 2xx answer.
    /// Call on the exporter's event loop.
    public func post(_ parts: [ByteBuffer], done: @escaping (Bool) -> Void) {
        if let connection, connection.isUsable {
            connection.post(parts, done: done)
            return
        }
        connection = nil
        let made = OTLPHTTPConnection(host: host, port: port, path: path)
        ClientBootstrap(group: eventLoop)
            .connectTimeout(.seconds(1))
            .channelOption(.tcpOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    try channel.pipeline.syncOperations.addHandler(made)
                }
            }
            .connect(host: host, port: port)
            .whenComplete { [self] result in
                switch result {
                case .success:
                    connection = made
                    made.post(parts, done: done)
                case .failure:
                    done(false)
                }
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
            finish(ok: ok)
            if closeAfter {
                isUsable = false
                context.close(promise: nil)
            }
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        isUsable = false
        finish(ok: false)
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        isUsable = false
        context.close(promise: nil)
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
