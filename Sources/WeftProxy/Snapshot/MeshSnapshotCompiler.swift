import NIOCore
import WeftProtocol
import WeftTelemetry

/// Compiles an `AppliedConfig` into the `MeshSnapshot` the data path decides with, or
/// refuses it with a stable code naming the entry and field (the control client then
/// nacks the push and the last good snapshot stays in force).
///
/// Runs off the event loops, once per acked version: everything a request would otherwise
/// repeat (parsing addresses, sorting matches into precedence, compiling regexes, resolving
/// backends to endpoint addresses and target ports) is done here.
enum MeshSnapshotCompiler {
    /// - Parameter namespace: this proxy's pod namespace, which decides consumer routes and
    ///   whether a Service's short name (`web`) resolves.
    /// - Throws: `ConfigRefusal`.
    static func compile(_ config: AppliedConfig, namespace: String) throws(ConfigRefusal) -> MeshSnapshot {
        var builder = Builder(config: config, namespace: namespace)
        try builder.build()
        return MeshSnapshot(
            version: config.version, generation: config.generation,
            isRegistryOnly: config.mesh?.outboundPolicy == "REGISTRY_ONLY", namespace: namespace,
            servicePorts: builder.servicePorts, backends: builder.backends,
            servicePortByAddress: builder.byAddress, servicePortByHost: builder.byHost,
            endpointAddresses: builder.endpointAddresses, missingServices: builder.missing.sorted(),
            retryBudget: config.mesh?.retryBudget
                ?? RetryBudgetSettings(ratio: 0.2, minRetriesPerSecond: 10, windowMs: 10_000),
            routeMetricLabels: builder.metricLabels, inbound: try inbound(config),
            meshedWorkloads: Dictionary(
                config.workloads.values.compactMap { w in AddressKey(ip: w.ip, port: 0).map { ($0, w.identity) } },
                uniquingKeysWith: { a, _ in a }),
            multiplexesHTTP1: config.mesh?.http1Transport == "HTTP2",
            sampler: TraceSampler(ratio: config.mesh?.traceSampling ?? 0))
    }

    /// The pod's inbound authorization: the policies that select it, mTLS mode, probes.
    private static func inbound(_ config: AppliedConfig) throws(ConfigRefusal) -> InboundAuthorizer {
        do {
            return try InboundAuthorizer(
                policies: Array(config.policies.values), strict: config.mesh?.mtls == "STRICT", probes: config.probes)
        } catch {
            throw ConfigRefusal(.invalidSetting, error.description)
        }
    }

    private struct Builder {
        let config: AppliedConfig
        let namespace: String
        var servicePorts: [ServicePortPlan] = []
        var backends: [BackendPlan] = []
        var backendIndex: [BackendRef: Int] = [:]
        var byAddress: [AddressKey: Int] = [:]
        var byHost: [HostPort: Int] = [:]
        var endpointAddresses: Set<AddressKey> = []
        var missing: Set<String> = []
        var metricLabels: [RouteMetricLabels] = []
        var metricSlots: [RouteMetricLabels: Int] = [:]

        /// The metric slot of a (route, rule, backend), shared by equal labels.
        mutating func metricSlot(_ labels: RouteMetricLabels) -> Int {
            if let slot = metricSlots[labels] { return slot }
            metricLabels.append(labels)
            metricSlots[labels] = metricLabels.count - 1
            return metricLabels.count - 1
        }

        struct BackendRef: Hashable {
            let service: String
            let port: Int
        }

        init(config: AppliedConfig, namespace: String) {
            self.config = config
            self.namespace = namespace
        }

        mutating func build() throws(ConfigRefusal) {
            for key in config.services.keys.sorted() {
                let entry = config.services[key]!
                let (serviceNamespace, name) = split(key)
                var hosts = entry.hosts.map { $0.lowercased() }
                if serviceNamespace == namespace { hosts.append(name.lowercased()) }
                for port in entry.ports where port.protocol == "TCP" {
                    let index = servicePorts.count
                    let direct = backend(service: key, port: port.port)
                    let state: ServicePortPlan.State
                    if let routes = config.routes[key], config.endpoints[key] != nil {
                        state = .ready(try table(for: key, port: port.port, routes: routes, direct: direct))
                    } else {
                        state = .awaitingDiscovery
                    }
                    servicePorts.append(
                        ServicePortPlan(service: key, port: port.port, state: state, directBackend: direct))
                    for ip in entry.clusterIPs {
                        guard let address = AddressKey(ip: ip, port: port.port) else {
                            throw ConfigRefusal(
                                .invalidAddress, "services[\(key)].clusterIPs: \"\(ip)\" is not an IP address")
                        }
                        byAddress[address] = index
                    }
                    for host in hosts { byHost[HostPort(host: host, port: port.port)] = index }
                }
            }
            for set in config.endpoints.values {
                for endpoint in set.endpoints {
                    if let key = AddressKey(ip: endpoint.address, port: 0) { endpointAddresses.insert(key) }
                }
            }
        }

