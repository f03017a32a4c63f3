import Logging
import NIOCore
import NIOHPACK
import NIOHTTP2
import WeftTelemetry

/// Receive window the proxy owes a peer: bytes it has passed on, handed back in one
/// WINDOW_UPDATE once half the default window (64 KiB) has gathered, as swift-nio-http2's
/// own stream channels do.
struct WindowCredit {
    static let threshold = 32_768

    private var owed = 0

    /// Adds `bytes`; returns the increment to send now, if any.
    mutating func add(_ bytes: Int) -> Int? {
        owed += bytes
        guard owed >= Self.threshold else { return nil }
        defer { owed = 0 }
        return owed
    }
}

/// One side of the HTTP/2 relay: the handler behind a frame-mode `NIOHTTP2Handler`, on a
/// client's connection (`HTTP2ClientRelay`) or on a shared upstream connection
/// (`HTTP2UpstreamRelay`). Streams are entries in a table, not channels: a request costs
/// two table entries and the frames themselves, where a stream channel per side cost two
/// channel pipelines, futures and generic metadata look-ups (the relay needs 29% fewer
/// instructions per request than the stream channels did; BENCHMARKS.md).
///
/// - Flow control end to end: the proxy returns a stream's receive window to a peer only
///   for bytes the other connection has written to its socket (the write's promise), so
///   a slow reader on one side stalls its sender on the other, not the proxy's memory.
///   What the proxy holds per stream is bounded by the window it advertises (64 KiB).
///   The connection window is kept open from swift-nio-http2's window events.
/// - Writes made while handling a read batch are flushed once, at the batch's end
///   (`channelReadComplete`); writes from timers and callbacks are flushed at once.
class HTTP2ConnectionRelay: ChannelInboundHandler {
    typealias InboundIn = HTTP2Frame
    typealias OutboundOut = HTTP2Frame

    let logger: Logger
    fileprivate(set) var context: ChannelHandlerContext?
    /// Streams by this connection's stream id.
    fileprivate var streams: [HTTP2StreamID: HTTP2RelayedStream] = [:]
    /// Relays written to during this relay's current read batch.
    private var peersToFlush: [HTTP2ConnectionRelay] = []
    private var isMarkedForFlush = false

    init(logger: Logger) {
        self.logger = logger
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        flushPeers()
        self.context = nil
    }

    // Declared here so the subclasses' versions are what the pipeline calls (a protocol
    // witness binds to the class that declares the conformance).
    func channelRead(context: ChannelHandlerContext, data: NIOAny) {}

    /// Keeps the connection's receive window open: swift-nio-http2 reports it after each
    /// DATA frame, including frames it drops for streams already reset, which the relay
    /// never sees; below half, it is topped up to 64 KiB. What the proxy holds stays
    /// bounded by the stream windows, which are returned end to end.
    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let window = event as? NIOHTTP2WindowUpdatedEvent, window.streamID == .rootStream,
            let inbound = window.inboundWindowSize, inbound < WindowCredit.threshold
        {
            let increment = Self.connectionWindow - inbound
            context.writeAndFlush(
                wrapOutboundOut(
                    HTTP2Frame(streamID: .rootStream, payload: .windowUpdate(windowSizeIncrement: increment))),
                promise: nil)
        }
        context.fireUserInboundEventTriggered(event)
    }

    /// The connection receive window the proxy keeps: the HTTP/2 default.
    static let connectionWindow = 65_535

    func channelActive(context: ChannelHandlerContext) {
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        flushPeers()
        context.fireChannelInactive()
    }

    final func channelReadComplete(context: ChannelHandlerContext) {
        flushPeers()
        context.fireChannelReadComplete()
    }

    /// Flushes the relays written to in this read batch. Also run when this connection
    /// closes or its handler goes: a peer left marked, unflushed, would never be flushed
    /// by anyone else (every later write to it hung).
    private final func flushPeers() {
        guard !peersToFlush.isEmpty else { return }
        let peers = peersToFlush
        peersToFlush.removeAll(keepingCapacity: true)
        for peer in peers {
            peer.isMarkedForFlush = false
            peer.context?.flush()
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        // Stream errors: swift-nio-http2 has reset the stream and reports its close as a
        // StreamClosedEvent. Connection errors: it has sent GOAWAY; a client closes, and
        // the upstream relay closes its connection itself.
        logger.debug("http2 error", metadata: ["side": "\(type(of: self))", "error": "\(error)"])
    }

    /// Writes a frame. While `reader` handles a read batch, the flush waits for the end
    /// of that batch; otherwise it happens now.
    final func write(
        _ payload: HTTP2Frame.FramePayload, on streamID: HTTP2StreamID, promise: EventLoopPromise<Void>? = nil,
        batchedBy reader: HTTP2ConnectionRelay?
    ) {
        guard let context else {
            promise?.fail(ChannelError.ioOnClosedChannel)
            return
        }
        context.write(wrapOutboundOut(HTTP2Frame(streamID: streamID, payload: payload)), promise: promise)
        if let reader {
            if !isMarkedForFlush {
                isMarkedForFlush = true
                reader.peersToFlush.append(self)
            }
        } else {
            context.flush()
        }
    }

    /// Hands receive window back to this connection's peer on one stream.
    final func returnCredit(_ increment: Int, on streamID: HTTP2StreamID) {
        guard let context else { return }
        context.writeAndFlush(
            wrapOutboundOut(HTTP2Frame(streamID: streamID, payload: .windowUpdate(windowSizeIncrement: increment))),
            promise: nil)
    }

    /// Flow-controlled length of a DATA frame: its data, and its padding with the pad
    /// length octet.
    fileprivate static func flowControlledLength(_ data: HTTP2Frame.FramePayload.Data) -> Int {
        data.data.readableBytes + (data.paddingBytes.map { $0 + 1 } ?? 0)
    }
}

/// The response timeouts of one client connection. The timeout is the same for every
/// exchange, so deadlines come in the order they are armed: a list, oldest first, and
/// one timer for the oldest. A response that arrives unlinks its exchange and leaves the
/// timer alone; the timer, when it fires, moves on to the new oldest. A connection with
/// thousands of quick requests schedules about one timer per timeout period, where a
/// timer per request cost ~3.6% of the HTTP/2 path (heap inserts and removals).
final class ResponseDeadlines {
    private let timeout: TimeAmount
    private var oldest: HTTP2RelayedStream?
    private var newest: HTTP2RelayedStream?
    private var timer: Scheduled<Void>?
    private weak var eventLoop: EventLoop?

    init(timeout: TimeAmount) {
        self.timeout = timeout
    }

    func start(on eventLoop: EventLoop) {
        self.eventLoop = eventLoop
    }

    fileprivate func arm(_ exchange: HTTP2RelayedStream) {
        let deadline = NIODeadline.now() + timeout
        exchange.responseDeadline = deadline
        exchange.olderWaiting = newest
        newest?.newerWaiting = exchange
        newest = exchange
        if oldest == nil { oldest = exchange }
        if timer == nil { schedule(at: deadline) }
    }

