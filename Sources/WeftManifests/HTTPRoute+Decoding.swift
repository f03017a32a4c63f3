import WeftCore

extension DocumentReader {
    /// gateway.networking.k8s.io/v1 HTTPRoute, with Gateway API defaults applied; or, with
    /// `grpc`, a GRPCRoute into the same model (see `HTTPRoute.isGRPC`).
    mutating func decodeHTTPRoute(_ root: ObjectNode, grpc: Bool = false) -> HTTPRoute? {
        let start = errors.count
        let meta = metadata(root, rule: .subdomain)
        let namespace = meta?.namespace ?? "default"
        guard let spec = object(root, "spec") else {
            if !has(root, "spec") { missing(root, "spec") }
            return nil
        }

        var parents: [HTTPRoute.ParentReference] = []
        for node in list(spec, "parentRefs") {
            guard let object = object(node) else { continue }
            let refStart = errors.count
            let group = string(object, "group") ?? "gateway.networking.k8s.io"
            let kind = string(object, "kind") ?? "Gateway"
            let name = requiredString(object, "name")
            var refNamespace = namespace
            if let nsNode = object.field("namespace"),
                let value = validated(nsNode, Self.labelExpectation, NameRules.isDNS1123Label)
            {
                refNamespace = value
            }
            let port = port(object, "port")
            guard errors.count == refStart, let name else { continue }
            let ref = HTTPRoute.ParentReference(
                group: group, kind: kind, name: name, namespace: refNamespace, port: port)
            if !ref.isService {
                let what = kind == "Gateway" ? "a Gateway" : "a \(group)/\(kind)"
                warn(
                    .unsupportedField, node.path,
                    "parent \(refNamespace)/\(name) is \(what); Weft only acts on Service parents (GAMMA), so this parent is ignored for the mesh",
                    line: node.line)
            }
            parents.append(ref)
        }
        if meta != nil, !parents.contains(where: \.isService) {
            warn(
                .unsupportedField, spec.path("parentRefs"),
                "names no Service; the route is ignored for the mesh", line: spec.line)
        }

        var hostnames: [String] = []
        for node in list(spec, "hostnames") {
            if let host = validated(
                node, "must be a hostname (a DNS name, optionally starting with *.)", NameRules.isHostname)
            {
                hostnames.append(host)
            }
        }

        var rules: [HTTPRouteRule] = []
        let ruleNodes = list(spec, "rules")
        let grpcRetry = grpc ? grpcRetry(meta) : nil
        for node in ruleNodes {
            if grpc {
                if let rule = grpcRouteRule(node, namespace: namespace, retry: grpcRetry) { rules.append(rule) }
            } else if let rule = routeRule(node, namespace: namespace) {
                rules.append(rule)
            }
        }
        if ruleNodes.isEmpty {
            rules = [
                HTTPRouteRule(name: nil, matches: [.matchAll], backendRefs: [], timeouts: nil, retry: nil)
            ]
        }
        guard errors.count == start, let meta else { return nil }
        return HTTPRoute(metadata: meta, parentRefs: parents, hostnames: hostnames, rules: rules, isGRPC: grpc)
    }

    /// gRPC status names, as `retry.weft.dev/grpc` lists them.
    static let grpcStatusCodes: [String: Int] = [
        "cancelled": 1, "unknown": 2, "invalid-argument": 3, "deadline-exceeded": 4, "not-found": 5,
        "already-exists": 6, "permission-denied": 7, "resource-exhausted": 8, "failed-precondition": 9,
        "aborted": 10, "out-of-range": 11, "unimplemented": 12, "internal": 13, "unavailable": 14,
        "data-loss": 15, "unauthenticated": 16,
    ]

