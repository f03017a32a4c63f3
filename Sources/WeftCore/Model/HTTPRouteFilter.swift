/// An HTTPRoute filter (`rules[].filters[]`, and the header modifiers of
/// `rules[].backendRefs[].filters[]`), as Gateway API v1 defines it.
public enum HTTPRouteFilter: Hashable, Sendable {
    case requestHeaderModifier(HeaderModifier)
    case responseHeaderModifier(HeaderModifier)
    case requestRedirect(Redirect)
    case urlRewrite(Rewrite)
    case requestMirror(Mirror)

    /// `set` replaces a header (or adds it), `add` appends a value, `remove` drops it;
    /// names are case-insensitive.
    public struct HeaderModifier: Hashable, Sendable {
        public let set: [Header]
        public let add: [Header]
        public let remove: [String]

        public init(set: [Header], add: [Header], remove: [String]) {
            self.set = set
            self.add = add
            self.remove = remove
        }
    }

    public struct Header: Hashable, Sendable {
        public let name: String
        public let value: String

        public init(name: String, value: String) {
            self.name = name
            self.value = value
        }
    }

    public enum PathModifier: Hashable, Sendable {
        case replaceFullPath(String)
        /// Replaces the part of the path the rule's PathPrefix match matched.
        case replacePrefixMatch(String)
    }

    public struct Redirect: Hashable, Sendable {
        /// `http` or `https`; nil keeps the request's.
        public let scheme: String?
        public let hostname: String?
        public let path: PathModifier?
        public let port: Int?
        /// 301, 302 (the default), 303, 307 or 308.
        public let statusCode: Int

        public init(scheme: String?, hostname: String?, path: PathModifier?, port: Int?, statusCode: Int) {
            self.scheme = scheme
            self.hostname = hostname
            self.path = path
            self.port = port
            self.statusCode = statusCode
        }
    }

    public struct Rewrite: Hashable, Sendable {
        public let hostname: String?
        public let path: PathModifier?

        public init(hostname: String?, path: PathModifier?) {
            self.hostname = hostname
            self.path = path
        }
    }

    public struct Mirror: Hashable, Sendable {
        public let service: ServiceName
        public let port: Int?
        /// Percent of requests mirrored (100 when not given).
        public let percent: Int

        public init(service: ServiceName, port: Int?, percent: Int) {
            self.service = service
            self.port = port
            self.percent = percent
        }
    }
}