        /// The index of the backend for one Service port, resolved once per snapshot.
        mutating func backend(service: String, port: Int) -> Int {
            let ref = BackendRef(service: service, port: port)
            if let index = backendIndex[ref] { return index }
            let index = backends.count
            backends.append(BackendPlan(service: service, port: port, resolution: resolve(ref)))
            backendIndex[ref] = index
            return index
        }

        private mutating func resolve(_ ref: BackendRef) -> BackendPlan.Resolution {
            guard let service = config.services[ref.service] else {
                return .unresolved("Service \(ref.service) does not exist")
            }
            guard let servicePort = service.ports.first(where: { $0.port == ref.port }) else {
                return .unresolved("Service \(ref.service) has no port \(ref.port)")
            }
            guard let set = config.endpoints[ref.service] else { return .awaitingDiscovery }
            // Ready endpoints; when none is ready, the serving ones that are terminating
            // (kube-proxy's fallback, so a rollout's last pods still answer).
            var usable = set.endpoints.filter(\.ready)
            if usable.isEmpty { usable = set.endpoints.filter { $0.serving && $0.terminating } }
            let portName = servicePort.name ?? ""
            var targets: [EndpointTarget] = []
            for endpoint in usable {
                let number =
                    endpoint.ports.first(where: { $0.name == portName })?.port
                    ?? servicePort.targetPort
                    ?? (endpoint.ports.count == 1 ? endpoint.ports[0].port : nil)
                guard let number, let address = try? SocketAddress(ipAddress: endpoint.address, port: number),
                    let key = AddressKey(address)
                else { continue }
                var target = EndpointTarget(address: address, key: key, identity: endpoint.identity)
                if endpoint.meshed == true { target.meshIdentity = endpoint.identity }
                targets.append(target)
            }
            return .endpoints(targets)
        }

