import NIOHPACK
import WeftProtocol

/// Which route, rule, backend and endpoints a request would take at a proxy, and why,
/// computed by the proxy's own compiler and matcher from the config the control plane
/// sent it (`weftctl config POD --explain METHOD URL`). It answers "why this route" by
/// listing the candidate matches in precedence order with the first condition each one
/// failed.
public enum RouteExplainer {
    /// - Parameters:
    ///   - config: the proxy's current `config` push.
    ///   - namespace: the proxy's pod namespace (consumer routes, short names).
    ///   - url: `http://HOST[:PORT]/path?query`, HOST a ClusterIP or a Service DNS name.
    /// - Throws: `ConfigRefusal` when the config does not compile (the proxy would have nacked it).
    public static func explain(
        config: ConfigPush, namespace: String, method: String, url: String, headers: [(String, String)]
    ) throws -> String {
        let applied = try ConfigApplier.apply(config)
        let snapshot = try MeshSnapshotCompiler.compile(applied, namespace: namespace)
        guard let target = Target(url) else {
            return "cannot read \(url): expected http://HOST[:PORT]/PATH\n"
        }
        var lines = ["request    \(method) \(url)"]
        let index: Int?
        if let key = AddressKey(ip: target.host, port: target.port) {
            index = snapshot.servicePortByAddress[key]
            if index == nil {
                lines.append(
                    snapshot.endpointAddresses.contains(key.with(port: 0))
                        ? "resolved   \(target.host) is an endpoint of the mesh: no route applies, the request goes to it as is"
                        : "resolved   \(target.host):\(target.port) is no Service of the mesh: "
                            + (snapshot.isRegistryOnly
                                ? "refused (REGISTRY_ONLY), 502 registry-only"
                                : "passed through to it (ALLOW_ANY)"))
                return lines.joined(separator: "\n") + "\n"
            }
        } else {
            index = snapshot.servicePortByHost[HostPort(host: target.host.lowercased(), port: target.port)]
            if index == nil {
                lines.append("resolved   no Service of the mesh is named \(target.host) with port \(target.port)")
                return lines.joined(separator: "\n") + "\n"
            }
        }
        let plan = snapshot.servicePorts[index!]
        lines.append("service    \(plan.service) port \(plan.port)")
        guard case .ready(let table) = plan.state else {
            lines.append(
                "routes     not fetched yet: this proxy has not sent traffic to \(plan.service), so it holds none of "
                    + "its routes and endpoints (the first request subscribes and waits for them)")
            return lines.joined(separator: "\n") + "\n"
        }
        var hpack: HPACKHeaders = [
            ":method": method, ":path": target.path, ":scheme": "http", ":authority": target.authority,
        ]
        for (name, value) in headers { hpack.add(name: name.lowercased(), value: value) }
        let view = HPACKRequestHeadView(headers: hpack)
        let routes = Array(Set(table.rules.map(\.route))).sorted()
        if table.rules.count == 1 && table.rules[0].isImplicit {
            lines.append("routes     none attached to this port: every request goes to the Service's own endpoints")
        } else {
            let consumer = routes.contains {
                $0.split(separator: "/").first.map(String.init)
                    != plan.service.split(separator: "/").first.map(String.init)
            }
            lines.append(
                "routes     \(routes.joined(separator: ", "))"
                    + (consumer ? "  (consumer routes of namespace \(namespace): they replace the Service's own)" : ""))
            lines.append(
                "candidates in precedence order (Exact path, longest PathPrefix, regex; then method, headers, query):")
            var matched = false
            for (i, matcher) in table.matches.enumerated() {
                let rule = table.rules[matcher.rule]
                let label = "  \(i + 1). \(rule.route) rule \(rule.name ?? String(rule.ruleIndex)): \(matcher.summary)"
                if matched {
                    lines.append(label)
                } else if let reason = matcher.mismatch(view) {
                    lines.append(label + "  ✗ \(reason)")
                } else {
                    lines.append(label + "  ✓ taken")
                    matched = true
                }
            }
        }
        guard let taken = table.match(view) else {
            lines.append("result     no rule matches: 404 no-route")
            return lines.joined(separator: "\n") + "\n"
        }
        let rule = table.rules[taken]
        if let redirect = rule.filters?.redirect {
            lines.append("result     redirect \(redirect.status) (RequestRedirect); nothing is forwarded")
            return lines.joined(separator: "\n") + "\n"
        }
        lines.append("backends")
        var previous = 0
        for entry in rule.backends.entries {
            let backend = snapshot.backends[entry.backend]
            let weight = entry.cumulative - previous
            previous = entry.cumulative
            let share = rule.backends.totalWeight > 0 ? 100 * weight / rule.backends.totalWeight : 0
            let state: String
            switch backend.resolution {
            case .endpoints(let targets) where targets.isEmpty: state = "no ready endpoint (503 no-endpoints)"
            case .endpoints(let targets):
                state = targets.map { describe($0.address) }.joined(separator: ", ")
            case .awaitingDiscovery: state = "endpoints not fetched yet"
            case .unresolved(let reason): state = "\(reason) (500 unresolved-backend)"
            }
            lines.append("  \(backend.service):\(backend.port)  weight \(weight) (\(share)%)  \(state)")
        }
        if rule.backends.entries.isEmpty { lines.append("  none with weight: 500 unresolved-backend") }
        if rule.requestTimeoutMs != nil || rule.backendRequestTimeoutMs != nil {
            lines.append(
                "timeouts   request \(rule.requestTimeoutMs.map { "\($0)ms" } ?? "none"), backendRequest "
                    + (rule.backendRequestTimeoutMs.map { "\($0)ms" } ?? "none"))
        }
        if let retry = rule.retry {
            lines.append(
                "retry      codes \(retry.codes), up to \(retry.attempts) retries, backoff \(retry.backoffMs)ms, "
                    + "within the mesh's retry budget")
        }
        if let filters = rule.filters {
            var names: [String] = []
            if filters.requestHeaders != nil { names.append("RequestHeaderModifier") }
            if filters.responseHeaders != nil { names.append("ResponseHeaderModifier") }
            if filters.rewriteHost != nil || filters.rewritePath != nil { names.append("URLRewrite") }
            lines.append("filters    \(names.joined(separator: ", "))")
        }
        return lines.joined(separator: "\n") + "\n"
    }

