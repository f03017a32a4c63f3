import Logging
import NIOCore
import NIOHPACK
import NIOHTTP2

/// Relays one HTTP/2 stream between the client's connection and a stream on the
/// shared upstream connection. One relay sits on each of the two stream channels.
///
/// - Flow control end to end: a relay reads its stream only while the partner stream
///   is writable (has send window). swift-nio-http2 returns receive window only for
///   frames the stream has delivered, so a slow reader upstream stalls the client's
///   stream, not the proxy's memory.
/// - Headers, data and trailers pass as frames; HPACK is re-encoded per connection.
///   Connection-specific fields (RFC 9113 §8.2.2) never reach the relay: swift-nio-http2
///   validates every received header block and resets a stream that carries one, so
///   the relay does not look for them again (that search cost ~5% of the HTTP/2 path).
/// - Failures before the response starts answer with 502/504 and `weft-error`; after
///   that, the client's stream is reset with the upstream's error code.
final class HTTP2StreamRelay: ChannelDuplexHandler {
    typealias InboundIn = HTTP2Frame.FramePayload
    typealias OutboundIn = HTTP2Frame.FramePayload
    typealias OutboundOut = HTTP2Frame.FramePayload

    private enum Side { case client, upstream }

    private let side: Side
    private let exchange: HTTP2Exchange
    fileprivate var context: ChannelHandlerContext?
    private var partner: HTTP2StreamRelay?
    private var pendingRead = false
    /// Frames the client sent before the upstream stream existed.
    private var early: [HTTP2Frame.FramePayload] = []
    private var sawEndStream = false

    /// The relay for a stream the client opened.
    init(clientStreamOf exchange: HTTP2Exchange) {
        self.side = .client
        self.exchange = exchange
    }

    private init(upstreamStreamOf exchange: HTTP2Exchange) {
        self.side = .upstream
        self.exchange = exchange
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        if side == .client { exchange.client = self }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
        self.partner = nil
    }

    // MARK: Reading

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let payload = unwrapInboundIn(data)
        switch payload {
        case .headers(let headers):
            if side == .client && !exchange.hasStarted {
                exchange.start(requestHeaders: headers.headers)
                openUpstream(context)
            } else if side == .upstream {
                exchange.responseHeaders(headers.headers)
            }
            if headers.endStream { sawEndStream = true }
        case .data(let data):
            if data.endStream { sawEndStream = true }
        case .rstStream where side == .client:
            // The client cancels: recorded before the upstream stream, reset in turn,
            // can report its own close as an upstream failure.
            exchange.clientClosed()
        default:
            break
        }
        if let partner {
            partner.send(payload)
        } else if side == .client {
            early.append(payload)
        }
        if sawEndStream {
            if side == .client { exchange.requestEnded() } else { exchange.responseEnded() }
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        partner?.context?.flush()
    }

    func read(context: ChannelHandlerContext) {
        if let partner, partner.context?.channel.isWritable ?? false {
            context.read()
        } else if partner == nil && side == .client && !exchange.hasStarted {
            // Read the request's headers; hold the rest until the upstream stream exists.
            context.read()
        } else {
            pendingRead = true
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable, let partner, partner.pendingRead {
            partner.pendingRead = false
            partner.context?.read()
        }
        context.fireChannelWritabilityChanged()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        exchange.logger.debug("http2 stream error", metadata: ["side": "\(side)", "error": "\(error)"])
        if error is NIOHTTP2Errors.BadStreamStateTransition {
            // swift-nio-http2 may try to return receive window (WINDOW_UPDATE) for frames
            // delivered after the peer's END_STREAM, when reads were held for flow control;
            // the state machine refuses that frame and reports it here. The stream itself
            // is fine, and closing it would cancel a healthy exchange.
            return
        }
        let code = (error as? NIOHTTP2Errors.StreamClosed)?.errorCode ?? .cancel
        if side == .upstream {
            exchange.upstreamFailed(code: code, error: error)
        } else if let partner {
            // The client reset its stream: recorded as its cancellation before the
            // upstream stream, cancelled too, can report its own close.
            exchange.clientClosed()
            self.partner = nil
            partner.partner = nil
            partner.send(.rstStream(code))
            partner.context?.flush()
        }
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        exchange.logger.debug(
            "http2 stream closed",
            metadata: ["side": "\(side)", "sawEndStream": "\(sawEndStream)", "linked": "\(partner != nil)"])
        if side == .upstream {
            exchange.upstreamClosed()
        } else {
            exchange.clientClosed()
            if let partner {
                self.partner = nil
                partner.partner = nil
                if !partner.sawEndStream { partner.context?.close(promise: nil) }
            }
        }
        context.fireChannelInactive()
    }

    // MARK: Upstream

    private func openUpstream(_ context: ChannelHandlerContext) {
        let exchange = self.exchange
        exchange.pool.openStream(to: exchange.destination) { stream in
            stream.eventLoop.makeCompletedFuture {
                try stream.pipeline.syncOperations.addHandler(HTTP2StreamRelay(upstreamStreamOf: exchange))
            }
        }.whenComplete { [self] result in
            switch result {
            case .success(let stream):
                guard let upstreamRelay = try? stream.pipeline.syncOperations.handler(type: HTTP2StreamRelay.self),
                    self.context != nil
                else {
                    stream.close(promise: nil)
                    return
                }
                link(upstreamRelay)
            case .failure(let error):
                exchange.connectFailed(error)
            }
        }
    }

    private func link(_ upstreamRelay: HTTP2StreamRelay) {
        partner = upstreamRelay
        upstreamRelay.partner = self
        exchange.upstream = upstreamRelay
        for payload in early { upstreamRelay.send(payload) }
        early.removeAll()
        upstreamRelay.context?.flush()
        if pendingRead {
            pendingRead = false
            context?.read()
        }
        upstreamRelay.context?.read()
    }

    // MARK: Writing

    fileprivate func send(_ payload: HTTP2Frame.FramePayload) {
        context?.write(wrapOutboundOut(payload), promise: nil)
    }

    fileprivate func flush() {
        context?.flush()
    }

    fileprivate func close() {
        context?.close(promise: nil)
    }

    fileprivate func unlink() {
        partner?.partner = nil
        partner = nil
    }
}

/// One HTTP/2 request and its response, shared by the two relays of a stream pair:
/// timing, status, the response timeout, and the error answers the proxy makes.
final class HTTP2Exchange {
    let destination: SocketAddress
    let pool: HTTP2UpstreamPool
    private let metrics: DirectionMetrics
    private let config: ProxyConfig
    fileprivate let logger: Logger
    fileprivate weak var client: HTTP2StreamRelay?
    fileprivate weak var upstream: HTTP2StreamRelay?