    fileprivate func disarm(_ exchange: HTTP2RelayedStream) {
        exchange.responseDeadline = nil
        let older = exchange.olderWaiting
        let newer = exchange.newerWaiting
        if let older { older.newerWaiting = newer } else { oldest = newer }
        if let newer { newer.olderWaiting = older } else { newest = older }
        exchange.olderWaiting = nil
        exchange.newerWaiting = nil
    }

    /// Drops every deadline and the timer (the connection closed).
    func stop() {
        timer?.cancel()
        timer = nil
        while let exchange = oldest { disarm(exchange) }
    }

    private func schedule(at deadline: NIODeadline) {
        guard let eventLoop else { return }
        timer = eventLoop.scheduleTask(deadline: deadline) { [self] in
            timer = nil
            let now = NIODeadline.now()
            while let exchange = oldest, let deadline = exchange.responseDeadline, deadline <= now {
                disarm(exchange)
                exchange.responseTimedOut()
            }
            if let next = oldest?.responseDeadline { schedule(at: next) }
        }
    }
}

@available(*, unavailable)
extension ResponseDeadlines: Sendable {}

/// The relay on a client's HTTP/2 connection (server mode). A HEADERS frame on a new
/// stream starts an exchange and asks the pool for a stream on the shared upstream
/// connection; the client's later frames follow it there.
final class HTTP2ClientRelay: HTTP2ConnectionRelay {
    private let destination: SocketAddress
    private let pool: HTTP2UpstreamPool
    private let metrics: DirectionMetrics
    private let config: ProxyConfig
    fileprivate let deadlines: ResponseDeadlines
    /// Outbound with a mesh: what the original destination is in it; each stream is
    /// planned (route → backend → endpoint) by the loop's `LoopContext`.
    private var outbound: OutboundBinding?
    fileprivate let mesh: LoopContext?
    /// Inbound: the caller and its authorization, checked per stream before it goes to the app.
    private var inboundGate: InboundGate?
    /// Outbound to a meshed Pod's own address (not a Service): the identity its streams
    /// require when the mesh passes them through.
    private let destinationIdentity: String?
    /// When detection read the connection's first bytes: the first stream starts there.
    private var firstByteAt: NIODeadline?

    /// The loop whose span queue, sampler and latency counts this connection's streams use:
    /// outbound the mesh's, inbound the gate's.
    fileprivate var traceLoop: LoopContext? { mesh ?? inboundGate?.mesh }
    fileprivate var isInbound: Bool { inboundGate != nil }
    /// Inbound: the caller (address and verified identity); outbound: the connection's own
    /// destination. Made once per connection.
    fileprivate lazy var connectionSpanPeer: SpanPeer =
        inboundGate.map { SpanPeer(caller: $0.remote, identity: $0.identity) }
        ?? SpanPeer(endpoint: destination, identity: nil)

    init(
        destination: SocketAddress, pool: HTTP2UpstreamPool, metrics: DirectionMetrics, config: ProxyConfig,
        logger: Logger, outbound: OutboundBinding? = nil, mesh: LoopContext? = nil, inboundGate: InboundGate? = nil,
        firstByteAt: NIODeadline? = nil
    ) {
        self.firstByteAt = firstByteAt
        self.inboundGate = inboundGate
        self.destination = destination
        self.outbound = mesh == nil ? nil : outbound
        self.destinationIdentity = outbound == nil ? nil : mesh?.snapshot.meshIdentity(ofAddress: destination)
        self.mesh = mesh
        self.pool = pool
        self.metrics = metrics
        self.config = config
        self.deadlines = ResponseDeadlines(timeout: config.responseTimeout)
        super.init(logger: logger)
    }

    override func handlerAdded(context: ChannelHandlerContext) {
        super.handlerAdded(context: context)
        deadlines.start(on: context.eventLoop)
    }

    override func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        switch frame.payload {
        case .headers(let headers):
            if let stream = streams[frame.streamID] {
                stream.clientSent(.headers(headers), flowControlled: 0)  // trailers
            } else {
                let stream = HTTP2RelayedStream(
                    clientID: frame.streamID, client: self, destination: destination, pool: pool, metrics: metrics,
                    config: config)
                streams[frame.streamID] = stream
                let head = stream.start(headers, at: firstByteAt)
                firstByteAt = nil
                if inboundGate != nil,
                    let denial = inboundGate!.check(
                        method: headers.headers.first(name: ":method"), path: headers.headers.first(name: ":path"))
                {
                    stream.respond(status: 403, kind: denial.kind, detail: denial.explanation, header: denial.header)
                } else if outbound != nil {
                    route(stream, head: head, batchedBy: self)
                } else {
                    pool.openStream(stream, to: destination, batchedBy: self)
                }
            }
        case .data(var data):
            let length = Self.flowControlledLength(data)
            if let stream = streams[frame.streamID] {
                data.paddingBytes = nil
                stream.clientSent(.data(data), flowControlled: length)
            }
        case .rstStream:
            streams[frame.streamID]?.clientStreamClosed()
        default:
            // SETTINGS, PING, WINDOW_UPDATE and GOAWAY are swift-nio-http2's business;
            // PRIORITY is advisory and not passed on.
            break
        }
    }

    /// Plans a stream with the mesh (route → backend → endpoint) and opens it upstream,
    /// answers it, or waits for its destination's discovery.
    /// - Parameter avoiding: an endpoint the stream already failed to connect to.
    fileprivate func route(
        _ stream: HTTP2RelayedStream, head: HPACKHeaders, avoiding: LoopEndpoint? = nil,
        batchedBy reader: HTTP2ConnectionRelay?, deadline: NIODeadline? = nil
    ) {
        guard let mesh, outbound != nil else { return }
        switch mesh.plan(&outbound!, request: HPACKRequestHeadView(headers: head), avoiding: avoiding) {
        case .passthrough:
            stream.destination = destination
            stream.meshIdentity = destinationIdentity
            pool.openStream(stream, to: destination, meshIdentity: destinationIdentity, batchedBy: reader)
        case .forward(let attempt):
            stream.attempt(attempt, head: head)
            if attempt.editsRequest { stream.sendEdited(head, attempt) }
            pool.openStream(
                stream, to: attempt.endpoint.target.address, meshIdentity: attempt.endpoint.target.meshIdentity,
                batchedBy: reader)
            stream.armResponseTimerIfRequestEnded()
        case .answer(let answer):
            stream.respond(status: answer.status, kind: answer.kind, detail: answer.detail)
        case .redirect(let plan, let matchedPrefix):
            let location = plan.location(
                for: HPACKRequestHeadView(headers: head), authority: head.first(name: ":authority") ?? "",
                requestPort: Int(outbound?.key.port ?? 80), matchedPrefix: matchedPrefix)
            stream.respondRedirect(status: plan.status, location: location)
        case .awaitDiscovery:
            // The wait has its own limit; the response timeout starts once the request is sent.
            stream.disarmResponseTimer()
            let deadline = deadline ?? (mesh.eventLoop.now + mesh.discoveryTimeout)
            mesh.waitForDiscovery(until: deadline) { [self] arrived in
                guard stream.wantsUpstream, let outbound else { return }
                if arrived {
                    route(stream, head: head, avoiding: avoiding, batchedBy: nil, deadline: deadline)
                } else {
                    let answer = mesh.discoveryTimedOut(outbound)
                    stream.respond(status: answer.status, kind: answer.kind, detail: answer.detail)
                }
            }
        }
    }

    override func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let closed = event as? StreamClosedEvent, let stream = streams.removeValue(forKey: closed.streamID) {
            stream.clientStreamClosed()
        } else if let event = event as? ChannelEvent, case .inputClosed = event {
            // Capture connections allow half-closure (for opaque TCP), but HTTP/2 has no
            // use for it: a client that stops sending can no longer return window or
            // acknowledge settings, so its connection is over, and its streams with it.
            context.close(promise: nil)
            return
        }
        super.userInboundEventTriggered(context: context, event: event)
    }

    override func channelInactive(context: ChannelHandlerContext) {
        let open = streams.values
        streams.removeAll()
        for stream in open { stream.clientStreamClosed() }
        deadlines.stop()
        super.channelInactive(context: context)
    }
}

