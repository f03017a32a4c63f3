import NIOCore

/// Whether a request is sent again after a failed attempt (HTTPRoute `retry`), shared by
/// the HTTP/1 and HTTP/2 drivers.
///
/// - Only a request the proxy can replay is retried: its whole body must have fitted the
///   replay buffer (64 KiB); a larger body is forwarded as it comes, never held whole,
///   and never retried.
/// - Only a response whose status is one of the rule's `codes`, or an attempt that
///   failed before any response (reset, connection closed), and only once the request
///   was sent whole.
/// - At most `attempts` retries; each one withdraws from the Service port's retry budget
///   (MeshConfig `retryBudget`), so a sick backend is never stormed: with the budget
///   spent, the failure goes back to the client as it is.
struct ExchangeRetry {
    static let replayLimit = 64 * 1024

    let policy: RetryPolicy
    /// Retries made so far.
    private(set) var retries = 0
    private(set) var replayBytes = 0
    /// False once the body outgrew the replay buffer.
    private(set) var isReplayable = true

    init(policy: RetryPolicy) {
        self.policy = policy
    }

    /// Counts `count` more body bytes; returns false (and stops keeping) past the limit.
    mutating func keep(bodyBytes count: Int) -> Bool {
        guard isReplayable else { return false }
        replayBytes += count
        if replayBytes > Self.replayLimit { isReplayable = false }
        return isReplayable
    }

    enum Outcome: Equatable {
        /// Send it again after `backoff`; `attempt` is the retry's number (1 for the first).
        case retry(backoff: TimeAmount, attempt: Int)
        /// Not a failure this policy retries, or the request cannot be replayed.
        case noRetry
        /// Retries left, but the budget is spent.
        case budgetExhausted
        /// The policy's attempts are used up.
        case attemptsExhausted
    }

    /// Decides after an attempt failed with `status` (nil: no response at all), or with a
    /// trailers-only gRPC status `grpcStatus`.
    /// - Parameter withdraw: takes one retry from the budget; called only when all else allows.
    mutating func decide(status: Int?, grpcStatus: Int? = nil, requestComplete: Bool, withdraw: () -> Bool)
        -> Outcome
    {
        guard isReplayable, requestComplete else { return .noRetry }
        if let grpcStatus {
            guard policy.grpcCodes.contains(grpcStatus) else { return .noRetry }
        } else if let status {
            guard policy.codes.contains(status) else { return .noRetry }
        }
        guard retries < policy.attempts else { return .attemptsExhausted }
        guard withdraw() else { return .budgetExhausted }
        retries += 1
        return .retry(backoff: .milliseconds(Int64(policy.backoffMs)), attempt: retries)
    }

    /// `decide`, counted in `metrics` (`weft_retries_total{reason}` or
    /// `weft_retry_budget_exhausted_total`): the backoff and the retry's number when a
    /// retry is due, nil otherwise. What both drivers call.
    mutating func next(
        status: Int?, grpcStatus: Int? = nil, requestComplete: Bool, reason: RetryReason, metrics: DirectionMetrics,
        withdraw: () -> Bool
    ) -> (backoff: TimeAmount, attempt: Int)? {
        switch decide(status: status, grpcStatus: grpcStatus, requestComplete: requestComplete, withdraw: withdraw) {
        case .retry(let backoff, let attempt):
            metrics.retried(reason)
            return (backoff, attempt)
        case .budgetExhausted:
            metrics.retryBudgetExhausted()
            return nil
        case .noRetry, .attemptsExhausted:
            return nil
        }
    }
}
