import NIOCore
import WeftProtocol

/// One simulated sidecar on one connection: sends its hello, takes identity and config,
/// then acks every push as `weft-proxy` would (a delta whose `base` is not its version is
/// nacked) and answers pings.
///
/// It decodes every frame in full with `ServerMessage.decode`, like the real proxy, so
/// the load tool pays the client's share of the work honestly. When a delta carries the
/// endpoint set the current round waits for, it records when the frame arrived and when
/// the ack was flushed (`LoadRun.record`).
final class SimulatedSidecar: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private enum Phase {
        case helloSent
        case identified
        case established
        case closed
    }

    private let index: Int
    private let hello: Hello
    private let run: LoadRun
    private let established: EventLoopPromise<Void>
    private var phase = Phase.helloSent
    /// The version of the last push accepted on this connection; 0 before any.
    private var version = 0
    private var lastRecordedRound = 0

    init(index: Int, hello: Hello, run: LoadRun, established: EventLoopPromise<Void>) {
        self.index = index
        self.hello = hello
        self.run = run
        self.established = established
    }

    func channelActive(context: ChannelHandlerContext) {
        // NIOSSL holds this write until the handshake is done.
        let frame = ClientMessage.hello(hello).encode(allocator: context.channel.allocator)
        context.writeAndFlush(wrapOutboundOut(frame), promise: nil)
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        if case .established = phase { run.connectionDropped() }
        phase = .closed
        established.fail(LoadFailure("connection \(index) closed before its config was acked"))
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        run.noteError("\(error)")
        established.fail(LoadFailure("connection \(index): \(error)"))
        context.close(promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let receivedAt = NIODeadline.now().uptimeNanoseconds
        let message: ServerMessage
        do {
            message = try ServerMessage.decode(unwrapInboundIn(data))
        } catch {
            run.noteError("decode: \(error)")
            context.close(promise: nil)
            return
        }
        switch (phase, message) {
        case (_, .ping(let ping)):
            reply(.pong(ping), context: context)
        case (_, .pong):
            break
        case (_, .error(let error)):
            run.noteError("\(error.code.rawValue): \(error.message)")
            if error.fatal { context.close(promise: nil) }
        case (.helloSent, .identity):
            phase = .identified
        case (.identified, .config(let config)), (.established, .config(let config)):
            version = config.version
            reply(.ack(Ack(version: config.version, nonce: config.nonce)), context: context)
            if (config.snapshot.endpoints ?? []).count != hello.subscriptions?.count ?? 0 {
                run.noteError("config \(config.version) holds \(config.snapshot.endpoints?.count ?? 0) endpoint sets")
            }
            if case .identified = phase {
                phase = .established
                established.succeed(())
            }
        case (.established, .delta(let delta)):
            guard delta.base == version else {
                run.noteNack()
                reply(
                    .nack(
                        Nack(
                            version: delta.version, nonce: delta.nonce,
                            error: "base mismatch: at version \(version), delta applies to \(delta.base)")),
                    context: context)
                return
            }
            version = delta.version
            reply(.ack(Ack(version: delta.version, nonce: delta.nonce)), context: context)
            let ackedAt = NIODeadline.now().uptimeNanoseconds
            guard let changed = delta.upserts.endpoints?.first(where: { $0.service == run.changeService }),
                let round = run.round(matching: changed.endpoints.map(\.address)), round != lastRecordedRound
            else { return }
            lastRecordedRound = round
            run.record(round: round, connection: index, receivedAt: receivedAt, ackedAt: ackedAt)
        case (.established, .identity):
            break  // an answer to a renew; this tool never renews
        default:
            run.noteError("unexpected \(message.type) in phase \(phase)")
            context.close(promise: nil)
        }
    }

    private func reply(_ message: ClientMessage, context: ChannelHandlerContext) {
        context.writeAndFlush(wrapOutboundOut(message.encode(allocator: context.channel.allocator)), promise: nil)
    }
}

@available(*, unavailable) extension SimulatedSidecar: Sendable {}

/// A failure of the load tool itself, with what failed.
struct LoadFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