/// The relay on a shared upstream HTTP/2 connection (client mode). It numbers the
/// streams it opens (odd, increasing, as RFC 9113 §5.1.1 requires of a client) and hands
/// each frame to the exchange whose stream it belongs to.
final class HTTP2UpstreamRelay: HTTP2ConnectionRelay {
    private var nextStreamID: Int32 = 1
    /// Set by GOAWAY, a connection error, or retirement: no new streams on this
    /// connection; a retired one closes once its streams are done.
    private(set) var isGoingAway = false
    /// Resets the proxy sent on this connection (client cancellations passed on).
    private var resetsSent = 0

    /// Streams one connection carries in its life before it is retired (nginx's own
    /// `keepalive_requests` default). swift-nio-http2 ignores a late HEADERS or DATA on a
    /// stream the proxy reset only while that stream is in its ring of recently reset
    /// streams (`maximumRecentlyResetStreams`, whose effective size is one less, 31 by
    /// default); past the ring, such a frame is a connection error (`NoSuchStream`,
    /// GOAWAY STREAM_CLOSED) that closes every client's streams on the connection. The
    /// ring is sized above this cap, so no stream reset here ever leaves it.
    static let maxStreamsPerConnection = 1000
    static let recentlyResetStreams = maxStreamsPerConnection + 2
    /// Streams open at once on one connection; past it the pool uses or opens another
    /// connection, so streams one client holds open (a reader that never returns window)
    /// cannot take every slot of the server's `SETTINGS_MAX_CONCURRENT_STREAMS` (nginx:
    /// 128) from the other clients.
    static let maxOpenStreams = 100
    /// Resets sent on one connection before it is retired: servers limit the resets a
    /// connection may send (swift-nio-http2 and so a Weft sidecar: 200 in 30 s; others
    /// alike, against rapid reset), and every client of this proxy shares the connection,
    /// so their cancellations are spread over connections before any peer's limit.
    static let maxResetsPerConnection = 100
    /// Exchanges waiting for the connection to become active. The connect future can
    /// complete before `channelActive` has reached the `NIOHTTP2Handler`, and HEADERS
    /// must not precede the connection preface it writes then.
    private var waitingForActive: [HTTP2RelayedStream] = []
    private var isActive = false

    /// Opens a stream for `exchange`; false if this connection can take no new streams.
    func open(_ exchange: HTTP2RelayedStream, batchedBy reader: HTTP2ConnectionRelay?) -> Bool {
        guard !isGoingAway, context != nil else { return false }
        // Streams opened or promised (waiting for channelActive) on this connection.
        guard Int(nextStreamID / 2) + waitingForActive.count < Self.maxStreamsPerConnection else {
            retire()
            return false
        }
        guard streams.count + waitingForActive.count < Self.maxOpenStreams else { return false }
        guard isActive else {
            waitingForActive.append(exchange)
            return true
        }
        let id = HTTP2StreamID(nextStreamID)
        nextStreamID += 2
        streams[id] = exchange
        exchange.upstreamOpened(self, id: id, batchedBy: reader)
        return true
    }

    override func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        switch frame.payload {
        case .headers(let headers):
            streams[frame.streamID]?.upstreamSent(.headers(headers), flowControlled: 0)
        case .data(var data):
            let length = Self.flowControlledLength(data)
            if let stream = streams[frame.streamID] {
                data.paddingBytes = nil
                stream.upstreamSent(.data(data), flowControlled: length)
            }
        case .rstStream(let code):
            if let stream = streams.removeValue(forKey: frame.streamID) {
                // REFUSED_STREAM: the server did not process it (RFC 9113 §8.7).
                if code == .refusedStream && stream.retryOnAnotherStream() { break }
                stream.upstreamFailed(
                    code: code, error: NIOHTTP2Errors.streamClosed(streamID: frame.streamID, errorCode: code))
            }
            closeIfDrained()
        case .goAway(let lastStreamID, let code, _):
            // Streams above lastStreamID were never processed (RFC 9113 §6.8): a request
            // that was only a head is retried on a new connection (nginx says GOAWAY
            // after every `keepalive_requests`, 1,000 by default); others fail (502).
            isGoingAway = true
            for (id, stream) in streams where id > lastStreamID {
                streams.removeValue(forKey: id)
                if stream.retryOnAnotherStream() { continue }
                stream.upstreamFailed(
                    code: .refusedStream, error: NIOHTTP2Errors.streamClosed(streamID: id, errorCode: code))
            }
        default:
            break
        }
    }

    override func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let closed = event as? StreamClosedEvent, let stream = streams.removeValue(forKey: closed.streamID) {
            stream.upstreamStreamClosed(reason: closed.reason)
            closeIfDrained()
        }
        super.userInboundEventTriggered(context: context, event: event)
    }

    /// Stops relaying a stream and resets it. (swift-nio-http2 drops a stream whose
    /// HEADERS still wait in its buffer for a free stream slot, and sends nothing.)
    fileprivate func reset(_ streamID: HTTP2StreamID, code: HTTP2ErrorCode) {
        streams.removeValue(forKey: streamID)
        write(.rstStream(code), on: streamID, batchedBy: nil)
        resetsSent += 1
        if resetsSent >= Self.maxResetsPerConnection { retire() }
        closeIfDrained()
    }

    /// Takes no new streams here; the streams in flight finish, then the connection
    /// closes (a drain, not a cut: other clients' streams are not touched).
    private func retire() {
        guard !isGoingAway else { return }
        isGoingAway = true
        logger.debug("http2 upstream connection retired", metadata: ["resets": "\(resetsSent)"])
        closeIfDrained()
    }

    /// Closes a connection that takes no new streams once it carries none, after the
    /// writes made in this turn of the event loop.
    private func closeIfDrained() {
        guard isGoingAway, streams.isEmpty, waitingForActive.isEmpty, context != nil else { return }
        context?.eventLoop.execute { [self] in
            guard self.streams.isEmpty, self.waitingForActive.isEmpty else { return }
            self.context?.close(promise: nil)
        }
    }

    override func channelActive(context: ChannelHandlerContext) {
        isActive = true
        context.fireChannelActive()
        let waiting = waitingForActive
        waitingForActive = []
        for exchange in waiting where exchange.wantsUpstream {
            if !open(exchange, batchedBy: nil) { exchange.connectFailed(ChannelError.ioOnClosedChannel) }
        }
    }

    /// swift-nio-http2 wrote a GOAWAY on this connection: it found a connection error and
    /// takes no more streams here. The gate closes the connection once the GOAWAY is out,
    /// so the pool opens a new one, rather than keep one whose new streams go unanswered.
    func connectionErrorSent() {
        isGoingAway = true
        logger.debug("http2 upstream connection error (GOAWAY sent); closing")
    }

    override func channelInactive(context: ChannelHandlerContext) {
        isGoingAway = true
        let open = Array(streams.values) + waitingForActive
        streams.removeAll()
        waitingForActive = []
        for stream in open where !stream.retryOnAnotherStream() {
            stream.upstreamFailed(code: .cancel, error: ChannelError.eof)
        }
        super.channelInactive(context: context)
    }
}

