/// The whole mesh configuration at one moment: every resource of every file, validated
/// across files, with the lookups the control plane needs.
///
/// An immutable value: a config source builds a new one on each accepted change and
/// swaps it in whole, so a reader never sees half an update. Two states are equal when
/// their resources are (warnings and file names aside), which is how a source knows a
/// reload changed nothing.
public struct MeshState: Sendable, Equatable {
    /// Where a resource was defined.
    public struct Origin: Hashable, Sendable {
        public let file: String
        public let document: Int

        public init(file: String, document: Int) {
            self.file = file
            self.document = document
        }
    }

    /// The mesh-wide settings; `MeshConfig.default` when no MeshConfig was given.
    public let meshConfig: MeshConfig
    /// Sorted by namespace and name (pods, slices, routes and policies alike).
    public let services: [Service]
    public let endpointSlices: [EndpointSlice]
    public let pods: [Pod]
    public let httpRoutes: [HTTPRoute]
    public let authorizationPolicies: [AuthorizationPolicy]
    /// One entry per Service, in the same order as `services`.
    public let serviceIndex: [ServiceIndexEntry]
    /// Warnings of every file and of cross-resource checks (not part of equality).
    public let warnings: [ConfigError]
    /// Where each resource came from (not part of equality).
    public let origins: [ResourceID: Origin]

    private let servicesByName: [ServiceName: Service]
    private let podsByName: [ServiceName: Pod]
    private let routesByService: [ServiceName: [HTTPRoute]]
    private let endpointsByService: [ServiceName: [MeshEndpoint]]
    private let serviceByAddress: [String: ServiceName]
    private let serviceByHost: [String: ServiceName]

    /// A mesh with nothing in it and default settings.
    public static let empty = try! MeshState.build(from: [])

    public static func == (lhs: MeshState, rhs: MeshState) -> Bool {
        lhs.meshConfig == rhs.meshConfig && lhs.services == rhs.services && lhs.endpointSlices == rhs.endpointSlices
            && lhs.pods == rhs.pods && lhs.httpRoutes == rhs.httpRoutes
            && lhs.authorizationPolicies == rhs.authorizationPolicies
    }

    // MARK: Lookups

    public func service(namespace: String, name: String) -> Service? {
        servicesByName[ServiceName(namespace: namespace, name: name)]
    }

    /// The Service whose ClusterIP and port this is, as kube-proxy would resolve it.
    public func service(clusterIP: String, port: Int) -> Service? {
        serviceByAddress["\(clusterIP)|\(port)"].flatMap { servicesByName[$0] }
    }

    /// The Service a DNS name (`web.demo.svc.cluster.local`, `web.demo.svc`, `web.demo`) names.
    public func service(host: String) -> Service? {
        serviceByHost[host.lowercased()].flatMap { servicesByName[$0] }
    }

    public func pod(namespace: String, name: String) -> Pod? {
        podsByName[ServiceName(namespace: namespace, name: name)]
    }

    /// The HTTPRoutes attached to the Service (a Service parentRef naming it), oldest
    /// first, then by namespace/name: the order Gateway API uses to break ties.
    /// - Parameter port: only routes attached to all ports or to this one; nil for all.
    public func routes(for service: ServiceName, port: Int? = nil) -> [HTTPRoute] {
        let routes = routesByService[service] ?? []
        guard let port else { return routes }
        return routes.filter { route in
            route.parentRefs.contains { ref in
                ref.isService && ref.name == service.name && ref.namespace == service.namespace
                    && (ref.port == nil || ref.port == port)
            }
        }
    }

    /// Every match of every route of the Service, in Gateway API precedence: Exact path,
    /// then the longest PathPrefix, then regular expressions; then a method match; then
    /// more header matches; then more query parameter matches; then route order
    /// (`routes(for:port:)`), rule order and match order. The first candidate that
    /// matches a request wins.
    public func routeMatches(for service: ServiceName, port: Int? = nil) -> [RouteMatchCandidate] {
        var candidates: [(key: [Int], candidate: RouteMatchCandidate)] = []
        for (routeIndex, route) in routes(for: service, port: port).enumerated() {
            for (ruleIndex, rule) in route.rules.enumerated() {
                for (matchIndex, match) in rule.matches.enumerated() {
                    let pathRank: [Int]
                    switch match.path.type {
                    case .exact: pathRank = [0, 0]
                    case .pathPrefix: pathRank = [1, -match.path.value.utf8.count]
                    case .regularExpression: pathRank = [2, 0]
                    }
                    let key =
                        pathRank + [
                            match.method == nil ? 1 : 0, -match.headers.count, -match.queryParams.count,
                            routeIndex, ruleIndex, matchIndex,
                        ]
                    candidates.append((key, RouteMatchCandidate(route: route, ruleIndex: ruleIndex, match: match)))
                }
            }
        }
        return candidates.sorted { $0.key.lexicographicallyPrecedes($1.key) }.map(\.candidate)
    }

