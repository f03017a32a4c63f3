/// The HTTPRoute rules of one Service port, compiled: every match of every rule that
/// applies, sorted once in Gateway API precedence, so a request takes the first that
/// matches (`match`), comparing bytes in place.
///
/// Precedence (Gateway API v1, HTTPRouteRule): an Exact path, then the longest PathPrefix,
/// then regular expressions; then a method match; then more header matches; then more
/// query parameter matches; then the older route (the control plane sends routes oldest
/// first, then by namespace/name), rule order and match order.
struct RouteTable: Sendable {
    let matches: [RouteMatcher]
    let rules: [RouteRule]

    /// The index in `rules` of the rule the request takes; nil when none matches.
    func match<View: RequestHeadView>(_ view: View) -> Int? {
        matchingIndex(view).map { matches[$0].rule }
    }

    /// The index in `matches` of the first match the request meets.
    func matchingIndex<View: RequestHeadView>(_ view: View) -> Int? {
        // Through the buffer, the matchers are borrowed, not retained one by one.
        matches.withUnsafeBufferPointer { matchers in
            for index in 0..<matchers.count where matchers[index].matches(view) { return index }
            return nil
        }
    }

    /// Sorts matchers into precedence order. `position` is (route, rule, match) order.
    static func sorted(_ entries: [(matcher: RouteMatcher, position: (Int, Int, Int))]) -> [RouteMatcher] {
        entries.sorted { a, b in
            let ka = a.matcher.precedenceKey + [a.position.0, a.position.1, a.position.2]
            let kb = b.matcher.precedenceKey + [b.position.0, b.position.1, b.position.2]
            return ka.lexicographicallyPrecedes(kb)
        }.map(\.matcher)
    }
}

/// One rule a request can take: where it came from (for metrics and explanations), its
/// weighted backends, and its timeouts, retry policy and filters. A class, so a request
/// that needs the rule holds one reference, not a copy of its fields.
final class RouteRule: Sendable {
    /// The HTTPRoute's `namespace/name`; empty for the implicit rule of a Service with no route.
    let route: String
    let ruleIndex: Int
    /// `rules[].name`, when given.
    let name: String?
    let backends: WeightedBackends
    let requestTimeoutMs: Int?
    let backendRequestTimeoutMs: Int?
    let retry: RetryPolicy?
    /// The rule's filters; nil when it has none.
    let filters: RouteFilters?
    /// Whether a request taking it needs more than a backend: timeouts, retries or filters.
    let hasPolicies: Bool

    init(
        route: String, ruleIndex: Int, name: String?, backends: WeightedBackends, requestTimeoutMs: Int?,
        backendRequestTimeoutMs: Int?, retry: RetryPolicy?, filters: RouteFilters? = nil
    ) {
        self.route = route
        self.ruleIndex = ruleIndex
        self.name = name
        self.backends = backends
        self.requestTimeoutMs = requestTimeoutMs
        self.backendRequestTimeoutMs = backendRequestTimeoutMs
        self.retry = retry
        self.filters = filters
        self.hasPolicies = requestTimeoutMs != nil || backendRequestTimeoutMs != nil || retry != nil || filters != nil
    }

    var isImplicit: Bool { route.isEmpty }
}

/// A compiled regular expression. Boxed, so the matchers' enums carry one pointer (not
/// `Regex`'s resilient layout, which made every copy of a matcher a runtime call).
final class CompiledRegex: @unchecked Sendable {
    // @unchecked: `Regex` is immutable once compiled but not declared Sendable.
    let regex: Regex<AnyRegexOutput>

    init(_ regex: Regex<AnyRegexOutput>) {
        self.regex = regex
    }

    func wholeMatches(_ bytes: UnsafeRawBufferPointer) -> Bool {
        (try? regex.wholeMatch(in: String(decoding: bytes, as: UTF8.self))) != nil
    }
}

/// HTTPRoute `retry`, as the proxy applies it.
struct RetryPolicy: Sendable, Equatable {
    let attempts: Int
    let codes: [Int]
    let backoffMs: Int
    /// gRPC statuses retried when a call ends trailers-only with one.
    var grpcCodes: [Int] = []
}

/// A rule's `backendRefs`: indices of the snapshot's backends with cumulative weights, so
/// a weighted pick is one random number and a short scan.
struct WeightedBackends: Sendable {
    /// (backend index in the snapshot, cumulative weight up to and including it, the
    /// backendRef's own header modifiers, its route metric slot).
    let entries: [(backend: Int, cumulative: Int, filters: RouteFilters?, metricSlot: Int)]
    var totalWeight: Int { entries.last?.cumulative ?? 0 }

    init(_ weighted: [(backend: Int, weight: Int)]) {
        self.init(weighted.map { ($0.backend, $0.weight, nil, -1) })
    }

