/// One `matches[]` entry; every field given must match.
public struct HTTPRouteMatch: Hashable, Sendable {
    public enum PathMatchType: String, Hashable, Sendable {
        case exact = "Exact"
        case pathPrefix = "PathPrefix"
        case regularExpression = "RegularExpression"
    }

    public enum ValueMatchType: String, Hashable, Sendable {
        case exact = "Exact"
        case regularExpression = "RegularExpression"
    }

    public struct PathMatch: Hashable, Sendable {
        public let type: PathMatchType
        public let value: String

        public init(type: PathMatchType, value: String) {
            self.type = type
            self.value = value
        }
    }

    /// A header or query parameter match.
    public struct ValueMatch: Hashable, Sendable {
        public let type: ValueMatchType
        public let name: String
        public let value: String

        public init(type: ValueMatchType, name: String, value: String) {
            self.type = type
            self.name = name
            self.value = value
        }
    }

    /// Defaults to PathPrefix `/`.
    public let path: PathMatch
    public let headers: [ValueMatch]
    public let queryParams: [ValueMatch]
    public let method: String?

    /// The match a rule without `matches` has.
    public static let matchAll = HTTPRouteMatch(
        path: PathMatch(type: .pathPrefix, value: "/"), headers: [], queryParams: [], method: nil)

    public init(path: PathMatch, headers: [ValueMatch], queryParams: [ValueMatch], method: String?) {
        self.path = path
        self.headers = headers
        self.queryParams = queryParams
        self.method = method
    }
}