        /// The compiled routes of one Service port. Routes of the Service's own namespace
        /// (producer routes) apply to every caller; a route in this proxy's namespace whose
        /// parent is a Service elsewhere (a consumer route) applies to this namespace's
        /// callers only, and where one exists the producer routes do not (GAMMA).
        private mutating func table(for service: String, port: Int, routes set: RouteSet, direct: Int)
            throws(ConfigRefusal) -> RouteTable
        {
            let serviceNamespace = split(service).0
            let attached = set.routes.filter { $0.port == nil || $0.port == port }
            let consumers = attached.filter { split($0.name).0 == namespace && namespace != serviceNamespace }
            let applied = consumers.isEmpty ? attached.filter { split($0.name).0 == serviceNamespace } : consumers
            guard !applied.isEmpty else {
                let slot = metricSlot(RouteMetricLabels(route: "", rule: "", backend: "\(service):\(port)"))
                let rule = RouteRule(
                    route: "", ruleIndex: 0, name: nil, backends: WeightedBackends([(direct, 1, nil, slot)]),
                    requestTimeoutMs: nil, backendRequestTimeoutMs: nil, retry: nil)
                let all = RouteMatcher(path: .prefix([]), method: nil, headers: [], queryParams: [], rule: 0)
                return RouteTable(matches: [all], rules: [rule])
            }
            var rules: [RouteRule] = []
            var matchers: [(matcher: RouteMatcher, position: (Int, Int, Int))] = []
            for (routeIndex, route) in applied.enumerated() {
                for (ruleIndex, rule) in route.rules.enumerated() {
                    let field = "routes[\(route.name)].rules[\(ruleIndex)]"
                    var weighted: [(backend: Int, weight: Int, filters: RouteFilters?, metricSlot: Int)] = []
                    for (b, ref) in rule.backends.enumerated() {
                        guard ref.weight >= 0 else {
                            throw ConfigRefusal(
                                .invalidRoute, "\(field).backends[\(b)].weight: \(ref.weight) is negative")
                        }
                        let filters = try compileFilters(
                            ref.filters ?? [], field: "\(field).backends[\(b)].filters", port: port)
                        let slot = metricSlot(
                            RouteMetricLabels(
                                route: route.name, rule: rule.name ?? String(ruleIndex),
                                backend: "\(ref.service):\(ref.port ?? port)"))
                        weighted.append(
                            (backend(service: ref.service, port: ref.port ?? port), ref.weight, filters, slot))
                        // A route's backend must be known before requests take it: the
                        // control client subscribes to it (a Service merely in the index
                        // is not fetched until it is used).
                        if ref.weight > 0 && config.services[ref.service] != nil
                            && config.endpoints[ref.service] == nil
                        {
                            missing.insert(ref.service)
                        }
                    }
                    let retry = rule.retry.map { retry in
                        RetryPolicy(
                            attempts: retry.attempts ?? 1, codes: retry.codes ?? [], backoffMs: retry.backoffMs ?? 0,
                            grpcCodes: retry.grpcCodes ?? [])
                    }
                    let index = rules.count
                    let compiled =
                        RouteRule(
                            route: route.name, ruleIndex: ruleIndex, name: rule.name,
                            backends: WeightedBackends(weighted),
                            requestTimeoutMs: rule.requestTimeoutMs.flatMap { $0 > 0 ? $0 : nil },
                            backendRequestTimeoutMs: rule.backendRequestTimeoutMs.flatMap { $0 > 0 ? $0 : nil },
                            retry: retry,
                            filters: try compileFilters(rule.filters ?? [], field: "\(field).filters", port: port))
                    rules.append(compiled)
                    let matches = rule.matches.isEmpty ? [RouteMatchEntry.all] : rule.matches
                    for (matchIndex, match) in matches.enumerated() {
                        let matcher = try compile(match, rule: index, field: "\(field).matches[\(matchIndex)]")
                        matchers.append((matcher, (routeIndex, ruleIndex, matchIndex)))
                    }
                }
            }
            return RouteTable(matches: RouteTable.sorted(matchers), rules: rules)
        }

        /// A rule's or backendRef's filters; nil when there are none.
        private mutating func compileFilters(_ entries: [RouteFilterEntry], field: String, port: Int)
            throws(ConfigRefusal)
            -> RouteFilters?
        {
            guard !entries.isEmpty else { return nil }
            var filters = RouteFilters()
            func pathEdit(_ entry: RouteFilterEntry, _ field: String) throws(ConfigRefusal) -> PathEdit? {
                guard let type = entry.pathType else { return nil }
                guard let value = entry.path, value.hasPrefix("/") else {
                    throw ConfigRefusal(.invalidRoute, "\(field).path: \"\(entry.path ?? "")\" does not start with /")
                }
                switch type {
                case "ReplaceFullPath": return .full(value)
                case "ReplacePrefixMatch": return .prefix(value)
                default:
                    throw ConfigRefusal(
                        .invalidRoute, "\(field).pathType: \"\(type)\" is not ReplaceFullPath or ReplacePrefixMatch")
                }
            }
            func edits(_ entry: RouteFilterEntry) -> HeaderEdits {
                HeaderEdits(
                    set: (entry.set ?? []).map { ($0.name, $0.value) },
                    add: (entry.add ?? []).map { ($0.name, $0.value) },
                    remove: entry.remove ?? [])
            }
            for (i, entry) in entries.enumerated() {
                let field = "\(field)[\(i)]"
                switch entry.type {
                case "RequestHeaderModifier": filters.requestHeaders = edits(entry)
                case "ResponseHeaderModifier": filters.responseHeaders = edits(entry)
                case "URLRewrite":
                    filters.rewriteHost = entry.hostname
                    filters.rewritePath = try pathEdit(entry, field)
                case "RequestRedirect":
                    let status = entry.statusCode ?? 302
                    guard [301, 302, 303, 307, 308].contains(status) else {
                        throw ConfigRefusal(.invalidRoute, "\(field).statusCode: \(status) is not a redirect status")
                    }
                    filters.redirect = RedirectPlan(
                        scheme: entry.scheme, hostname: entry.hostname, port: entry.port,
                        path: try pathEdit(entry, field),
                        status: status)
                case "RequestMirror":
                    guard let target = entry.mirror else {
                        throw ConfigRefusal(.missingField, "\(field).mirror: a RequestMirror names no backend")
                    }
                    let percent = entry.percent ?? 100
                    guard (0...100).contains(percent) else {
                        throw ConfigRefusal(.invalidRoute, "\(field).percent: \(percent) is not 0-100")
                    }
                    let mirrorPort = target.port ?? port
                    filters.mirrors.append(
                        MirrorPlan(
                            backend: backend(service: target.service, port: mirrorPort), percent: percent,
                            service: target.service, port: mirrorPort))
                    // Subscribed like a route's backend, so the first mirrored request finds it.
                    if percent > 0 && config.services[target.service] != nil
                        && config.endpoints[target.service] == nil
                    {
                        missing.insert(target.service)
                    }
                default:
                    throw ConfigRefusal(
                        .invalidRoute, "\(field).type: \"\(entry.type)\" is not a filter this proxy applies")
                }
            }
            return filters
        }

