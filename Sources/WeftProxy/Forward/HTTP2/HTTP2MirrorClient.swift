import NIOCore
import NIOHPACK
import NIOHTTP2
import NIOPosix

/// The loop's HTTP/2 connections for RequestMirror copies of HTTP/2 and gRPC requests: one
/// per mirror endpoint (h2c with prior knowledge, as the copied request's own hop), each
/// copy a stream of its own, on swift-nio-http2's stream multiplexer. Apart from the relay's
/// pool on purpose: a mirror target that hangs fills only these connections' streams.
///
/// A connection with no copy in flight for `idleTimeout` closes.
final class HTTP2MirrorClient {
    private enum Connection {
        case connecting([(NIOHTTP2Handler.StreamMultiplexer?) -> Void])
        case ready(NIOHTTP2Handler.StreamMultiplexer, Channel)
    }

    private let eventLoop: EventLoop
    private var connections: [SocketAddress: Connection] = [:]
    private var inFlight: [SocketAddress: Int] = [:]
    private var idleChecks: [SocketAddress: Scheduled<Void>] = [:]
    static let idleTimeout = TimeAmount.seconds(60)

    init(eventLoop: EventLoop) {
        self.eventLoop = eventLoop
    }

    /// Sends the copies `copy` owes: `head` (the request head as the rule made it), the
    /// DATA kept and the trailers, to an endpoint of each mirror backend.
    func send(_ copy: MirrorCopy, head: HPACKHeaders, trailers: HPACKHeaders?, mesh: LoopContext) {
        for plan in copy.plans {
            if copy.isTooLarge {
                mesh.mirrorEnded(.tooLarge)
                continue
            }
            mesh.beginMirror(plan, serial: copy.serial) { [self] endpoint in
                start(copy, on: endpoint, head: head, trailers: trailers, mesh: mesh)
            }
        }
    }

    private func start(
        _ copy: MirrorCopy, on endpoint: LoopEndpoint, head: HPACKHeaders, trailers: HPACKHeaders?, mesh: LoopContext
    ) {
        let address = endpoint.target.address
        let stream = HTTP2MirrorStream(head: head, body: copy.body, trailers: trailers)
        let startedAt = LoopContext.now()
        inFlight[address, default: 0] += 1
        idleChecks.removeValue(forKey: address)?.cancel()
        var timer: Scheduled<Void>?
        stream.onEnd = { [self] result in
            timer?.cancel()
            timer = nil
            stream.onEnd = nil
            mesh.endMirror(
                endpoint, startedAt: startedAt, result: result,
                failed: result != .completed || stream.status >= 500)
            streamEnded(address)
        }
        timer = eventLoop.scheduleTask(in: copy.timeout) { [self] in
            timer = nil
            stream.abandon()
            streamReset(address)
        }
        multiplexer(for: address) { multiplexer in
            guard let multiplexer else {
                stream.end(.failed)
                return
            }
            let bound = NIOLoopBound(stream, eventLoop: self.eventLoop)
            multiplexer.createStreamChannel(promise: nil) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(bound.value)
                }
            }
        }
    }

    /// Closes every connection (graceful shutdown).
    func closeAll() {
        for case .ready(_, let channel) in connections.values { channel.close(promise: nil) }
    }

    private func multiplexer(
        for address: SocketAddress, _ use: @escaping (NIOHTTP2Handler.StreamMultiplexer?) -> Void
    ) {
        switch connections[address] {
        case .ready(let multiplexer, _):
            use(multiplexer)
            return
        case .connecting(var waiting):
            waiting.append(use)
            connections[address] = .connecting(waiting)
            return
        case nil:
            connections[address] = .connecting([use])
        }
        ClientBootstrap(group: eventLoop)
            .connectTimeout(RequestMirror.timeout)
            .channelOption(.tcpOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    _ = try channel.pipeline.syncOperations.configureHTTP2Pipeline(
                        mode: .client, connectionConfiguration: .init(), streamConfiguration: .init()
                    ) { stream in
                        // The mirror target pushes nothing the proxy wants.
                        stream.close()
                    }
                }
            }
            .connect(to: address)
            .whenComplete { [self] result in
                guard case .connecting(let waiting) = connections[address] else { return }
                switch result {
                case .success(let channel):
                    guard
                        let multiplexer = try? channel.pipeline.syncOperations.handler(type: NIOHTTP2Handler.self)
                            .syncMultiplexer()
                    else {
                        connections[address] = nil
                        channel.close(promise: nil)
                        for use in waiting { use(nil) }
                        return
                    }
                    connections[address] = .ready(multiplexer, channel)
                    resets[address] = nil
                    channel.closeFuture.whenComplete { [self] _ in
                        if case .ready(_, let current) = connections[address], current === channel {
                            connections[address] = nil
                        }
                    }
                    for use in waiting { use(multiplexer) }
                case .failure:
                    connections[address] = nil
                    for use in waiting { use(nil) }
                }
            }
    }

    /// Resets sent on the current connection to each address; past `maxResets` the
    /// connection is retired (closed, its copies fail; the next copy opens a new one), before
    /// the target's own rapid-reset limit (swift-nio-http2: 200 in 30 s) could end it.
    private var resets: [SocketAddress: Int] = [:]
    static let maxResets = 100

    private func streamReset(_ address: SocketAddress) {
        let count = (resets[address] ?? 0) + 1
        guard count >= Self.maxResets else {
            resets[address] = count
            return
        }
        resets[address] = nil
        if case .ready(_, let channel) = connections[address] {
            connections[address] = nil
            channel.close(promise: nil)
        }
    }

    private func streamEnded(_ address: SocketAddress) {
        let count = (inFlight[address] ?? 1) - 1
        guard count == 0 else {
            inFlight[address] = count
            return
        }
        inFlight[address] = nil
        idleChecks[address] = eventLoop.scheduleTask(in: Self.idleTimeout) { [self] in
            idleChecks[address] = nil
            guard inFlight[address] == nil, case .ready(_, let channel) = connections[address] else { return }
            connections[address] = nil
            channel.close(promise: nil)
        }
    }
}