/// One request and its response: the client's stream and the upstream stream it is
/// relayed to, the flow-control credit of each, timing, status, the response timeout,
/// and the error answers the proxy makes.
final class HTTP2RelayedStream {
    /// Where the stream goes: the connection's destination, or the endpoint the mesh chose,
    /// and the identity that endpoint must present over mesh TLS (nil: plaintext).
    var destination: SocketAddress
    /// The identity its upstream connection requires (mesh TLS); nil for plaintext. Set for
    /// an endpoint and for a meshed Pod's own address, so a retry keeps it.
    fileprivate(set) var meshIdentity: String?
    /// The request's attempts: endpoint, connect failures, retry state, budget and route
    /// metrics (shared with the HTTP/1 driver).
    private var attempts = ExchangeAttempts()
    /// The request head, kept while the stream may still go to another endpoint (its
    /// connect failed before anything was sent).
    private var routedHead: HPACKHeaders?
    /// Limits of this request beyond the proxy's response timeout: its route's timeouts or
    /// the gRPC client's `grpc-timeout`. Such a stream has a timer of its own, instead of a
    /// place in the connection's `ResponseDeadlines`.
    private var ownDeadlines: ExchangeDeadlines?
    private var ownTimer: Scheduled<Void>?
    private var routeName: String?
    /// The request's frames after its head, as the first attempt sent them, kept for a
    /// retry while they fit `ExchangeRetry.replayLimit`.
    private var replay: [HTTP2Frame.FramePayload] = []
    private var firstAttemptHeadSent = false
    private var retryTimer: Scheduled<Void>?
    /// The RequestMirror copies the request owes (sent once the client ended it), the head
    /// they carry, and the request's trailers.
    private var mirror: MirrorCopy?
    private var mirrorHead: HPACKHeaders?
    private var mirrorTrailers: HPACKHeaders?
    private let pool: HTTP2UpstreamPool
    private let clientID: HTTP2StreamID
    /// The client's connection, where the exchange writes (and logs).
    private let clientRelay: HTTP2ClientRelay
    /// The client's stream is open and relayed.
    private var isClientOpen = true
    /// The upstream connection, once the stream is opened there.
    private var upstreamRelay: HTTP2UpstreamRelay?
    /// The upstream stream is open and relayed.
    private var isUpstreamLinked = false
    private var upstreamID = HTTP2StreamID.rootStream
    private let metrics: DirectionMetrics
    private let config: ProxyConfig

    /// Frames the client sent before the upstream stream existed, with their
    /// flow-controlled lengths.
    private var early: [(HTTP2Frame.FramePayload, Int)] = []
    private var clientEnded = false
    private var upstreamEnded = false
    private var clientCredit = WindowCredit()
    /// The request's head while it is all the upstream has been sent: a stream the
    /// server refused unprocessed can then be sent again, on another connection.
    private var retryableHead: HTTP2Frame.FramePayload.Headers?
    private var retries = 0
    /// Refusals a request survives. A refused request was not processed, so sending it
    /// again is safe; the bound stops a server that refuses everything.
    static let maxRetries = 4
    private var upstreamCredit = WindowCredit()

    /// The request's span (issue 12); nil when it is not traced.
    private var span: ExchangeSpan?
    /// Counted in the pod's `InflightRequests` (inbound, with tracing on).
    private var isInflight = false
    /// When the stream began waiting for a new upstream connection's dial, and the part of
    /// that dial (TCP connect, mesh TLS) it waited for: its span's connect and tls.
    var waitingForDialSince: UInt64 = 0
    private var dialWait: (connect: UInt64, tls: UInt64) = (0, 0)

    /// The dial this stream waited for completed: TLS came last, so a stream that joined
    /// late waited for its end only.
    func waitedForDial(connect: UInt64, tls: UInt64, until ready: UInt64) {
        let waited = ready &- min(ready, waitingForDialSince)
        let tlsPart = min(tls, waited)
        dialWait = (min(connect, waited - tlsPart), tlsPart)
    }

    private var isGRPC = false
    private var status = 0
    private var hasResponseStarted = false
    private(set) var isFinished = false
    private var start = NIODeadline.now()
    /// Set while the exchange waits for its response head, in `ResponseDeadlines`.
    fileprivate var responseDeadline: NIODeadline?
    fileprivate var newerWaiting: HTTP2RelayedStream?
    fileprivate var olderWaiting: HTTP2RelayedStream?

    init(
        clientID: HTTP2StreamID, client: HTTP2ClientRelay, destination: SocketAddress, pool: HTTP2UpstreamPool,
        metrics: DirectionMetrics, config: ProxyConfig
    ) {
        self.pool = pool
        self.clientID = clientID
        self.clientRelay = client
        self.destination = destination
        self.metrics = metrics
        self.config = config
    }

    /// Whether the exchange still needs its upstream stream.
    var wantsUpstream: Bool { !isFinished && isClientOpen }

    private var requestProtocol: RequestProtocol { isGRPC ? .grpc : .http2 }

    private var logger: Logger { clientRelay.logger }

    // MARK: Client → upstream

    /// Starts the exchange with the client's request head; returns the head as it goes
    /// upstream (a traced request carries its span's context instead of the caller's).
    func start(_ headers: HTTP2Frame.FramePayload.Headers, at time: NIODeadline? = nil) -> HPACKHeaders {
        start = time ?? .now()
        isGRPC = headers.headers.first(name: "content-type")?.hasPrefix("application/grpc") ?? false
        if isGRPC, let value = headers.headers.first(name: "grpc-timeout"),
            let timeout = ExchangeDeadlines.grpcTimeout(value)
        {
            var deadlines = ExchangeDeadlines(proxyTimeout: config.responseTimeout)
            deadlines.limitByGRPCTimeout(timeout, start: start)
            ownDeadlines = deadlines
        }
        var fields = headers.headers
        if let loop = clientRelay.traceLoop, loop.spans != nil {
            if clientRelay.isInbound {
                // Every inbound stream counts, traced or not: a link is inferred only when
                // one request is served.
                loop.inflight.arrive()
                isInflight = true
            }
            startSpan(loop, &fields)
        }
        let head = HTTP2Frame.FramePayload.Headers(headers: fields, endStream: headers.endStream)
        clientSent(.headers(head), flowControlled: 0)
        retryableHead = head
        return fields
    }

