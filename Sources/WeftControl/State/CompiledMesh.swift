import WeftCore
import WeftProtocol

/// One wire entry, with its JSON encoded once per generation and shared by every push.
public struct CompiledEntry<Entry: Hashable & Sendable & Encodable>: Sendable {
    public let key: String
    public let entry: Entry
    /// Sorted-key JSON: equal entries give equal bytes, which is how changes are found.
    public let json: [UInt8]

    init(key: String, entry: Entry) {
        self.key = key
        self.entry = entry
        self.json = MessageCoder.encodeValue(entry)
    }
}

/// An AuthorizationPolicy with what the push layer needs to decide which pods it selects.
public struct PolicySelection: Sendable {
    public let namespace: String
    /// An empty selector selects every pod of the namespace.
    public let selector: LabelSelector
    public let entry: PolicyEntry

    public init(namespace: String, selector: LabelSelector, entry: PolicyEntry) {
        self.namespace = namespace
        self.selector = selector
        self.entry = entry
    }

    func selects(labels: [String: String]) -> Bool {
        selector.matches(labels)
    }
}

/// What the control plane knows about a pod, to check a hello against.
public struct KnownPod: Sendable, Hashable {
    public let serviceAccount: String
    public let labels: [String: String]
    /// The kubelet probes it declares, sent to its proxy.
    public let probes: [ProbeEntry]

    public init(serviceAccount: String, labels: [String: String], probes: [ProbeEntry] = []) {
        self.serviceAccount = serviceAccount
        self.labels = labels
        self.probes = probes
    }
}

/// The mesh in wire form at one generation, plus what changed since the previous one.
///
/// Built once per accepted config change (never per proxy), so the cost of encoding is
/// paid once however many proxies there are. Every push is then assembled from these
/// bytes. Immutable and shared across event loops.
public final class CompiledMesh: Sendable {
    public let generation: Int
    /// When the change this generation reflects was accepted; push latency counts from here.
    public let committedAt: ContinuousClock.Instant
    public let mesh: CompiledEntry<MeshSettings>
    public let services: [String: CompiledEntry<ServiceEntry>]
    /// `[…]` of every service entry, sorted by key: the snapshot's index, encoded once.
    public let servicesArrayJSON: [UInt8]
    public let routes: [String: CompiledEntry<RouteSet>]
    public let endpoints: [String: CompiledEntry<EndpointSet>]
    public let policiesByNamespace: [String: [CompiledEntry<PolicyEntry>]]
    let policySelections: [String: [PolicySelection]]
    public let pods: [String: KnownPod]
    /// Meshed Pods by IP, and `[…]` of them sorted by IP: every proxy's workload index.
    public let workloads: [String: CompiledEntry<WorkloadEntry>]
    public let workloadsArrayJSON: [UInt8]
    /// Nil for the first generation.
    public let changes: MeshChanges?

    public init(
        generation: Int, committedAt: ContinuousClock.Instant = .now, mesh: MeshSettings, services: [ServiceEntry],
        routes: [RouteSet], endpoints: [EndpointSet], policies: [PolicySelection], pods: [String: KnownPod],
        workloads: [WorkloadEntry] = [], previous: CompiledMesh?
    ) {
        var workloads_: [String: CompiledEntry<WorkloadEntry>] = [:]
        for w in workloads { workloads_[w.ip] = CompiledEntry(key: w.ip, entry: w) }
        self.workloads = workloads_
        self.workloadsArrayJSON = JSONFragments.array(workloads_.keys.sorted().map { workloads_[$0]!.json })
        self.generation = generation
        self.committedAt = committedAt
        self.mesh = CompiledEntry(key: "mesh", entry: mesh)
        var services_: [String: CompiledEntry<ServiceEntry>] = [:]
        for s in services { services_[s.key] = CompiledEntry(key: s.key, entry: s) }
        self.services = services_
        self.servicesArrayJSON = JSONFragments.array(services_.keys.sorted().map { services_[$0]!.json })
        var routes_: [String: CompiledEntry<RouteSet>] = [:]
        for r in routes { routes_[r.service] = CompiledEntry(key: r.service, entry: r) }
        self.routes = routes_
        var endpoints_: [String: CompiledEntry<EndpointSet>] = [:]
        for e in endpoints { endpoints_[e.service] = CompiledEntry(key: e.service, entry: e) }
        self.endpoints = endpoints_
        var selections: [String: [PolicySelection]] = [:]
        var compiledPolicies: [String: [CompiledEntry<PolicyEntry>]] = [:]
        for p in policies.sorted(by: { $0.entry.key < $1.entry.key }) {
            selections[p.namespace, default: []].append(p)
            compiledPolicies[p.namespace, default: []].append(CompiledEntry(key: p.entry.key, entry: p.entry))
        }
        self.policySelections = selections
        self.policiesByNamespace = compiledPolicies
        self.pods = pods
        self.changes = previous.map {
            MeshChanges(
                from: $0, toServices: services_, routes: routes_, endpoints: endpoints_, mesh: mesh,
                policies: compiledPolicies, selections: selections, workloads: workloads_)
        }
    }