    /// A GRPCRoute's retry policy, from its annotations (GRPCRoute v1 has no retry field):
    /// `retry.weft.dev/grpc: "unavailable,resource-exhausted"` (status names or numbers),
    /// `retry.weft.dev/attempts: "2"` (default 1) and `retry.weft.dev/backoff: "25ms"`.
    private mutating func grpcRetry(_ meta: ObjectMeta?) -> HTTPRouteRule.Retry? {
        guard let meta, let list = meta.annotations["retry.weft.dev/grpc"] else { return nil }
        var codes: [Int] = []
        for item in list.split(separator: ",") {
            let name = item.trimmingCharacters(in: .whitespaces).lowercased().replacingOccurrences(of: "_", with: "-")
            if let code = Self.grpcStatusCodes[name] ?? Int(name).flatMap({ (1...16).contains($0) ? $0 : nil }) {
                codes.append(code)
            } else {
                fail(
                    .invalidField, "metadata.annotations[retry.weft.dev/grpc]",
                    "\"\(item)\" is not a gRPC status (e.g. unavailable, resource-exhausted, or 1-16)", line: nil)
            }
        }
        var attempts = 1
        if let text = meta.annotations["retry.weft.dev/attempts"] {
            if let value = Int(text), value >= 0 {
                attempts = value
            } else {
                fail(
                    .invalidField, "metadata.annotations[retry.weft.dev/attempts]",
                    "must be a count ≥ 0, got \"\(text)\"", line: nil)
            }
        }
        var backoff: Duration?
        if let text = meta.annotations["retry.weft.dev/backoff"] {
            backoff = GatewayDuration.parse(text)
            if backoff == nil {
                fail(
                    .invalidField, "metadata.annotations[retry.weft.dev/backoff]",
                    "must be a duration like 25ms, got \"\(text)\"", line: nil)
            }
        }
        return HTTPRouteRule.Retry(codes: [], attempts: attempts, backoff: backoff, grpcCodes: codes)
    }

    /// A GRPCRoute rule: `matches[].method` (service and method, Exact or RegularExpression)
    /// becomes a path match on `/service/method`, headers as in HTTPRoute; header modifier
    /// filters; weighted backendRefs.
    private mutating func grpcRouteRule(_ node: FieldNode, namespace: String, retry: HTTPRouteRule.Retry?)
        -> HTTPRouteRule?
    {
        guard let object = object(node) else { return nil }
        let start = errors.count
        let name = ruleName(object)
        var matches: [HTTPRouteMatch] = []
        for matchNode in list(object, "matches") {
            guard let match = self.object(matchNode) else { continue }
            var path = HTTPRouteMatch.matchAll.path
            if let method = self.object(match, "method") {
                let type =
                    oneOf(
                        method, "type", ["Exact": "Exact", "RegularExpression": "RegularExpression"], default: "Exact")
                    ?? "Exact"
                let service = string(method, "service")
                let rpc = string(method, "method")
                if service == nil && rpc == nil {
                    fail(.missingField, method.path, "must name a service, a method or both", line: method.line)
                } else if type == "Exact" {
                    if let service, let rpc {
                        path = .init(type: .exact, value: "/\(service)/\(rpc)")
                    } else if let service {
                        path = .init(type: .pathPrefix, value: "/\(service)")
                    } else if let rpc {
                        path = .init(type: .regularExpression, value: "/[^/]+/\(Self.regexEscaped(rpc))")
                    }
                } else {
                    path = .init(type: .regularExpression, value: "/\(service ?? "[^/]+")/\(rpc ?? "[^/]+")")
                    checkRegex(FieldNode(node: method.node, path: method.path), path.value)
                }
            }
            let headers = valueMatches(match, "headers", isHeader: true)
            matches.append(HTTPRouteMatch(path: path, headers: headers, queryParams: [], method: nil))
        }
        if !has(object, "matches") { matches = [.matchAll] }
        let filters = routeFilters(
            object, namespace: namespace, prefixMatchesOnly: false, kinds: Self.grpcRuleFilterKinds)
        var backends: [HTTPBackendRef] = []
        for backendNode in list(object, "backendRefs") {
            if let backend = backendRef(backendNode, namespace: namespace) { backends.append(backend) }
        }
        guard errors.count == start else { return nil }
        return HTTPRouteRule(
            name: name, matches: matches, backendRefs: backends, timeouts: nil, retry: retry, filters: filters)
    }

