/// Power of two choices: two distinct candidates drawn at random, the cheaper one wins.
///
/// Linkerd's balancer: close to the best choice under load, without the herd behaviour of
/// always picking the least loaded (every proxy would pick the same endpoint), and O(1)
/// per pick whatever the number of endpoints.
enum PowerOfTwoChoices {
    /// The index of the chosen candidate among `count` (nil when there is none).
    /// - Parameter cost: the cost of candidate `i`; called twice at most.
    static func pick<R: RandomNumberGenerator>(
        count: Int, using random: inout R, cost: (Int) -> Double
    ) -> Int? {
        switch count {
        case ..<1: return nil
        case 1: return 0
        default:
            let first = Int(random.next(upperBound: UInt64(count)))
            // The second is drawn from the others, so the two always differ.
            var second = Int(random.next(upperBound: UInt64(count - 1)))
            if second >= first { second += 1 }
            return cost(second) < cost(first) ? second : first
        }
    }
}
