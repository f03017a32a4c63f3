import NIOCore
import NIOHPACK
import NIOHTTP2

/// Carries one HTTP/1.1 exchange on one HTTP/2 stream between two sidecars (MeshConfig
/// `mtls.http1Transport: HTTP2`, Linkerd's way): the handlers on either side keep speaking
/// HTTP/1 bytes, and this handler, in the stream's channel, turns them into frames and back.
///
/// - `client` (the calling sidecar): the request bytes `HTTP1UpstreamConnection` writes
///   become HEADERS and DATA; the response's frames become HTTP/1.1 response bytes for it.
/// - `server` (the called sidecar): the request's frames become HTTP/1.1 request bytes
///   for `HTTP1ProxyHandler`, which authorizes the request and sends it to the app as
///   usual; the response bytes it writes become frames.
///
/// Bytes written here were already parsed strictly by `HTTP1ProxyHandler` (requests on
/// the client side, the app's responses on the server side), and frames arrive through
/// NIOHTTP2's header validation; the HTTP/1 bytes made from them are parsed strictly again
/// by the handler that reads them. Hop-by-hop fields do not cross (RFC 9113 §8.2.2), a
/// body without Content-Length is chunked on the HTTP/1 side, and HTTP/1 trailers are
/// dropped. Upgrades and CONNECT do not use this path (the pool sends them on HTTP/1.1).
final class HTTP1OverHTTP2Bridge: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTP2Frame.FramePayload
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = HTTP2Frame.FramePayload

    enum Role { case client, server }

    private enum Outgoing {
        /// Waiting for a whole head in `pending`.
        case head
        case body(HTTP1BodyTracker)
        case done
    }

    private enum Incoming {
        case head
        /// `chunked`: the HTTP/1 side frames the body in chunks (no Content-Length came).
        case body(chunked: Bool)
        case done
    }

    private let role: Role
    private var outgoing = Outgoing.head
    private var incoming = Incoming.head
    /// Written bytes not yet turned into frames (a head not yet complete).
    private var pending: ByteBuffer?
    private var parsedHead = HTTP1Head()
    /// The request's method: the client side learns it from the bytes written, the server
    /// side from the frames read. A response to HEAD has no body whatever it declares.
    private var requestMethod = HTTP1Method.other
    /// Frames ending the stream were written and not yet flushed.
    private var endsStream = false
    private var isFlushScheduled = false

    init(role: Role) {
        self.role = role
    }

    // MARK: HTTP/1 bytes written → frames

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        var bytes = unwrapOutboundIn(data)
        // The frames this write makes; the promise goes with the last, so a caller that
        // closes once its write completes closes after its bytes left.
        var frames: [HTTP2Frame.FramePayload] = []
        do {
            while bytes.readableBytes > 0 {
                switch outgoing {
                case .head:
                    if pending == nil {
                        pending = bytes
                    } else {
                        pending!.writeBuffer(&bytes)
                    }
                    bytes.moveReaderIndex(to: bytes.writerIndex)
                    // An interim (1xx) head leaves `outgoing` at `.head`: the next may be buffered.
                    while case .head = outgoing, try headIfComplete(into: &frames) {}
                    if case .head = outgoing { break }
                    if let rest = pending { bytes = rest }
                    pending = nil
                case .body(var tracker):
                    var ranges: [Range<Int>] = []
                    let consumed = try bytes.withUnsafeReadableBytes { raw in
                        try tracker.consume(raw, data: { ranges.append($0) })
                    }
                    let base = bytes.readerIndex
                    for range in ranges {
                        let slice = bytes.getSlice(at: base + range.lowerBound, length: range.count)!
                        frames.append(.data(.init(data: .byteBuffer(slice))))
                    }
                    bytes.moveReaderIndex(forwardBy: consumed)
                    guard tracker.isComplete else {
                        outgoing = .body(tracker)
                        continue
                    }
                    outgoing = .done
                    endStream(&frames, context: context)
                    if bytes.readableBytes > 0 {
                        throw HTTP1ParseError(.invalidChunk, "bytes after the end of the message")
                    }
                case .done:
                    throw HTTP1ParseError(.invalidChunk, "bytes after the end of the message")
                }
            }
        } catch {
            promise?.fail(error)
            context.fireErrorCaught(error)
            context.close(promise: nil)
            return
        }
        guard let last = frames.popLast() else {
            promise?.succeed()
            return
        }
        if case .done = outgoing { endsStream = true }
        for frame in frames { context.write(wrapOutboundOut(frame), promise: nil) }
        context.write(wrapOutboundOut(last), promise: promise)
    }

    /// Marks the last DATA frame as the stream's end, or adds an empty one.
    private func endStream(_ frames: inout [HTTP2Frame.FramePayload], context: ChannelHandlerContext) {
        if case .data(var data) = frames.last {
            data.endStream = true
            frames[frames.count - 1] = .data(data)
        } else {
            let empty = context.channel.allocator.buffer(capacity: 0)
            frames.append(.data(.init(data: .byteBuffer(empty), endStream: true)))
        }
    }

    /// Makes the HEADERS frame for the head in `pending` once that is complete; what
    /// follows the head stays in `pending`.
    /// Returns whether it made one.
    private func headIfComplete(into frames: inout [HTTP2Frame.FramePayload]) throws -> Bool {
        guard var buffer = pending, buffer.readableBytes > 0 else { return false }
        let kind: HTTP1HeadParser.Kind =
            role == .client ? .request : .response(requestMethod: requestMethod)
        guard let end = try buffer.withUnsafeReadableBytes({ try HTTP1HeadParser.findEnd($0, resumeAt: 0) })
        else { return false }
        var head = parsedHead
        let headers = try buffer.withUnsafeReadableBytes { raw -> HPACKHeaders in
            let bytes = UnsafeRawBufferPointer(rebasing: raw[0..<end])
            try HTTP1HeadParser.parse(bytes, kind: kind, into: &head)
            return Self.headers(from: bytes, head: head, role: role)
        }
        parsedHead = head
        buffer.moveReaderIndex(forwardBy: end)
        pending = buffer
        if role == .client { requestMethod = head.method }
        // A 1xx is interim: the final head follows.
        let interim = role == .server && head.status >= 100 && head.status < 200
        let endStream = head.framing == .none && !interim
        frames.append(.headers(.init(headers: headers, endStream: endStream)))
        if !interim { outgoing = endStream ? .done : .body(HTTP1BodyTracker(framing: head.framing)) }
        return true
    }

    func flush(context: ChannelHandlerContext) {
        // The flush that sends END_STREAM closes the stream, and with it this channel, at
        // once. On the called side, `HTTP1ProxyHandler` flushes while it finishes the
        // exchange, before it returns the app's connection to its pool: a close then would
        // make it close that connection too. So that flush runs just after.
        guard endsStream, role == .server else {
            context.flush()
            return
        }
        guard !isFlushScheduled else { return }
        isFlushScheduled = true
        context.eventLoop.assumeIsolated().execute { [self] in
            isFlushScheduled = false
            flushEnd(context)
        }
    }

    private func flushEnd(_ context: ChannelHandlerContext) {
        guard endsStream else { return }
        endsStream = false
        context.flush()
    }

    func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        // The end goes out before the close, which then finds the stream closed.
        flushEnd(context)
        // A response framed by the app's close ends its stream cleanly, not with a reset.
        if role == .server, case .body(let tracker) = outgoing, tracker.isUntilClose {
            outgoing = .done
            let empty = context.channel.allocator.buffer(capacity: 0)
            context.writeAndFlush(wrapOutboundOut(.data(.init(data: .byteBuffer(empty), endStream: true))))
                .whenComplete { _ in context.close(mode: mode, promise: promise) }
            return
        }
        context.close(mode: mode, promise: promise)
    }

    /// The HTTP/2 settings of both ends: a header list as large as an HTTP/1 head may be
    /// (NIOHTTP2's default, 16 KiB, would fail a 20 KiB head of cookies as a connection
    /// error), and, on the called side, room for many exchanges at once.
    static func settings(maxConcurrentStreams: Int?) -> [HTTP2Setting] {
        var settings = [
            HTTP2Setting(parameter: .maxHeaderListSize, value: HTTP1HeadParser.maxHeadBytes * 2),
            // A whole head in one HEADERS frame: blocks split into CONTINUATION frames
            // stalled the stream here (a 30 KB cookie; 17 KB passed).
            HTTP2Setting(parameter: .maxFrameSize, value: HTTP1HeadParser.maxHeadBytes * 2),
        ]
        if let maxConcurrentStreams {
            settings.append(HTTP2Setting(parameter: .maxConcurrentStreams, value: maxConcurrentStreams))
        } else {
            settings.append(HTTP2Setting(parameter: .enablePush, value: 0))
        }
        return settings
    }

    /// The HTTP/2 fields for an HTTP/1 head: pseudo-fields first, hop-by-hop fields left out.
    static func headers(from bytes: UnsafeRawBufferPointer, head: HTTP1Head, role: Role) -> HPACKHeaders {
        var headers = HPACKHeaders()
        headers.reserveCapacity(16)
        var cursor = 0
        while bytes[cursor] != 0x0D { cursor += 1 }  // the start line
        let startLine = 0..<cursor
        cursor += 2
        if role == .client {
            let methodEnd = bytes[startLine].firstIndex(of: 0x20)!
            headers.add(name: ":method", value: string(bytes, 0..<methodEnd))
            headers.add(name: ":scheme", value: "http")
            var target = string(bytes, head.target)
            var authority = head.host.map { string(bytes, $0) }
            // An absolute-form target (RFC 9112 §3.2.2) carries the authority itself.
            if target.first != "/", target != "*", let colon = target.firstIndex(of: ":"),
                target[colon...].hasPrefix("://")
            {
                let rest = target[target.index(colon, offsetBy: 3)...]
                let pathStart = rest.firstIndex(where: { $0 == "/" || $0 == "?" }) ?? rest.endIndex
                authority = String(rest[..<pathStart])
                target = pathStart == rest.endIndex ? "/" : String(rest[pathStart...])
                if target.first == "?" { target = "/" + target }
            }
            if let authority, !authority.isEmpty { headers.add(name: ":authority", value: authority) }
            headers.add(name: ":path", value: target)
        } else {
            headers.add(name: ":status", value: String(head.status))
        }
        var dropped = head.droppedLines.makeIterator()
        var nextDropped = dropped.next()
        while bytes[cursor] != 0x0D {
            let lineStart = cursor
            while bytes[cursor] != 0x0A { cursor += 1 }
            cursor += 1
            while let range = nextDropped, range.upperBound <= lineStart { nextDropped = dropped.next() }
            if let range = nextDropped, range.lowerBound == lineStart { continue }
            var colon = lineStart
            while bytes[colon] != 0x3A { colon += 1 }
            var valueStart = colon + 1
            while bytes[valueStart] == 0x20 || bytes[valueStart] == 0x09 { valueStart += 1 }
            var valueEnd = cursor - 2
            while valueEnd > valueStart && (bytes[valueEnd - 1] == 0x20 || bytes[valueEnd - 1] == 0x09) {
                valueEnd -= 1
            }
            let name = string(bytes, lineStart..<colon).lowercased()
            switch name {
            case "connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "host":
                continue
            case "te":
                // Only "trailers" may cross (RFC 9113 §8.2.2).
                guard equalsLowercase(bytes, valueStart..<valueEnd, "trailers") else { continue }
            case "content-length" where role == .server && (head.status < 200 || head.status == 204):
                continue  // such a response has no body; HTTP/2 checks a length against its DATA
            default:
                break
            }
            headers.add(name: name, value: string(bytes, valueStart..<valueEnd))
        }
        return headers
    }

    private static func string(_ bytes: UnsafeRawBufferPointer, _ range: Range<Int>) -> String {
        String(decoding: UnsafeRawBufferPointer(rebasing: bytes[range]), as: UTF8.self)
    }

    // MARK: frames read → HTTP/1 bytes

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .headers(let headers):
            readHeaders(headers, context: context)
        case .data(let frame):
            guard case .byteBuffer(var body) = frame.data else { return }
            guard case .body(let chunked) = incoming else {
                if body.readableBytes > 0 { protocolError(context, "DATA before HEADERS or after the end") }
                return
            }
            var out = context.channel.allocator.buffer(capacity: body.readableBytes + 16)
            if chunked && body.readableBytes > 0 {
                out.writeString(String(body.readableBytes, radix: 16))
                out.writeStaticString("\r\n")
                out.writeBuffer(&body)
                out.writeStaticString("\r\n")
            } else if !chunked {
                out.writeBuffer(&body)
            }
            if frame.endStream {
                if chunked { out.writeStaticString("0\r\n\r\n") }
                incoming = .done
            }
            if out.readableBytes > 0 { context.fireChannelRead(wrapInboundOut(out)) }
        default:
            // WINDOW_UPDATE, PRIORITY, RST_STREAM...: the stream channel acts on them; the
            // HTTP/1 side has no use for them.
            break
        }
    }

    private func readHeaders(_ frame: HTTP2Frame.FramePayload.Headers, context: ChannelHandlerContext) {
        let headers = frame.headers
        switch incoming {
        case .head:
            var out = context.channel.allocator.buffer(capacity: 256)
            var hasLength = false
            var noBody = frame.endStream
            /// A response that has no body whatever its fields say.
            var bodyless = false
            if role == .server {
                guard let method = headers.first(name: ":method"), let path = headers.first(name: ":path"),
                    Self.isValidRequestLine(method: method, path: path)
                else {
                    protocolError(context, "request without a valid :method and :path")
                    return
                }
                requestMethod = Self.method(method)
                out.writeString(method)
                out.writeStaticString(" ")
                out.writeString(path)
                out.writeStaticString(" HTTP/1.1\r\n")
                if let authority = headers.first(name: ":authority"), !authority.isEmpty {
                    out.writeStaticString("host: ")
                    out.writeString(authority)
                    out.writeStaticString("\r\n")
                }
            } else {
                guard let status = headers.first(name: ":status").flatMap({ Int($0) }), status >= 100, status < 600
                else {
                    protocolError(context, "response without a valid :status")
                    return
                }
                out.writeStaticString("HTTP/1.1 ")
                out.writeString(String(status))
                out.writeStaticString(" ")
                out.writeString(HTTPStatus.reason(status))
                out.writeStaticString("\r\n")
                guard status != 101 else {
                    // Upgrades do not take this path: a 101 here is a broken peer.
                    protocolError(context, "101 Switching Protocols on a stream")
                    return
                }
                if status < 200 {
                    // An interim response: the final head follows.
                    guard Self.writeFields(headers, to: &out) else {
                        protocolError(context, "a field name or value not allowed in HTTP/1")
                        return
                    }
                    out.writeStaticString("\r\n")
                    context.fireChannelRead(wrapInboundOut(out))
                    return
                }
                bodyless = requestMethod == .head || status == 204 || status == 304
                noBody = noBody || bodyless
            }
            hasLength = headers.contains(name: "content-length")
            guard Self.writeFields(headers, to: &out) else {
                protocolError(context, "a field name or value not allowed in HTTP/1")
                return
            }
            let chunked = !noBody && !hasLength
            if chunked {
                out.writeStaticString("transfer-encoding: chunked\r\n")
            } else if frame.endStream && !hasLength && role == .client && !bodyless {
                out.writeStaticString("content-length: 0\r\n")
            }
            out.writeStaticString("\r\n")
            if frame.endStream {
                if chunked { out.writeStaticString("0\r\n\r\n") }
                incoming = .done
            } else {
                incoming = noBody && role == .client ? .body(chunked: false) : .body(chunked: chunked)
            }
            context.fireChannelRead(wrapInboundOut(out))
        case .body(let chunked):
            // Trailers end the message; HTTP/1 carries them only in a chunked body.
            guard frame.endStream else {
                protocolError(context, "HEADERS in the middle of a body")
                return
            }
            incoming = .done
            guard chunked else { return }
            var out = context.channel.allocator.buffer(capacity: 64)
            out.writeStaticString("0\r\n")
            guard Self.writeFields(headers, to: &out) else {
                protocolError(context, "a trailer name or value not allowed in HTTP/1")
                return
            }
            out.writeStaticString("\r\n")
            context.fireChannelRead(wrapInboundOut(out))
        case .done:
            protocolError(context, "HEADERS after the end of the message")
        }
    }

    /// Writes the regular fields as HTTP/1 field lines; false (nothing usable) when a name
    /// is not a token or a value holds CR, LF, NUL or another control byte, which would
    /// forge lines of the HTTP/1 head. (NIOHTTP2's own validation is off on these
    /// connections: this check, on bytes, is the one that matters, and costs less.)
    private static func writeFields(_ headers: HPACKHeaders, to out: inout ByteBuffer) -> Bool {
        for (name, value, _) in headers {
            // HTTP/2 field names are lowercase (RFC 9113 §8.2.1): an uppercase one is
            // malformed, and would slip past the hop-by-hop filter below.
            guard !name.utf8.isEmpty,
                name.utf8.allSatisfy({ HTTP1HeadParser.isTokenByte($0) && !(0x41...0x5A).contains($0) })
                    || name.utf8.first == 0x3A,
                value.utf8.allSatisfy(HTTP1HeadParser.isFieldValueByte)
            else { return false }
            if name.utf8.first == 0x3A { continue }  // a pseudo-field
            switch name {
            case "connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "host":
                continue
            default:
                out.writeString(name)
                out.writeStaticString(": ")
                out.writeString(value)
                out.writeStaticString("\r\n")
            }
        }
        return true
    }

    /// A request method (a token) and target (visible ASCII) fit for a request line.
    private static func isValidRequestLine(method: String, path: String) -> Bool {
        !method.utf8.isEmpty && method.utf8.allSatisfy(HTTP1HeadParser.isTokenByte) && !path.utf8.isEmpty
            && path.utf8.allSatisfy { $0 > 0x20 && $0 < 0x7F }
    }

    private static func method(_ token: String) -> HTTP1Method {
        switch token {
        case "GET": return .get
        case "HEAD": return .head
        case "POST": return .post
        case "PUT": return .put
        case "DELETE": return .delete
        case "OPTIONS": return .options
        case "TRACE": return .trace
        case "CONNECT": return .connect
        case "PATCH": return .patch
        default: return .other
        }
    }

    /// The peer broke the exchange: the stream is reset, and only the stream.
    private func protocolError(_ context: ChannelHandlerContext, _ reason: String) {
        context.fireErrorCaught(HTTP1ParseError(.invalidRequestLine, "HTTP/1 over HTTP/2: \(reason)"))
        context.close(promise: nil)
    }
}