    private static func regexEscaped(_ text: String) -> String {
        var out = ""
        for character in text {
            if "\\.^$|?*+()[]{}".contains(character) { out.append("\\") }
            out.append(character)
        }
        return out
    }

    /// `rules[].name`, a DNS-1123 label when given.
    private mutating func ruleName(_ rule: ObjectNode) -> String? {
        rule.field("name").flatMap { validated($0, Self.labelExpectation, NameRules.isDNS1123Label) }
    }

    private mutating func routeRule(_ node: FieldNode, namespace: String) -> HTTPRouteRule? {
        guard let object = object(node) else { return nil }
        let start = errors.count
        let name = ruleName(object)
        var matches: [HTTPRouteMatch] = []
        for matchNode in list(object, "matches") {
            if let match = routeMatch(matchNode) { matches.append(match) }
        }
        if !has(object, "matches") { matches = [.matchAll] }
        var matchesPrefixOnly = matches.allSatisfy { $0.path.type == .pathPrefix }
        if matches.isEmpty { matchesPrefixOnly = true }
        let filters = routeFilters(
            object, namespace: namespace, prefixMatchesOnly: matchesPrefixOnly, kinds: Self.ruleFilterKinds)
        var backends: [HTTPBackendRef] = []
        for backendNode in list(object, "backendRefs") {
            if let backend = backendRef(backendNode, namespace: namespace) { backends.append(backend) }
        }

        var timeouts: HTTPRouteRule.Timeouts?
        if let timeoutObject = self.object(object, "timeouts") {
            let request = duration(timeoutObject, "request")
            let backendRequest = duration(timeoutObject, "backendRequest")
            if let request, let backendRequest, request != .zero, backendRequest > request {
                fail(
                    .invalidField, timeoutObject.path("backendRequest"),
                    "must not be longer than request (\(GatewayDuration.format(request)))",
                    line: timeoutObject.field("backendRequest")?.line)
            }
            timeouts = HTTPRouteRule.Timeouts(request: request, backendRequest: backendRequest)
        }

        var retry: HTTPRouteRule.Retry?
        if let retryObject = self.object(object, "retry") {
            var codes: [Int] = []
            for codeNode in list(retryObject, "codes") {
                guard let code = int(codeNode) else { continue }
                if (400...599).contains(code) {
                    codes.append(code)
                } else {
                    fail(.invalidField, codeNode, "must be an HTTP status between 400 and 599, got \(code)")
                }
            }
            let attempts = int(retryObject, "attempts")
            if let attempts, attempts < 0 {
                fail(
                    .invalidField, retryObject.path("attempts"), "must be ≥ 0, got \(attempts)",
                    line: retryObject.field("attempts")?.line)
            }
            let backoff = duration(retryObject, "backoff")
            retry = HTTPRouteRule.Retry(codes: codes, attempts: attempts, backoff: backoff)
        }
        guard errors.count == start else { return nil }
        return HTTPRouteRule(
            name: name, matches: matches, backendRefs: backends, timeouts: timeouts, retry: retry, filters: filters)
    }

