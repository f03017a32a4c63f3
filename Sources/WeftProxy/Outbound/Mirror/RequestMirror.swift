import NIOCore

/// A RequestMirror filter, compiled once per snapshot.
struct MirrorPlan: Sendable {
    /// Index in the snapshot's backends (and the loop's balancers).
    let backend: Int
    /// Share of requests copied, 0-100.
    let percent: Int
    /// The backend's Service (`namespace/name`) and port: how a copy finds it again in a
    /// snapshot installed while its request was read.
    let service: String
    let port: Int

    var target: String { "\(service):\(port)" }
}

/// How a mirrored copy of a request ended (`weft_mirror_requests_total{result}`).
enum MirrorResult: String, CaseIterable, Sendable {
    /// A whole response came back (any status) and was discarded.
    case completed
    /// The copy's connection failed, or closed before a whole response.
    case failed
    /// No whole response within `RequestMirror.timeout`: the copy was abandoned.
    case timeout
    /// Not sent: the loop already had `RequestMirror.maxInFlight` copies out.
    case busy
    /// Not sent: the request's body was larger than `RequestMirror.bodyLimit`.
    case tooLarge = "too_large"
    /// Not sent: the mirror backend has no ready endpoint, or its endpoints did not arrive
    /// within the discovery timeout.
    case noEndpoint = "no_endpoint"

    var metricIndex: Int {
        switch self {
        case .completed: return 0
        case .failed: return 1
        case .timeout: return 2
        case .busy: return 3
        case .tooLarge: return 4
        case .noEndpoint: return 5
        }
    }
}

/// RequestMirror's bounds: fire and forget, and never at the real request's expense.
///
/// - A copy is sent once the whole request has been read, so it never holds the request
///   back; its body is kept as slices of the received buffers (no copy), up to `bodyLimit`.
/// - The copy has its own connection (HTTP/1: from the loop's pool; HTTP/2: a stream on the
///   loop's mirror connection to that endpoint), its response is read and dropped, and it
///   is abandoned after `timeout`.
/// - At most `maxInFlight` copies per event loop; past that, copies are dropped (counted),
///   so a mirror target that hangs costs a bounded number of sockets and bytes.
enum RequestMirror {
    static let bodyLimit = 64 * 1024
    static let maxInFlight = 64
    static let timeout = TimeAmount.seconds(10)

    /// The copy's limit: `timeout`, or the route's request timeout when that is shorter.
    static func timeout(requestTimeoutMs: Int?) -> TimeAmount {
        guard let ms = requestTimeoutMs, ms > 0 else { return timeout }
        return min(timeout, .milliseconds(Int64(ms)))
    }
}

/// The copies one request owes, while its body is read: which mirrors it drew, and the
/// body so far. Shared by both drivers.
struct MirrorCopy {
    let plans: [MirrorPlan]
    /// The loop's snapshot serial the plans' backend indices are of.
    let serial: UInt64
    let timeout: TimeAmount
    private(set) var body: [ByteBuffer] = []
    private var bodyBytes = 0
    private(set) var isTooLarge = false

    init(plans: [MirrorPlan], serial: UInt64, timeout: TimeAmount) {
        self.plans = plans
        self.serial = serial
        self.timeout = timeout
    }

    /// Keeps a slice of the request body; past `RequestMirror.bodyLimit` the copy is off.
    mutating func append(_ slice: ByteBuffer) {
        guard !isTooLarge else { return }
        bodyBytes += slice.readableBytes
        if bodyBytes > RequestMirror.bodyLimit {
            isTooLarge = true
            body = []
        } else {
            body.append(slice)
        }
    }
}

extension LoopContext {
    /// The mirrors a request takes: each drawn by its percent. Nil when none.
    func drawMirrors(_ plans: [MirrorPlan], requestTimeoutMs: Int?) -> MirrorCopy? {
        var drawn: [MirrorPlan] = []
        for plan in plans where plan.percent >= 100 || (plan.percent > 0 && Int(random.next() % 100) < plan.percent) {
            drawn.append(plan)
        }
        guard !drawn.isEmpty else { return nil }
        return MirrorCopy(
            plans: drawn, serial: snapshotSerial, timeout: RequestMirror.timeout(requestTimeoutMs: requestTimeoutMs))
    }

    /// Takes an in-flight slot and an endpoint for one copy and calls `send` with it: at
    /// once, or (a mirror backend not fetched yet) once its endpoints arrive, within the
    /// discovery timeout. A copy that is not sent is counted.
    /// - Parameter serial: the snapshot the plan's backend index is of; under a later one
    ///   the backend is found again by Service and port.
    func beginMirror(
        _ plan: MirrorPlan, serial: UInt64, deadline: NIODeadline? = nil, holdingSlot: Bool = false,
        _ send: @escaping (LoopEndpoint) -> Void
    ) {
        // The slot is taken first, so copies waiting for discovery (each holding its body)
        // count against the bound too.
        if !holdingSlot {
            guard mirrorsInFlight < RequestMirror.maxInFlight else { return mirrorEnded(.busy) }
            mirrorsInFlight += 1
        }
        func notSent() {
            mirrorsInFlight -= 1
            mirrorEnded(.noEndpoint)
        }
        var backend = plan.backend
        if serial != snapshotSerial {
            guard
                let found = snapshot.backends.firstIndex(where: { $0.service == plan.service && $0.port == plan.port })
            else { return notSent() }
            backend = found
        }
        guard backend < balancers.count else { return notSent() }
        noteUsed(backend: backend)
        if case .awaitingDiscovery = snapshot.backends[backend].resolution {
            requestDiscovery(of: plan.service)
            let deadline = deadline ?? (eventLoop.now + discoveryTimeout)
            waitForDiscovery(until: deadline) { [self] arrived in
                guard arrived else { return notSent() }
                beginMirror(plan, serial: 0, deadline: deadline, holdingSlot: true, send)
            }
            return
        }
        guard let endpoint = balancers[backend].pick(now: Self.now(), random: &random) else { return notSent() }
        endpoint.requestStarted()
        send(endpoint)
    }

    /// A copy begun with `beginMirror` ended: its slot is free, and its endpoint learns the
    /// outcome (a failure counts toward ejection; `abandoned`: it does not count at all).
    func endMirror(
        _ endpoint: LoopEndpoint, startedAt: UInt64, result: MirrorResult, failed: Bool, abandoned: Bool = false
    ) {
        mirrorsInFlight -= 1
        if abandoned {
            endpoint.requestAbandoned()
        } else {
            let now = Self.now()
            _ = endpoint.requestFinished(rttNanoseconds: now &- startedAt, now: now, failed: failed)
        }
        mirrorEnded(result)
    }

    /// Counts a copy that ended, or was never sent.
    func mirrorEnded(_ result: MirrorResult) {
        metrics?.outbound.mirrored(result)
    }
}