    // MARK: Tracing

    /// Starts the request's span: continues the caller's context, or starts a trace
    /// (sampled at MeshConfig `tracing.sampling`), and puts the span's context in `fields`.
    private func startSpan(_ loop: LoopContext, _ fields: inout HPACKHeaders) {
        let hasW3C = fields.contains(name: "traceparent")
        let hasB3 = fields.contains(name: "b3")
        let hasB3Multi = fields.contains(name: "x-b3-traceid")
        let hasContext = hasW3C || hasB3 || hasB3Multi
        // An app's call without context, while the pod serves exactly one traced request.
        let serving = clientRelay.isInbound || hasContext ? nil : loop.inflight.sole()
        guard hasContext || serving != nil || loop.snapshot.sampler.ratio > 0 else { return }
        let incoming = hasContext ? IncomingTrace.extract { fields.first(name: $0) } : nil
        guard
            let made = ExchangeSpan.start(
                incoming: incoming, b3: hasB3 ? .b3Single : hasB3Multi ? .b3Multi : nil, serving: serving,
                sampler: loop.snapshot.sampler, random: &loop.random, at: start.uptimeNanoseconds)
        else { return }
        span = made
        Self.carry(made, in: &fields)
        guard made.isSampled else { return }
        let target = fields.first(name: ":path") ?? "/"
        var facts = SpanFacts(
            method: fields.first(name: ":method") ?? "",
            path: String(target.prefix { $0 != "?" && $0 != "#" }.utf8.prefix(SpanFacts.maxText)) ?? "/",
            host: fields.first(name: ":authority").map { String($0.utf8.prefix(SpanFacts.maxText)) ?? "" })
        if clientRelay.isInbound { loop.inflight.enter(trace: made.traceID, span: made.spanID) }
        facts.peer = clientRelay.connectionSpanPeer
        span!.facts = facts
        span!.attemptBegan(at: LoopContext.now(), endpoint: facts.peer?.text)
    }

    private static let traceFields = [
        "traceparent", "b3", "x-b3-traceid", "x-b3-spanid", "x-b3-parentspanid", "x-b3-sampled", "x-b3-flags",
    ]

    /// Replaces the trace context in `fields` with what `span` carries downstream.
    private static func carry(_ span: ExchangeSpan, in fields: inout HPACKHeaders) {
        for name in traceFields where fields.contains(name: name) { fields.remove(name: name) }
        // A context not continued (a new trace) drops the state that came with it (W3C).
        if span.traceState == nil && fields.contains(name: "tracestate") { fields.remove(name: "tracestate") }
        for (name, value) in span.headerFields { fields.add(name: name, value: value) }
    }

    /// Ends the span with `status` and queues it for export.
    private func finishSpan(status: Int) {
        guard let current = span else { return }
        span = nil
        if clientRelay.isInbound && current.isSampled { clientRelay.traceLoop?.inflight.leave(span: current.spanID) }
        guard let facts = current.facts, let queue = clientRelay.traceLoop?.spans else { return }
        let isInbound = clientRelay.isInbound
        let error =
            facts.errorMessage(status: status) ?? facts.grpcStatus.flatMap { $0 == 0 ? nil : "grpc-status \($0)" }
        let grpc = isGRPC
        current.finish(
            at: LoopContext.now(), name: facts.method, nameSuffix: facts.route, kind: isInbound ? .server : .client,
            error: error, into: queue
        ) { out in
            facts.add(
                to: &out, status: status, isInbound: isInbound,
                own: isInbound ? queue.ownIdentity.inbound : queue.ownIdentity.outbound,
                protocolVersion: "2", grpc: grpc)
        }
    }

    func clientSent(_ payload: HTTP2Frame.FramePayload, flowControlled length: Int) {
        switch payload {
        case .headers(let headers) where headers.endStream: clientEnded = true
        case .data(let data) where data.endStream: clientEnded = true
        default: break
        }
        retryableHead = nil
        if mirror != nil { keepForMirror(payload) }
        if isUpstreamLinked, let upstreamRelay {
            forwardToUpstream(upstreamRelay, payload, flowControlled: length, batchedBy: clientRelay)
        } else if !isFinished && upstreamRelay == nil {
            early.append((payload, length))
        } else {
            creditClient(length)
        }
        if clientEnded { requestEnded() }
    }

    func upstreamOpened(_ relay: HTTP2UpstreamRelay, id: HTTP2StreamID, batchedBy reader: HTTP2ConnectionRelay?) {
        upstreamRelay = relay
        isUpstreamLinked = true
        upstreamID = id
        if span != nil {
            span!.requestSent(at: LoopContext.now(), connect: dialWait.connect, tls: dialWait.tls)
        }
        dialWait = (0, 0)
        let frames = early
        early = []
        for (payload, length) in frames {
            forwardToUpstream(relay, payload, flowControlled: length, batchedBy: reader)
        }
    }

    private func forwardToUpstream(
        _ relay: HTTP2UpstreamRelay, _ payload: HTTP2Frame.FramePayload, flowControlled length: Int,
        batchedBy reader: HTTP2ConnectionRelay?
    ) {
        if attempts.retry != nil, attempts.retries == 0 {
            // The first attempt's frames after its head are kept for a retry.
            if !firstAttemptHeadSent {
                firstAttemptHeadSent = true
            } else if case .headers(let headers) = payload, headers.headers.contains(name: ":method") {
                // The head sent again on another stream (REFUSED_STREAM, GOAWAY), not trailers.
            } else if attempts.keep(bodyBytes: length) {
                replay.append(payload)
            } else {
                replay.removeAll()
            }
        }
        guard length > 0, let loop = relay.context?.eventLoop else {
            relay.write(payload, on: upstreamID, batchedBy: reader)
            return
        }
        let written = loop.makePromise(of: Void.self)
        written.futureResult.whenComplete { [self] _ in creditClient(length) }
        relay.write(payload, on: upstreamID, promise: written, batchedBy: reader)
    }

    /// Returns window to the client for `length` bytes passed on (or dropped).
    private func creditClient(_ length: Int) {
        let increment = clientEnded || !isClientOpen ? nil : clientCredit.add(length)
        if let increment { clientRelay.returnCredit(increment, on: clientID) }
    }

    // MARK: Upstream → client

