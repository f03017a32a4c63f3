import Foundation
import NIOCore
import WeftCore
import WeftProtocol

/// The control plane's state for one established proxy connection, and the pushes it
/// builds. Owned by the connection's handler, so it lives on one event loop.
///
/// It holds only what a delta needs: versions, subscriptions and a hash per sent policy,
/// never the config itself. A proxy's config is rebuilt from the shared `CompiledMesh`
/// when someone asks (`weftctl config`), which keeps memory per proxy small.
struct ProxySession {
    let id: String
    let node: Node
    let identity: SPIFFEID
    let labels: [String: String]
    let connectedAt: String
    var certificateNotAfter: String
    /// The address the connection comes from (issuance limits count renewals per source).
    let source: String
    /// The kubelet probes its Pod declares (known at hello, like its labels).
    let probes: [ProbeEntry]

    /// The version of the last push sent; 0 before the first.
    private(set) var version = 0
    private(set) var ackedVersion = 0
    /// The generation the last push reflected, and the one the proxy acked.
    private(set) var sentGeneration = 0
    private(set) var ackedGeneration = 0
    private(set) var nackCount = 0
    private(set) var lastNack: String?
    /// After a nack the next push is a whole config (docs/protocol.md, "Versions").
    private var needsFullConfig = true
    /// The version of the last whole config sent; nacks of older versions are stale.
    private var latestConfigVersion = 0
    private(set) var subscriptions: Set<String>
    private var sentPolicies: [String: Int] = [:]
    /// Pushes not yet acked: version → (generation, the instant latency counts from, kind).
    private var outstanding: [Int: Outstanding] = [:]

    struct Outstanding {
        let generation: Int
        let since: ContinuousClock.Instant
        let isDelta: Bool
    }

    init(
        id: String, node: Node, identity: SPIFFEID, labels: [String: String], connectedAt: String,
        certificateNotAfter: String, subscriptions: [String], source: String = "unknown", probes: [ProbeEntry] = []
    ) {
        self.source = source
        self.probes = probes
        self.id = id
        self.node = node
        self.identity = identity
        self.labels = labels
        self.connectedAt = connectedAt
        self.certificateNotAfter = certificateNotAfter
        self.subscriptions = Set(subscriptions)
    }

    private func nonce(_ version: Int) -> String { "\(id)-\(version)" }

