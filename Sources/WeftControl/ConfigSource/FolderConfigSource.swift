import Foundation
import Logging
import Synchronization
import WeftCore

#if canImport(Glibc)
    import Glibc
#endif

/// The standalone config source: a folder of Kubernetes-shaped YAML (`weft-control --config DIR`).
///
/// Reads every visible `*.yaml` and `*.yml` under the folder, recursively and in sorted
/// order (a ConfigMap mount works: its files are read through their visible symlinks),
/// and builds a `MeshState`. Then it watches the folder: inotify for a prompt reaction
/// (Linux), and a fingerprint poll (paths, sizes, mtimes, inodes) as a fallback for
/// filesystems and editors inotify misses. Bursts of events are coalesced: the folder is
/// reloaded once it has been quiet for `coalesceDelay` (or after a second of constant change).
///
/// A reload is all or nothing. If any file has an error, the change is rejected: the
/// last good state stays in force and the errors are reported (once, until the folder
/// changes again). A reload that yields a state equal to the current one reports
/// nothing.
///
/// All file I/O happens on a dedicated thread, never on an event loop or the
/// cooperative pool; events reach the caller through an `AsyncStream`.
public final class FolderConfigSource: Sendable {
    /// The folder, as given.
    public let directory: String
    /// How often the fallback poll compares fingerprints.
    public let pollInterval: Duration
    /// How long the folder must be quiet after an event before it is reloaded.
    public let coalesceDelay: Duration

    private let logger: Logger
    private let usesInotify: Bool
    private let state = Mutex(WatchState())

    private struct WatchState {
        var current: MeshState?
        var listing: FolderListing?
        var lastRejected: [ConfigError]?
    }

    /// - Parameters:
    ///   - directory: the config folder.
    ///   - logger: where accepted and rejected changes are logged.
    ///   - pollInterval: the fallback poll's period (2 s by default).
    ///   - coalesceDelay: the quiet time before a reload (50 ms by default).
    public convenience init(
        directory: String, logger: Logger, pollInterval: Duration = .seconds(2),
        coalesceDelay: Duration = .milliseconds(50)
    ) {
        self.init(
            directory: directory, logger: logger, pollInterval: pollInterval, coalesceDelay: coalesceDelay,
            usesInotify: true)
    }

    /// - Parameter usesInotify: false to rely on the poll alone (tests of the fallback).
    init(directory: String, logger: Logger, pollInterval: Duration, coalesceDelay: Duration, usesInotify: Bool) {
        self.directory = directory
        self.logger = logger
        self.pollInterval = pollInterval
        self.coalesceDelay = coalesceDelay
        self.usesInotify = usesInotify
    }

    /// The state in force: the last accepted one, nil before the first successful load.
    public var current: MeshState? { state.withLock { $0.current } }

    /// Loads the folder once; call before `watch`.
    ///
    /// Blocking file I/O: call it at start-up, not from an event loop.
    /// - Throws: `ConfigLoadFailure` with every error of every file, or the folder's
    ///   own read error. The command prints it and exits non-zero.
    public func loadInitial() throws(ConfigLoadFailure) -> MeshState {
        let listing = try FolderListing.scan(directory)
        switch listing.load() {
        case .success(let mesh):
            state.withLock {
                $0.current = mesh
                $0.listing = listing
                $0.lastRejected = nil
            }
            logLoaded(mesh, files: listing.files.count)
            return mesh
        case .failure(let failure):
            throw ConfigLoadFailure(errors: failure.errors)
        }
    }

    /// Watches the folder and reports each accepted or rejected change, until the
    /// calling task is cancelled.
    ///
    /// If `loadInitial()` has not succeeded yet, the first event is the result of a load.
    /// Events are delivered in order, one at a time; reloads go on meanwhile, and their
    /// events queue. Call it once per source.
    /// - Parameter onEvent: called for every change.
    public func watch(_ onEvent: @escaping @Sendable (ConfigEvent) async -> Void) async throws {
        let (events, continuation) = AsyncStream<ConfigEvent>.makeStream(bufferingPolicy: .unbounded)
        let stop = StopSignal()
        continuation.onTermination = { _ in stop.request() }
        let thread = Thread { [self] in
            self.runWatchLoop(stop: stop) { continuation.yield($0) }
            continuation.finish()
        }
        thread.name = "weft-config-watch"
        thread.start()
        await withTaskCancellationHandler {
            for await event in events {
                await onEvent(event)
            }
        } onCancel: {
            stop.request()
            continuation.finish()
        }
    }

    // MARK: The watch thread

    /// A folder that never goes quiet is still reloaded this often.
    static let maximumBurst: Duration = .seconds(1)