    private struct Target {
        let host: String
        let port: Int
        let path: String
        let authority: String

        init?(_ url: String) {
            guard url.hasPrefix("http://") else { return nil }
            let rest = url.dropFirst(7)
            let slash = rest.firstIndex(where: { $0 == "/" || $0 == "?" }) ?? rest.endIndex
            let authority = String(rest[..<slash])
            var path = String(rest[slash...])
            if path.isEmpty || path.hasPrefix("?") { path = "/" + path }
            var host = authority
            var port = 80
            if let colon = authority.lastIndex(of: ":"), !authority.hasSuffix("]"),
                let number = Int(authority[authority.index(after: colon)...])
            {
                host = String(authority[..<colon])
                port = number
            }
            if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
            guard !host.isEmpty else { return nil }
            self.host = host
            self.port = port
            self.path = path
            self.authority = authority
        }
    }
}

extension RouteMatcher {
    /// The match's conditions, as a user wrote them.
    var summary: String {
        var parts: [String] = []
        switch path {
        case .exact(let value): parts.append("Exact \(String(decoding: value, as: UTF8.self))")
        case .prefix(let value):
            parts.append("PathPrefix \(value.isEmpty ? "/" : String(decoding: value, as: UTF8.self))")
        case .regex: parts.append("RegularExpression path")
        }
        if let method { parts.append("method \(String(decoding: method, as: UTF8.self))") }
        for header in headers { parts.append("header \(String(decoding: header.name, as: UTF8.self))") }
        for param in queryParams { parts.append("query \(String(decoding: param.name, as: UTF8.self))") }
        return parts.joined(separator: ", ")
    }

    /// The first condition the request fails, or nil when it matches.
    func mismatch<View: RequestHeadView>(_ view: View) -> String? {
        if let method, !method.withUnsafeBytes({ view.isMethod($0) }) { return "method is not \(String(decoding: method, as: UTF8.self))" }
        let pathOK = RouteMatcher(path: path, method: nil, headers: [], queryParams: [], rule: rule).matches(view)
        if !pathOK { return "path does not match" }
        for header in headers {
            let one = RouteMatcher(path: .prefix([]), method: nil, headers: [header], queryParams: [], rule: rule)
            if !one.matches(view) { return "header \(String(decoding: header.name, as: UTF8.self)) does not match" }
        }
        for param in queryParams {
            let one = RouteMatcher(path: .prefix([]), method: nil, headers: [], queryParams: [param], rule: rule)
            if !one.matches(view) {
                return "query parameter \(String(decoding: param.name, as: UTF8.self)) does not match"
            }
        }
        return nil
    }
}
