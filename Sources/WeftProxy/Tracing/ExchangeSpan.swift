import Glibc
import NIOCore
import W3CTraceContext
import WeftTelemetry

/// The span of one request through this sidecar (issue 12), shared by the HTTP/1 and
/// HTTP/2 drivers: its ids, the context it carries downstream, and its clock.
///
/// A class: a driver holds one reference per request, nil when the request is not
/// traced, so an untraced request pays a null check and nothing else.
///
/// The clock splits the request's time into four parts, in integer microseconds:
/// - connect: TCP connects to endpoints (0 on a pooled connection; an HTTP/2 stream that
///   waited for a new connection's dial counts the part it waited for),
/// - tls: mesh TLS handshakes (0 when reused),
/// - upstream: from each attempt's request sent to its response's end (or its failure):
///   the next hop's time, or for an inbound span the app's own,
/// - proxy: the rest, this sidecar's own time (parse, route, balance, queue, write, and a
///   retry's backoff).
/// The parts add up to the span's duration by construction.
///
/// Attempts: the first attempt's request carries this span's id; when a request is
/// retried, each later attempt carries an id of its own, and each attempt is recorded as
/// a child span (so the callee's span of a retry hangs from that attempt).
final class ExchangeSpan {
    let traceID: TraceID
    let spanID: SpanID
    let parentSpanID: SpanID?
    let traceState: String?
    /// The context format the request came with: the app downstream gets the same one
    /// (and W3C `traceparent` always).
    let format: IncomingTrace.Format
    /// False: the context is only carried on (the trace's decision is "not sampled").
    let isSampled: Bool
    /// Monotonic nanoseconds (`LoopContext.now()`) and wall-clock Unix nanoseconds at the
    /// request's start.
    let startedAt: UInt64
    let startUnixNano: UInt64

    private(set) var connectNanos: UInt64 = 0
    private(set) var tlsNanos: UInt64 = 0
    private(set) var upstreamNanos: UInt64 = 0
    /// The span id the current attempt's request carries downstream.
    private(set) var carriedSpanID: SpanID
    private var attempt = Attempt()
    /// Attempts that ended in a retry (empty unless the request was retried).
    private var endedAttempts: [Attempt] = []
    /// A link to the request this one was inferred to serve (`weft.link.inferred`).
    var link: SpanRecord.Link?
    /// What the span records of its request besides the clock; set when sampled.
    var facts: SpanFacts?

    private struct Attempt {
        var spanID: SpanID? = nil
        var beganAt: UInt64 = 0
        var sentAt: UInt64 = 0
        var endedAt: UInt64 = 0
        var connectNanos: UInt64 = 0
        var tlsNanos: UInt64 = 0
        var endpoint: String? = nil
        var failure: String? = nil
        var status: Int? = nil
    }

    /// The span of a request that arrived with `incoming` (nil: none), or nil when there is
    /// nothing to do: the caller decided "not sampled" (its context then passes on
    /// untouched), or there is no context and sampling is 0.
    /// - Parameter b3: the B3 form the request also carried, when W3C won over it (a hop
    ///   that added `traceparent` beside B3): it is carried on too.
    /// - Parameter serving: outbound, the one inbound request the pod is serving, if there is
    ///   exactly one (`InflightRequests.sole`): a request without context joins its trace,
    ///   linked and marked as inferred.
    static func start(
        incoming: IncomingTrace?, b3: IncomingTrace.Format? = nil, serving: (trace: TraceID, span: SpanID)? = nil,
        sampler: TraceSampler, random: inout LoopRandom, at now: UInt64
    ) -> ExchangeSpan? {
        if let incoming {
            guard sampler.isSampled(incoming.traceID, parent: incoming.sampled) else { return nil }
            return ExchangeSpan(
                traceID: incoming.traceID, parentSpanID: incoming.parentSpanID, traceState: incoming.traceState,
                format: incoming.format == .w3c ? (b3 ?? .w3c) : incoming.format, isSampled: true, random: &random,
                at: now)
        }
        if let serving {
            let span = ExchangeSpan(
                traceID: serving.trace, parentSpanID: serving.span, traceState: nil, format: .w3c, isSampled: true,
                random: &random, at: now)
            span.link = SpanRecord.Link(
                traceID: serving.trace, spanID: serving.span, attributes: [("weft.link.inferred", .bool(true))])
            return span
        }
        guard sampler.ratio > 0 else { return nil }
        let traceID = random.traceID()
        return ExchangeSpan(
            traceID: traceID, parentSpanID: nil, traceState: nil, format: .w3c,
            isSampled: sampler.isSampled(traceID, parent: nil), random: &random, at: now)
    }