    func upstreamSent(_ payload: HTTP2Frame.FramePayload, flowControlled length: Int) {
        let isHeaders: Bool
        let wasHead = !hasResponseStarted
        switch payload {
        case .headers(let headers):
            isHeaders = true
            if span?.facts != nil, isGRPC, let grpcStatus = headers.headers.first(name: "grpc-status") {
                span!.facts!.grpcStatus = Int(grpcStatus)
            }
            if !hasResponseStarted, let code = headers.headers.first(name: ":status").flatMap({ Int($0) }), code >= 200
            {
                if attempts.retry != nil {
                    // A failed call: a status the route retries, or a trailers-only gRPC
                    // response whose grpc-status it retries.
                    let grpcStatus =
                        isGRPC && headers.endStream
                        ? headers.headers.first(name: "grpc-status").flatMap { Int($0) } : nil
                    if grpcStatus.map({ $0 != 0 }) ?? true,
                        retryAfterFailure(status: code, grpcStatus: grpcStatus, reason: .status)
                    {
                        return
                    }
                }
                hasResponseStarted = true
                status = code
                routedHead = nil
                settleEndpoint(code >= 500 ? .failed : .succeeded)
                cancelTimer()
            }
            if headers.endStream { upstreamEnded = true }
        case .data(let data):
            isHeaders = false
            if data.endStream { upstreamEnded = true }
        default:
            isHeaders = false
        }
        guard isClientOpen, !isFinished, let loop = clientRelay.context?.eventLoop else {
            creditUpstream(length)
            return
        }
        if isHeaders {
            // The upstream connection does not validate header blocks; the client's
            // connection validates them as they are sent (once per hop and direction,
            // not twice). A block it refuses was never sent.
            let written = loop.makePromise(of: Void.self)
            written.futureResult.whenFailure { [self] error in clientRefusedHeaders(error, wasHead: wasHead) }
            var payload = payload
            if wasHead, hasResponseStarted, !responseEdits.isEmpty, case .headers(let head) = payload {
                // ResponseHeaderModifier, on the final response head.
                var headers = head.headers
                for edit in responseEdits { edit.apply(to: &headers) }
                payload = .headers(.init(headers: headers, endStream: head.endStream))
            }
            clientRelay.write(payload, on: clientID, promise: written, batchedBy: upstreamRelay)
        } else if length > 0 {
            let written = loop.makePromise(of: Void.self)
            written.futureResult.whenComplete { [self] _ in creditUpstream(length) }
            clientRelay.write(payload, on: clientID, promise: written, batchedBy: upstreamRelay)
        } else {
            clientRelay.write(payload, on: clientID, batchedBy: upstreamRelay)
        }
        if upstreamEnded { finish(status: status) }
    }

    /// The client's connection refused a header block from the upstream (it is not valid
    /// HTTP/2, RFC 9113 §8.2). A refused response head is answered with a 502; refused
    /// trailers reset the client's stream. The upstream stream is reset either way.
    private func clientRefusedHeaders(_ error: Error, wasHead: Bool) {
        guard isClientOpen, !(error is ChannelError) else { return }
        let detail =
            "upstream \(describe(destination)) sent a header block that is not valid HTTP/2: \(describe(error))"
        resetUpstream(.protocolError)
        if wasHead && !isFinished {
            hasResponseStarted = false
            respond(status: 502, kind: .upstreamProtocol, detail: detail)
        } else {
            metrics.error(.upstreamProtocol)
            logger.debug("http2 response failed", metadata: ["error": "upstream_protocol", "detail": "\(detail)"])
            finish(status: status)
            clientRelay.write(.rstStream(.protocolError), on: clientID, batchedBy: nil)
        }
    }

    private func creditUpstream(_ length: Int) {
        let increment = upstreamEnded || !isUpstreamLinked ? nil : upstreamCredit.add(length)
        if let increment { upstreamRelay?.returnCredit(increment, on: upstreamID) }
    }

    /// Sends the request again on another upstream stream, if the server refused this one
    /// unprocessed and the request so far is only its head; false if it cannot.
    func retryOnAnotherStream() -> Bool {
        guard let head = retryableHead, retries < Self.maxRetries, !hasResponseStarted, !isFinished, isClientOpen else {
            return false
        }
        retries += 1
        isUpstreamLinked = false
        upstreamRelay = nil
        early = [(.headers(head), 0)]
        logger.debug("http2 stream refused unprocessed; retrying", metadata: ["upstream": "\(describe(destination))"])
        pool.openStream(self, to: destination, meshIdentity: meshIdentity, batchedBy: nil)
        return true
    }

    // MARK: Ends and failures

    private func requestEnded() {
        guard responseDeadline == nil, ownTimer == nil, !hasResponseStarted, !isFinished else { return }
        guard let ownDeadlines, let loop = clientRelay.context?.eventLoop else {
            clientRelay.deadlines.arm(self)
            return
        }
        let (deadline, limit) = ownDeadlines.responseDeadline(attemptSentAt: .now())
        ownTimer = loop.scheduleTask(deadline: deadline) { [self] in
            ownTimer = nil
            guard !hasResponseStarted, !isFinished else { return }
            if case .backendRequest = limit, attempts.retry != nil, retryAfterFailure(status: nil, reason: .timeout) {
                return
            }
            settleEndpoint(.failed)
            resetUpstream(.cancel)
            let answer = ExchangeDeadlines.answer(limit, destination: describe(destination), route: routeName)
            respond(status: answer.status, kind: answer.kind, detail: answer.detail)
        }
    }

    fileprivate func responseTimedOut() {
        guard !hasResponseStarted, !isFinished else { return }
        settleEndpoint(.failed)
        resetUpstream(.cancel)
        respond(
            status: 504, kind: .upstreamTimeout,
            detail: "upstream \(describe(destination)) sent no response within \(seconds(config.responseTimeout))")
    }

    /// Stops the response timeout while the stream waits for discovery.
    func disarmResponseTimer() { cancelTimer() }

    /// Starts the response timeout for a stream whose request already ended (it waited
    /// for discovery).
    /// A route's timeouts replace the proxy's response timeout armed when the request ended.
    func armResponseTimerIfRequestEnded() {
        guard clientEnded else { return }
        if ownDeadlines != nil { cancelTimer() }
        requestEnded()
    }

    private func cancelTimer() {
        if responseDeadline != nil { clientRelay.deadlines.disarm(self) }
        ownTimer?.cancel()
        ownTimer = nil
        retryTimer?.cancel()
        retryTimer = nil
    }

    /// The client's stream is gone: reset by the client, closed after the exchange, or
    /// its connection closed. Before the exchange finished it counts as 499, nginx's
    /// "client closed request", so cancelled calls show in `weft_requests_total`.
    func clientStreamClosed() {
        // Writing the response's END_STREAM closes the client's stream: that is the
        // exchange completing, not the client leaving.
        if !isFinished { finish(status: upstreamEnded ? status : HTTPStatus.clientClosedRequest) }
        settleEndpoint(.abandoned)
        routedHead = nil
        isClientOpen = false
        early = []
        // Both END_STREAMs passed: the upstream stream is closed (or closing) already.
        if !(clientEnded && upstreamEnded) { resetUpstream(.cancel) }
    }

    /// The upstream stream closed; with a reason (a reset, or an error swift-nio-http2
    /// found), that fails the exchange if it was not over.
    func upstreamStreamClosed(reason: HTTP2ErrorCode?) {
        if let reason, !isFinished {
            upstreamFailed(code: reason, error: NIOHTTP2Errors.streamClosed(streamID: upstreamID, errorCode: reason))
        }
        isUpstreamLinked = false
    }

    /// The response header modifiers of the stream's rule and backend.
    private var responseEdits: [HeaderEdits] = []