    private mutating func routeMatch(_ node: FieldNode) -> HTTPRouteMatch? {
        guard let object = object(node) else { return nil }
        let start = errors.count
        var path = HTTPRouteMatch.matchAll.path
        if let pathObject = self.object(object, "path") {
            let type =
                oneOf(
                    pathObject, "type",
                    ["Exact": .exact, "PathPrefix": .pathPrefix, "RegularExpression": .regularExpression],
                    default: HTTPRouteMatch.PathMatchType.pathPrefix) ?? .pathPrefix
            var value = "/"
            if let valueNode = pathObject.field("value"), let text = string(valueNode) {
                value = text
                if type == .regularExpression {
                    checkRegex(valueNode, text)
                } else if let problem = Self.pathProblem(text) {
                    fail(.invalidField, valueNode, "\(problem), got \"\(text)\"")
                }
            }
            path = HTTPRouteMatch.PathMatch(type: type, value: value)
        }
        let headers = valueMatches(object, "headers", isHeader: true)
        let queryParams = valueMatches(object, "queryParams", isHeader: false)
        let method = oneOf(
            object, "method",
            [
                "GET": "GET", "HEAD": "HEAD", "POST": "POST", "PUT": "PUT", "DELETE": "DELETE",
                "CONNECT": "CONNECT", "OPTIONS": "OPTIONS", "TRACE": "TRACE", "PATCH": "PATCH",
            ], default: nil)
        guard errors.count == start else { return nil }
        return HTTPRouteMatch(path: path, headers: headers, queryParams: queryParams, method: method)
    }

    /// Gateway API's rules for Exact and PathPrefix values.
    static func pathProblem(_ path: String) -> String? {
        if !path.hasPrefix("/") { return "must be an absolute path starting with /" }
        for bad in ["//", "/./", "/../", "%2f", "%2F", "#"] where path.contains(bad) {
            return "must not contain \"\(bad)\""
        }
        if path.hasSuffix("/..") || path.hasSuffix("/.") { return "must not end with /. or /.." }
        return nil
    }

    private mutating func checkRegex(_ node: FieldNode, _ text: String) {
        do {
            _ = try Regex(text)
        } catch {
            fail(.invalidField, node, "must be a valid regular expression, got \"\(text)\"")
        }
    }

    private mutating func valueMatches(_ parent: ObjectNode, _ key: String, isHeader: Bool)
        -> [HTTPRouteMatch.ValueMatch]
    {
        var result: [HTTPRouteMatch.ValueMatch] = []
        for node in list(parent, key) {
            guard let object = object(node) else { continue }
            let start = errors.count
            let type =
                oneOf(
                    object, "type", ["Exact": .exact, "RegularExpression": .regularExpression],
                    default: HTTPRouteMatch.ValueMatchType.exact) ?? .exact
            var name: String?
            if let nameNode = object.field("name") {
                name = validated(
                    nameNode, isHeader ? "must be an HTTP header name" : "must be a query parameter name",
                    NameRules.isHeaderName)
            } else {
                missing(object, "name")
            }
            let value = requiredString(object, "value")
            if type == .regularExpression, let value, let valueNode = object.field("value") {
                checkRegex(valueNode, value)
            }
            guard errors.count == start, let name, let value else { continue }
            result.append(HTTPRouteMatch.ValueMatch(type: type, name: name, value: value))
        }
        return result
    }

    private mutating func backendRef(_ node: FieldNode, namespace: String) -> HTTPBackendRef? {
        guard let object = object(node) else { return nil }
        let start = errors.count
        let group = string(object, "group") ?? ""
        let kind = string(object, "kind") ?? "Service"
        let name = requiredString(object, "name")
        var refNamespace = namespace
        if let nsNode = object.field("namespace"),
            let value = validated(nsNode, Self.labelExpectation, NameRules.isDNS1123Label)
        {
            refNamespace = value
        }
        let port = port(object, "port")
        let isService = (group == "" || group == "core") && kind == "Service"
        if isService, !has(object, "port") {
            fail(.missingField, object.path("port"), "is required for a Service backend", line: object.line)
        }
        var weight = 1
        if let weightNode = object.field("weight"), let value = int(weightNode) {
            if value < 0 {
                fail(.invalidField, weightNode, "must be ≥ 0")
            } else if value > 1_000_000 {
                fail(.invalidField, weightNode, "must be ≤ 1000000")
            } else {
                weight = value
            }
        }
        if !isService {
            warn(
                .unsupportedField, node.path, "only Service backends are supported; \(group)/\(kind) gets no traffic",
                line: node.line)
        }
        let filters = routeFilters(
            object, namespace: namespace, prefixMatchesOnly: false, kinds: Self.backendFilterKinds)
        guard errors.count == start, let name else { return nil }
        return HTTPBackendRef(
            group: group, kind: kind, name: name, namespace: refNamespace, port: port, weight: weight, filters: filters)
    }