    private init(
        traceID: TraceID, parentSpanID: SpanID?, traceState: String?, format: IncomingTrace.Format, isSampled: Bool,
        random: inout LoopRandom, at now: UInt64
    ) {
        self.traceID = traceID
        self.parentSpanID = parentSpanID
        self.traceState = traceState
        self.format = format
        self.isSampled = isSampled
        self.spanID = random.spanID()
        self.carriedSpanID = spanID
        self.startedAt = now
        // `now` may be a little in the past (the request's first byte): the wall clock is
        // taken back by as much.
        self.startUnixNano = Self.wallClock() &- (LoopContext.now() &- min(now, LoopContext.now()))
    }

    /// Unix time in nanoseconds.
    static func wallClock() -> UInt64 {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return UInt64(now.tv_sec) * 1_000_000_000 + UInt64(now.tv_nsec)
    }

    // MARK: - The clock

    /// An attempt begins: the request is handed to an endpoint's connection (pooled or new).
    func attemptBegan(at now: UInt64, endpoint: String?) {
        attempt.beganAt = now
        attempt.endpoint = endpoint
    }

    /// The attempt's request was sent, on a connection whose dial took `connect` and `tls`
    /// nanoseconds (0 and 0 when pooled).
    func requestSent(at now: UInt64, connect: UInt64, tls: UInt64) {
        attempt.sentAt = now
        attempt.connectNanos = connect
        attempt.tlsNanos = tls
        connectNanos &+= connect
        tlsNanos &+= tls
    }

    /// The attempt failed and the request is sent again: the next attempt carries an id of
    /// its own.
    func attemptRetried(at now: UInt64, status: Int?, failure: String, random: inout LoopRandom) {
        endAttempt(at: now)
        attempt.status = status
        attempt.failure = failure
        // The first attempt's request carried this span's own id: its child span gets a
        // new one (the callee's span of that attempt hangs from this span).
        if attempt.spanID == nil { attempt.spanID = random.spanID() }
        endedAttempts.append(attempt)
        attempt = Attempt()
        carriedSpanID = random.spanID()
        attempt.spanID = carriedSpanID
    }

    private func endAttempt(at now: UInt64) {
        attempt.endedAt = now
        if attempt.sentAt != 0 && now > attempt.sentAt { upstreamNanos &+= now - attempt.sentAt }
    }

    // MARK: - Context carried on

    /// The `traceparent` value the current attempt's request carries.
    var traceparent: String {
        String(unsafeUninitializedCapacity: 55) { out in
            var text = TextWriter(out)
            writeTraceparent(&text)
            return text.count
        }
    }

    /// The most bytes `headerLines` takes.
    static let maxHeaderLinesLength = 256

    /// The field lines (each ending in CRLF) that carry the context downstream: W3C
    /// `traceparent`, and B3 in the form the request came with, if it came with B3.
    var headerLines: String {
        String(unsafeUninitializedCapacity: Self.maxHeaderLinesLength) { out in
            var text = TextWriter(out)
            writeHeaderLines(&text)
            return text.count
        }
    }

