import NIOCore
import NIOHTTP1
import WeftProtocol
import WeftTelemetry

/// Serves the admin endpoints on :15000.
///
/// - `GET /live`: 200 while the process runs (liveness probe).
/// - `GET /ready`: 200 once the listeners are bound and, with a control plane, an identity
///   and a config are held; 503 before that and while draining (readiness probe).
/// - `GET /metrics`: Prometheus text exposition; OpenMetrics, with exemplars on the
///   latency buckets (per direction and per route), when the scraper asks for it (`Accept: application/openmetrics-text`).
/// - `GET /config`: the identity (never the key) and config the proxy runs on, with versions.
/// - `POST /shutdown`: starts a graceful drain (for Jobs whose main container has exited).
/// - `GET /debug/endpoints`: every balancer's endpoints, latency estimates, requests in
///   flight and health (JSON, `EndpointsReport`).
///
/// The admin port listens on every address (the kubelet probes and Prometheus scrapes the
/// pod IP), and is not captured, so any pod can reach it. `/config` and `/shutdown` answer
/// only connections from loopback, that is from a container of the same pod (403
/// otherwise, as Linkerd's shutdown endpoint does): another pod must not stop this one or
/// read its identity and policies.
///
/// Off the data path, so it uses NIOHTTP1's typed pipeline for clarity.
final class AdminHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let state: ProxyState
    private let registry: PrometheusCollectorRegistry
    /// Collects `/debug/endpoints` (nil in tests without a data path).
    private let endpointsReport: ((EventLoop) -> EventLoopFuture<[UInt8]>)?
    /// Collects the metrics the event loops keep themselves (route latency histograms),
    /// written after the registry's; nil in tests without a data path.
    private let loopMetrics: ((EventLoop, Bool) -> EventLoopFuture<String>)?
    private var head: HTTPRequestHead?

    init(
        state: ProxyState, registry: PrometheusCollectorRegistry,
        endpointsReport: ((EventLoop) -> EventLoopFuture<[UInt8]>)? = nil,
        loopMetrics: ((EventLoop, Bool) -> EventLoopFuture<String>)? = nil
    ) {
        self.state = state
        self.registry = registry
        self.endpointsReport = endpointsReport
        self.loopMetrics = loopMetrics
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head): self.head = head
        case .body: break
        case .end:
            guard let head else { return }
            self.head = nil
            respond(context: context, to: head)
        }
    }

    private func respond(context: ChannelHandlerContext, to head: HTTPRequestHead) {
        let path = head.uri.split(separator: "?", maxSplits: 1).first.map(String.init) ?? head.uri
        if path == "/config" || path == "/shutdown" || path == "/debug/endpoints",
            !(context.channel.remoteAddress?.isLoopback ?? false)
        {
            let from = context.channel.remoteAddress?.ipAddress ?? "an unknown address"
            send(
                context, head, .forbidden,
                "\(path) answers only on loopback (from a container of this pod), not from \(from)\n")
            return
        }
        switch (head.method, path) {
        case (.GET, "/live"):
            send(context, head, .ok, "live\n")
        case (.GET, "/ready"):
            if state.isReady {
                send(context, head, .ok, "ready\n")
            } else {
                send(context, head, .serviceUnavailable, state.notReadyReason + "\n")
            }
        case (.GET, "/config"):
            let body = ConfigView(store: state.meshStore).json()
            send(context, head, .ok, context.channel.allocator.buffer(bytes: body), contentType: "application/json")
        case (.GET, "/metrics"):
            // OpenMetrics when the scraper asks for it: the format whose latency buckets
            // carry exemplars (the trace of a request they counted).
            let openMetrics = OpenMetrics.isAccepted(head.headers.first(name: "accept"))
            let contentType = openMetrics ? OpenMetrics.contentType : Telemetry.prometheusContentType
            var buffer = context.channel.allocator.buffer(capacity: 16 * 1024)
            if openMetrics {
                buffer.writeString(
                    OpenMetrics.fromPrometheusText(String(decoding: registry.emitToBuffer(), as: UTF8.self)))
            } else {
                buffer.writeBytes(registry.emitToBuffer())
            }
            guard let loopMetrics else {
                if openMetrics { buffer.writeString(OpenMetrics.eof) }
                send(context, head, .ok, buffer, contentType: contentType)
                return
            }
            loopMetrics(context.eventLoop, openMetrics).whenComplete { [self] result in
                switch result {
                case .success(let text):
                    buffer.writeString(text)
                    if openMetrics { buffer.writeString(OpenMetrics.eof) }
                    send(context, head, .ok, buffer, contentType: contentType)
                case .failure(let error):
                    send(context, head, .internalServerError, "cannot collect the event loops' metrics: \(error)\n")
                }
            }
        case (.GET, "/debug/endpoints"):
            guard let endpointsReport else {
                send(context, head, .notFound, "no data path in this process\n")
                return
            }
            endpointsReport(context.eventLoop).whenComplete { [self] result in
                switch result {
                case .success(let bytes):
                    send(
                        context, head, .ok, context.channel.allocator.buffer(bytes: bytes),
                        contentType: "application/json")
                case .failure(let error):
                    send(context, head, .internalServerError, "cannot collect the balancers: \(error)\n")
                }
            }
        case (.POST, "/shutdown"):
            send(context, head, .ok, "draining\n")
            state.requestShutdown()
        case (_, "/live"), (_, "/ready"), (_, "/metrics"), (_, "/config"), (_, "/shutdown"), (_, "/debug/endpoints"):
            send(context, head, .methodNotAllowed, "method \(head.method) not allowed on \(path)\n")
        default:
            send(
                context, head, .notFound,
                "no admin endpoint \(path); try /live, /ready, /metrics, /config, /debug/endpoints, POST /shutdown\n")
        }
    }

    private func send(
        _ context: ChannelHandlerContext, _ request: HTTPRequestHead, _ status: HTTPResponseStatus, _ text: String
    ) {
        send(
            context, request, status, context.channel.allocator.buffer(string: text),
            contentType: "text/plain; charset=utf-8")
    }

    private func send(
        _ context: ChannelHandlerContext, _ request: HTTPRequestHead, _ status: HTTPResponseStatus, _ body: ByteBuffer,
        contentType: String
    ) {
        var headers = HTTPHeaders()
        headers.add(name: "content-type", value: contentType)
        headers.add(name: "content-length", value: "\(body.readableBytes)")
        let keepAlive = request.isKeepAlive
        if !keepAlive { headers.add(name: "connection", value: "close") }
        let head = HTTPResponseHead(version: request.version, status: status, headers: headers)
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        if request.method != .HEAD { context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil) }
        let done = context.writeAndFlush(wrapOutboundOut(.end(nil)))
        if !keepAlive { done.whenComplete { _ in context.close(promise: nil) } }
    }
}

@available(*, unavailable)
extension AdminHandler: Sendable {}
