import NIOCore

/// The time limits of one request, from its route and the proxy's own settings, and the
/// 504 that names the one that ran out. Shared by the HTTP/1 and HTTP/2 drivers.
///
/// - `timeouts.request` (HTTPRoute): the whole exchange, counted from the request's start,
///   retries included; a gRPC `grpc-timeout` shortens it.
/// - `timeouts.backendRequest` (HTTPRoute): each attempt, counted from when it was sent.
/// - The proxy's `--response-timeout`: each attempt, when no route sets one.
///
/// A limit bounds the wait for the response head; a response that has started streams on.
struct ExchangeDeadlines {
    enum Limit: Equatable {
        case request(TimeAmount)
        case grpcTimeout(TimeAmount)
        case backendRequest(TimeAmount)
        case proxy(TimeAmount)
    }

    /// The whole exchange's deadline, and which limit set it.
    private(set) var exchange: (deadline: NIODeadline, limit: Limit)?
    let attemptTimeout: TimeAmount?
    let proxyTimeout: TimeAmount

    /// - Parameters:
    ///   - start: when the request began.
    ///   - requestTimeoutMs, backendRequestTimeoutMs: the rule's `timeouts` (nil: none).
    init(start: NIODeadline, requestTimeoutMs: Int?, backendRequestTimeoutMs: Int?, proxyTimeout: TimeAmount) {
        if let ms = requestTimeoutMs {
            let amount = TimeAmount.milliseconds(Int64(ms))
            exchange = (start + amount, .request(amount))
        }
        attemptTimeout = backendRequestTimeoutMs.map { .milliseconds(Int64($0)) }
        self.proxyTimeout = proxyTimeout
    }

    /// No route: only the proxy's response timeout.
    init(proxyTimeout: TimeAmount) {
        self.init(start: .now(), requestTimeoutMs: nil, backendRequestTimeoutMs: nil, proxyTimeout: proxyTimeout)
    }

    /// A gRPC client's `grpc-timeout`, when it is earlier than the route's limit.
    mutating func limitByGRPCTimeout(_ timeout: TimeAmount, start: NIODeadline) {
        let deadline = start + timeout
        if let exchange, exchange.deadline <= deadline { return }
        exchange = (deadline, .grpcTimeout(timeout))
    }

    /// When an attempt sent at `sent` gives up waiting for its response head, and why.
    func responseDeadline(attemptSentAt sent: NIODeadline) -> (deadline: NIODeadline, limit: Limit) {
        let attempt =
            attemptTimeout.map { (sent + $0, Limit.backendRequest($0)) } ?? (sent + proxyTimeout, .proxy(proxyTimeout))
        guard let exchange, exchange.deadline < attempt.0 else { return attempt }
        return exchange
    }

    /// The 504 for `limit`.
    static func answer(_ limit: Limit, destination: String, route: String?) -> ProxyAnswer {
        let what: String
        switch limit {
        case .request(let t): what = "route \(route ?? "?") timeouts.request (\(seconds(t))) ran out"
        case .grpcTimeout(let t): what = "the client's grpc-timeout (\(seconds(t))) ran out"
        case .backendRequest(let t):
            what =
                "\(destination) sent no response within route \(route ?? "?") timeouts.backendRequest (\(seconds(t)))"
        case .proxy(let t): what = "upstream \(destination) sent no response within \(seconds(t))"
        }
        return ProxyAnswer(status: 504, kind: .upstreamTimeout, detail: what)
    }

    /// Parses a `grpc-timeout` value (gRPC over HTTP/2: 1–8 digits and a unit H, M, S, m,
    /// u or n); nil when malformed.
    static func grpcTimeout(_ value: String) -> TimeAmount? {
        let utf8 = Array(value.utf8)
        guard utf8.count >= 2, utf8.count <= 9 else { return nil }
        var amount: Int64 = 0
        for byte in utf8.dropLast() {
            guard byte >= 0x30 && byte <= 0x39 else { return nil }
            amount = amount * 10 + Int64(byte - 0x30)
        }
        switch utf8.last! {
        case UInt8(ascii: "H"): return .hours(amount)
        case UInt8(ascii: "M"): return .minutes(amount)
        case UInt8(ascii: "S"): return .seconds(amount)
        case UInt8(ascii: "m"): return .milliseconds(amount)
        case UInt8(ascii: "u"): return .microseconds(amount)
        case UInt8(ascii: "n"): return .nanoseconds(amount)
        default: return nil
        }
    }
}