    /// Appends `headerLines` to `buffer`, with no string made on the way: this runs for
    /// every traced HTTP/1 request.
    func writeHeaderLines(into buffer: inout ByteBuffer) {
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: Self.maxHeaderLinesLength) { raw in
            var text = TextWriter(raw.bindMemory(to: UInt8.self))
            writeHeaderLines(&text)
            return text.count
        }
    }

    private func writeHeaderLines(_ text: inout TextWriter) {
        text.put("traceparent: ")
        writeTraceparent(&text)
        text.put("\r\n")
        switch format {
        case .w3c:
            break
        case .b3Single:
            text.put("b3: ")
            text.hex(traceID.bytes)
            text.put("-")
            text.hex(carriedSpanID.bytes)
            text.put(isSampled ? "-1\r\n" : "-0\r\n")
        case .b3Multi:
            text.put("x-b3-traceid: ")
            text.hex(traceID.bytes)
            text.put("\r\nx-b3-spanid: ")
            text.hex(carriedSpanID.bytes)
            if let parent = carriedParentSpanID {
                text.put("\r\nx-b3-parentspanid: ")
                text.hex(parent.bytes)
            }
            text.put(isSampled ? "\r\nx-b3-sampled: 1\r\n" : "\r\nx-b3-sampled: 0\r\n")
        }
    }

    /// The parent of the span the request carries (B3 names it): the caller's span for this
    /// span, this span for an attempt's; nil for a trace's first span.
    private var carriedParentSpanID: SpanID? { carriedSpanID == spanID ? parentSpanID : spanID }

    private func writeTraceparent(_ text: inout TextWriter) {
        text.put("00-")
        text.hex(traceID.bytes)
        text.put("-")
        text.hex(carriedSpanID.bytes)
        text.put(isSampled ? "-01" : "-00")
    }

    /// The same as header fields (lowercase names), for HTTP/2.
    var headerFields: [(String, String)] {
        let sampled = isSampled ? "1" : "0"
        switch format {
        case .w3c:
            return [("traceparent", traceparent)]
        case .b3Single:
            return [
                ("traceparent", traceparent),
                ("b3", "\(Self.hex(traceID.bytes, 32))-\(Self.hex(carriedSpanID.bytes, 16))-\(sampled)"),
            ]
        case .b3Multi:
            return [
                ("traceparent", traceparent), ("x-b3-traceid", Self.hex(traceID.bytes, 32)),
                ("x-b3-spanid", Self.hex(carriedSpanID.bytes, 16)),
            ] + (carriedParentSpanID.map { [("x-b3-parentspanid", Self.hex($0.bytes, 16))] } ?? []) + [
                ("x-b3-sampled", sampled)
            ]
        }
    }

    /// Lowercase hex text of an id's `digits / 2` bytes.
    private static func hex<T>(_ id: T, _ digits: Int) -> String {
        String(unsafeUninitializedCapacity: digits) { out in
            var text = TextWriter(out)
            text.hex(id)
            return text.count
        }
    }

    // MARK: - Finishing

    /// Ends the span at `now` and hands it (and, when the request was retried, a span per
    /// attempt) to `sink` (the loop's `SpanQueue`). Nothing when unsampled.
    /// - Parameters:
    ///   - name: the span's name (`GET`), and what follows it after a space (the route).
    ///   - error: the span's error status message, when it failed.
    ///   - attributes: adds the driver's (request, response, route, peers); the time
    ///     split follows. It may run more than once, adding the same each time (the sink
    ///     writes in one pass, or measures then writes a span that did not fit).
    func finish(
        at now: UInt64, name: String, nameSuffix: String? = nil, kind: SpanRecord.Kind, error: String?,
        into sink: some SpanSink, attributes: (inout SpanAttributes) -> Void
    ) {
        guard isSampled else { return }
        endAttempt(at: now)
        let duration = now &- startedAt
        let (connect, tls, upstream) = (connectNanos, tlsNanos, upstreamNanos)
        let retries = endedAttempts.count
        let isLinked = link != nil
        sink.add(
            SpanHeader(
                traceID: traceID, spanID: spanID, parentSpanID: parentSpanID, traceState: traceState, name: name,
                nameSuffix: nameSuffix, kind: kind, startUnixNano: startUnixNano,
                endUnixNano: startUnixNano &+ duration, link: link, isError: error != nil, statusMessage: error)
        ) { out in
            attributes(&out)
            Self.addSplit(duration: duration, connect: connect, tls: tls, upstream: upstream, to: &out)
            if retries > 0 { out.add("weft.retry_count", Int64(retries)) }
            if isLinked { out.add("weft.link.inferred", true) }
        }
        guard !endedAttempts.isEmpty else { return }
        for (index, ended) in (endedAttempts + [attempt]).enumerated() {
            guard let id = ended.spanID, ended.beganAt != 0 else { continue }
            let end = ended.endedAt == 0 ? now : ended.endedAt
            let upstream = ended.sentAt == 0 ? 0 : end &- ended.sentAt
            sink.add(
                SpanHeader(
                    traceID: traceID, spanID: id, parentSpanID: spanID, name: name,
                    nameSuffix: "attempt \(index + 1)", kind: .internal,
                    startUnixNano: startUnixNano &+ (ended.beganAt &- startedAt),
                    endUnixNano: startUnixNano &+ (end &- startedAt), isError: ended.failure != nil,
                    statusMessage: ended.failure)
            ) { out in
                out.add("weft.attempt", Int64(index + 1))
                if let endpoint = ended.endpoint { out.add("weft.endpoint", endpoint) }
                if let status = ended.status { out.add("http.response.status_code", Int64(status)) }
                if let failure = ended.failure { out.add("weft.retry.reason", failure) }
                Self.addSplit(
                    duration: end &- ended.beganAt, connect: ended.connectNanos, tls: ended.tlsNanos,
                    upstream: upstream, to: &out)
            }
        }
    }

    /// `weft.duration.{proxy,connect,tls,upstream}` in microseconds; proxy is what the
    /// others leave of `duration`. Each part is rounded down, except proxy, which takes the
    /// remainder, so the four add up to the duration's microseconds.
    static func addSplit(
        duration: UInt64, connect: UInt64, tls: UInt64, upstream: UInt64, to out: inout SpanAttributes
    ) {
        let total = duration / 1000
        let connectMicros = min(connect / 1000, total)
        let tlsMicros = min(tls / 1000, total - connectMicros)
        let upstreamMicros = min(upstream / 1000, total - connectMicros - tlsMicros)
        let proxy = total - connectMicros - tlsMicros - upstreamMicros
        out.add("weft.duration.proxy", Int64(proxy))
        out.add("weft.duration.connect", Int64(connectMicros))
        out.add("weft.duration.tls", Int64(tlsMicros))
        out.add("weft.duration.upstream", Int64(upstreamMicros))
    }
}

