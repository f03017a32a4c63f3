/// The HTTPRoute rules of one Service port, compiled: every match of every rule that
/// applies, sorted once in Gateway API precedence, so a request takes the first that
/// matches (`match`), comparing bytes in place.
///
/// Precedence (Gateway API v1, HTTPRouteRule): an Exact path, then the longest PathPrefix,
/// then regular expressions; then a method match; then more header matches; then more
/// query parameter matches; then the older route (the control plane sends routes oldest
/// first, then by namespace/name), rule order and match order.
///
/// A class, so a request reaching it through its Service port's plan retains one object,
/// not each of its arrays.
final class RouteTable: Sendable {
    let matches: [RouteMatcher]
    let rules: [RouteRule]
    /// `matches` again, unretained (`matches` keeps them alive): calling a method on a
    /// class reference read from an array retains and releases it, ~40 instructions a
    /// matcher; through `Unmanaged` the call borrows it.
    private let matchers: [Unmanaged<RouteMatcher>]

    init(matches: [RouteMatcher], rules: [RouteRule]) {
        self.matches = matches
        self.rules = rules
        self.matchers = matches.map { Unmanaged.passUnretained($0) }
    }

    /// The index in `rules` of the rule the request takes; nil when none matches.
    func match<View: RequestHeadView>(_ view: View) -> Int? {
        matchingIndex(view).map { matches[$0].rule }
    }

    /// The index in `matches` of the first match the request meets.
    func matchingIndex<View: RequestHeadView>(_ view: View) -> Int? {
        view.withPath { path in  // found once, not per matcher
            for index in 0..<matchers.count
            where matchers[index]._withUnsafeGuaranteedRef({ $0.mayMatch(path) && $0.matches(view, path: path) }) {
                return index
            }
            return nil
        }
    }

    /// The rule the request takes and how many bytes of its path the match's PathPrefix
    /// matched (for ReplacePrefixMatch), without retaining the matcher.
    func matchedRule<View: RequestHeadView>(_ view: View) -> (rule: Int, matchedPrefix: Int)? {
        guard let index = matchingIndex(view) else { return nil }
        return matchers[index]._withUnsafeGuaranteedRef { ($0.rule, $0.prefixLength) }
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
final class RouteMatcher: @unchecked Sendable {
    // @unchecked: the raw copies below are written once, in init, and only read after.
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

    /// What a request is compared with first, in memory the matcher owns: the path's kind
    /// and bytes and the method's bytes. Reading them costs no reference counting (reading
    /// the arrays above retains and releases them, ~30 instructions a matcher).
    private enum PathKind { case exact, prefix, regex }
    private let pathKind: PathKind
    private let pathBytes: UnsafeRawBufferPointer
    private let methodBytes: UnsafeRawBufferPointer?
    private let hasHeaders: Bool
    private let hasQueryParams: Bool
    /// A PathPrefix match's length in bytes; 0 for the others.
    let prefixLength: Int

    init(
        path: Path, method: [UInt8]?, headers: [(name: [UInt8], value: Value)],
        queryParams: [(name: [UInt8], value: Value)], rule: Int
    ) {
        self.path = path
        self.method = method
        self.headers = headers
        self.queryParams = queryParams
        self.rule = rule
        switch path {
        case .exact(let bytes):
            pathKind = .exact
            pathBytes = Self.copy(bytes)
        case .prefix(let bytes):
            pathKind = .prefix
            pathBytes = Self.copy(bytes)
        case .regex:
            pathKind = .regex
            pathBytes = Self.copy([])
        }
        methodBytes = method.map(Self.copy)
        if case .prefix(let bytes) = path { prefixLength = bytes.count } else { prefixLength = 0 }
        hasHeaders = !headers.isEmpty
        hasQueryParams = !queryParams.isEmpty
    }

    deinit {
        pathBytes.deallocate()
        methodBytes?.deallocate()
    }

    private static func copy(_ bytes: [UInt8]) -> UnsafeRawBufferPointer {
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: max(bytes.count, 1), alignment: 1)
        buffer.copyBytes(from: bytes)
        return UnsafeRawBufferPointer(rebasing: buffer[0..<bytes.count])
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
        view.withPath { matches(view, path: $0) }
    }

    /// False when the path's length alone rules the match out (an Exact path of another
    /// length, a PathPrefix longer than the path): inlined into the table's loop, it passes
    /// over most matchers without a call.
    @inline(__always)
    func mayMatch(_ path: UnsafeRawBufferPointer) -> Bool {
        switch pathKind {
        case .exact: return path.count == pathBytes.count
        case .prefix: return path.count >= pathBytes.count
        case .regex: return true
        }
    }

    /// Whether the request, whose path (without the query) is `path`, meets every condition.
    func matches<View: RequestHeadView>(_ view: View, path: UnsafeRawBufferPointer) -> Bool {
        if let methodBytes, !view.isMethod(methodBytes) { return false }
        switch pathKind {
        case .exact:
            guard path.count == pathBytes.count, path.elementsEqual(pathBytes) else { return false }
        case .prefix:
            guard Self.isElementPrefix(pathBytes, of: path) else { return false }
        case .regex:
            guard regexMatches(path) else { return false }
        }
        if hasHeaders {
            for header in headers {
                let ok = view.withHeader(header.name) { value in value.map { header.value.matches($0) } ?? false }
                if !ok { return false }
            }
        }
        if hasQueryParams {
            let ok = view.withQuery { query in
                queryParams.allSatisfy { param in
                    Self.firstQueryValue(param.name, in: query).map { param.value.matches($0) } ?? false
                }
            }
            if !ok { return false }
        }
        return true
    }

    /// Out of line: inlined, `Regex`'s resilient match type made every call of `matches`
    /// look its metadata up and size a stack buffer, regex or not.
    @inline(never)
    private func regexMatches(_ path: UnsafeRawBufferPointer) -> Bool {
        guard case .regex(let regex) = self.path else { return false }
        return regex.wholeMatches(path)
    }

    /// `/abc` is an element prefix of `/abc`, `/abc/` and `/abc/def`, not of `/abcd`.
    static func isElementPrefix(_ prefix: [UInt8], of path: UnsafeRawBufferPointer) -> Bool {
        prefix.withUnsafeBytes { isElementPrefix($0, of: path) }
    }

    static func isElementPrefix(_ prefix: UnsafeRawBufferPointer, of path: UnsafeRawBufferPointer) -> Bool {
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
