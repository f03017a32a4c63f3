/// One rule of an HTTPRoute: what it matches, where it sends, with which limits.
public struct HTTPRouteRule: Hashable, Sendable {
    public let name: String?
    /// Never empty: a rule without matches matches PathPrefix `/`, as Gateway API says.
    public let matches: [HTTPRouteMatch]
    public let backendRefs: [HTTPBackendRef]
    public let timeouts: Timeouts?
    public let retry: Retry?
    /// Applied in order to requests that take this rule (and their responses).
    public let filters: [HTTPRouteFilter]

    /// `timeouts`: zero means "no timeout" (Gateway API).
    public struct Timeouts: Hashable, Sendable {
        public let request: Duration?
        public let backendRequest: Duration?

        public init(request: Duration?, backendRequest: Duration?) {
            self.request = request
            self.backendRequest = backendRequest
        }
    }

    /// `retry` (GEP-1731), or for gRPC the route's `retry.weft.dev/*` annotations.
    public struct Retry: Hashable, Sendable {
        /// HTTP statuses (400...599) that are retried.
        public let codes: [Int]
        public let attempts: Int?
        public let backoff: Duration?
        /// gRPC status codes that are retried (a trailers-only response carrying one).
        public let grpcCodes: [Int]

        public init(codes: [Int], attempts: Int?, backoff: Duration?, grpcCodes: [Int] = []) {
            self.codes = codes
            self.attempts = attempts
            self.backoff = backoff
            self.grpcCodes = grpcCodes
        }
    }

    public init(
        name: String?, matches: [HTTPRouteMatch], backendRefs: [HTTPBackendRef], timeouts: Timeouts?, retry: Retry?,
        filters: [HTTPRouteFilter] = []
    ) {
        self.filters = filters
        self.name = name
        self.matches = matches
        self.backendRefs = backendRefs
        self.timeouts = timeouts
        self.retry = retry
    }
}