        private func compile(_ match: RouteMatchEntry, rule: Int, field: String) throws(ConfigRefusal)
            -> RouteMatcher
        {
            let value = match.path ?? "/"
            let path: RouteMatcher.Path
            switch match.pathType ?? "PathPrefix" {
            case "Exact":
                guard value.hasPrefix("/") else {
                    throw ConfigRefusal(.invalidRoute, "\(field).path: \"\(value)\" does not start with /")
                }
                path = .exact(Array(value.utf8))
            case "PathPrefix":
                guard value.hasPrefix("/") else {
                    throw ConfigRefusal(.invalidRoute, "\(field).path: \"\(value)\" does not start with /")
                }
                var bytes = Array(value.utf8)
                while bytes.last == 0x2F { bytes.removeLast() }
                path = .prefix(bytes)
            case "RegularExpression":
                path = .regex(try regex(value, field: "\(field).path"))
            case let other:
                throw ConfigRefusal(
                    .invalidRoute, "\(field).path.type: \"\(other)\" is not Exact, PathPrefix or RegularExpression")
            }
            var headers: [(name: [UInt8], value: RouteMatcher.Value)] = []
            var seenHeaders: Set<String> = []
            for (h, header) in (match.headers ?? []).enumerated() {
                // Only the first entry for a name counts (Gateway API, HTTPHeaderMatch).
                guard seenHeaders.insert(header.name.lowercased()).inserted else { continue }
                headers.append(
                    (Array(header.name.lowercased().utf8), try valueMatcher(header, field: "\(field).headers[\(h)]")))
            }
            var params: [(name: [UInt8], value: RouteMatcher.Value)] = []
            var seenParams: Set<String> = []
            for (q, param) in (match.queryParams ?? []).enumerated() {
                guard seenParams.insert(param.name).inserted else { continue }
                params.append((Array(param.name.utf8), try valueMatcher(param, field: "\(field).queryParams[\(q)]")))
            }
            return RouteMatcher(
                path: path, method: match.method.map { Array($0.utf8) }, headers: headers, queryParams: params,
                rule: rule)
        }

        private func valueMatcher(_ match: ValueMatchEntry, field: String) throws(ConfigRefusal) -> RouteMatcher.Value {
            switch match.type {
            case "Exact": return .exact(Array(match.value.utf8))
            case "RegularExpression": return .regex(try regex(match.value, field: "\(field).value"))
            default:
                throw ConfigRefusal(.invalidRoute, "\(field).type: \"\(match.type)\" is not Exact or RegularExpression")
            }
        }

        private func regex(_ pattern: String, field: String) throws(ConfigRefusal) -> CompiledRegex {
            do {
                return CompiledRegex(try Regex(pattern))
            } catch {
                throw ConfigRefusal(
                    .invalidRegex, "\(field): \"\(pattern)\" is not a regular expression this proxy can compile")
            }
        }

        private func split(_ key: String) -> (String, String) {
            guard let slash = key.firstIndex(of: "/") else { return ("", key) }
            return (String(key[..<slash]), String(key[key.index(after: slash)...]))
        }
    }
}

extension RouteMatchEntry {
    /// A rule without matches matches every request (PathPrefix `/`).
    static let all = RouteMatchEntry(pathType: "PathPrefix", path: "/", headers: nil, queryParams: nil, method: nil)
}
