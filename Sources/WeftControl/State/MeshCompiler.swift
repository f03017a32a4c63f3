import WeftCore
import WeftProtocol

/// Turns the validated mesh model into wire entries (docs/protocol.md, "Config content").
///
/// Kubernetes shapes stay on this side: a proxy gets flat entries keyed by
/// `namespace/name`, with durations in milliseconds and endpoints already merged from
/// their slices and labelled with the workload's SPIFFE ID.
enum MeshCompiler {
    static func compile(_ state: MeshState, generation: Int, previous: CompiledMesh?) -> CompiledMesh {
        let config = state.meshConfig
        let mesh = MeshSettings(
            trustDomain: config.trustDomain, mtls: config.mtlsMode.rawValue,
            retryBudget: RetryBudgetSettings(
                ratio: config.retryBudget.ratio, minRetriesPerSecond: config.retryBudget.minRetriesPerSecond,
                windowMs: milliseconds(config.retryBudget.window)),
            traceSampling: config.tracing.sampling, outboundPolicy: config.outboundPolicy.rawValue,
            http1Transport: config.http1Transport.rawValue)
        let services = state.serviceIndex.map { entry in
            ServiceEntry(
                key: entry.service.description, clusterIPs: entry.clusterIPs, hosts: entry.dnsNames,
                ports: entry.ports.map(servicePort))
        }
        var routes: [RouteSet] = []
        var endpoints: [EndpointSet] = []
        for service in state.services {
            let name = service.name
            let attached = state.routes(for: name)
            if !attached.isEmpty {
                routes.append(
                    RouteSet(service: name.description, routes: attached.flatMap { routeEntries($0, for: name) }))
            }
            let merged = state.endpoints(for: name)
            if !merged.isEmpty {
                endpoints.append(EndpointSet(service: name.description, endpoints: merged.map(endpointEntry)))
            }
        }
        let policies = state.authorizationPolicies.map { policy in
            PolicySelection(
                namespace: policy.metadata.namespace, selector: policy.selector,
                entry: PolicyEntry(
                    key: "\(policy.metadata.namespace)/\(policy.metadata.name)", action: policy.action.rawValue,
                    rules: policy.rules.map(policyRule)))
        }
        var pods: [String: KnownPod] = [:]
        // Meshed Pods by IP. A finished Pod (Succeeded, Failed) keeps its IPs in its status
        // while the IP may already be another Pod's: left out; the Running Pod wins a
        // shared IP, then the first by namespace/name.
        var byIP: [String: (pod: Pod, running: Bool)] = [:]
        for pod in state.pods.sorted(by: {
            "\($0.metadata.namespace)/\($0.metadata.name)" < "\($1.metadata.namespace)/\($1.metadata.name)"
        })
        where pod.phase != "Succeeded" && pod.phase != "Failed" {
            let running = pod.phase == "Running"
            for ip in pod.podIPs where byIP[ip] == nil || (running && !byIP[ip]!.running) {
                byIP[ip] = (pod, running)
            }
        }
        let workloads = byIP.compactMap { ip, holder in
            holder.pod.isMeshed
                ? WorkloadEntry(ip: ip, identity: holder.pod.identity(trustDomain: config.trustDomain).description)
                : nil
        }
        for pod in state.pods {
            pods["\(pod.metadata.namespace)/\(pod.metadata.name)"] = KnownPod(
                serviceAccount: pod.serviceAccountName, labels: pod.metadata.labels,
                probes: pod.probes.map { ProbeEntry(port: $0.port, path: $0.path, method: $0.method) })
        }
        return CompiledMesh(
            generation: generation, mesh: mesh, services: services, routes: routes, endpoints: endpoints,
            policies: policies, pods: pods, workloads: workloads, previous: previous)
    }

    static func milliseconds(_ duration: Duration) -> Int {
        let (seconds, attoseconds) = duration.components
        return Int(seconds) * 1000 + Int(attoseconds / 1_000_000_000_000_000)
    }

    private static func servicePort(_ port: Service.Port) -> ServicePortEntry {
        let (number, name): (Int?, String?) =
            switch port.targetPort {
            case .number(let n): (n, nil)
            case .name(let s): (nil, s)
            }
        return ServicePortEntry(
            name: port.name.isEmpty ? nil : port.name, port: port.port, targetPort: number, targetPortName: name,
            protocol: port.protocol.rawValue, appProtocol: port.appProtocol)
    }