    /// Replaces the request head waiting to go upstream with the one the route's filters
    /// make of `head` (header modifiers, URLRewrite host and path).
    func sendEdited(_ head: HPACKHeaders, _ attempt: PlannedAttempt) {
        var edited = head
        let view = HPACKRequestHeadView(headers: head)
        for filters in [attempt.filters, attempt.backendFilters].compactMap({ $0 }) {
            filters.requestHeaders?.apply(to: &edited)
            if let host = filters.rewriteHost { edited.setPseudoHeader(":authority", host) }
            if let edit = filters.rewritePath {
                let path = view.withPath { edit.apply(to: $0, matchedPrefix: attempt.matchedPrefix) }
                let query = view.withQuery { $0.isEmpty ? "" : "?" + String(decoding: $0, as: UTF8.self) }
                edited.setPseudoHeader(":path", path + query)
            }
        }
        guard case .headers(let frame)? = early.first?.0 else { return }
        let head = HTTP2Frame.FramePayload.Headers(headers: edited, endStream: frame.endStream)
        early[0] = (.headers(head), early[0].1)
        // A stream the server refuses unprocessed is sent again as edited.
        if retryableHead != nil { retryableHead = head }
    }

    /// Answers the stream with a route's redirect.
    func respondRedirect(status: Int, location: String) {
        guard !isFinished else { return }
        finish(status: status)
        guard isClientOpen else { return }
        let headers: HPACKHeaders = [":status": "\(status)", "location": location, "content-length": "0"]
        clientRelay.write(.headers(.init(headers: headers, endStream: true)), on: clientID, batchedBy: nil)
        if !clientEnded { clientRelay.write(.rstStream(.noError), on: clientID, batchedBy: nil) }
    }

    /// The mesh chose `attempt.endpoint` for this stream.
    func attempt(_ attempt: PlannedAttempt, head: HPACKHeaders) {
        guard let mesh = clientRelay.mesh else { return }
        let endpoint = attempt.endpoint
        // Per attempt: a retry may go to a backend with other filters.
        if attempt.editsResponse {
            responseEdits = [attempt.filters?.responseHeaders, attempt.backendFilters?.responseHeaders].compactMap {
                $0
            }
        } else if !responseEdits.isEmpty {
            responseEdits = []
        }
        if attempts.begin(attempt, mesh: mesh), let mirrors = attempt.filters?.mirrors, !mirrors.isEmpty {
            prepareMirrors(mirrors, attempt, head: head)
        }
        if attempt.hasTimeouts && routeName == nil {
            var deadlines = ExchangeDeadlines(
                start: start, requestTimeoutMs: attempt.requestTimeoutMs,
                backendRequestTimeoutMs: attempt.backendRequestTimeoutMs, proxyTimeout: config.responseTimeout)
            if let grpc = ownDeadlines?.exchange, case .grpcTimeout(let timeout) = grpc.limit {
                deadlines.limitByGRPCTimeout(timeout, start: start)
            }
            ownDeadlines = deadlines
            routeName = attempt.route
        }
        destination = endpoint.target.address
        meshIdentity = endpoint.target.meshIdentity
        routedHead = head
        if span?.facts != nil {
            span!.facts!.peer = endpoint.spanPeer
            span?.attemptBegan(at: LoopContext.now(), endpoint: endpoint.spanPeer.text)
            span!.facts!.route = attempt.route
            span!.facts!.backend = mesh.snapshot.backends[attempt.backend].spanName
        }
    }

    /// Draws the rule's mirrors for this request and makes the head their copies carry:
    /// the request as the rule's own filters change it. Frames the client sent already
    /// (the request waited for discovery) are kept for the copies too.
    private func prepareMirrors(_ mirrors: [MirrorPlan], _ attempt: PlannedAttempt, head: HPACKHeaders) {
        guard let mesh = clientRelay.mesh,
            let copy = mesh.drawMirrors(mirrors, requestTimeoutMs: attempt.requestTimeoutMs)
        else { return }
        var edited = head
        if let filters = attempt.filters {
            filters.requestHeaders?.apply(to: &edited)
            if let host = filters.rewriteHost { edited.setPseudoHeader(":authority", host) }
            if let edit = filters.rewritePath {
                let view = HPACKRequestHeadView(headers: head)
                let path = view.withPath { edit.apply(to: $0, matchedPrefix: attempt.matchedPrefix) }
                let query = view.withQuery { $0.isEmpty ? "" : "?" + String(decoding: $0, as: UTF8.self) }
                edited.setPseudoHeader(":path", path + query)
            }
        }
        mirror = copy
        mirrorHead = edited
        for (payload, _) in early.dropFirst() { keepForMirror(payload) }
        if clientEnded { sendMirrors() }
    }

    /// Keeps a frame of the request (after its head) for its mirror copies, and sends them
    /// once the client ended the request.
    private func keepForMirror(_ payload: HTTP2Frame.FramePayload) {
        switch payload {
        case .data(let data):
            if case .byteBuffer(let buffer) = data.data { mirror?.append(buffer) }
            if data.endStream { sendMirrors() }
        case .headers(let headers) where !headers.headers.contains(name: ":method"):
            mirrorTrailers = headers.headers
            if headers.endStream { sendMirrors() }
        default:
            break
        }
    }

    private func sendMirrors() {
        guard let copy = mirror, let head = mirrorHead, let mesh = clientRelay.mesh else { return }
        mirror = nil
        mirrorHead = nil
        mesh.http2Mirrors.send(copy, head: head, trailers: mirrorTrailers, mesh: mesh)
        mirrorTrailers = nil
    }

    /// After a failed attempt (a status the route retries, a reset before any response, or
    /// the attempt's timeout): resets it upstream and opens the request again, on another
    /// endpoint, if the route's policy, the replay buffer and the budget allow. Returns true
    /// when a retry is under way (the failed response never reaches the client).
    private func retryAfterFailure(status: Int?, grpcStatus: Int? = nil, reason: RetryReason) -> Bool {
        // Only an attempt that was linked upstream and sent everything it had: frames still
        // waiting (its connection never came up) are not in the replay buffer, and that
        // connection could still open the stream later.
        guard attempts.retry != nil, let mesh = clientRelay.mesh, let head = routedHead, isClientOpen,
            !isFinished, !hasResponseStarted, early.isEmpty, upstreamRelay != nil,
            let (backoff, attempt, failed) = attempts.retryAfterFailure(
                status: status, grpcStatus: grpcStatus, requestComplete: clientEnded, reason: reason,
                metrics: metrics, mesh: mesh)
        else { return false }
        cancelTimer()
        resetUpstream(.cancel)
        upstreamRelay = nil
        upstreamEnded = false
        var again = head
        again.replaceOrAdd(name: "weft-retry-attempt", value: String(attempt))
        if span != nil {
            span!.attemptRetried(at: LoopContext.now(), status: status, failure: reason.rawValue, random: &mesh.random)
            Self.carry(span!, in: &again)
        }
        // Replayed frames were credited to the client when first sent: no credit again.
        let retried = HTTP2Frame.FramePayload.Headers(headers: again, endStream: replay.isEmpty)
        early = [(.headers(retried), 0)] + replay.map { ($0, 0) }
        // A stream the server refuses unprocessed is sent again as this attempt, not the first.
        if retryableHead != nil { retryableHead = retried }
        let resend = { [self] in
            retryTimer = nil
            guard wantsUpstream else { return }
            clientRelay.route(self, head: again, avoiding: failed, batchedBy: nil)
        }
        if backoff == .zero {
            resend()
        } else if let loop = clientRelay.context?.eventLoop {
            retryTimer = loop.scheduleTask(in: backoff, resend)
        }
        return true
    }

