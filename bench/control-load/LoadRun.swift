import NIOCore
import Synchronization

/// What the connections share with the main task: the round being waited for, the
/// per-connection times of that round, and counters of things that went wrong.
///
/// Handlers touch it once per matching delta, not per frame, so one lock is enough.
final class LoadRun: Sendable {
    /// The Service whose endpoints each round changes, `namespace/name`.
    let changeService: String

    private struct Round {
        var number = 0
        /// Sorted addresses the round's delta carries.
        var addresses: [String] = []
        var receivedAt: [UInt64]
        var ackedAt: [UInt64]
        var count = 0
    }

    struct Counters: Sendable {
        var dropped = 0
        var nacks = 0
        var errors = 0
        var firstErrors: [String] = []
    }

    private let state: Mutex<Round>
    private let counters = Mutex(Counters())

    init(changeService: String, connections: Int) {
        self.changeService = changeService
        state = Mutex(
            Round(receivedAt: Array(repeating: 0, count: connections), ackedAt: Array(repeating: 0, count: connections))
        )
    }

    /// Starts waiting for `addresses` as round `number`; earlier rounds' records are dropped.
    func begin(round number: Int, addresses: [String]) {
        state.withLock { round in
            round.number = number
            round.addresses = addresses.sorted()
            for i in round.receivedAt.indices {
                round.receivedAt[i] = 0
                round.ackedAt[i] = 0
            }
            round.count = 0
        }
    }

    /// The round whose endpoint set is `addresses`, if it is the one being waited for.
    func round(matching addresses: [String]) -> Int? {
        let sorted = addresses.sorted()
        return state.withLock { $0.number > 0 && $0.addresses == sorted ? $0.number : nil }
    }

    func record(round number: Int, connection: Int, receivedAt: UInt64, ackedAt: UInt64) {
        state.withLock { round in
            guard round.number == number, round.ackedAt[connection] == 0 else { return }
            round.receivedAt[connection] = receivedAt
            round.ackedAt[connection] = ackedAt
            round.count += 1
        }
    }

    /// How many connections have received and acked the current round's delta.
    var completed: Int { state.withLock { $0.count } }

    /// The recorded times (uptime nanoseconds; 0 where none) of the current round.
    func times() -> (received: [UInt64], acked: [UInt64]) {
        state.withLock { ($0.receivedAt, $0.ackedAt) }
    }

    func connectionDropped() { counters.withLock { $0.dropped += 1 } }
    func noteNack() { counters.withLock { $0.nacks += 1 } }

    func noteError(_ text: String) {
        counters.withLock {
            $0.errors += 1
            if $0.firstErrors.count < 5 { $0.firstErrors.append(text) }
        }
    }

    var snapshot: Counters { counters.withLock { $0 } }
}