    private final class StopSignal: Sendable {
        private let flag = Atomic<Bool>(false)
        func request() { flag.store(true, ordering: .relaxed) }
        var isRequested: Bool { flag.load(ordering: .relaxed) }
    }

    private func runWatchLoop(stop: StopSignal, emit: (ConfigEvent) -> Void) {
        #if canImport(Glibc)
            let inotify = usesInotify ? InotifyWatcher() : nil
            if usesInotify && inotify == nil {
                logger.warning(
                    "inotify unavailable; watching the config folder by polling only",
                    metadata: ["folder": "\(directory)", "interval": "\(pollInterval)"])
            }
        #endif
        func rewatch() {
            #if canImport(Glibc)
                let directories = state.withLock { $0.listing?.directories } ?? [directory]
                inotify?.watch(directories)
            #endif
        }

        if current == nil { reload(emit: emit) }
        rewatch()
        let clock = ContinuousClock()
        var pending: ContinuousClock.Instant?  // the last event of a burst not yet reloaded
        var burstStart: ContinuousClock.Instant?  // its first event
        var nextPoll = clock.now + pollInterval
        while !stop.isRequested {
            let now = clock.now
            var wait = min(nextPoll - now, .milliseconds(100))  // wake often enough to notice stop
            if let pending, let burstStart {
                wait = min(wait, min(pending + coalesceDelay, burstStart + Self.maximumBurst) - now)
            }
            let ms = Int32(max(0, wait.components.seconds * 1000 + wait.components.attoseconds / 1_000_000_000_000_000))
            #if canImport(Glibc)
                if let inotify {
                    if inotify.wait(milliseconds: ms) {
                        pending = clock.now
                        if burstStart == nil { burstStart = pending }
                        if clock.now < burstStart! + Self.maximumBurst { continue }
                    }
                } else {
                    usleep(UInt32(ms) * 1000)
                }
            #else
                usleep(UInt32(ms) * 1000)
            #endif
            if stop.isRequested { break }
            if let last = pending, let first = burstStart,
                clock.now >= last + coalesceDelay || clock.now >= first + Self.maximumBurst
            {
                pending = nil
                burstStart = nil
                reload(emit: emit)
                rewatch()
                nextPoll = clock.now + pollInterval
            } else if clock.now >= nextPoll {
                nextPoll = clock.now + pollInterval
                let known = state.withLock { $0.listing }
                let listing = try? FolderListing.scan(directory)
                if listing?.fingerprint != known?.fingerprint || (listing == nil) != (known == nil) {
                    logger.debug("config folder changed (poll)", metadata: ["folder": "\(directory)"])
                    reload(emit: emit)
                    rewatch()
                }
            }
        }
    }

    /// Rescans and reloads; emits `.updated` for a new state, `.rejected` for new errors.
    private func reload(emit: (ConfigEvent) -> Void) {
        let listing: FolderListing
        do {
            listing = try FolderListing.scan(directory)
        } catch {
            state.withLock { $0.listing = nil }
            reject(error.errors, emit: emit)
            return
        }
        state.withLock { $0.listing = listing }
        switch listing.load() {
        case .success(let mesh):
            let (changed, wasRejected) = state.withLock { watch -> (Bool, Bool) in
                let wasRejected = watch.lastRejected != nil
                watch.lastRejected = nil
                guard watch.current != mesh else { return (false, wasRejected) }
                watch.current = mesh
                return (true, wasRejected)
            }
            guard changed else {
                if wasRejected {
                    logger.info(
                        "config folder valid again; it equals the config in force", metadata: ["folder": "\(directory)"]
                    )
                    emit(.restored)
                } else {
                    logger.debug("config folder reloaded; nothing changed", metadata: ["folder": "\(directory)"])
                }
                return
            }
            logLoaded(mesh, files: listing.files.count)
            emit(.updated(mesh))
        case .failure(let failure):
            reject(failure.errors, emit: emit)
        }
    }

    private func reject(_ errors: [ConfigError], emit: (ConfigEvent) -> Void) {
        let isNew = state.withLock { watch -> Bool in
            guard watch.lastRejected != errors else { return false }
            watch.lastRejected = errors
            return true
        }
        guard isNew else { return }
        logger.error(
            "config change rejected; keeping the last good config",
            metadata: ["folder": "\(directory)", "errors": "\(errors.count)"])
        for error in errors {
            logger.error("\(error.description)")
        }
        emit(.rejected(errors))
    }

    private func logLoaded(_ mesh: MeshState, files: Int) {
        logger.info(
            "config loaded",
            metadata: [
                "folder": "\(directory)", "files": "\(files)", "services": "\(mesh.services.count)",
                "routes": "\(mesh.httpRoutes.count)", "policies": "\(mesh.authorizationPolicies.count)",
            ])
        for warning in mesh.warnings {
            logger.warning("\(warning.description)")
        }
    }
}
