import NIOCore
import NIOHPACK
import WeftProtocol

/// Entry points for the micro-benchmarks in `bench/micro` (ordo-one/benchmark): the
/// balancer's pick and route matching, on synthetic data built once. The proxy itself
/// does not use them; they run the very code the data path runs.
public final class BalancerPickBenchmark {
    private let balancer: LoopBalancer
    private var random = LoopRandom(seed: 42)
    private var now: UInt64 = 1_000_000_000

    /// A balancer over `endpoints` endpoints with learnt, different latencies.
    public init(endpoints count: Int) {
        let endpoints = (0..<count).map { i -> LoopEndpoint in
            let address = try! SocketAddress(ipAddress: "10.\(i / 65536 % 256).\(i / 256 % 256).\(i % 256)", port: 8080)
            let endpoint = LoopEndpoint(
                target: EndpointTarget(address: address, key: AddressKey(address)!, identity: nil), now: 0)
            endpoint.requestStarted()
            endpoint.requestFinished(rttNanoseconds: UInt64(1_000_000 + (i % 50) * 100_000), now: 1_000, failed: false)
            return endpoint
        }
        balancer = LoopBalancer(endpoints: endpoints)
    }

    /// One pick (P2C over peak-EWMA cost), as a request makes it.
    @inline(never)
    public func pick() -> Int {
        now &+= 1000
        return balancer.pick(now: now, random: &random)!.target.key.hashValue
    }
}

/// Route matching over a table of `rules` rules (distinct PathPrefix matches, a third with
/// a header match too), for a request that only the last rule in precedence order matches.
public final class RouteMatchBenchmark {
    private let table: RouteTable
    private let http1Head: [UInt8]
    private let parsed: HTTP1Head
    private let http2Head: HPACKHeaders

    public init(rules count: Int) {
        var rules: [RouteRuleEntry] = []
        for i in 0..<count {
            let headers = i % 3 == 0 ? [ValueMatchEntry(type: "Exact", name: "x-tenant", value: "t\(i)")] : nil
            rules.append(
                RouteRuleEntry(
                    matches: [
                        RouteMatchEntry(
                            pathType: "PathPrefix", path: "/service-\(i)/api", headers: headers, queryParams: nil,
                            method: nil)
                    ],
                    backends: [BackendEntry(service: "bench/web", port: 80, weight: 1)], requestTimeoutMs: nil,
                    backendRequestTimeoutMs: nil, retry: nil))
        }
        // The fallback every request that matches nothing else takes: last in precedence.
        rules.append(
            RouteRuleEntry(
                matches: [RouteMatchEntry(pathType: "PathPrefix", path: "/", headers: nil, queryParams: nil, method: nil)],
                backends: [BackendEntry(service: "bench/web", port: 80, weight: 1)], requestTimeoutMs: nil,
                backendRequestTimeoutMs: nil, retry: nil))
        let config = AppliedConfig(
            version: 1, generation: 1,
            mesh: MeshSettings(
                trustDomain: "cluster.local", mtls: "PERMISSIVE",
                retryBudget: RetryBudgetSettings(ratio: 0.2, minRetriesPerSecond: 10, windowMs: 10_000),
                traceSampling: 0, outboundPolicy: "ALLOW_ANY"),
            services: [
                "bench/web": ServiceEntry(
                    key: "bench/web", clusterIPs: ["10.96.0.1"], hosts: [],
                    ports: [
                        ServicePortEntry(
                            name: nil, port: 80, targetPort: 8080, targetPortName: nil, protocol: "TCP",
                            appProtocol: nil)
                    ])
            ],
            routes: ["bench/web": RouteSet(service: "bench/web", routes: [RouteEntry(name: "bench/r", port: nil, hostnames: nil, rules: rules)])],
            endpoints: ["bench/web": EndpointSet(service: "bench/web", endpoints: [])])
        let snapshot = try! MeshSnapshotCompiler.compile(config, namespace: "bench")
        guard case .ready(let table) = snapshot.servicePorts[0].state else { fatalError("bench/web not ready") }
        self.table = table
        http1Head = Array("GET /service-x/api/users?id=7 HTTP/1.1\r\nHost: web\r\nUser-Agent: bench\r\nAccept: */*\r\nX-Tenant: none\r\n\r\n".utf8)
        var head = HTTP1Head()
        try! http1Head.withUnsafeBytes { try HTTP1HeadParser.parse($0, kind: .request, into: &head) }
        parsed = head
        http2Head = [
            ":method": "GET", ":path": "/service-x/api/users?id=7", ":scheme": "http", ":authority": "web",
            "user-agent": "bench", "x-tenant": "none",
        ]
    }

    /// One match of the HTTP/1 request, on its head's bytes.
    @inline(never)
    public func matchHTTP1() -> Int {
        http1Head.withUnsafeBytes { table.match(HTTP1RequestHeadView(bytes: $0, head: parsed)) ?? -1 }
    }

    /// One match of the HTTP/2 request, on its HPACK block.
    @inline(never)
    public func matchHTTP2() -> Int {
        table.match(HPACKRequestHeadView(headers: http2Head)) ?? -1
    }
}