    /// The filters an HTTPRoute rule, a backendRef and a GRPCRoute rule may have (Gateway API v1).
    static let ruleFilterKinds = [
        "RequestHeaderModifier", "ResponseHeaderModifier", "RequestRedirect", "URLRewrite", "RequestMirror",
    ]
    static let backendFilterKinds = ["RequestHeaderModifier", "ResponseHeaderModifier"]
    static let grpcRuleFilterKinds = ["RequestHeaderModifier", "ResponseHeaderModifier", "RequestMirror"]

    /// `filters[]` of a rule or of a backendRef, of the `kinds` it may have: a kind of
    /// filter the object may not have is an error on an HTTPRoute rule, a warning elsewhere.
    /// - Parameter prefixMatchesOnly: whether every match of the rule is a PathPrefix, which
    ///   ReplacePrefixMatch needs.
    private mutating func routeFilters(
        _ parent: ObjectNode, namespace: String, prefixMatchesOnly: Bool, kinds: [String]
    ) -> [HTTPRouteFilter] {
        var filters: [HTTPRouteFilter] = []
        var seen: Set<String> = []
        for node in list(parent, "filters") {
            guard let object = object(node) else { continue }
            guard let type = requiredString(object, "type") else { continue }
            guard kinds.contains(type) else {
                if type == "ExtensionRef" || kinds != Self.ruleFilterKinds {
                    warn(
                        .unsupportedField, object.path("type"), "filter \(type) is not supported here; ignored",
                        line: object.field("type")?.line)
                } else {
                    fail(
                        .invalidField, object.path("type"),
                        "must be one of \(kinds.joined(separator: ", ")), got \"\(type)\"",
                        line: object.field("type")?.line)
                }
                continue
            }
            if type != "RequestMirror" && !seen.insert(type).inserted {
                fail(
                    .invalidField, object.path("type"), "\(type) may appear once per rule",
                    line: object.field("type")?.line)
                continue
            }
            let key = type.prefix(1).lowercased() + type.dropFirst()
            let configKey = type == "URLRewrite" ? "urlRewrite" : String(key)
            guard let config = self.object(object, configKey) else {
                missing(object, configKey)
                continue
            }
            switch type {
            case "RequestHeaderModifier": filters.append(.requestHeaderModifier(headerModifier(config)))
            case "ResponseHeaderModifier": filters.append(.responseHeaderModifier(headerModifier(config)))
            case "RequestRedirect":
                let scheme = oneOf(config, "scheme", ["http": "http", "https": "https"], default: nil)
                let hostname = string(config, "hostname")
                let port = port(config, "port")
                let status = int(config, "statusCode") ?? 302
                if ![301, 302, 303, 307, 308].contains(status) {
                    fail(
                        .invalidField, config.path("statusCode"), "must be 301, 302, 303, 307 or 308, got \(status)",
                        line: config.field("statusCode")?.line)
                }
                let path = pathModifier(config, prefixMatchesOnly: prefixMatchesOnly)
                filters.append(
                    .requestRedirect(
                        HTTPRouteFilter.Redirect(
                            scheme: scheme, hostname: hostname, path: path, port: port, statusCode: status)))
            case "URLRewrite":
                filters.append(
                    .urlRewrite(
                        HTTPRouteFilter.Rewrite(
                            hostname: string(config, "hostname"),
                            path: pathModifier(config, prefixMatchesOnly: prefixMatchesOnly))))
            default:  // RequestMirror
                guard let ref = self.object(config, "backendRef"), let name = requiredString(ref, "name") else {
                    missing(config, "backendRef")
                    continue
                }
                let mirrorNamespace = string(ref, "namespace") ?? namespace
                let percent = mirrorPercent(config)
                filters.append(
                    .requestMirror(
                        HTTPRouteFilter.Mirror(
                            service: ServiceName(namespace: mirrorNamespace, name: name), port: port(ref, "port"),
                            percent: percent)))
            }
        }
        if seen.contains("RequestRedirect") && seen.contains("URLRewrite") {
            fail(
                .invalidField, parent.path("filters"), "RequestRedirect and URLRewrite cannot both be set",
                line: parent.field("filters")?.line)
        }
        return filters
    }