/// Where finished spans go: the loop's `SpanQueue` (tests keep them).
protocol SpanSink {
    /// Adds a span; `attributes` may run more than once, and adds the same each time.
    func add(_ span: SpanHeader, attributes: (inout SpanAttributes) -> Void)
}

/// What a sampled span records of its request besides the clock, gathered as the request
/// goes: from its head, its plan, the proxy's own answer.
struct SpanFacts {
    /// Bytes of a path or authority a span keeps (heads may be 64 KiB: spans stay small).
    static let maxText = 1024

    let method: String
    let path: String
    let host: String?
    var route: String? = nil
    /// The backend as spans name it (`BackendPlan.spanName`).
    var backend: String? = nil
    /// Outbound: the endpoint the request went to; inbound: the caller.
    var peer: SpanPeer? = nil
    /// The proxy's own error, when it answered the request itself.
    var error: String? = nil
    /// gRPC: the call's `grpc-status`, when the response carried one.
    var grpcStatus: Int? = nil

    /// The error status message of a span that ended with `status`: the proxy's own error,
    /// else a 5xx (OpenTelemetry marks 4xx as errors only for clients; a proxy's CLIENT
    /// span forwards what the app decided, so it follows the server rule).
    func errorMessage(status: Int) -> String? {
        error ?? (status >= 500 ? "HTTP \(status)" : nil)
    }

