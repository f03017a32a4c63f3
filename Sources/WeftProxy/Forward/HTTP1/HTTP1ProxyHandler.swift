import Glibc
import NIOCore
import WeftTelemetry

/// Proxies one client's HTTP/1.x connection, a request at a time, to pooled upstream
/// connections.
///
/// Heads are scanned in place by `HTTP1HeadParser` and forwarded as slices of the bytes
/// the client sent, minus hop-by-hop fields; bodies are followed by `HTTP1BodyTracker`
/// and forwarded as they arrive, never buffered whole. So a 1 GiB upload or download
/// passes in bounded memory, and the proxy never frames a message differently from how
/// it was sent.
///
/// - Pipelining: the next request is parsed only once the current response has ended,
///   and reads are held meanwhile, so responses go back in request order.
/// - Backpressure: the client is read only while the upstream is writable, and the
///   upstream only while the client is.
/// - Upgrade: a 101 answer to an `Upgrade` request (and a 2xx to CONNECT) hands both
///   channels to `SpliceHandler` for byte forwarding.
/// - Failures answer with 400, 408, 502 or 504 and a `weft-error` header naming the
///   cause, and close this connection only.
final class HTTP1ProxyHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private enum RequestPhase { case head, connecting, body, complete }
    private enum ResponsePhase { case idle, head, body }

    /// Where the current request goes: the connection's destination, or the endpoint the
    /// mesh chose for this request.
    private var destination: SocketAddress
    private let pool: HTTP1UpstreamPool
    private var bucket: HTTP1UpstreamPool.Bucket
    /// The connection's own destination and its bucket, for requests the mesh passes through.
    private let fixedDestination: SocketAddress
    private let fixedBucket: HTTP1UpstreamPool.Bucket
    /// Outbound with a mesh: what the original destination is in it; each request is
    /// planned (route → backend → endpoint) by the loop's `LoopContext`.
    private var outbound: OutboundBinding?
    private let mesh: LoopContext?
    /// Inbound: the caller and its authorization, checked per request before the request
    /// goes to the app.
    private var inboundGate: InboundGate?
    /// The current request's attempts: endpoint, connect failures, retry state, budget and
    /// route metrics (shared with the HTTP/2 driver).
    private var attempts = ExchangeAttempts()
    private var discoveryDeadline: NIODeadline?
    /// The current request's route timeouts; nil when its route sets none (then only the
    /// proxy's response timeout applies).
    private var routeDeadlines: ExchangeDeadlines?
    private var routeName: String?
    /// The limit the armed response deadline comes from (nil: the proxy's).
    private var responseLimit: ExchangeDeadlines.Limit?
    /// When the scheduled response check runs.
    private var responseTimerAt = NIODeadline.distantFuture
    /// The request body sent so far, kept (as slices, not copies) for a retry while it fits
    /// `ExchangeRetry.replayLimit`.
    private var replayBody: [ByteBuffer] = []
    private var retryTimer: Scheduled<Void>?
    /// The current request's route filters that change it (the rule's, then the backend's),
    /// and how much of its path the rule's PathPrefix matched; nil when none.
    private var requestFilters: (filters: [RouteFilters], matchedPrefix: Int)?
    /// The response header modifiers of the current request's rule and backend.
    private var responseEdits: [HeaderEdits] = []
    /// The RequestMirror copies the current request owes (sent once it has been read), and
    /// the head they carry.
    private var mirror: MirrorCopy?
    private var mirrorHead: ByteBuffer?
    /// The current request's span (issue 12); nil when it is not traced.
    private var span: ExchangeSpan?

    private let metrics: DirectionMetrics
    private let config: ProxyConfig
    /// False on a stream of an HTTP/1-over-HTTP/2 connection: its connection is counted once.
    private let ownsOpenGauge: Bool
    private var context: ChannelHandlerContext?
    /// Kept from `handlerAdded` (see `HTTP1UpstreamConnection.channel`).
    private var clientChannel: Channel?
    private var clientNeedsFlush = false

    /// Client bytes not yet forwarded; starts at the current request's head.
    private var inbound: ByteBuffer
    private var headScanned = 0
    private var request = HTTP1Head()
    /// The current request's head, kept until its response starts, for one retry.
    private var requestHeadBytes: ByteBuffer?
    private var requestBody = HTTP1BodyTracker(framing: .none)
    private var requestPhase = RequestPhase.head
    private var requestStart = NIODeadline.uptimeNanoseconds(0)
    /// When detection read the connection's first bytes: the first request starts there.
    private var firstByteAt: NIODeadline?
    private var hasRetried = false

    private var response = HTTP1Head()
    private var responseBody = HTTP1BodyTracker(framing: .none)
    private var responsePhase = ResponsePhase.idle
    private var responseBuffer: ByteBuffer?
    private var responseScanned = 0
    /// Whether any byte of the current response went to the client; after that, a
    /// failure can only close the connection.
    private var hasSentResponseBytes = false

    private var upstream: HTTP1UpstreamConnection?
    /// The current upstream served an earlier exchange (it came from the pool).
    private var isPooledUpstream = false
    private var closeAfterResponse = false
    private var isClosing = false
    private var pendingRead = false
    private var headTimer: Scheduled<Void>?
    private var responseTimer: Scheduled<Void>?
    private var responseDeadline: NIODeadline?
    /// The client idle check, and the number of requests it saw at its last run.
    private var idleTimer: Scheduled<Void>?
    private var requestCount = 0
    private var requestCountAtIdleCheck = 0

    /// - Parameters:
    ///   - destination: where this connection's requests go (the original destination,
    ///     or the app's loopback address for inbound traffic).
    ///   - initialBytes: what detection already read from the client.
    init(
        destination: SocketAddress, pool: HTTP1UpstreamPool, metrics: DirectionMetrics, config: ProxyConfig,
        initialBytes: ByteBuffer, clientInputEnded: Bool = false, outbound: OutboundBinding? = nil,
        mesh: LoopContext? = nil, inboundGate: InboundGate? = nil, ownsOpenGauge: Bool = true,
        firstByteAt: NIODeadline? = nil
    ) {
        self.ownsOpenGauge = ownsOpenGauge
        self.firstByteAt = firstByteAt
        self.inboundGate = inboundGate
        self.destination = destination
        self.pool = pool
        // Outbound to a meshed Pod's own address (not a Service): mesh TLS to its identity.
        let identity = outbound == nil ? nil : mesh?.snapshot.meshIdentity(ofAddress: destination)
        self.bucket = pool.bucket(for: destination, meshIdentity: identity)
        self.fixedDestination = destination
        self.fixedBucket = bucket
        self.outbound = mesh == nil ? nil : outbound
        self.mesh = mesh
        self.metrics = metrics
        self.config = config
        self.inbound = initialBytes
        self.closeAfterResponse = clientInputEnded
    }

    /// Counts the current request as finished with `status`.
    private func recordFinished(status: Int) {
        let nanoseconds = (NIODeadline.now() - requestStart).nanoseconds
        metrics.requestFinished(.http1, status: status)
        traceLoop?.requestLatency(metrics.direction, .http1).record(
            nanoseconds: UInt64(max(0, nanoseconds)), span: span)
        attempts.recordFinished(status: status, nanoseconds: UInt64(max(0, nanoseconds)), span: span)
        if span != nil { finishSpan(status: status) }
        if isInflight { departInflight() }
    }

    // MARK: - Client side

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        self.clientChannel = context.channel
        scheduleIdleCheck()
        processInbound()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        cancelTimers()
        self.context = nil
        self.clientChannel = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buffer = unwrapInboundIn(data)
        bytesFromClient += buffer.readableBytes
        if bytesFromClient > Self.publishThreshold { publishBytes() }
        if inbound.readableBytes == 0 {
            inbound = buffer
        } else {
            inbound.writeBuffer(&buffer)
        }
        processInbound()
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        flushPending()
    }

    /// Flushes whichever side was written to. Writes are only queued as they happen; the
    /// flush comes once per read batch (`channelReadComplete` on either side) or at the
    /// end of an event that is not a read (a connect, a timer).
    private func flushPending() {
        if clientNeedsFlush, let context {
            clientNeedsFlush = false
            context.flush()
        }
        upstream?.flushIfNeeded()
    }

    func read(context: ChannelHandlerContext) {
        if isHoldingReads {
            pendingRead = true
        } else {
            context.read()
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        upstream?.isReadPaused = !context.channel.isWritable
        context.fireChannelWritabilityChanged()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, case .inputClosed = event {
            // The client will send nothing more: finish the exchange in flight, then close.
            closeAfterResponse = true
            if isIdle { closeClient() }
        } else if event is ChannelShouldQuiesceEvent {
            closeAfterResponse = true
            if isIdle { closeClient() }
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        if ownsOpenGauge { metrics.connectionsOpen.decrement() }
        recordClientGone()
        if let span, inboundGate != nil, span.isSampled { traceLoop?.inflight.leave(span: span.spanID) }
        departInflight()
        publishBytes()
        cancelTimers()
        if let upstream {
            self.upstream = nil
            upstream.close()
        }
        isClosing = true
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        recordClientGone()  // a reset or I/O error on the client's side
        closeClient()
    }

    /// The client went (reset, error, close) while its exchange was in flight: the request
    /// is counted as 499, nginx's "client closed request". A clean end of the client's
    /// input is not this: HTTP/1.1 lets it half-close and still read its response.
    private func recordClientGone() {
        settleEndpoint(.abandoned)
        guard !isClosing, requestPhase != .head || responsePhase != .idle else { return }
        recordFinished(status: HTTPStatus.clientClosedRequest)
    }

    /// No exchange in flight and no buffered request bytes.
    private var isIdle: Bool {
        requestPhase == .head && responsePhase == .idle && inbound.readableBytes == 0
    }

    /// How many client bytes may wait while no request can take them (pipelined
    /// requests, or a body waiting for its upstream connection).
    private static let maxBufferedWhileWaiting = 64 * 1024

    /// Whether to stop reading the client. While a request waits for its connection or
    /// its response, reading goes on until `maxBufferedWhileWaiting` is buffered: holding
    /// every time would cost two epoll_ctl calls per request, and most clients send
    /// nothing until they have their response.
    private var isHoldingReads: Bool {
        switch requestPhase {
        case .head where responsePhase == .idle: return false
        case .head, .connecting, .complete: return inbound.readableBytes >= Self.maxBufferedWhileWaiting
        case .body: return !(upstream?.isWritable ?? false)
        }
    }

    private func resumeReadsIfPossible() {
        guard pendingRead, !isHoldingReads, let context else { return }
        pendingRead = false
        context.read()
    }

    /// Advances the current request as far as the buffered client bytes allow.
    private func processInbound() {
        guard !isClosing else { return }
        while true {
            switch requestPhase {
            case .head:
                guard responsePhase == .idle, startRequestIfComplete() else { return }
            case .connecting, .complete:
                return
            case .body:
                guard let upstream else { return }
                let consumed: Int
                do {
                    consumed = try inbound.withUnsafeReadableBytes { try requestBody.consume($0) }
                } catch {
                    // The head already went upstream; a broken body can only end both connections.
                    metrics.error(.badRequest)
                    closeClient()
                    return
                }
                if consumed > 0 {
                    bytesToUpstream += consumed
                    let slice = inbound.readSlice(length: consumed)!
                    upstream.write(slice)
                    if attempts.retry != nil {
                        if attempts.keep(bodyBytes: consumed) {
                            replayBody.append(slice)
                        } else {
                            replayBody.removeAll()
                        }
                    }
                    if mirror != nil { mirror!.append(slice) }
                }
                guard requestBody.isComplete else {
                    resumeReadsIfPossible()
                    return
                }
                requestPhase = .complete
                startResponseTimer()
                if mirror != nil { sendMirrors() }
                return
            }
        }
    }

    /// Parses a request head if a whole one is buffered and starts its exchange.
    /// Returns false when it must wait (for bytes or for an upstream connection).
    private func startRequestIfComplete() -> Bool {
        if headScanned == 0 {
            // A request's time starts when its head starts, so errors answered before
            // the head is complete are timed too; the first request's, at the connection's
            // first byte (detection read it).
            requestStart = firstByteAt ?? .now()
            firstByteAt = nil
            requestCount &+= 1
        }
        // Empty lines before a request line are skipped (RFC 9112 §2.2), also when their
        // CR and LF arrive in different reads.
        let empty = inbound.withUnsafeReadableBytes { HTTP1HeadParser.leadingEmptyLines($0) }
        if empty > 0 {
            inbound.moveReaderIndex(forwardBy: empty)
            headScanned = 0
        }
        guard inbound.readableBytes > 0 else {
            cancelHeadTimer()
            if closeAfterResponse { closeClient() }
            resumeReadsIfPossible()
            return false
        }
        do {
            let end = try inbound.withUnsafeReadableBytes { try HTTP1HeadParser.findEnd($0, resumeAt: headScanned) }
            guard let end else {
                headScanned = inbound.readableBytes
                startHeadTimer()
                resumeReadsIfPossible()
                return false
            }
            try inbound.withUnsafeReadableBytes { bytes in
                try HTTP1HeadParser.parse(
                    UnsafeRawBufferPointer(rebasing: bytes[0..<end]), kind: .request, into: &request)
            }
        } catch let error as HTTP1ParseError {
            let status = error.code == .headTooLarge || error.code == .tooManyFields ? 431 : 400
            respondWithError(status: status, kind: .badRequest, detail: "malformed request: \(error.reason)")
            return false
        } catch {
            closeClient()
            return false
        }
        cancelHeadTimer()
        headScanned = 0
        hasRetried = false
        requestBody = HTTP1BodyTracker(framing: request.framing)
        requestHeadBytes = inbound.readSlice(length: request.length)
        if request.wantsClose { closeAfterResponse = true }
        requestPhase = .connecting
        span = nil
        if let loop = traceLoop, loop.spans != nil { startSpan(loop) }
        if inboundGate != nil, let head = requestHeadBytes, let denial = authorize(head) {
            respondWithError(status: 403, kind: denial.kind, detail: denial.explanation, header: denial.header)
            return false
        }
        if outbound != nil {
            // The per-request routing state; a connection the mesh does not route never sets it.
            attempts.reset()
            discoveryDeadline = nil
            routeDeadlines = nil
            routeName = nil
            if !replayBody.isEmpty { replayBody.removeAll(keepingCapacity: false) }
            requestFilters = nil
            if !responseEdits.isEmpty { responseEdits = [] }
            mirror = nil
            mirrorHead = nil
            return routeRequest()
        }
        return sendRequest()
    }

    /// The inbound gate's decision for the current request; nil when it may go on. An
    /// upgrade to h2c is refused where rules decide per request: its streams would reach
    /// the app past this check (WebSocket and other upgrades carry no more requests).
    private func authorize(_ head: ByteBuffer) -> InboundGate.Denial? {
        let target = request.target
        let isUpgrade = request.isUpgrade
        return head.withUnsafeReadableBytes { bytes in
            if let denial = inboundGate!.check(
                method: String(decoding: bytes.prefix { $0 != UInt8(ascii: " ") }, as: UTF8.self),
                path: String(decoding: bytes[target], as: UTF8.self))
            {
                return denial
            }
            if isUpgrade && inboundGate!.decidesPerRequest && Self.upgradesToH2C(bytes) {
                return InboundGate.Denial(
                    kind: .authzDenied,
                    explanation:
                        "an upgrade to h2c is refused: AuthorizationPolicy rules on this pod decide per request; use HTTP/2 with prior knowledge"
                )
            }
            return nil
        }
    }

    /// True when the head has an `Upgrade` field naming h2c (case-insensitive).
    static func upgradesToH2C(_ head: UnsafeRawBufferPointer) -> Bool {
        let text = String(decoding: head, as: UTF8.self).lowercased()
        return text.split(separator: "\r\n").contains { line in
            line.hasPrefix("upgrade:")
                && line.dropFirst(8).split(separator: ",").contains {
                    $0.drop(while: { $0 == " " || $0 == "\t" }).hasPrefix("h2c")
                }
        }
    }

    /// MeshConfig `mtls.http1Transport: HTTP2` and a meshed endpoint: the request takes a
    /// stream of the endpoint's HTTP/2 connection (pooled HTTP/1.1 connections left from
    /// before are not used, and expire). An upgrade or CONNECT keeps a connection of its
    /// own, and so does HTTP/1.0 (its framing and Host rules do not cross HTTP/2).
    private var isMultiplexed: Bool {
        bucket.meshIdentity != nil && mesh?.snapshot.multiplexesHTTP1 == true && !request.isUpgrade
            && request.method != .connect && request.minorVersion == 1
    }

    /// Sends the request on a pooled connection to `bucket`, or opens one. Returns true
    /// when the exchange began at once.
    private func sendRequest() -> Bool {
        if let span { spanAttemptBegan(span) }
        if !isMultiplexed, let pooled = pool.checkout(bucket) {
            beginExchange(on: pooled)
            return true
        }
        connectUpstream()
        return false
    }

    /// Plans the current request with the mesh (route → backend → endpoint) and sends it,
    /// answers it, or waits for its destination's discovery. Returns true when the
    /// exchange began at once.
    private func routeRequest(avoiding: LoopEndpoint? = nil) -> Bool {
        guard let mesh, let head = requestHeadBytes else { return false }
        let request = self.request
        let outcome = head.withUnsafeReadableBytes { bytes in
            mesh.plan(&outbound!, request: HTTP1RequestHeadView(bytes: bytes, head: request), avoiding: avoiding)
        }
        switch outcome {
        case .passthrough:
            destination = fixedDestination
            bucket = fixedBucket
        case .forward(let attempt):
            let endpoint = attempt.endpoint
            destination = endpoint.target.address
            if attempts.begin(attempt, mesh: mesh), let mirrors = attempt.filters?.mirrors, !mirrors.isEmpty {
                prepareMirrors(mirrors, attempt: attempt, mesh: mesh, head: head)
                // A request without a body is read whole: its copies need not wait for
                // the real request's connection.
                if mirror != nil && requestBody.isComplete { sendMirrors() }
            }
            if attempt.editsRequest {
                requestFilters = ([attempt.filters, attempt.backendFilters].compactMap { $0 }, attempt.matchedPrefix)
            } else {
                requestFilters = nil
            }
            // Per attempt: a retry may go to a backend with other filters.
            if attempt.editsResponse {
                responseEdits = [attempt.filters?.responseHeaders, attempt.backendFilters?.responseHeaders].compactMap {
                    $0
                }
            } else if !responseEdits.isEmpty {
                responseEdits = []
            }
            if attempt.hasTimeouts && routeDeadlines == nil {
                routeDeadlines = ExchangeDeadlines(
                    start: NIODeadline.uptimeNanoseconds(requestStart.uptimeNanoseconds),
                    requestTimeoutMs: attempt.requestTimeoutMs,
                    backendRequestTimeoutMs: attempt.backendRequestTimeoutMs, proxyTimeout: config.responseTimeout)
                routeName = attempt.route
            }
            if span?.facts != nil {
                span!.facts!.route = attempt.route
                span!.facts!.backend = mesh.snapshot.backends[attempt.backend].spanName
                span!.facts!.peer = endpoint.spanPeer
            }
            if let known = endpoint.http1Bucket {
                bucket = known
            } else {
                bucket = pool.bucket(for: destination, meshIdentity: endpoint.target.meshIdentity)
                endpoint.http1Bucket = bucket
            }
        case .answer(let answer):
            respondWithError(status: answer.status, kind: answer.kind, detail: answer.detail)
            return false
        case .redirect(let plan, let matchedPrefix):
            let location = head.withUnsafeReadableBytes { bytes -> String in
                let view = HTTP1RequestHeadView(bytes: bytes, head: request)
                let authority = request.host.map { String(decoding: bytes[$0], as: UTF8.self) } ?? ""
                return plan.location(
                    for: view, authority: authority, requestPort: Int(outbound?.key.port ?? 80),
                    matchedPrefix: matchedPrefix)
            }
            respondRedirect(status: plan.status, location: location)
            return false
        case .awaitDiscovery:
            let deadline = discoveryDeadline ?? (mesh.eventLoop.now + mesh.discoveryTimeout)
            discoveryDeadline = deadline
            mesh.waitForDiscovery(until: deadline) { [self] arrived in
                guard !isClosing, requestPhase == .connecting, upstream == nil, let outbound else { return }
                if arrived {
                    if routeRequest() { processInbound() }
                } else {
                    let answer = mesh.discoveryTimedOut(outbound)
                    respondWithError(status: answer.status, kind: answer.kind, detail: answer.detail)
                }
                flushPending()
            }
            return false
        }
        return sendRequest()
    }

    /// After a failed attempt (a status the route retries, a reset before any response, or
    /// the attempt's timeout): drops it and schedules the request again, on another
    /// endpoint, if the route's policy, the replay buffer and the budget allow. Returns
    /// true when a retry is scheduled (the failed response never reaches the client).
    private func retryAfterFailure(status: Int?, reason: RetryReason) -> Bool {
        guard attempts.retry != nil, let mesh, requestHeadBytes != nil, !hasSentResponseBytes,
            let (backoff, _, failed) = attempts.retryAfterFailure(
                status: status, requestComplete: requestPhase == .complete, reason: reason, metrics: metrics,
                mesh: mesh)
        else { return false }
        if span != nil {
            span!.attemptRetried(at: LoopContext.now(), status: status, failure: reason.rawValue, random: &mesh.random)
        }
        cancelResponseTimer()
        if let connection = upstream {
            upstream = nil
            connection.close()
        }
        responsePhase = .idle
        responseBuffer = nil
        responseScanned = 0
        requestPhase = .connecting
        guard let context else { return true }
        let resend = { [self] in
            retryTimer = nil
            guard !isClosing, requestPhase == .connecting else { return }
            if routeRequest(avoiding: failed) { processInbound() }
            flushPending()
        }
        if backoff == .zero {
            context.eventLoop.execute(resend)
        } else {
            retryTimer = context.eventLoop.scheduleTask(in: backoff, resend)
        }
        return true
    }

    /// Reports the current attempt's outcome to its endpoint's balancer state, once.
    private func settleEndpoint(_ verdict: ExchangeAttempts.Verdict) {
        attempts.settle(verdict)
    }

    private func connectUpstream() {
        pool.connect(bucket, tls: bucket.meshIdentity == nil ? nil : mesh?.meshTLS, multiplexed: isMultiplexed)
            .whenComplete { [self] result in
                guard !isClosing else {
                    if case .success(let connection) = result { connection.close() }
                    return
                }
                switch result {
                case .success(let connection):
                    beginExchange(on: connection)
                    processInbound()
                    // Outside a client read there is no channelReadComplete to flush for us.
                    flushPending()
                case .failure(let error):
                    let failure = ConnectFailure(error, to: destination, meshIdentity: bucket.meshIdentity)
                    mesh?.recordTLSFailure(failure)
                    if let failed = attempts.connectFailed() {
                        // Nothing was sent: the request goes to another endpoint.
                        if routeRequest(avoiding: failed) { processInbound() }
                        flushPending()
                        return
                    }
                    respondWithError(status: 502, kind: failure.kind, detail: failure.detail)
                }
            }
    }

    /// Sends the request head on `connection` and makes it this exchange's upstream.
    private func beginExchange(on connection: HTTP1UpstreamConnection) {
        isPooledUpstream = connection.hasBeenUsed
        connection.hasBeenUsed = true
        connection.owner = self
        connection.isReadPaused = !(clientChannel?.isWritable ?? true)
        upstream = connection
        responsePhase = .head
        responseScanned = 0
        responseBuffer = nil
        hasSentResponseBytes = false
        let attempt = attempts.retries
        if span != nil {
            let dial = isPooledUpstream ? (connect: UInt64(0), tls: UInt64(0)) : connection.dialNanos
            span!.requestSent(at: LoopContext.now(), connect: dial.connect, tls: dial.tls)
        }
        if let head = requestHeadBytes, let span, requestFilters == nil, attempt == 0,
            let allocator = connection.channel?.allocator
        {
            // A traced request no filter changes: its head with the span's context.
            let traced = tracedHead(head, span: span, allocator: allocator)
            bytesToUpstream += traced.readableBytes
            connection.write(traced)
        } else if let head = requestHeadBytes, requestFilters != nil || attempt > 0 || span != nil,
            let allocator = connection.channel?.allocator
        {
            // Route filters, a retry or a span change the head: write an edited one. (Every
            // other head goes out as slices of the bytes received, below.)
            let filters = requestFilters?.filters ?? []
            let matchedPrefix = requestFilters?.matchedPrefix ?? 0
            // The span's context replaces the caller's.
            let request = span.map(requestCarrying) ?? self.request
            var extraLines = attempt > 0 ? "weft-retry-attempt: \(attempt)\r\n" : ""
            if let span { extraLines = span.headerLines + extraLines }
            let edited = head.withUnsafeReadableBytes { bytes -> ByteBuffer in
                let view = HTTP1RequestHeadView(bytes: bytes, head: request)
                var host: String?
                var path: String?
                for filter in filters {
                    if let rewrite = filter.rewriteHost { host = rewrite }
                    if let edit = filter.rewritePath {
                        path = view.withPath { edit.apply(to: $0, matchedPrefix: matchedPrefix) }
                    }
                }
                return HTTP1HeadEditor.edit(
                    bytes, head: request, isRequest: true, edits: filters.compactMap(\.requestHeaders),
                    host: host, path: path, extraLines: extraLines, allocator: allocator)
            }
            bytesToUpstream += edited.readableBytes
            connection.write(edited)
            // A retry: the body went with the first attempt; send it again from the replay buffer.
            for slice in replayBody where attempt > 0 {
                bytesToUpstream += slice.readableBytes
                connection.write(slice)
            }
        } else if let head = requestHeadBytes {
            bytesToUpstream += writeHead(head, of: request, appendClose: false) { connection.write($0) }
        }
        // A body-less request is complete with its head.
        requestPhase = .body
        if requestBody.isComplete {
            requestPhase = .complete
            startResponseTimer()
            if mirror != nil { sendMirrors() }
        }
    }

    /// Draws the rule's mirrors for the current request and makes the head its copies
    /// carry: the request as the rule's own filters change it (a backendRef's filters are
    /// that backend's). Upgrades and CONNECT are not mirrored.
    private func prepareMirrors(_ mirrors: [MirrorPlan], attempt: PlannedAttempt, mesh: LoopContext, head: ByteBuffer) {
        guard !request.isUpgrade, request.method != .connect,
            let copy = mesh.drawMirrors(mirrors, requestTimeoutMs: attempt.requestTimeoutMs)
        else { return }
        let filters = attempt.filters
        // A traced request's copies carry its span's context, as the request does (and as
        // HTTP/2's copies do): the mirror's own spans hang from this hop's.
        let request = span.map(requestCarrying) ?? self.request
        let extraLines = span?.headerLines ?? ""
        let allocator = clientChannel?.allocator ?? ByteBufferAllocator()
        mirrorHead = head.withUnsafeReadableBytes { bytes -> ByteBuffer in
            let view = HTTP1RequestHeadView(bytes: bytes, head: request)
            let path = filters?.rewritePath.map { edit in
                view.withPath { edit.apply(to: $0, matchedPrefix: attempt.matchedPrefix) }
            }
            return HTTP1HeadEditor.edit(
                bytes, head: request, isRequest: true, edits: [filters?.requestHeaders].compactMap { $0 },
                host: filters?.rewriteHost, path: path, extraLines: extraLines, allocator: allocator)
        }
        mirror = copy
    }

    /// The request has been read: its mirror copies go out (once, whatever its attempts).
    private func sendMirrors() {
        guard let copy = mirror, let head = mirrorHead, let mesh else { return }
        mirror = nil
        mirrorHead = nil
        HTTP1MirrorExchange.send(
            copy, head: head, method: request.method, isHTTP11: request.minorVersion == 1, pool: pool, mesh: mesh)
    }

    // MARK: - Tracing

    /// The loop whose span queue, sampler and latency counts this connection's requests
    /// use: outbound the mesh's, inbound the gate's.
    private var traceLoop: LoopContext? { mesh ?? inboundGate?.mesh }

    /// Starts the current request's span: continues the caller's context, or starts a
    /// trace (sampled at MeshConfig `tracing.sampling`).
    private func startSpan(_ loop: LoopContext) {
        if inboundGate != nil && !isInflight {
            // Every inbound request counts, traced or not: a link is inferred only when one
            // request is served.
            loop.inflight.arrive()
            isInflight = true
        }
        guard let head = requestHeadBytes else { return }
        let isInbound = inboundGate != nil
        let targetEnd = request.target.upperBound
        let fields = head.withUnsafeReadableBytes { HTTP1HeadParser.traceFields($0, targetEnd: targetEnd) }
        let hasContext = fields.hasContext
        // An app's call without context, while the pod serves exactly one traced request.
        let serving = isInbound || hasContext ? nil : loop.inflight.sole()
        traceFields = fields
        // Sampling 0 and nothing to continue: nothing more (the head was scanned, no more).
        guard hasContext || serving != nil || loop.snapshot.sampler.ratio > 0 else { return }
        let request = self.request
        head.withUnsafeReadableBytes { bytes in
            let view = HTTP1RequestHeadView(bytes: bytes, head: request)
            var incoming: IncomingTrace?
            var b3: IncomingTrace.Format?
            if hasContext {
                incoming = IncomingTrace.extract { name in
                    HTTP1TraceFields.Field(name: name).flatMap { fields.value($0) }.map {
                        String(decoding: UnsafeRawBufferPointer(rebasing: bytes[$0]), as: UTF8.self)
                    }
                }
                if fields.value(.b3) != nil {
                    b3 = .b3Single
                } else if fields.value(.b3TraceID) != nil {
                    b3 = .b3Multi
                }
            }
            span = ExchangeSpan.start(
                incoming: incoming, b3: b3, serving: serving, sampler: loop.snapshot.sampler, random: &loop.random,
                at: requestStart.uptimeNanoseconds)
            guard span?.isSampled == true else {
                return
            }
            span!.facts = SpanFacts(
                method: request.method.name
                    ?? String(decoding: bytes[0..<max(0, request.target.lowerBound - 1)], as: UTF8.self),
                path: view.withPath { String(decoding: $0.prefix(SpanFacts.maxText), as: UTF8.self) },
                host: view.withAuthority { $0.map { String(decoding: $0.prefix(SpanFacts.maxText), as: UTF8.self) } })
            if isInbound { loop.inflight.enter(trace: span!.traceID, span: span!.spanID) }
            span!.facts!.peer = connectionSpanPeer
        }
    }

    /// Inbound: the caller's address; outbound: the connection's own destination (what a
    /// request the mesh passes through goes to). Formatted once per connection.
    private lazy var connectionSpanPeer: SpanPeer =
        inboundGate.map { SpanPeer(caller: $0.remote, identity: $0.identity) }
        ?? SpanPeer(endpoint: fixedDestination, identity: nil)

    /// The current request's trace context lines, found when its span started.
    private var traceFields = HTTP1TraceFields()

    /// The request as edited heads carrying `span`'s context see it: the caller's context
    /// lines dropped with its hop-by-hop ones (a new trace drops `tracestate` too).
    private func requestCarrying(_ span: ExchangeSpan) -> HTTP1Head {
        var request = self.request
        let lines = traceFields.replacedLines(state: span.traceState == nil)
        if !lines.isEmpty {
            request.droppedLines = (request.droppedLines + lines).sorted { $0.lowerBound < $1.lowerBound }
        }
        return request
    }

    /// The head as received with the span's context in place of the caller's: a traced
    /// request that no filter changes (`HTTP1HeadEditor.replacingLines`).
    private func tracedHead(_ head: ByteBuffer, span: ExchangeSpan, allocator: ByteBufferAllocator) -> ByteBuffer {
        let request = self.request
        let replaced = traceFields.replacedLines(state: span.traceState == nil)
        return head.withUnsafeReadableBytes { bytes in
            HTTP1HeadEditor.replacingLines(
                bytes, dropped: request.droppedLines, replaced: replaced,
                capacity: ExchangeSpan.maxHeaderLinesLength, allocator: allocator
            ) { span.writeHeaderLines(into: &$0) }
        }
    }

    /// Whether the current inbound request is counted in the pod's `InflightRequests`.
    private var isInflight = false

    /// The current inbound request ended (however): it leaves the pod's count, once.
    private func departInflight() {
        guard isInflight else { return }
        isInflight = false
        traceLoop?.inflight.depart()
    }

    /// Out of line: `sendRequest` stays small enough to inline where no span is recorded.
    @inline(never)
    private func spanAttemptBegan(_ span: ExchangeSpan) {
        guard let facts = span.facts else { return }
        span.attemptBegan(at: LoopContext.now(), endpoint: facts.peer?.text)
    }

    /// Ends the current request's span with `status` and queues it for export.
    private func finishSpan(status: Int) {
        guard let current = span else { return }
        span = nil
        if inboundGate != nil && current.isSampled { traceLoop?.inflight.leave(span: current.spanID) }
        guard let facts = current.facts, let loop = traceLoop, let queue = loop.spans else { return }
        let isInbound = inboundGate != nil
        let version = request.minorVersion == 0 ? "1.0" : "1.1"
        current.finish(
            at: LoopContext.now(), name: facts.method, nameSuffix: facts.route, kind: isInbound ? .server : .client,
            error: facts.errorMessage(status: status), into: queue
        ) { out in
            facts.add(
                to: &out, status: status, isInbound: isInbound,
                own: isInbound ? queue.ownIdentity.inbound : queue.ownIdentity.outbound,
                protocolVersion: version, grpc: false)
        }
    }

    // MARK: - Upstream side

    func upstreamRead(_ buffer: ByteBuffer) {
        bytesFromUpstream += buffer.readableBytes
        if bytesFromUpstream > Self.publishThreshold { publishBytes() }
        var buffer = buffer
        switch responsePhase {
        case .idle:
            // Bytes with no request outstanding: the connection cannot be trusted.
            upstream?.close()
        case .head:
            if (responseBuffer?.readableBytes ?? 0) > 0 {
                responseBuffer!.writeBuffer(&buffer)
            } else {
                responseBuffer = buffer
            }
            processResponseHead()
        case .body:
            forwardResponseBody(&buffer, headLength: 0)
        }
    }

    func upstreamReadComplete() {
        flushPending()
    }

    func upstreamWritabilityChanged(isWritable: Bool) {
        resumeReadsIfPossible()
    }

    func upstreamClosed(error: Error?) {
        guard upstream != nil else { return }
        upstream = nil
        switch responsePhase {
        case .body where responseBody.isUntilClose:
            finishExchange(reusable: false)
        case .head where !hasSentResponseBytes && (responseBuffer?.readableBytes ?? 0) == 0:
            if isPooledUpstream && !hasRetried && request.framing == .none && request.method.isIdempotent
                && requestHeadBytes != nil
            {
                // A pooled connection the server had closed while idle: retry once, fresh, to
                // the same endpoint. Not the endpoint's failure: the fresh attempt's outcome
                // is what it learns from.
                hasRetried = true
                cancelResponseTimer()
                requestPhase = .connecting
                connectUpstream()
                return
            }
            if retryAfterFailure(status: nil, reason: .reset) { return }
            settleEndpoint(.failed)
            let reason = error.map { describe($0) } ?? "connection closed"
            respondWithError(
                status: 502, kind: .upstreamReset,
                detail: "upstream \(describe(destination)) closed before responding: \(reason)")
        default:
            // Mid-response: the client cannot be told more than that the connection ended.
            metrics.error(.upstreamReset)
            closeClient()
        }
    }

    private func processResponseHead() {
        guard var buffer = responseBuffer else { return }
        while responsePhase == .head {
            let end: Int?
            do {
                end = try buffer.withUnsafeReadableBytes { try HTTP1HeadParser.findEnd($0, resumeAt: responseScanned) }
                guard let end else {
                    responseScanned = buffer.readableBytes
                    responseBuffer = buffer
                    return
                }
                try buffer.withUnsafeReadableBytes { bytes in
                    try HTTP1HeadParser.parse(
                        UnsafeRawBufferPointer(rebasing: bytes[0..<end]),
                        kind: .response(requestMethod: request.method),
                        into: &response)
                }
            } catch {
                settleEndpoint(.failed)
                upstream?.close()
                upstream = nil
                respondWithError(
                    status: 502, kind: .upstreamProtocol,
                    detail: "upstream \(describe(destination)) sent a malformed response: \(error)")
                return
            }
            guard let end else { return }
            if response.status >= 200, retryAfterFailure(status: response.status, reason: .status) { return }
            cancelResponseTimer()
            requestHeadBytes = nil
            responseScanned = 0
            let status = response.status
            let isTunnel =
                (status == 101 && request.isUpgrade) || (request.method == .connect && status >= 200 && status < 300)
            if status == 101 && !request.isUpgrade {
                upstream?.close()
                upstream = nil
                respondWithError(
                    status: 502, kind: .upstreamProtocol,
                    detail: "upstream \(describe(destination)) switched protocols without an Upgrade request")
                return
            }
            if isTunnel {
                writeToClient(buffer.readSlice(length: end)!)
                startTunnel(upstreamBytes: buffer)
                return
            }
            if status >= 200 { settleEndpoint(status >= 500 ? .failed : .succeeded) }
            if status < 200 {
                // Interim response (100 Continue, 103 Early Hints): forward, keep waiting.
                writeHead(buffer.readSlice(length: end)!, of: response, appendClose: false) { writeToClient($0) }
                continue
            }
            if response.framing == .untilClose { closeAfterResponse = true }
            responseBody = HTTP1BodyTracker(framing: response.framing)
            responsePhase = .body
            responseBuffer = nil
            if !responseEdits.isEmpty, let allocator = context?.channel.allocator {
                // ResponseHeaderModifier: an edited head.
                let close = closeAfterResponse
                let edited = buffer.readSlice(length: end)!.withUnsafeReadableBytes { bytes in
                    HTTP1HeadEditor.edit(
                        bytes, head: response, isRequest: false, edits: responseEdits, close: close,
                        allocator: allocator)
                }
                writeToClient(edited)
                forwardResponseBody(&buffer, headLength: 0)
            } else if response.droppedLines.isEmpty && !closeAfterResponse {
                // The head goes out unchanged: send it in one write with the body bytes
                // that follow it in this read.
                forwardResponseBody(&buffer, headLength: end)
            } else {
                writeHead(buffer.readSlice(length: end)!, of: response, appendClose: closeAfterResponse) {
                    writeToClient($0)
                }
                forwardResponseBody(&buffer, headLength: 0)
            }
            return
        }
    }

    /// Forwards the response body bytes in `buffer`, preceded by `headLength` bytes of
    /// head still at its front, as one slice.
    private func forwardResponseBody(_ buffer: inout ByteBuffer, headLength: Int) {
        let consumed: Int
        do {
            consumed = try buffer.withUnsafeReadableBytes { bytes in
                try responseBody.consume(UnsafeRawBufferPointer(rebasing: bytes[headLength...]))
            }
        } catch {
            metrics.error(.upstreamProtocol)
            closeClient()
            return
        }
        if headLength + consumed > 0 { writeToClient(buffer.readSlice(length: headLength + consumed)!) }
        if responseBody.isComplete {
            // Bytes after the end of the response mean the connection is out of step.
            finishExchange(reusable: buffer.readableBytes == 0)
        }
    }

    /// Ends the exchange: records it, returns or closes the upstream connection, and
    /// starts on the next pipelined request or closes the client.
    private func finishExchange(reusable: Bool) {
        cancelResponseTimer()
        publishBytes()
        // Flush now: once the connection is back in the pool, its read-complete no
        // longer reaches this handler.
        flushPending()
        recordFinished(status: response.status)
        let requestComplete = requestPhase == .complete
        if let connection = upstream {
            upstream = nil
            if reusable && requestComplete && request.minorVersion == 1 && !response.wantsClose
                && response.framing != .untilClose
            {
                pool.release(connection)
            } else {
                connection.close()
            }
        }
        responsePhase = .idle
        requestPhase = .head
        hasSentResponseBytes = false
        if !requestComplete || closeAfterResponse {
            // A response that ended before its request (e.g. an early 413) leaves the
            // client's remaining body in flight: the connection cannot carry another request.
            closeClient()
            return
        }
        processInbound()
    }

    // MARK: - Upgrade

    private func startTunnel(upstreamBytes: ByteBuffer) {
        guard let context, let connection = upstream, let upstreamChannel = connection.channel else {
            closeClient()
            return
        }
        settleEndpoint(.succeeded)
        recordFinished(status: response.status)
        publishBytes()
        cancelTimers()
        upstream = nil
        connection.owner = nil
        isClosing = true
        let clientChannel = context.channel
        let leftover = inbound
        context.flush()
        let pipeline = context.pipeline.syncOperations
        upstreamChannel.pipeline.syncOperations.removeHandler(connection, promise: nil)
        pipeline.removeHandler(context: context, promise: nil)
        SpliceHandler.join(
            client: clientChannel, upstream: upstreamChannel, metrics: metrics,
            toUpstream: leftover, toClient: upstreamBytes, clientOwnsGauge: true)
    }

    // MARK: - Writing

    /// Writes a head as slices of the original bytes, skipping dropped lines, and
    /// optionally ends it with `connection: close` (then a kept `Connection: keep-alive`
    /// line is dropped too). Returns the bytes written.
    @discardableResult
    private func writeHead(
        _ head: ByteBuffer, of parsed: HTTP1Head, appendClose: Bool, write: (ByteBuffer) -> Void
    ) -> Int {
        var dropped = parsed.droppedLines
        if appendClose, let line = parsed.keepAliveLine {
            // Only when closing, so the extra array is off the keep-alive path.
            dropped.append(line)
            dropped.sort { $0.lowerBound < $1.lowerBound }
        }
        let base = head.readerIndex
        let end = head.readableBytes - (appendClose ? 2 : 0)
        var written = 0
        var cursor = 0
        for line in dropped {
            if line.lowerBound > cursor {
                write(head.getSlice(at: base + cursor, length: line.lowerBound - cursor)!)
                written += line.lowerBound - cursor
            }
            cursor = line.upperBound
        }
        if end > cursor {
            write(head.getSlice(at: base + cursor, length: end - cursor)!)
            written += end - cursor
        }
        if appendClose {
            write(Self.connectionClose)
            written += Self.connectionClose.readableBytes
        }
        return written
    }

    private static let connectionClose = ByteBuffer(string: "connection: close\r\n\r\n")

    private func writeToClient(_ buffer: ByteBuffer) {
        guard let context else { return }
        hasSentResponseBytes = true
        clientNeedsFlush = true
        bytesToClient += buffer.readableBytes
        context.write(wrapOutboundOut(buffer), promise: nil)
    }

    // Byte counts are kept here and published to the shared counters at the end of each
    // exchange, at close, and every `publishThreshold` bytes of a long body: one atomic
    // add per counter per exchange instead of one per read and write.
    private var bytesFromClient = 0
    private var bytesToClient = 0
    private var bytesFromUpstream = 0
    private var bytesToUpstream = 0
    private static let publishThreshold = 1 << 20

    private func publishBytes() {
        if bytesFromClient > 0 { metrics.readFromSource.increment(by: Int64(bytesFromClient)) }
        if bytesToClient > 0 { metrics.writtenToSource.increment(by: Int64(bytesToClient)) }
        if bytesFromUpstream > 0 { metrics.readFromDestination.increment(by: Int64(bytesFromUpstream)) }
        if bytesToUpstream > 0 { metrics.writtenToDestination.increment(by: Int64(bytesToUpstream)) }
        bytesFromClient = 0
        bytesToClient = 0
        bytesFromUpstream = 0
        bytesToUpstream = 0
    }

    /// Answers the current request with a route's redirect, then closes (the request's
    /// body, if any, is not read).
    private func respondRedirect(status: Int, location: String) {
        recordFinished(status: status)
        guard !hasSentResponseBytes, let context else {
            closeClient()
            return
        }
        let head =
            "HTTP/1.1 \(status) \(HTTPStatus.reason(status))\r\nlocation: \(location)\r\ncontent-length: 0\r\n"
            + "connection: close\r\n\r\n"
        writeToClient(context.channel.allocator.buffer(string: head))
        closeClient()
    }

    /// Answers the current request with an error the proxy made, then closes.
    /// - Parameter header: the `weft-error` value, when it says more than the kind.
    private func respondWithError(status: Int, kind: ProxyErrorKind, detail: String, header: String? = nil) {
        metrics.error(kind)
        if span?.facts != nil { span!.facts!.error = "\(kind.rawValue): \(detail)" }
        recordFinished(status: status)
        guard !hasSentResponseBytes, let context else {
            closeClient()
            return
        }
        let body = "weft-proxy: \(detail)\n"
        let head =
            "HTTP/1.1 \(status) \(HTTPStatus.reason(status))\r\ncontent-type: text/plain; charset=utf-8\r\n"
            + "content-length: \(body.utf8.count)\r\nweft-error: \(header ?? kind.headerValue)\r\nconnection: close\r\n\r\n"
        writeToClient(context.channel.allocator.buffer(string: head + body))
        closeClient()
    }

    /// Flushes what was written, then closes the client connection (and any upstream
    /// still attached, which can no longer be reused).
    private func closeClient() {
        guard !isClosing, let context else { return }
        if let span {
            // The exchange ends here without an answer of its own (a broken body, an
            // upstream reset mid-response): its span still ends, marked failed.
            if span.facts != nil, span.facts!.error == nil { span.facts!.error = "connection closed mid-exchange" }
            finishSpan(status: responsePhase == .body ? response.status : 502)
        }
        departInflight()
        isClosing = true
        cancelTimers()
        if let upstream {
            self.upstream = nil
            upstream.close()
        }
        context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(capacity: 0))).whenComplete { _ in
            context.close(promise: nil)
        }
    }

    /// Time since the current request's head began.
    private var elapsed: Duration { .nanoseconds((NIODeadline.now() - requestStart).nanoseconds) }

    // MARK: - Timers

    private func startHeadTimer() {
        guard headTimer == nil, let context else { return }
        headTimer = context.eventLoop.scheduleTask(in: config.requestHeadTimeout) { [self] in
            headTimer = nil
            respondWithError(
                status: 408, kind: .requestTimeout,
                detail: "request head not complete within \(seconds(config.requestHeadTimeout))")
        }
    }

    private func cancelHeadTimer() {
        headTimer?.cancel()
        headTimer = nil
    }

    /// Arms the response timeout. The timer task is not rescheduled per request: one
    /// pending check re-arms itself for the current deadline, so a connection doing
    /// thousands of quick requests schedules a timer once per timeout period.
    /// A route's timeouts give a request its own deadline, possibly earlier than the
    /// pending check: then the check is moved earlier.
    private func startResponseTimer() {
        let now = NIODeadline.now()
        let deadline: NIODeadline
        if let routeDeadlines {
            (deadline, responseLimit) = routeDeadlines.responseDeadline(attemptSentAt: now)
        } else {
            deadline = now + config.responseTimeout
            responseLimit = nil
        }
        responseDeadline = deadline
        if responseTimer == nil {
            scheduleResponseCheck(at: deadline)
        } else if deadline < responseTimerAt {
            responseTimer?.cancel()
            scheduleResponseCheck(at: deadline)
        }
    }

    private func scheduleResponseCheck(at deadline: NIODeadline) {
        guard let context else { return }
        responseTimerAt = deadline
        responseTimer = context.eventLoop.scheduleTask(deadline: deadline) { [self] in
            responseTimer = nil
            responseTimerAt = .distantFuture
            guard let armed = responseDeadline else { return }
            guard armed <= .now() else {
                scheduleResponseCheck(at: armed)
                return
            }
            responseDeadline = nil
            guard responsePhase == .head, let connection = upstream else { return }
            if case .backendRequest? = responseLimit, retryAfterFailure(status: nil, reason: .timeout) {
                // The attempt's own limit ran out and the route retries: another attempt.
                return
            }
            settleEndpoint(.failed)
            upstream = nil
            connection.close()
            let answer = ExchangeDeadlines.answer(
                responseLimit ?? .proxy(config.responseTimeout), destination: describe(destination), route: routeName)
            respondWithError(status: answer.status, kind: answer.kind, detail: answer.detail)
        }
    }

    private func cancelResponseTimer() {
        responseDeadline = nil
    }

    /// Closes a keep-alive client that sent no request for a whole `clientIdleTimeout`
    /// period. No timer per request: one check per period compares the request count
    /// with the last check's, so a connection is closed after between one and two
    /// periods without a request, and only while nothing is in flight.
    private func scheduleIdleCheck() {
        guard let period = config.clientIdleTimeout, let context else { return }
        idleTimer = context.eventLoop.scheduleTask(in: period) { [self] in
            idleTimer = nil
            if isIdle && requestCount == requestCountAtIdleCheck {
                closeClient()
            } else {
                requestCountAtIdleCheck = requestCount
                scheduleIdleCheck()
            }
        }
    }

    private func cancelTimers() {
        retryTimer?.cancel()
        retryTimer = nil
        idleTimer?.cancel()
        idleTimer = nil
        cancelHeadTimer()
        responseDeadline = nil
        responseTimer?.cancel()
        responseTimer = nil
    }
}

@available(*, unavailable)
extension HTTP1ProxyHandler: Sendable {}

extension HTTP1ProxyHandler: HTTP1UpstreamOwner {}

/// `10.0.0.1:80` or `[fd00::1]:80`, for error messages and logs.
func describe(_ address: SocketAddress) -> String {
    switch address {
    case .v4: return "\(address.ipAddress ?? "?"):\(address.port ?? 0)"
    case .v6: return "[\(address.ipAddress ?? "?")]:\(address.port ?? 0)"
    default: return "\(address)"
    }
}

/// A short reason for an I/O failure: "connection refused", "timed out", …
func describe(_ error: Error) -> String {
    if let io = error as? IOError {
        return String(cString: strerror(io.errnoCode))
    }
    if case ChannelError.connectTimeout? = error as? ChannelError {
        return "timed out"
    }
    return "\(error)"
}

func seconds(_ amount: TimeAmount) -> String {
    let milliseconds = amount.nanoseconds / 1_000_000
    return milliseconds % 1000 == 0 ? "\(milliseconds / 1000)s" : "\(milliseconds)ms"
}