    private(set) var hasStarted = false
    private var isGRPC = false
    private var status = 0
    private var hasResponseStarted = false
    private var isFinished = false
    private var start = NIODeadline.now()
    private var timer: Scheduled<Void>?

    init(
        destination: SocketAddress, pool: HTTP2UpstreamPool, metrics: DirectionMetrics, config: ProxyConfig,
        logger: Logger
    ) {
        self.logger = logger
        self.destination = destination
        self.pool = pool
        self.metrics = metrics
        self.config = config
    }

    private var requestProtocol: RequestProtocol { isGRPC ? .grpc : .http2 }

    fileprivate func start(requestHeaders: HPACKHeaders) {
        hasStarted = true
        start = .now()
        isGRPC = requestHeaders.first(name: "content-type")?.hasPrefix("application/grpc") ?? false
    }

    fileprivate func requestEnded() {
        guard timer == nil, !hasResponseStarted, !isFinished, let loop = client?.context?.eventLoop else { return }
        timer = loop.scheduleTask(in: config.responseTimeout) { [self] in
            timer = nil
            guard !hasResponseStarted, !isFinished else { return }
            upstream?.unlink()
            upstream?.close()
            respond(
                status: 504, kind: .upstreamTimeout,
                detail: "upstream \(describe(destination)) sent no response within \(seconds(config.responseTimeout))")
        }
    }

    fileprivate func responseHeaders(_ headers: HPACKHeaders) {
        guard !hasResponseStarted, let code = headers.first(name: ":status").flatMap({ Int($0) }), code >= 200 else {
            return
        }
        hasResponseStarted = true
        status = code
        timer?.cancel()
        timer = nil
    }

    fileprivate func responseEnded() {
        finish(status: status)
    }

    fileprivate func connectFailed(_ error: Error) {
        respond(
            status: 502, kind: .connectFailed, detail: "connect to \(describe(destination)) failed: \(describe(error))")
    }

    fileprivate func upstreamFailed(code: HTTP2ErrorCode, error: Error) {
        guard !isFinished else { return }
        if hasResponseStarted {
            // Mid-response: pass the reset on.
            metrics.error(.upstreamReset)
            finish(status: status)
            client?.unlink()
            client?.send(.rstStream(code))
            client?.flush()
        } else {
            client?.unlink()
            respond(
                status: 502, kind: .upstreamReset,
                detail: "upstream \(describe(destination)) reset the stream (\(code)) before responding: \(error)")
        }
    }

    fileprivate func upstreamClosed() {
        guard !isFinished, hasStarted else { return }
        upstreamFailed(code: .cancel, error: ChannelError.eof)
    }

    /// The client's stream closed. If that was before the exchange finished (the client
    /// reset it, or its connection went), the request is counted as 499, nginx's "client
    /// closed request", so cancelled calls show in `weft_requests_total`.
    fileprivate func clientClosed() {
        if hasStarted { finish(status: HTTPStatus.clientClosedRequest) }
        timer?.cancel()
        timer = nil
        isFinished = true
    }

    /// Answers the client's stream with an error the proxy made.
    private func respond(status: Int, kind: ProxyErrorKind, detail: String) {
        guard !isFinished else { return }
        metrics.error(kind)
        logger.debug(
            "http2 request failed",
            metadata: ["status": "\(status)", "error": "\(kind.rawValue)", "detail": "\(detail)"])
        finish(status: status)
        guard let client, let allocator = client.context?.channel.allocator else { return }
        let headers: HPACKHeaders = [
            ":status": "\(status)", "content-type": "text/plain; charset=utf-8", "weft-error": kind.headerValue,
        ]
        client.send(.headers(.init(headers: headers)))
        client.send(
            .data(.init(data: .byteBuffer(allocator.buffer(string: "weft-proxy: \(detail)\n")), endStream: true)))
        client.flush()
    }

    private func finish(status: Int) {
        guard !isFinished else { return }
        isFinished = true
        timer?.cancel()
        timer = nil
        metrics.requestFinished(
            requestProtocol, status: status, duration: .nanoseconds(Int64((NIODeadline.now() - start).nanoseconds)))
    }
}

@available(*, unavailable)
extension HTTP2StreamRelay: Sendable {}

@available(*, unavailable)
extension HTTP2Exchange: Sendable {}