    /// Adds the span's attributes to `out`: OpenTelemetry's semantic conventions where
    /// they exist, ours (`weft.*`) where they do not.
    /// - Parameters:
    ///   - own: this pod's identity, encoded as the side it is on (`SpanQueue.ownIdentity`).
    ///   - grpc: the call was gRPC (`rpc.*` from its path).
    func add(
        to out: inout SpanAttributes, status: Int, isInbound: Bool, own: EncodedAttributes, protocolVersion: String,
        grpc: Bool
    ) {
        out.add("http.request.method", method)
        out.add("url.path", path)
        out.add("http.response.status_code", Int64(status))
        out.add("network.protocol.version", protocolVersion)
        if let host { out.add("server.address", host) }
        if grpc {
            out.add("rpc.system", "grpc")
            // `/package.Service/Method`
            let parts = path.split(separator: "/", omittingEmptySubsequences: true)
            if parts.count == 2 {
                out.add("rpc.service", String(parts[0]))
                out.add("rpc.method", String(parts[1]))
            }
            if let grpcStatus { out.add("rpc.grpc.status_code", Int64(grpcStatus)) }
        }
        if let peer { out.add(peer.attributes) }
        out.add(own)
        if !isInbound {
            if let route { out.add("weft.route", route) }
            if let backend { out.add("weft.backend", backend) }
        }
    }
}

/// The other side of a span's request, made once and kept (by the endpoint, or the
/// connection): its address as spans name it, and its attributes encoded, so a traced
/// request formats and encodes none of them (formatting an address calls inet_ntop and
/// sprintf: thousands of instructions).
final class SpanPeer {
    /// `ip:port` (`[ip]:port` for IPv6).
    let text: String
    /// Outbound: `network.peer.address`, `weft.destination.identity` (when known),
    /// `weft.endpoint`; inbound: `network.peer.address`, `weft.source.identity` (the
    /// caller's verified mesh identity, when it has one).
    let attributes: EncodedAttributes

    /// An endpoint (or the original destination) a request goes to.
    init(endpoint address: SocketAddress, identity: String?) {
        let ip = address.ipAddress ?? "?"
        let text = describe(address)
        self.text = text
        attributes = EncodedAttributes { out in
            out.add("network.peer.address", ip)
            if let identity { out.add("weft.destination.identity", identity) }
            out.add("weft.endpoint", text)
        }
    }

    /// The caller of an inbound request.
    init(caller address: SocketAddress?, identity: String?) {
        let ip = address.flatMap(\.ipAddress)
        text = address.map(describe) ?? "?"
        attributes = EncodedAttributes { out in
            if let ip { out.add("network.peer.address", ip) }
            if let identity { out.add("weft.source.identity", identity) }
        }
    }
}

/// Writes ASCII into a string's uninitialized storage (`String(unsafeUninitializedCapacity:)`).
private struct TextWriter {
    private let out: UnsafeMutableBufferPointer<UInt8>
    private(set) var count = 0

    init(_ out: UnsafeMutableBufferPointer<UInt8>) { self.out = out }

    mutating func put(_ text: StaticString) {
        let length = text.utf8CodeUnitCount
        (out.baseAddress! + count).update(from: text.utf8Start, count: length)
        count += length
    }

    /// Lowercase hex of the bytes of `id` (a trace or span id's byte tuple), two digits a
    /// byte from a table (a traced request writes 48 to 96 digits).
    mutating func hex<T>(_ id: T) {
        let start = out.baseAddress! + count
        let written = Self.pairs.withUnsafeBufferPointer { table in
            withUnsafeBytes(of: id) { bytes in
                for index in 0..<bytes.count {
                    let pair = Int(bytes[index]) &* 2
                    start[index &* 2] = table[pair]
                    start[index &* 2 &+ 1] = table[pair &+ 1]
                }
                return bytes.count * 2
            }
        }
        count += written
    }

    /// Each byte's two lowercase hex digits, in order.
    private static let pairs: [UInt8] = (0...255).flatMap { byte in
        [digit(UInt8(byte) >> 4), digit(UInt8(byte) & 0x0F)]
    }

    @inline(__always)
    private static func digit(_ nibble: UInt8) -> UInt8 { nibble < 10 ? 0x30 + nibble : 0x57 + nibble }
}