    /// One entry per parentRef that attaches the route to `service` (a route may attach
    /// to several of its ports).
    private static func routeEntries(_ route: HTTPRoute, for service: ServiceName) -> [RouteEntry] {
        let refs = route.parentRefs.filter {
            $0.isService && $0.name == service.name && $0.namespace == service.namespace
        }
        let ports = Array(Set(refs.map(\.port))).sorted { ($0 ?? 0) < ($1 ?? 0) }
        let rules = route.rules.map { rule in
            RouteRuleEntry(
                matches: rule.matches.map { match in
                    RouteMatchEntry(
                        pathType: match.path.type.rawValue, path: match.path.value,
                        headers: match.headers.isEmpty ? nil : match.headers.map(valueMatch),
                        queryParams: match.queryParams.isEmpty ? nil : match.queryParams.map(valueMatch),
                        method: match.method)
                },
                backends: rule.backendRefs.filter(\.isService).map { ref in
                    BackendEntry(
                        service: "\(ref.namespace)/\(ref.name)", port: ref.port, weight: ref.weight,
                        filters: ref.filters.isEmpty ? nil : ref.filters.map(filterEntry))
                },
                requestTimeoutMs: rule.timeouts?.request.map(milliseconds),
                backendRequestTimeoutMs: rule.timeouts?.backendRequest.map(milliseconds),
                retry: rule.retry.map { retry in
                    RetryEntry(
                        attempts: retry.attempts, codes: retry.codes.isEmpty ? nil : retry.codes,
                        backoffMs: retry.backoff.map(milliseconds),
                        grpcCodes: retry.grpcCodes.isEmpty ? nil : retry.grpcCodes)
                }, name: rule.name, filters: rule.filters.isEmpty ? nil : rule.filters.map(filterEntry))
        }
        let name = "\(route.metadata.namespace)/\(route.metadata.name)"
        let hostnames = route.hostnames.isEmpty ? nil : route.hostnames
        return ports.map { RouteEntry(name: name, port: $0, hostnames: hostnames, rules: rules) }
    }

    private static func filterEntry(_ filter: HTTPRouteFilter) -> RouteFilterEntry {
        func headers(_ list: [HTTPRouteFilter.Header]) -> [HeaderEntry]? {
            list.isEmpty ? nil : list.map { HeaderEntry(name: $0.name, value: $0.value) }
        }
        func path(_ modifier: HTTPRouteFilter.PathModifier?) -> (String?, String?) {
            switch modifier {
            case .replaceFullPath(let value)?: return ("ReplaceFullPath", value)
            case .replacePrefixMatch(let value)?: return ("ReplacePrefixMatch", value)
            case nil: return (nil, nil)
            }
        }
        switch filter {
        case .requestHeaderModifier(let m), .responseHeaderModifier(let m):
            let type: String
            if case .requestHeaderModifier = filter {
                type = "RequestHeaderModifier"
            } else {
                type = "ResponseHeaderModifier"
            }
            return RouteFilterEntry(
                type: type, set: headers(m.set), add: headers(m.add), remove: m.remove.isEmpty ? nil : m.remove)
        case .requestRedirect(let r):
            let (pathType, value) = path(r.path)
            return RouteFilterEntry(
                type: "RequestRedirect", scheme: r.scheme, hostname: r.hostname, port: r.port, statusCode: r.statusCode,
                pathType: pathType, path: value)
        case .urlRewrite(let r):
            let (pathType, value) = path(r.path)
            return RouteFilterEntry(type: "URLRewrite", hostname: r.hostname, pathType: pathType, path: value)
        case .requestMirror(let m):
            return RouteFilterEntry(
                type: "RequestMirror", mirror: BackendEntry(service: m.service.description, port: m.port, weight: 1),
                percent: m.percent)
        }
    }

    private static func valueMatch(_ match: HTTPRouteMatch.ValueMatch) -> ValueMatchEntry {
        ValueMatchEntry(type: match.type.rawValue, name: match.name, value: match.value)
    }

    private static func endpointEntry(_ endpoint: MeshEndpoint) -> EndpointEntry {
        EndpointEntry(
            address: endpoint.address,
            ports: endpoint.ports.compactMap { port in
                port.port.map { EndpointPortEntry(name: port.name, port: $0, appProtocol: port.appProtocol) }
            },
            ready: endpoint.ready, serving: endpoint.serving, terminating: endpoint.terminating,
            identity: endpoint.identity?.description, zone: endpoint.zone,
            meshed: endpoint.isMeshed && endpoint.identity != nil ? true : nil)
    }

    private static func policyRule(_ rule: AuthorizationPolicy.Rule) -> PolicyRule {
        PolicyRule(
            from: rule.from.isEmpty
                ? nil
                : rule.from.map { source in
                    PolicyPeer(
                        identities: source.identities.isEmpty ? nil : source.identities,
                        namespaces: source.namespaces.isEmpty ? nil : source.namespaces,
                        serviceAccounts: source.serviceAccounts.isEmpty ? nil : source.serviceAccounts,
                        ipBlocks: source.ipBlocks.isEmpty ? nil : source.ipBlocks.map(\.description))
                },
            to: rule.to.isEmpty
                ? nil
                : rule.to.map { operation in
                    PolicyTarget(
                        ports: operation.ports.isEmpty ? nil : operation.ports,
                        methods: operation.methods.isEmpty ? nil : operation.methods,
                        paths: operation.paths.isEmpty ? nil : operation.paths)
                })
    }
}
