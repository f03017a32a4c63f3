import Foundation

/// One change round: from just before the config file was written (t0) until each
/// connection received, and then acked, the delta carrying the new endpoints.
struct RoundResult: Codable {
    var number: Int
    var expected: Int
    /// Connections that received and acked the round's delta.
    var got: Int
    var missing: Int
    /// Ack times (received + decoded + acked), ms after t0.
    var ackP50Ms: Double?
    var ackP99Ms: Double?
    var ackP100Ms: Double?
    /// Receive times, ms after t0.
    var receivedP50Ms: Double?
    var receivedP100Ms: Double?
    /// The first delta's receive time: debounce + reload + compile + first push.
    var firstReceivedMs: Double?

    init(number: Int, expected: Int, t0: UInt64, received: [UInt64], acked: [UInt64]) {
        self.number = number
        self.expected = expected
        let ack = acked.filter { $0 != 0 }.map { $0 &- t0 }.sorted()
        let recv = received.filter { $0 != 0 }.map { $0 &- t0 }.sorted()
        got = ack.count
        missing = expected - ack.count
        ackP50Ms = ControlLoadCommand.percentile(ack, 0.50).map(ControlLoadCommand.ms)
        ackP99Ms = ControlLoadCommand.percentile(ack, 0.99).map(ControlLoadCommand.ms)
        ackP100Ms = ack.last.map(ControlLoadCommand.ms)
        receivedP50Ms = ControlLoadCommand.percentile(recv, 0.50).map(ControlLoadCommand.ms)
        receivedP100Ms = recv.last.map(ControlLoadCommand.ms)
        firstReceivedMs = recv.first.map(ControlLoadCommand.ms)
    }

    var summary: String {
        func f(_ v: Double?) -> String { v.map { ControlLoadCommand.fixed($0, 1) } ?? "-" }
        return "round \(number): \(got)/\(expected) acked"
            + (missing > 0 ? " (\(missing) MISSING)" : "")
            + "; ack p50 \(f(ackP50Ms)) ms, p99 \(f(ackP99Ms)) ms, p100 \(f(ackP100Ms)) ms"
            + "; first delta at \(f(firstReceivedMs)) ms, last received \(f(receivedP100Ms)) ms"
    }
}

/// Everything one run measured; printed for people and written as JSON for bench/control.sh.
struct LoadResults: Codable {
    var connections: Int
    var connected = 0
    var connectFailures = 0
    var firstConnectFailures: [String] = []
    var keygenSeconds = 0.0
    var connectSeconds = 0.0
    var connectP50Ms: Double?
    var connectP99Ms: Double?
    var rssBeforeKB: Int?
    var rssConnectedKB: Int?
    var rssAfterRoundsKB: Int?
    var rounds: [RoundResult] = []
    /// Medians over rounds of each round's percentile.
    var medianAckP50Ms: Double?
    var medianAckP99Ms: Double?
    var medianAckP100Ms: Double?
    var worstAckP100Ms: Double?
    var nacks = 0
    var dropped = 0
    var errors = 0
    var firstErrors: [String] = []
    var loadToolMaxRSSKB: Int?
    var runAfterOutput: String?

    init(connections: Int) { self.connections = connections }

    /// Control-plane memory per connected proxy, in kB as /proc reports it (KiB).
    var rssPerProxyKB: Double? {
        guard let before = rssBeforeKB, let after = rssConnectedKB, connected > 0 else { return nil }
        return Double(after - before) / Double(connected)
    }

    var isComplete: Bool {
        connected == connections && rounds.allSatisfy { $0.missing == 0 } && dropped == 0
    }

    mutating func summarizeRounds() {
        func median(_ values: [Double]) -> Double? {
            let sorted = values.sorted()
            guard !sorted.isEmpty else { return nil }
            return sorted.count % 2 == 1
                ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
        }
        medianAckP50Ms = median(rounds.compactMap(\.ackP50Ms))
        medianAckP99Ms = median(rounds.compactMap(\.ackP99Ms))
        medianAckP100Ms = median(rounds.compactMap(\.ackP100Ms))
        worstAckP100Ms = rounds.compactMap(\.ackP100Ms).max()
    }

    func printReport() {
        func f(_ v: Double?, _ digits: Int = 1) -> String { v.map { ControlLoadCommand.fixed($0, digits) } ?? "-" }
        print("connections: \(connected)/\(connections) (failures \(connectFailures))")
        print(
            "connect phase: \(f(connectSeconds, 2)) s (per connection p50 \(f(connectP50Ms)) ms, p99 \(f(connectP99Ms)) ms); keys+CSRs \(f(keygenSeconds, 2)) s"
        )
        for round in rounds { print(round.summary) }
        if !rounds.isEmpty {
            print(
                "propagation (median of \(rounds.count) rounds): p50 \(f(medianAckP50Ms)) ms, p99 \(f(medianAckP99Ms)) ms, p100 \(f(medianAckP100Ms)) ms; worst round p100 \(f(worstAckP100Ms)) ms"
            )
        }
        if let before = rssBeforeKB, let after = rssConnectedKB {
            print(
                "weft-control VmRSS: \(before) kB before, \(after) kB connected, \(rssAfterRoundsKB.map(String.init) ?? "-") kB after rounds; per proxy \(f(rssPerProxyKB)) kB"
            )
        }
        print("nacks \(nacks), dropped \(dropped), errors \(errors)" + (firstErrors.isEmpty ? "" : ": \(firstErrors)"))
        print("load tool peak RSS: \(loadToolMaxRSSKB.map(String.init) ?? "-") kB")
        if let runAfterOutput { print(runAfterOutput, terminator: runAfterOutput.hasSuffix("\n") ? "" : "\n") }
    }
}