@available(*, unavailable)
extension HTTP1OverHTTP2Bridge: Sendable {}

/// The called sidecar's side of HTTP/1 over HTTP/2 between sidecars: on a verified mesh TLS
/// connection (`MeshALPN.http1OverHTTP2`), an HTTP/2 server whose every stream is one
/// HTTP/1 exchange, handed to its own `HTTP1ProxyHandler` toward the app (authorized per
/// stream with the caller's identity, as on a pooled HTTP/1.1 connection).
enum HTTP1OverHTTP2Inbound {
    static func install(
        after previous: ChannelHandler, in sync: ChannelPipeline.SynchronousOperations, app: SocketAddress,
        pools: LoopPools, metrics: DirectionMetrics, config: ProxyConfig, gate: InboundGate
    ) throws {
        // The connection is counted once in the open gauge; its streams' bytes are counted
        // by their handlers.
        let accounting = ConnectionAccountingHandler(
            readCounter: nil, writeCounter: nil, openGauge: metrics.connectionsOpen)
        try sync.addHandler(accounting, position: .after(previous))
        // The streams' handlers are made on this connection's loop, from its loop's pools.
        let parts = NIOLoopBound((pools, metrics, gate), eventLoop: sync.eventLoop)
        // Header blocks are checked by the bridge, on bytes, as they become HTTP/1 lines.
        var connection = NIOHTTP2Handler.ConnectionConfiguration()
        connection.headerBlockValidation = .disabled
        connection.initialSettings = HTTP1OverHTTP2Bridge.settings(maxConcurrentStreams: 1000)
        let http2 = NIOHTTP2Handler(
            mode: .server, eventLoop: sync.eventLoop, connectionConfiguration: connection, streamConfiguration: .init(),
            inboundStreamInitializer: { stream in
                stream.eventLoop.makeCompletedFuture {
                    let (pools, metrics, gate) = parts.value
                    let streamSync = stream.pipeline.syncOperations
                    try streamSync.addHandler(HTTP1OverHTTP2Bridge(role: .server))
                    try streamSync.addHandler(
                        HTTP1ProxyHandler(
                            destination: app, pool: pools.http1, metrics: metrics, config: config,
                            initialBytes: stream.allocator.buffer(capacity: 0), inboundGate: gate,
                            ownsOpenGauge: false))
                }
            })
        try sync.addHandler(http2, position: .after(accounting))
    }
}