    /// The policies that select a pod: those of its namespace whose selector matches.
    public func policies(namespace: String, labels: [String: String]) -> [CompiledEntry<PolicyEntry>] {
        guard let selections = policySelections[namespace], let compiled = policiesByNamespace[namespace] else {
            return []
        }
        var out: [CompiledEntry<PolicyEntry>] = []
        for (index, selection) in selections.enumerated() where selection.selects(labels: labels) {
            out.append(compiled[index])
        }
        return out
    }

    /// A destination's routes; an empty set for a service with none or one that does not exist.
    func routeJSON(_ service: String) -> [UInt8] {
        routes[service]?.json ?? MessageCoder.encodeValue(RouteSet(service: service, routes: []))
    }

    func endpointJSON(_ service: String) -> [UInt8] {
        endpoints[service]?.json ?? MessageCoder.encodeValue(EndpointSet(service: service, endpoints: []))
    }
}

/// What changed between two generations, computed once and shared by every proxy's delta.
public struct MeshChanges: Sendable {
    public let previousGeneration: Int
    public let meshChanged: Bool
    /// `[…]` of the services added or changed; nil when none.
    public let serviceUpsertsJSON: [UInt8]?
    public let serviceRemovals: [String]
    /// Destination keys whose routes changed (including removed ones).
    public let changedRoutes: Set<String>
    public let changedEndpoints: Set<String>
    /// Namespaces whose policies changed.
    public let changedPolicyNamespaces: Set<String>
    /// `[…]` of the workloads added or changed; nil when none.
    public let workloadUpsertsJSON: [UInt8]?
    public let workloadRemovals: [String]

    init(
        from old: CompiledMesh, toServices services: [String: CompiledEntry<ServiceEntry>],
        routes: [String: CompiledEntry<RouteSet>], endpoints: [String: CompiledEntry<EndpointSet>],
        mesh: MeshSettings, policies: [String: [CompiledEntry<PolicyEntry>]], selections: [String: [PolicySelection]],
        workloads: [String: CompiledEntry<WorkloadEntry>]
    ) {
        let changedWorkloads = workloads.keys.sorted().filter { old.workloads[$0]?.json != workloads[$0]!.json }
        workloadUpsertsJSON =
            changedWorkloads.isEmpty ? nil : JSONFragments.array(changedWorkloads.map { workloads[$0]!.json })
        workloadRemovals = old.workloads.keys.filter { workloads[$0] == nil }.sorted()
        previousGeneration = old.generation
        meshChanged = old.mesh.entry != mesh
        let upserted = services.keys.sorted().filter { old.services[$0]?.json != services[$0]!.json }
        serviceUpsertsJSON = upserted.isEmpty ? nil : JSONFragments.array(upserted.map { services[$0]!.json })
        serviceRemovals = old.services.keys.filter { services[$0] == nil }.sorted()
        changedRoutes = Self.changedKeys(old.routes, routes)
        changedEndpoints = Self.changedKeys(old.endpoints, endpoints)
        var namespaces = Set<String>()
        for ns in Set(old.policiesByNamespace.keys).union(policies.keys) {
            // A policy that selects other pods changes what proxies hold even when its
            // rules do not, so the selectors count too.
            let a = old.policiesByNamespace[ns]?.map(\.json) ?? []
            let b = policies[ns]?.map(\.json) ?? []
            let sa = old.policySelections[ns]?.map(\.selector) ?? []
            let sb = selections[ns]?.map(\.selector) ?? []
            if a != b || sa != sb { namespaces.insert(ns) }
        }
        changedPolicyNamespaces = namespaces
    }

    private static func changedKeys<E>(_ old: [String: CompiledEntry<E>], _ new: [String: CompiledEntry<E>]) -> Set<
        String
    > {
        var keys = Set<String>()
        for (key, entry) in new where old[key]?.json != entry.json { keys.insert(key) }
        for key in old.keys where new[key] == nil { keys.insert(key) }
        return keys
    }
}