    private static let probeEncoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }()

    private mutating func nextVersion(generation: Int, since: ContinuousClock.Instant, isDelta: Bool) -> Int {
        version += 1
        if outstanding.count >= 16 { outstanding.removeAll() }  // a proxy that never acks costs nothing more
        outstanding[version] = Outstanding(generation: generation, since: since, isDelta: isDelta)
        return version
    }

    // MARK: - Pushes

    /// A whole `config` for the current mesh.
    mutating func fullConfig(_ mesh: CompiledMesh, allocator: ByteBufferAllocator) -> ByteBuffer {
        let version = nextVersion(generation: mesh.generation, since: .now, isDelta: false)
        latestConfigVersion = version
        let (frame, policies) = render(mesh, version: version, allocator: allocator)
        sentPolicies = Dictionary(uniqueKeysWithValues: policies.map { ($0.key, $0.json.hashValue) })
        sentGeneration = mesh.generation
        needsFullConfig = false
        return frame
    }

    /// The whole config this proxy would get from `mesh`, at its current version; changes
    /// nothing. `weftctl config` shows it.
    func preview(_ mesh: CompiledMesh, allocator: ByteBufferAllocator) -> ByteBuffer {
        render(mesh, version: version, allocator: allocator).0
    }

    private func render(
        _ mesh: CompiledMesh, version: Int, allocator: ByteBufferAllocator
    ) -> (ByteBuffer, [CompiledEntry<PolicyEntry>]) {
        var w = JSONObjectWriter(buffer: allocator.buffer(capacity: 1024 + mesh.servicesArrayJSON.count))
        w.field("type", string: "config")
        w.field("version", int: version)
        w.field("nonce", string: nonce(version))
        w.field("generation", int: mesh.generation)
        w.beginObject("snapshot")
        w.field("mesh", raw: mesh.mesh.json)
        w.field("services", raw: mesh.servicesArrayJSON)
        w.field("workloads", raw: mesh.workloadsArrayJSON)
        let policies = mesh.policies(namespace: node.namespace, labels: labels)
        w.field("policies", fragments: policies.map(\.json))
        let subs = subscriptions.sorted()
        w.field("routes", fragments: subs.map { mesh.routeJSON($0) })
        w.field("endpoints", fragments: subs.map { mesh.endpointJSON($0) })
        if !probes.isEmpty, let json = try? Self.probeEncoder.encode(probes) { w.field("probes", raw: Array(json)) }
        w.endObject()
        return (w.finish(), policies)
    }

    /// The push that brings this proxy from its sent generation to `mesh`'s: a delta built
    /// from the shared changes when it can be, a whole config when it cannot, and nil when
    /// nothing this proxy holds changed.
    mutating func update(to mesh: CompiledMesh, allocator: ByteBufferAllocator) -> ByteBuffer? {
        guard mesh.generation != sentGeneration else { return nil }
        guard !needsFullConfig, let changes = mesh.changes, changes.previousGeneration == sentGeneration else {
            return fullConfig(mesh, allocator: allocator)
        }
        var upsertRoutes: [[UInt8]] = []
        var upsertEndpoints: [[UInt8]] = []
        for service in subscriptions.sorted() {
            if changes.changedRoutes.contains(service) { upsertRoutes.append(mesh.routeJSON(service)) }
            if changes.changedEndpoints.contains(service) { upsertEndpoints.append(mesh.endpointJSON(service)) }
        }
        var upsertPolicies: [[UInt8]] = []
        var removedPolicies: [String] = []
        var newSent = sentPolicies
        if changes.changedPolicyNamespaces.contains(node.namespace) {
            let now = mesh.policies(namespace: node.namespace, labels: labels)
            newSent = [:]
            for p in now {
                let hash = p.json.hashValue
                newSent[p.key] = hash
                if sentPolicies[p.key] != hash { upsertPolicies.append(p.json) }
            }
            removedPolicies = sentPolicies.keys.filter { newSent[$0] == nil }.sorted()
        }
        let nothing =
            !changes.meshChanged && changes.serviceUpsertsJSON == nil && changes.serviceRemovals.isEmpty
            && upsertRoutes.isEmpty && upsertEndpoints.isEmpty && upsertPolicies.isEmpty && removedPolicies.isEmpty
            && changes.workloadUpsertsJSON == nil && changes.workloadRemovals.isEmpty
        sentPolicies = newSent
        let base = version
        guard !nothing else {
            // Nothing this proxy holds changed, so the version it runs (or will run once it
            // acks the last push) reflects the new generation too. Without this its acked
            // generation stayed behind and `weftctl check` reported it forever.
            sentGeneration = mesh.generation
            if ackedVersion == version {
                ackedGeneration = mesh.generation
            } else if let pending = outstanding[version] {
                outstanding[version] = Outstanding(
                    generation: mesh.generation, since: pending.since, isDelta: pending.isDelta)
            }
            return nil
        }
        let version = nextVersion(generation: mesh.generation, since: mesh.committedAt, isDelta: true)
        var w = JSONObjectWriter(buffer: allocator.buffer(capacity: 512 + (changes.serviceUpsertsJSON?.count ?? 0)))
        w.field("type", string: "delta")
        w.field("version", int: version)
        w.field("base", int: base)
        w.field("nonce", string: nonce(version))
        w.field("generation", int: mesh.generation)
        w.beginObject("upserts")
        if changes.meshChanged { w.field("mesh", raw: mesh.mesh.json) }
        if let services = changes.serviceUpsertsJSON { w.field("services", raw: services) }
        if let workloads = changes.workloadUpsertsJSON { w.field("workloads", raw: workloads) }
        if !upsertPolicies.isEmpty { w.field("policies", fragments: upsertPolicies) }
        if !upsertRoutes.isEmpty { w.field("routes", fragments: upsertRoutes) }
        if !upsertEndpoints.isEmpty { w.field("endpoints", fragments: upsertEndpoints) }
        w.endObject()
        w.beginObject("removals")
        if !changes.serviceRemovals.isEmpty { w.field("services", strings: changes.serviceRemovals) }
        if !removedPolicies.isEmpty { w.field("policies", strings: removedPolicies) }
        if !changes.workloadRemovals.isEmpty { w.field("workloads", strings: changes.workloadRemovals) }
        w.endObject()
        sentGeneration = mesh.generation
        return w.finish()
    }

    /// Adds subscriptions; the delta carries their current routes and endpoints.
    /// Subscribing again to a subscribed service answers with its current state again.
    mutating func subscribe(_ services: [String], mesh: CompiledMesh, allocator: ByteBufferAllocator) -> ByteBuffer? {
        for service in services { subscriptions.insert(service) }
        let added = Array(Set(services)).sorted()
        guard !added.isEmpty else { return nil }
        if needsFullConfig { return fullConfig(mesh, allocator: allocator) }
        return subscriptionDelta(
            mesh: mesh, allocator: allocator, routes: added.map { mesh.routeJSON($0) },
            endpoints: added.map { mesh.endpointJSON($0) }, removed: [])
    }

    /// Drops subscriptions; the delta removes their routes and endpoints.
    mutating func unsubscribe(_ services: [String], mesh: CompiledMesh, allocator: ByteBufferAllocator) -> ByteBuffer? {
        let removed = services.filter { subscriptions.remove($0) != nil }.sorted()
        guard !removed.isEmpty else { return nil }
        if needsFullConfig { return fullConfig(mesh, allocator: allocator) }
        return subscriptionDelta(mesh: mesh, allocator: allocator, routes: [], endpoints: [], removed: removed)
    }

    private mutating func subscriptionDelta(
        mesh: CompiledMesh, allocator: ByteBufferAllocator, routes: [[UInt8]], endpoints: [[UInt8]], removed: [String]
    ) -> ByteBuffer {
        let base = version
        let version = nextVersion(generation: sentGeneration, since: .now, isDelta: true)
        var w = JSONObjectWriter(buffer: allocator.buffer(capacity: 512))
        w.field("type", string: "delta")
        w.field("version", int: version)
        w.field("base", int: base)
        w.field("nonce", string: nonce(version))
        w.field("generation", int: sentGeneration)
        w.beginObject("upserts")
        if !routes.isEmpty { w.field("routes", fragments: routes) }
        if !endpoints.isEmpty { w.field("endpoints", fragments: endpoints) }
        w.endObject()
        w.beginObject("removals")
        if !removed.isEmpty {
            w.field("routes", strings: removed)
            w.field("endpoints", strings: removed)
        }
        w.endObject()
        return w.finish()
    }

    // MARK: - Answers

    enum AckOutcome {
        /// The push was acked; latency is counted from `since`.
        case acked(since: ContinuousClock.Instant, isDelta: Bool)
        /// An ack for a version this session never sent, or with the wrong nonce.
        case unknown
    }

    mutating func ack(_ ack: Ack) -> AckOutcome {
        guard ack.nonce == nonce(ack.version), let pending = outstanding.removeValue(forKey: ack.version) else {
            return .unknown
        }
        if ack.version > ackedVersion {
            ackedVersion = ack.version
            ackedGeneration = pending.generation
        }
        return .acked(since: pending.since, isDelta: pending.isDelta)
    }

    enum NackOutcome {
        /// A delta was refused: send a whole config now (after the debounce).
        case resendConfig
        /// A whole config was refused: the next one goes out when the mesh changes.
        case awaitChange
        /// Older than the latest config, which supersedes it: nothing to do.
        case stale
        /// Matches no push.
        case unknown
    }

    mutating func nack(_ nack: Nack) -> NackOutcome {
        guard nack.nonce == nonce(nack.version), let pending = outstanding.removeValue(forKey: nack.version) else {
            return .unknown
        }
        nackCount += 1
        lastNack = nack.code.map { "\($0): \(nack.error)" } ?? nack.error
        if nack.version < latestConfigVersion { return .stale }
        needsFullConfig = true
        return pending.isDelta ? .resendConfig : .awaitChange
    }

    /// The next push must be a whole config; `update` sends one even if the mesh has not
    /// moved, so a nacking proxy gets back in step at the next change.
    var isAwaitingFullConfig: Bool { needsFullConfig }

    /// The proxy's mesh TLS failures as its last ping reported them, and when they grew.
    private(set) var tlsFailures: TLSFailureReport?
    private(set) var tlsFailuresGrewAt: String?

    mutating func record(_ report: TLSFailureReport, at now: String) {
        let before = (tlsFailures?.inbound ?? 0) + (tlsFailures?.outbound ?? 0)
        if report.inbound + report.outbound > before { tlsFailuresGrewAt = now }
        tlsFailures = report
    }

    var status: ProxyStatus {
        var status = ProxyStatus(
            session: id, pod: node.pod, namespace: node.namespace, serviceAccount: node.serviceAccount, ip: node.ip,
            identity: identity.description, connectedAt: connectedAt, certificateNotAfter: certificateNotAfter,
            version: version, ackedVersion: ackedVersion, sentGeneration: sentGeneration,
            ackedGeneration: ackedGeneration, nacks: nackCount, lastNack: lastNack,
            subscriptions: subscriptions.sorted())
        status.tlsFailures = tlsFailures
        status.tlsFailuresGrewAt = tlsFailuresGrewAt
        return status
    }
}