    /// RequestMirror's share of requests, 0-100: `percent`, or `fraction` (numerator over a
    /// denominator, default 100, numerator ≤ denominator), as Gateway API v1 defines them.
    private mutating func mirrorPercent(_ config: ObjectNode) -> Int {
        if let fraction = self.object(config, "fraction") {
            if config.field("percent") != nil {
                fail(
                    .invalidField, config.path("fraction"), "percent and fraction cannot both be set",
                    line: config.field("fraction")?.line)
            }
            guard let numerator = int(fraction, "numerator") else {
                if fraction.field("numerator") == nil { missing(fraction, "numerator") }
                return 0
            }
            let denominator = int(fraction, "denominator") ?? 100
            guard denominator > 0, (0...denominator).contains(numerator) else {
                fail(
                    .invalidField, fraction.path,
                    "needs 0 ≤ numerator ≤ denominator and denominator > 0, got \(numerator)/\(denominator)",
                    line: fraction.line)
                return 0
            }
            // In Double: numerator × 100 can overflow an Int for a large denominator.
            return Int((Double(numerator) * 100 / Double(denominator)).rounded(.down))
        }
        guard let percent = int(config, "percent") else { return 100 }
        guard (0...100).contains(percent) else {
            fail(
                .invalidField, config.path("percent"), "must be 0-100, got \(percent)",
                line: config.field("percent")?.line)
            return 0
        }
        return percent
    }

    private mutating func headerModifier(_ object: ObjectNode) -> HTTPRouteFilter.HeaderModifier {
        func headers(_ key: String) -> [HTTPRouteFilter.Header] {
            list(object, key).compactMap { node in
                guard let header = self.object(node), let name = requiredString(header, "name"),
                    let value = requiredString(header, "value")
                else { return nil }
                guard NameRules.isHeaderName(name) else {
                    fail(
                        .invalidField, header.path("name"), "must be an HTTP header name, got \"\(name)\"",
                        line: header.line)
                    return nil
                }
                return HTTPRouteFilter.Header(name: name, value: value)
            }
        }
        return HTTPRouteFilter.HeaderModifier(
            set: headers("set"), add: headers("add"), remove: stringList(object, "remove"))
    }

    private mutating func pathModifier(_ config: ObjectNode, prefixMatchesOnly: Bool) -> HTTPRouteFilter.PathModifier? {
        guard let path = self.object(config, "path") else { return nil }
        let type = oneOf(
            path, "type", ["ReplaceFullPath": "ReplaceFullPath", "ReplacePrefixMatch": "ReplacePrefixMatch"],
            default: nil)
        switch type {
        case "ReplaceFullPath":
            return string(path, "replaceFullPath").map { .replaceFullPath($0) }
        case "ReplacePrefixMatch":
            guard prefixMatchesOnly else {
                fail(
                    .invalidField, path.path("type"),
                    "ReplacePrefixMatch needs every match of the rule to be a PathPrefix",
                    line: path.line)
                return nil
            }
            return string(path, "replacePrefixMatch").map { .replacePrefixMatch($0) }
        default:
            return nil
        }
    }
}
