import Synchronization
import W3CTraceContext

/// The pod's inbound requests in flight, for every event loop: when the app calls out
/// without trace context of its own while exactly one request is being served, and that
/// one is traced, it is the request the call serves, and the call's span joins its trace,
/// marked `weft.link.inferred` (issue 12). With none or several in flight (traced or not)
/// nothing is inferred: a link is never invented.
final class InflightRequests: Sendable {
    private let serving = Mutex<[SpanID: TraceID]>([:])
    /// How many: read without the lock, so an outbound request pays a load when none or
    /// several are in flight.
    private let active = Atomic<Int>(0)
    /// Every inbound request in flight, traced or not (`arrive`, `depart`).
    private let total = Atomic<Int>(0)

    /// An inbound request began (any: traced, unsampled or without context).
    func arrive() { total.wrappingAdd(1, ordering: .relaxed) }

    /// It ended.
    func depart() { total.wrappingSubtract(1, ordering: .relaxed) }

    /// An inbound request's SERVER span began (the request `arrive`d too).
    func enter(trace: TraceID, span: SpanID) {
        serving.withLock {
            $0[span] = trace
            active.store($0.count, ordering: .relaxed)
        }
    }

    /// It ended (again: nothing).
    func leave(span: SpanID) {
        serving.withLock {
            $0[span] = nil
            active.store($0.count, ordering: .relaxed)
        }
    }

    /// The one request in flight, when there is exactly one: its trace and SERVER span.
    func sole() -> (trace: TraceID, span: SpanID)? {
        guard total.load(ordering: .relaxed) == 1, active.load(ordering: .relaxed) == 1 else { return nil }
        return serving.withLock { serving in
            guard serving.count == 1, let (span, trace) = serving.first else { return nil }
            return (trace, span)
        }
    }

    /// Requests in flight (for tests).
    var count: Int { serving.withLock { $0.count } }
}