    /// Reports the attempt's outcome to its endpoint's balancer state, once.
    private func settleEndpoint(_ verdict: ExchangeAttempts.Verdict) {
        attempts.settle(verdict)
    }

    func connectFailed(_ error: Error) {
        guard !isFinished else { return }
        let failure = ConnectFailure(error, to: destination, meshIdentity: meshIdentity)
        clientRelay.mesh?.recordTLSFailure(failure)
        if let failed = attempts.connectFailed(), let head = routedHead, wantsUpstream {
            // Nothing was sent: the stream goes to another endpoint.
            clientRelay.route(self, head: head, avoiding: failed, batchedBy: nil)
            return
        }
        respond(status: 502, kind: failure.kind, detail: failure.detail)
    }

    /// The upstream reset the stream, or its connection went.
    func upstreamFailed(code: HTTP2ErrorCode, error: Error) {
        isUpstreamLinked = false
        guard !isFinished else { return }
        if hasResponseStarted {
            // Mid-response: pass the reset on.
            metrics.error(.upstreamReset)
            finish(status: status)
            if isClientOpen { clientRelay.write(.rstStream(code), on: clientID, batchedBy: nil) }
        } else {
            if attempts.retry != nil, retryAfterFailure(status: nil, reason: .reset) { return }
            settleEndpoint(.failed)
            respond(
                status: 502, kind: .upstreamReset,
                detail:
                    "upstream \(describe(destination)) reset the stream (\(code)) before responding: \(describe(error))"
            )
        }
    }

    /// Resets the upstream stream, if there is one, and stops relaying it.
    private func resetUpstream(_ code: HTTP2ErrorCode) {
        guard isUpstreamLinked, let relay = upstreamRelay else { return }
        isUpstreamLinked = false
        relay.reset(upstreamID, code: code)
    }

    /// Answers the client's stream with an error the proxy made, then asks the client
    /// to stop sending a request body it has not finished (RST_STREAM NO_ERROR, RFC 9113
    /// §8.1).
    /// - Parameter header: the `weft-error` value, when it says more than the kind.
    func respond(status: Int, kind: ProxyErrorKind, detail: String, header: String? = nil) {
        guard !isFinished else { return }
        metrics.error(kind)
        if span?.facts != nil { span!.facts!.error = "\(kind.rawValue): \(detail)" }
        logger.debug(
            "http2 request failed",
            metadata: ["status": "\(status)", "error": "\(kind.rawValue)", "detail": "\(detail)"])
        finish(status: status)
        let client = clientRelay
        guard isClientOpen, let allocator = client.context?.channel.allocator else { return }
        if isGRPC {
            // gRPC clients read the status from grpc-status: a trailers-only response.
            let headers: HPACKHeaders = [
                ":status": "200", "content-type": "application/grpc", "grpc-status": "\(Self.grpcStatus(for: status))",
                "grpc-message": Self.percentEncoded("weft-proxy: \(detail)"), "weft-error": header ?? kind.headerValue,
            ]
            client.write(.headers(.init(headers: headers, endStream: true)), on: clientID, batchedBy: nil)
            if !clientEnded { client.write(.rstStream(.noError), on: clientID, batchedBy: nil) }
            return
        }
        let headers: HPACKHeaders = [
            ":status": "\(status)", "content-type": "text/plain; charset=utf-8",
            "weft-error": header ?? kind.headerValue,
        ]
        client.write(.headers(.init(headers: headers)), on: clientID, batchedBy: nil)
        let body = allocator.buffer(string: "weft-proxy: \(detail)\n")
        client.write(.data(.init(data: .byteBuffer(body), endStream: true)), on: clientID, batchedBy: nil)
        if !clientEnded { client.write(.rstStream(.noError), on: clientID, batchedBy: nil) }
    }

    /// The gRPC status code for an answer the proxy makes (gRPC's HTTP-to-status mapping,
    /// with 504 as DEADLINE_EXCEEDED).
    static func grpcStatus(for status: Int) -> Int {
        switch status {
        case 504: return 4  // DEADLINE_EXCEEDED
        case 404: return 12  // UNIMPLEMENTED
        case 403: return 7  // PERMISSION_DENIED
        case 502, 503: return 14  // UNAVAILABLE
        case 400, 431: return 13  // INTERNAL
        default: return 13  // INTERNAL
        }
    }

    /// grpc-message is percent-encoded (gRPC over HTTP/2): bytes outside 0x20–0x7E and `%`.
    static func percentEncoded(_ text: String) -> String {
        var out = ""
        for byte in text.utf8 {
            if byte >= 0x20 && byte <= 0x7E && byte != 0x25 {
                out.unicodeScalars.append(UnicodeScalar(byte))
            } else {
                out += "%" + String(byte, radix: 16, uppercase: true).leftPadded(to: 2)
            }
        }
        return out
    }

    private func finish(status: Int) {
        guard !isFinished else { return }
        isFinished = true
        cancelTimer()
        let nanoseconds = (NIODeadline.now() - start).nanoseconds
        metrics.requestFinished(requestProtocol, status: status)
        clientRelay.traceLoop?.requestLatency(metrics.direction, requestProtocol).record(
            nanoseconds: UInt64(max(0, nanoseconds)), span: span)
        attempts.recordFinished(status: status, nanoseconds: UInt64(max(0, nanoseconds)), span: span)
        if span != nil { finishSpan(status: status) }
        if isInflight {
            isInflight = false
            clientRelay.traceLoop?.inflight.depart()
        }
    }
}

@available(*, unavailable)
extension HTTP2ConnectionRelay: Sendable {}

@available(*, unavailable)
extension HTTP2RelayedStream: Sendable {}

extension String {
    fileprivate func leftPadded(to width: Int) -> String {
        count >= width ? self : String(repeating: "0", count: width - count) + self
    }
}

extension HPACKHeaders {
    /// Sets a pseudo-header's value where it stands (pseudo-headers must precede the other
    /// fields, RFC 9113 §8.3, so it is never appended after them), or adds it first.
    fileprivate mutating func setPseudoHeader(_ name: String, _ value: String) {
        var rebuilt = HPACKHeaders()
        var placed = false
        if !contains(name: name) {
            rebuilt.add(name: name, value: value)
            placed = true
        }
        for (field, existing, indexing) in self {
            if field == name {
                if !placed { rebuilt.add(name: name, value: value, indexing: indexing) }
                placed = true
            } else {
                rebuilt.add(name: field, value: existing, indexing: indexing)
            }
        }
        self = rebuilt
    }
}
