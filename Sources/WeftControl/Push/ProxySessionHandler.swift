import Glibc
import Logging
import NIOCore
import NIOSSL
import WeftCore
import WeftProtocol

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// Serves one proxy's connection: hello, identity, config, deltas, acks, renewals and
/// heartbeats (docs/protocol.md).
///
/// Frames arrive already split by `ControlFrameDecoder`. Every violation is answered with
/// an `error` frame and a close of this connection only. Pushes are written only while the
/// channel is writable: a proxy that stops reading is closed as a slow consumer rather than
/// buffered without bound.
final class ProxySessionHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private enum State {
        case awaitingHello
        case established(ProxySession)
        case closed
    }

    private var state = State.awaitingHello
    private let hub: PushHub
    private let logger: Logger
    private var helloTimeout: Scheduled<Void>?
    private var context: ChannelHandlerContext?
    private var nextPingID = 1
    private var peer = "unknown peer"
    /// The peer's IP address, the key of its issuance limit.
    private var source = "unknown"
    /// Whether this connection still counts in the hub's unauthenticated connections.
    private var countedUnauthenticated = false
    private var hasFailed = false
    private var slowConsumerTimer: Scheduled<Void>?
    private var lastRead = NIODeadline.uptimeNanoseconds(0)
    private var lastWrite = NIODeadline.uptimeNanoseconds(0)

    init(hub: PushHub, logger: Logger) {
        self.hub = hub
        self.logger = logger
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        lastRead = context.eventLoop.now
        lastWrite = lastRead
        peer = context.channel.remoteAddress?.description ?? "unknown peer"
        source = context.channel.remoteAddress?.ipAddress ?? "unknown"
        let timeout = hub.helloTimeout
        helloTimeout = context.eventLoop.scheduleTask(in: timeout) { [weak self] in
            guard let self, case .awaitingHello = self.state, let context = self.context else { return }
            self.fail(context: context, ProtocolError(.helloTimeout, "no hello within \(timeout)"))
        }
    }

    func channelActive(context: ChannelHandlerContext) {
        source = context.channel.remoteAddress?.ipAddress ?? source
        guard hub.unauthenticated.enter(limit: hub.maxUnauthenticated) else {
            // Before the TLS handshake has read anything (the server side waits for the
            // ClientHello): a flood of connections that never say hello costs a file
            // descriptor each, not a TLS session and a frame buffer each.
            hub.metrics.connectionsRefused.increment()
            state = .closed
            context.close(promise: nil)
            return
        }
        countedUnauthenticated = true
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        leaveUnauthenticated()
        context.fireChannelInactive()
    }

    private func leaveUnauthenticated() {
        if countedUnauthenticated {
            countedUnauthenticated = false
            hub.unauthenticated.leave()
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        leaveUnauthenticated()
        helloTimeout?.cancel()
        slowConsumerTimer?.cancel()
        if case .established(let session) = state {
            hub.unregister(sessionID: session.id, loop: context.eventLoop)
        }
        state = .closed
        self.context = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        lastRead = context.eventLoop.now
        let message: ClientMessage
        do {
            message = try ClientMessage.decode(frame)
        } catch {
            fail(context: context, error)
            return
        }
        switch state {
        case .awaitingHello:
            guard case .hello(let hello) = message else {
                fail(context: context, ProtocolError(.unexpectedMessage, "expected hello, got \(message.type)"))
                return
            }
            accept(hello, context: context)
        case .established(var session):
            handle(message, session: &session, context: context)
        case .closed:
            break
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        if let protocolError = error as? ProtocolError {
            fail(context: context, protocolError)
        } else {
            logger.debug("control connection failed", metadata: ["peer": "\(peer)", "error": "\(error)"])
            context.close(promise: nil)
        }
    }

    /// Heartbeats, called about once a second by the hub's per-loop sweep (one timer per
    /// loop instead of two per connection): a ping after `pingInterval` without sending,
    /// a close after `idleTimeout` without receiving.
    func sweep(now: NIODeadline) {
        guard let context, case .established = state else { return }
        if now - lastRead >= hub.idleTimeout {
            fail(
                context: context,
                ProtocolError(.idleTimeout, "nothing received for \(ControlProtocol.idleTimeoutSeconds) s"))
        } else if now - lastWrite >= hub.pingInterval {
            let ping = ServerMessage.ping(Ping(id: nextPingID))
            nextPingID += 1
            flushOut(context, wrapOutboundOut(ping.encode(allocator: context.channel.allocator)), promise: nil)
        }
    }

    private func flushOut(_ context: ChannelHandlerContext, _ data: NIOAny, promise: EventLoopPromise<Void>?) {
        lastWrite = context.eventLoop.now
        context.writeAndFlush(data, promise: promise)
    }

    // MARK: - Hello

    private func accept(_ hello: Hello, context: ChannelHandlerContext) {
        let outcome: Result<(Identity, ProxySession), ProtocolError> = hub.admit(hello, source: source)
        switch outcome {
        case .failure(let error):
            fail(context: context, error)
        case .success(let (identity, session)):
            helloTimeout?.cancel()
            leaveUnauthenticated()
            var session = session
            let mesh = hub.currentMesh
            context.write(
                wrapOutboundOut(ServerMessage.identity(identity).encode(allocator: context.channel.allocator)),
                promise: nil)
            let config = session.fullConfig(mesh, allocator: context.channel.allocator)
            flushOut(context, wrapOutboundOut(config), promise: nil)
            hub.metrics.pushes.increment()
            state = .established(session)
            hub.register(self, sessionID: session.id, loop: context.eventLoop)
            logger.info(
                "proxy connected",
                metadata: [
                    "pod": "\(hello.node.namespace)/\(hello.node.pod)", "identity": "\(session.identity)",
                    "peer": "\(peer)",
                ])
        }
    }

    // MARK: - Established

    private func handle(_ message: ClientMessage, session: inout ProxySession, context: ChannelHandlerContext) {
        let allocator = context.channel.allocator
        switch message {
        case .hello:
            return fail(context: context, ProtocolError(.unexpectedMessage, "a second hello on one connection"))
        case .ack(let ack):
            switch session.ack(ack) {
            case .acked(let since, let isDelta):
                hub.metrics.acks.increment()
                let elapsed = ContinuousClock.now - since
                (isDelta ? hub.metrics.deltaPushLatency : hub.metrics.configPushLatency).recordNanoseconds(
                    Int64(elapsed.components.seconds) * 1_000_000_000 + elapsed.components.attoseconds / 1_000_000_000)
            case .unknown:
                // docs/protocol.md §8: an answer that matches no push is ignored.
                logger.debug(
                    "ack matches no push", metadata: ["version": "\(ack.version)", "nonce": "\(ack.nonce)"])
            }
        case .nack(let nack):
            let outcome = session.nack(nack)
            if case .unknown = outcome {
                // docs/protocol.md §8: an answer that matches no push is ignored.
                logger.debug(
                    "nack matches no push", metadata: ["version": "\(nack.version)", "nonce": "\(nack.nonce)"])
                break
            }
            hub.metrics.nacks.increment()
            logger.warning(
                "proxy refused a config; it stays on its last good one",
                metadata: [
                    "pod": "\(session.node.namespace)/\(session.node.pod)", "version": "\(nack.version)",
                    "error": "\(nack.error)",
                ])
            if case .resendConfig = outcome {
                // docs/protocol.md §8: after a refused delta, a whole config after the debounce.
                let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
                context.eventLoop.scheduleTask(in: hub.debounce) { bound.value.resendConfig() }
            }
        case .subscribe(let subscription):
            guard let keys = validKeys(subscription.services, context: context) else { return }
            let mesh = hub.currentMesh
            if let push = session.subscribe(keys, mesh: mesh, allocator: allocator) { send(push, context: context) }
            let unknown = keys.filter { mesh.services[$0] == nil }
            if !unknown.isEmpty {
                let note = ErrorMessage(
                    code: .unknownService,
                    message: "\(unknown.joined(separator: ", ")) does not exist (yet); the subscription stays",
                    fatal: false)
                flushOut(context, wrapOutboundOut(ServerMessage.error(note).encode(allocator: allocator)), promise: nil)
            }
        case .unsubscribe(let subscription):
            guard let keys = validKeys(subscription.services, context: context) else { return }
            if let push = session.unsubscribe(keys, mesh: hub.currentMesh, allocator: allocator) {
                send(push, context: context)
            }
        case .renew(let renew):
            // Verifying the current chain is asynchronous (swift-certificates' Verifier);
            // the answer comes back to this loop.
            let hub = self.hub
            let current = session
            let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
            context.eventLoop.makeFutureWithTask { await hub.renew(renew, session: current) }.whenSuccess { result in
                let (handler, context) = bound.value
                handler.renewed(result, context: context)
            }
        case .ping(let ping):
            if let report = ping.tlsFailures { session.record(report, at: PushHub.timestamp()) }
            flushOut(context, wrapOutboundOut(ServerMessage.pong(ping).encode(allocator: allocator)), promise: nil)
        case .pong:
            break
        case .error(let error):
            logger.warning(
                "proxy reported an error",
                metadata: [
                    "pod": "\(session.node.namespace)/\(session.node.pod)", "code": "\(error.code.rawValue)",
                    "message": "\(error.message)",
                ])
            if error.fatal { context.close(promise: nil) }
        }
        state = .established(session)
    }

    private func renewed(_ result: Result<Identity, ProtocolError>, context: ChannelHandlerContext) {
        guard case .established(var session) = state else { return }
        switch result {
        case .success(let identity):
            session.certificateNotAfter = identity.notAfter
            state = .established(session)
            flushOut(
                context, wrapOutboundOut(ServerMessage.identity(identity).encode(allocator: context.channel.allocator)),
                promise: nil)
        case .failure(let error):
            fail(context: context, error)
        }
    }

    private func validKeys(_ keys: [String], context: ChannelHandlerContext) -> [String]? {
        guard keys.count <= 10_000, keys.allSatisfy(PushHub.isServiceKey) else {
            fail(context: context, ProtocolError(.invalidMessage, "services: each must be \"namespace/name\""))
            return nil
        }
        return keys
    }

    /// Called on this channel's event loop by the hub when the mesh moved.
    ///
    /// While the proxy is not reading (the channel is above its high-water mark) nothing
    /// is built or queued; when it drains, one push brings it up to date (a whole config
    /// if it missed a generation). If it stays unwritable for `slowConsumerGrace`, it is
    /// closed as a slow consumer.
    func push(_ mesh: CompiledMesh) {
        guard let context, case .established(var session) = state else { return }
        guard context.channel.isWritable else { return }
        if let frame = session.update(to: mesh, allocator: context.channel.allocator) {
            state = .established(session)
            send(frame, context: context)
        } else {
            state = .established(session)
        }
    }

    private func resendConfig() {
        guard let context, case .established(var session) = state, session.isAwaitingFullConfig else { return }
        let frame = session.fullConfig(hub.currentMesh, allocator: context.channel.allocator)
        state = .established(session)
        send(frame, context: context)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable {
            slowConsumerTimer?.cancel()
            slowConsumerTimer = nil
            push(hub.currentMesh)
        } else if slowConsumerTimer == nil {
            let grace = hub.slowConsumerGrace
            let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
            slowConsumerTimer = context.eventLoop.scheduleTask(in: grace) {
                let handler = bound.value
                guard let context = handler.context, !context.channel.isWritable else { return }
                handler.fail(
                    context: context,
                    ProtocolError(
                        .slowConsumer,
                        "more than \(PushHub.writeBufferHighWater) bytes unread for \(grace.nanoseconds / 1_000_000) ms"
                    ))
            }
        }
        context.fireChannelWritabilityChanged()
    }

    private func send(_ frame: ByteBuffer, context: ChannelHandlerContext) {
        hub.metrics.pushes.increment()
        flushOut(context, wrapOutboundOut(frame), promise: nil)
    }

    /// Tells the proxy the control plane is going away, then closes.
    func shutDown() {
        guard let context else { return }
        fail(context: context, ProtocolError(.shuttingDown, "the control plane is shutting down; reconnect"))
    }

    /// The session's status, for the API; nil before hello.
    var status: ProxyStatus? {
        if case .established(let session) = state { return session.status }
        return nil
    }

    /// The config this proxy would be sent now, as JSON; for `weftctl config`.
    func currentConfigJSON(_ mesh: CompiledMesh) -> ByteBuffer? {
        guard case .established(let session) = state else { return nil }
        return session.preview(mesh, allocator: ByteBufferAllocator())
    }

    private func fail(context: ChannelHandlerContext, _ error: ProtocolError) {
        guard !hasFailed else { return }
        hasFailed = true
        hub.metrics.protocolError(error.code)
        logger.info(
            "control connection refused",
            metadata: ["peer": "\(peer)", "code": "\(error.code.rawValue)", "reason": "\(error.reason)"])
        state = .closed
        // A peer that is not reading would never see the error frame (it queues behind
        // what it has not read) and its write would never complete: abort at once.
        guard context.channel.isWritable else {
            Self.abort(context)
            return
        }
        // Otherwise the frame goes first, and the close follows its write, or an abort
        // after the grace, whichever comes first: a peer that stops reading now still goes.
        let frame = ServerMessage.error(ErrorMessage(error)).encode(allocator: context.channel.allocator)
        let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
        let deadline = context.eventLoop.scheduleTask(in: Self.errorFrameGrace) { Self.abort(bound.value) }
        let written = context.eventLoop.makePromise(of: Void.self)
        flushOut(context, wrapOutboundOut(frame), promise: written)
        written.futureResult.whenComplete { _ in
            deadline.cancel()
            bound.value.close(promise: nil)
        }
    }

    /// Closes the connection now, with a TCP reset: no TLS close_notify (it would queue
    /// behind the unread bytes, and NIOSSL waits 5 s for the peer's before it closes), and
    /// no lingering kernel send queue (a plain close leaves megabytes in FIN-WAIT-1 for a
    /// peer that advertises no window).
    private static func abort(_ context: ChannelHandlerContext) {
        if let provider = context.channel as? SocketOptionProvider {
            _ = provider.setSoLinger(linger(l_onoff: 1, l_linger: 0))
        }
        // Closing from TLS's own context starts below it, at the socket.
        let tls = try? context.pipeline.syncOperations.context(handlerType: NIOSSLServerHandler.self)
        (tls ?? context).close(promise: nil)
    }

    /// How long an error frame may take to be written before the connection closes anyway.
    static let errorFrameGrace = TimeAmount.seconds(2)
}

@available(*, unavailable) extension ProxySessionHandler: Sendable {}
