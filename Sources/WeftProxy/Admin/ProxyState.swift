import Synchronization

/// The proxy's lifecycle as the admin server reports it, shared across threads.
final class ProxyState: Sendable {
    private struct Flags {
        var isListening = false
        var isDraining = false
    }

    private let flags = Mutex(Flags())
    private let shutdownRequests: AsyncStream<Void>.Continuation
    /// Yields once per `POST /shutdown`.
    let shutdownRequested: AsyncStream<Void>

    init() {
        (shutdownRequested, shutdownRequests) = AsyncStream.makeStream(
            of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    /// Ready means serving: listeners bound and not draining. Identity and config join
    /// this condition once the control-plane client exists.
    var isReady: Bool { flags.withLock { $0.isListening && !$0.isDraining } }
    var isDraining: Bool { flags.withLock { $0.isDraining } }

    func markListening() { flags.withLock { $0.isListening = true } }
    func markDraining() { flags.withLock { $0.isDraining = true } }

    func requestShutdown() { shutdownRequests.yield() }
}
