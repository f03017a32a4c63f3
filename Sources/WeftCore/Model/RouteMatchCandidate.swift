/// One route match of a Service, in Gateway API precedence order (see
/// `MeshState.routeMatches(for:port:)`).
public struct RouteMatchCandidate: Hashable, Sendable {
    public let route: HTTPRoute
    public let ruleIndex: Int
    public let match: HTTPRouteMatch

    public var rule: HTTPRouteRule { route.rules[ruleIndex] }

    public init(route: HTTPRoute, ruleIndex: Int, match: HTTPRouteMatch) {
        self.route = route
        self.ruleIndex = ruleIndex
        self.match = match
    }
}