/// One mirrored stream: writes the copy, reads the response and drops it.
final class HTTP2MirrorStream: ChannelInboundHandler {
    typealias InboundIn = HTTP2Frame.FramePayload
    typealias OutboundOut = HTTP2Frame.FramePayload

    private let head: HPACKHeaders
    private let body: [ByteBuffer]
    private let trailers: HPACKHeaders?
    private var context: ChannelHandlerContext?
    private(set) var status = 0
    private var isDone = false
    /// Called once, when the copy ends.
    var onEnd: ((MirrorResult) -> Void)?

    init(head: HPACKHeaders, body: [ByteBuffer], trailers: HPACKHeaders?) {
        self.head = head
        self.body = body
        self.trailers = trailers
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        guard !isDone else {
            // Timed out while its connection was opening.
            context.close(promise: nil)
            return
        }
        if context.channel.isActive { write(context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        write(context)
        context.fireChannelActive()
    }

    private var isWritten = false

    private func write(_ context: ChannelHandlerContext) {
        guard !isWritten, !isDone else { return }
        isWritten = true
        let bodyEnds = trailers == nil
        context.write(
            wrapOutboundOut(.headers(.init(headers: head, endStream: body.isEmpty && bodyEnds))), promise: nil)
        for (index, slice) in body.enumerated() {
            let last = index == body.count - 1
            context.write(
                wrapOutboundOut(.data(.init(data: .byteBuffer(slice), endStream: last && bodyEnds))), promise: nil)
        }
        if let trailers {
            context.write(wrapOutboundOut(.headers(.init(headers: trailers, endStream: true))), promise: nil)
        }
        context.flush()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .headers(let headers):
            if status < 200, let value = headers.headers.first(name: ":status"), let code = Int(value) {
                status = code
            }
            if headers.endStream { end(.completed) }
        case .data(let data):
            if data.endStream { end(.completed) }
        default:
            break
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        end(.failed)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        end(.failed)
        context.close(promise: nil)
    }

    /// The copy's time is up: the stream is reset (CANCEL).
    func abandon() {
        end(.timeout)
    }

    /// Ends the copy once. A stream still open is reset, except after a whole response:
    /// that stream is closed already (swift-nio-http2 delivers the END_STREAM frame before it
    /// marks the channel closed), and a reset then would be one more for the target to
    /// count against its rapid-reset limit.
    func end(_ result: MirrorResult) {
        guard !isDone else { return }
        isDone = true
        if result != .completed, let context, context.channel.isActive { context.close(promise: nil) }
        onEnd?(result)
    }
}

@available(*, unavailable)
extension HTTP2MirrorClient: Sendable {}

@available(*, unavailable)
extension HTTP2MirrorStream: Sendable {}