    /// The addresses behind the Service, merged from all its EndpointSlices (sorted by
    /// address; an address listed twice with the same ports is kept once, preferring a
    /// ready entry), each with the identity of its Pod when the Pod is known.
    public func endpoints(for service: ServiceName) -> [MeshEndpoint] {
        endpointsByService[service] ?? []
    }

    /// The AuthorizationPolicies of the Pod's namespace whose selector matches its labels.
    public func policies(selecting pod: Pod) -> [AuthorizationPolicy] {
        authorizationPolicies.filter {
            $0.metadata.namespace == pod.metadata.namespace && $0.selector.matches(pod.metadata.labels)
        }
    }

    // MARK: Building

    /// Builds the state from every file's decode result, validating across files.
    ///
    /// - Parameter files: each file's name and what `ManifestDecoder` made of it.
    /// - Throws: `ConfigValidationFailure` with every decode error of every file, plus
    ///   `duplicateResource` (same kind, namespace and name twice, naming both places)
    ///   and `duplicateMeshConfig` (more than one MeshConfig). References to Services
    ///   that do not exist are warnings, as Gateway API's `ResolvedRefs=False` is.
    public static func build(from files: [(file: String, result: ManifestDecodeResult)]) throws(ConfigValidationFailure)
        -> MeshState
    {
        var errors: [ConfigError] = []
        var warnings: [ConfigError] = []
        var origins: [ResourceID: Origin] = [:]
        var meshConfigOrigin: (Origin, String)?
        var meshConfig: MeshConfig?
        var services: [Service] = []
        var slices: [(EndpointSlice, Origin)] = []
        var pods: [Pod] = []
        var routes: [(HTTPRoute, Origin)] = []
        var policies: [AuthorizationPolicy] = []

        for (file, result) in files {
            errors += result.errors
            warnings += result.warnings
            for entry in result.entries {
                let origin = Origin(file: file, document: entry.document)
                let id = entry.resource.id
                if case .meshConfig(let config) = entry.resource, let (first, firstName) = meshConfigOrigin {
                    errors.append(
                        ConfigError(
                            code: .duplicateMeshConfig, file: file, document: entry.document, field: "metadata.name",
                            reason:
                                "only one MeshConfig is allowed; \(config.metadata!.name) repeats \(firstName) from \(first.file) document \(first.document)"
                        ))
                    continue
                }
                if let first = origins[id] {
                    errors.append(
                        ConfigError(
                            code: .duplicateResource, file: file, document: entry.document, field: "metadata.name",
                            reason:
                                "\(id.kind) \(id.namespace)/\(id.name) is already defined in \(first.file) document \(first.document)"
                        ))
                    continue
                }
                origins[id] = origin
                switch entry.resource {
                case .service(let s): services.append(s)
                case .endpointSlice(let s): slices.append((s, origin))
                case .pod(let p): pods.append(p)
                case .httpRoute(let r): routes.append((r, origin))
                case .authorizationPolicy(let p): policies.append(p)
                case .meshConfig(let c):
                    meshConfig = c
                    meshConfigOrigin = (origin, c.metadata!.name)
                }
            }
        }
        guard errors.isEmpty else { throw ConfigValidationFailure(errors: errors, warnings: warnings) }

        func byName(_ a: ObjectMeta, _ b: ObjectMeta) -> Bool { (a.namespace, a.name) < (b.namespace, b.name) }
        let config = meshConfig ?? .default
        services.sort { byName($0.metadata, $1.metadata) }
        slices.sort { byName($0.0.metadata, $1.0.metadata) }
        pods.sort { byName($0.metadata, $1.metadata) }
        policies.sort { byName($0.metadata, $1.metadata) }
        routes.sort {
            let a = ($0.0.metadata.creationTimestamp ?? "~", $0.0.metadata.namespace, $0.0.metadata.name)
            let b = ($1.0.metadata.creationTimestamp ?? "~", $1.0.metadata.namespace, $1.0.metadata.name)
            return a < b
        }

        var servicesByName: [ServiceName: Service] = [:]
        var serviceByAddress: [String: ServiceName] = [:]
        var serviceByHost: [String: ServiceName] = [:]
        let index = services.map { ServiceIndexEntry($0, clusterDomain: config.clusterDomain) }
        for (service, entry) in zip(services, index) {
            servicesByName[service.name] = service
            for ip in service.clusterIPs {
                for port in service.ports { serviceByAddress["\(ip)|\(port.port)"] = service.name }
            }
            for host in entry.dnsNames { serviceByHost[host] = service.name }
        }
        var podsByName: [ServiceName: Pod] = [:]
        for pod in pods { podsByName[ServiceName(namespace: pod.metadata.namespace, name: pod.metadata.name)] = pod }

        var routesByService: [ServiceName: [HTTPRoute]] = [:]
        for (route, origin) in routes {
            var attached: Set<ServiceName> = []
            for (i, ref) in route.parentRefs.enumerated() where ref.isService {
                let name = ServiceName(namespace: ref.namespace, name: ref.name)
                if servicesByName[name] == nil {
                    warnings.append(
                        ConfigError(
                            code: .unresolvedReference, file: origin.file, document: origin.document,
                            field: "spec.parentRefs[\(i)]", reason: "Service \(name) does not exist"))
                } else if attached.insert(name).inserted {
                    routesByService[name, default: []].append(route)
                }
            }
            for (r, rule) in route.rules.enumerated() {
                for (b, backend) in rule.backendRefs.enumerated() where backend.isService {
                    let name = ServiceName(namespace: backend.namespace, name: backend.name)
                    guard let service = servicesByName[name] else {
                        warnings.append(
                            ConfigError(
                                code: .unresolvedReference, file: origin.file, document: origin.document,
                                field: "spec.rules[\(r)].backendRefs[\(b)]",
                                reason: "Service \(name) does not exist; this backend gets no traffic"))
                        continue
                    }
                    if let port = backend.port, !service.ports.contains(where: { $0.port == port }) {
                        warnings.append(
                            ConfigError(
                                code: .unresolvedReference, file: origin.file, document: origin.document,
                                field: "spec.rules[\(r)].backendRefs[\(b)].port",
                                reason: "Service \(name) has no port \(port); this backend gets no traffic"))
                    }
                }
            }
        }

        var endpointsByService: [ServiceName: [MeshEndpoint]] = [:]
        for (slice, origin) in slices {
            guard let serviceName = slice.serviceName else { continue }
            let name = ServiceName(namespace: slice.metadata.namespace, name: serviceName)
            if servicesByName[name] == nil {
                warnings.append(
                    ConfigError(
                        code: .unresolvedReference, file: origin.file, document: origin.document,
                        field: "metadata.labels[kubernetes.io/service-name]", reason: "Service \(name) does not exist"))
            }
            for endpoint in slice.endpoints {
                var identity: SPIFFEID?
                var isMeshed = false
                if let ref = endpoint.targetRef, ref.kind == "Pod",
                    let pod = podsByName[ServiceName(namespace: ref.namespace, name: ref.name)]
                {
                    identity = pod.identity(trustDomain: config.trustDomain)
                    isMeshed = pod.isMeshed
                }
                for address in endpoint.addresses {
                    endpointsByService[name, default: []].append(
                        MeshEndpoint(
                            address: address, ports: slice.ports, ready: endpoint.conditions.ready,
                            serving: endpoint.conditions.serving, terminating: endpoint.conditions.terminating,
                            targetRef: endpoint.targetRef, nodeName: endpoint.nodeName, zone: endpoint.zone,
                            hostname: endpoint.hostname, identity: identity, sliceName: slice.metadata.name,
                            isMeshed: isMeshed))
                }
            }
        }
        for (name, list) in endpointsByService {
            var merged: [MeshEndpoint] = []
            for endpoint in list {
                if let i = merged.firstIndex(where: { $0.address == endpoint.address && $0.ports == endpoint.ports }) {
                    if !merged[i].ready && endpoint.ready { merged[i] = endpoint }
                } else {
                    merged.append(endpoint)
                }
            }
            endpointsByService[name] = merged.sorted { ($0.address, $0.sliceName) < ($1.address, $1.sliceName) }
        }

        return MeshState(
            meshConfig: config, services: services, endpointSlices: slices.map(\.0), pods: pods,
            httpRoutes: routes.map(\.0), authorizationPolicies: policies, serviceIndex: index, warnings: warnings,
            origins: origins, servicesByName: servicesByName, podsByName: podsByName,
            routesByService: routesByService, endpointsByService: endpointsByService,
            serviceByAddress: serviceByAddress, serviceByHost: serviceByHost)
    }
}
