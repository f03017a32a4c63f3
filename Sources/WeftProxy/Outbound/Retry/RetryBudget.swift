/// The mesh's retry budget (MeshConfig `retryBudget`): retries may add at most `ratio` of
/// the requests sent, plus `minPerSecond` retries a second, counted over a sliding
/// `window` (Linkerd's and Finagle's budget; defaults 20%, 10/s, 10 s).
///
/// A sick backend is then never stormed: once the budget is spent, a failure is returned
/// as it is. Every request deposits `ratio` of a token; every retry withdraws a whole one;
/// the minimum is a standing allowance per window. Deposits and withdrawals are kept in
/// one-second slots of a ring, so what leaves the window is forgotten without a timer.
/// Counted in thousandths, so no floating point drifts. Time is passed in (nanoseconds
/// of a monotonic clock); one budget per Service port and event loop, no lock.
struct RetryBudget: Sendable {
    private static let scale = 1000
    private static let slotNanoseconds: UInt64 = 1_000_000_000

    /// Thousandths of a token each request deposits.
    let depositPerRequest: Int
    /// Thousandths of a token the minimum allows per window.
    let allowance: Int
    private var deposits: [Int]
    private var withdrawals: [Int]
    /// The slot (seconds since the clock's origin) the ring's current position holds.
    private var currentSlot: UInt64
    private var position = 0

    init(ratio: Double, minPerSecond: Int, windowSeconds: Int, now: UInt64) {
        let slots = max(1, windowSeconds)
        depositPerRequest = max(0, Int((ratio * Double(Self.scale)).rounded()))
        allowance = max(0, minPerSecond) * slots * Self.scale
        deposits = Array(repeating: 0, count: slots)
        withdrawals = Array(repeating: 0, count: slots)
        currentSlot = now / Self.slotNanoseconds
    }

    /// A request is sent (first attempts only; retries do not deposit).
    mutating func deposit(now: UInt64) {
        advance(to: now)
        deposits[position] += depositPerRequest
    }

    /// Takes one retry from the budget; false when it is spent (no retry then).
    mutating func withdraw(now: UInt64) -> Bool {
        advance(to: now)
        guard balance >= Self.scale else { return false }
        withdrawals[position] += Self.scale
        return true
    }

    /// Whole retries available now.
    func available(now: UInt64) -> Int {
        var copy = self
        copy.advance(to: now)
        return max(0, copy.balance / Self.scale)
    }

    private var balance: Int {
        allowance + deposits.reduce(0, +) - withdrawals.reduce(0, +)
    }

    /// Moves the ring to the slot of `now`, clearing the slots that left the window.
    private mutating func advance(to now: UInt64) {
        let slot = now / Self.slotNanoseconds
        guard slot > currentSlot else { return }
        let steps = min(Int(slot - currentSlot), deposits.count)
        for _ in 0..<steps {
            position = (position + 1) % deposits.count
            deposits[position] = 0
            withdrawals[position] = 0
        }
        currentSlot = slot
    }
}
