import Synchronization

/// The proxy's lifecycle as the admin server reports it, shared across threads.
final class ProxyState: Sendable {
    private struct Flags {
        var isListening = false
        var isDraining = false
        var shutdownRequests = 0
    }

    private let flags = Mutex(Flags())
    private let shutdownRequests: AsyncStream<Void>.Continuation
    /// Yields once per `POST /shutdown`.
    let shutdownRequested: AsyncStream<Void>

    /// What the control plane gave this proxy; nil when it runs without one.
    let meshStore: MeshStore?

    init(meshStore: MeshStore? = nil) {
        self.meshStore = meshStore
        (shutdownRequested, shutdownRequests) = AsyncStream.makeStream(
            of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    /// Ready means serving: listeners bound, not draining, and, with a control plane, an
    /// identity and a config held (live or from the cache).
    var isReady: Bool {
        flags.withLock { $0.isListening && !$0.isDraining } && (meshStore?.hasIdentityAndConfig ?? true)
    }

    /// Why `isReady` is false, for the probe's body.
    var notReadyReason: String {
        if isDraining { return "draining" }
        if !flags.withLock({ $0.isListening }) { return "listeners not bound yet" }
        if let store = meshStore, !store.hasIdentityAndConfig {
            return store.identity == nil
                ? "waiting for an identity from the control plane" : "waiting for a config from the control plane"
        }
        return "not ready"
    }
    var isDraining: Bool { flags.withLock { $0.isDraining } }

    func markListening() { flags.withLock { $0.isListening = true } }
    func markDraining() { flags.withLock { $0.isDraining = true } }

    func requestShutdown() {
        flags.withLock { $0.shutdownRequests += 1 }
        shutdownRequests.yield()
    }

    /// How many times a shutdown was requested (`POST /shutdown`).
    var shutdownRequestCount: Int { flags.withLock { $0.shutdownRequests } }
}