    init(_ weighted: [(backend: Int, weight: Int, filters: RouteFilters?, metricSlot: Int)]) {
        var total = 0
        var entries: [(Int, Int, RouteFilters?, Int)] = []
        for (backend, weight, filters, slot) in weighted where weight > 0 {
            total += weight
            entries.append((backend, total, filters, slot))
        }
        self.entries = entries
    }

    /// The backend for a random draw; nil when no backend has weight.
    func pick<R: RandomNumberGenerator>(using random: inout R) -> Int? {
        pickEntry(using: &random).map { entries[$0].backend }
    }

    /// The index in `entries` for a random draw.
    func pickEntry<R: RandomNumberGenerator>(using random: inout R) -> Int? {
        switch entries.count {
        case 0: return nil
        case 1: return 0
        default:
            let draw = Int(random.next(upperBound: UInt64(totalWeight)))
            for (index, entry) in entries.enumerated() where draw < entry.cumulative { return index }
            return entries.count - 1
        }
    }
}

/// One `matches[]` entry of a rule: every condition must hold. A class: the table is
/// walked by reference, never copying a matcher.
final class RouteMatcher: Sendable {
    enum Path: Sendable {
        case exact([UInt8])
        /// Element-wise prefix, without a trailing slash (`/` is the empty prefix, which
        /// matches every path).
        case prefix([UInt8])
        case regex(CompiledRegex)
    }

    enum Value: Sendable {
        case exact([UInt8])
        case regex(CompiledRegex)

        func matches(_ bytes: UnsafeRawBufferPointer) -> Bool {
            switch self {
            case .exact(let value): return bytes.count == value.count && bytes.elementsEqual(value)
            case .regex(let regex): return regex.wholeMatches(bytes)
            }
        }
    }

    let path: Path
    let method: [UInt8]?
    /// Header names lowercased.
    let headers: [(name: [UInt8], value: Value)]
    let queryParams: [(name: [UInt8], value: Value)]
    /// The rule this match belongs to (index in `RouteTable.rules`).
    let rule: Int

    init(
        path: Path, method: [UInt8]?, headers: [(name: [UInt8], value: Value)],
        queryParams: [(name: [UInt8], value: Value)], rule: Int
    ) {
        self.path = path
        self.method = method
        self.headers = headers
        self.queryParams = queryParams
        self.rule = rule
    }

    var precedenceKey: [Int] {
        let pathRank: [Int]
        switch path {
        case .exact: pathRank = [0, 0]
        case .prefix(let prefix): pathRank = [1, -(prefix.count + 1)]
        case .regex: pathRank = [2, 0]
        }
        return pathRank + [method == nil ? 1 : 0, -headers.count, -queryParams.count]
    }

    func matches<View: RequestHeadView>(_ view: View) -> Bool {
        if let method, !view.isMethod(method) { return false }
        let pathMatches = view.withPath { path in
            switch self.path {
            case .exact(let value): return path.count == value.count && path.elementsEqual(value)
            case .prefix(let prefix): return Self.isElementPrefix(prefix, of: path)
            case .regex(let regex): return regex.wholeMatches(path)
            }
        }
        guard pathMatches else { return false }
        for header in headers {
            let ok = view.withHeader(header.name) { value in value.map { header.value.matches($0) } ?? false }
            if !ok { return false }
        }
        if !queryParams.isEmpty {
            let ok = view.withQuery { query in
                queryParams.allSatisfy { param in
                    Self.firstQueryValue(param.name, in: query).map { param.value.matches($0) } ?? false
                }
            }
            if !ok { return false }
        }
        return true
    }

    /// `/abc` is an element prefix of `/abc`, `/abc/` and `/abc/def`, not of `/abcd`.
    static func isElementPrefix(_ prefix: [UInt8], of path: UnsafeRawBufferPointer) -> Bool {
        // PathPrefix `/` matches every request, `OPTIONS *` included.
        if prefix.isEmpty { return true }
        guard path.count >= prefix.count else { return false }
        for i in 0..<prefix.count where path[i] != prefix[i] { return false }
        return path.count == prefix.count || path[prefix.count] == 0x2F
    }

    /// The value of the first `name=value` pair named `name` in a query string.
    static func firstQueryValue(_ name: [UInt8], in query: UnsafeRawBufferPointer) -> UnsafeRawBufferPointer? {
        var start = 0
        while start <= query.count {
            var end = start
            while end < query.count && query[end] != 0x26 { end += 1 }
            var equals = start
            while equals < end && query[equals] != 0x3D { equals += 1 }
            if equals - start == name.count {
                var same = true
                for i in 0..<name.count where query[start + i] != name[i] {
                    same = false
                    break
                }
                if same {
                    let valueStart = min(equals + 1, end)
                    return UnsafeRawBufferPointer(rebasing: query[valueStart..<end])
                }
            }
            start = end + 1
        }
        return nil
    }
}
