import WeftProtocol

/// Realistic protocol values shared by the tests: the `demo` namespace of
/// docs/protocol.md, where pod `client-0` (service account `client`) talks to `demo/web`.
enum ProtocolFixtures {
    /// A real P-256 PKCS#10 CSR for `spiffe://cluster.local/ns/demo/sa/client`.
    static let csr = """
        -----BEGIN CERTIFICATE REQUEST-----
        MIIBAjCBqAIBADAAMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEVJ1bztckHQ16
        s/WfvONhagrQtO6VYuPmHxumGgDU+O987zfRU6+GiWTvQ16G8irbh1MW33KnS8hw
        wIgDUOFh1KBGMEQGCSqGSIb3DQEJDjE3MDUwMwYDVR0RBCwwKoYoc3BpZmZlOi8v
        Y2x1c3Rlci5sb2NhbC9ucy9kZW1vL3NhL2NsaWVudDAKBggqhkjOPQQDAgNJADBG
        AiEAso/3IjIAGXnHIavXtM03XcOkFCn6OdqZ9wtpncAwfcoCIQCxCZvt8p+zC5Fd
        Eywf5VaBCy6fntp01ohGznnLdKAiog==
        -----END CERTIFICATE REQUEST-----

        """

    static let chain = """
        -----BEGIN CERTIFICATE-----
        MIIBxTCCAWugAwIBAgIQc2xpZW50LTAtbGVhZi0wMDEwCgYIKoZIzj0EAwIwHjEc
        -----END CERTIFICATE-----
        -----BEGIN CERTIFICATE-----
        MIIBnzCCAUWgAwIBAgIRAJ0iaW50ZXJtZWRpYXRlLTAwMTAKBggqhkjOPQQDAjAW
        -----END CERTIFICATE-----

        """

    static let trustBundle = """
        -----BEGIN CERTIFICATE-----
        MIIBeTCCAR+gAwIBAgIQd2VmdC1yb290LWNhLTAwMTAKBggqhkjOPQQDAjAWMRQw
        -----END CERTIFICATE-----

        """

    static let node = Node(
        pod: "client-0", namespace: "demo", serviceAccount: "client", ip: "10.211.0.5",
        labels: ["app": "client", "statefulset.kubernetes.io/pod-name": "client-0"]
    )

    static let hello = Hello(
        protocol: 1, proxyVersion: "weft-proxy 0.4.0", node: node,
        token: "eyJhbGciOiJSUzI1NiIsImtpZCI6IjEifQ.eyJhdWQiOlsid2VmdCJdfQ.c2lnbmF0dXJl", csr: csr,
        subscriptions: ["demo/web"]
    )

    static let identity = Identity(
        spiffeId: "spiffe://cluster.local/ns/demo/sa/client", chain: chain, trustBundle: trustBundle,
        notBefore: "2026-11-25T10:00:00Z", notAfter: "2026-11-26T10:00:00Z", session: "3f9c2a7e5b1d4c8a"
    )

    static let mesh = MeshSettings(
        trustDomain: "cluster.local", mtls: "STRICT",
        retryBudget: RetryBudgetSettings(ratio: 0.2, minRetriesPerSecond: 10, windowMs: 10000),
        traceSampling: 0.01, outboundPolicy: "ALLOW_ANY"
    )

    static let webService = ServiceEntry(
        key: "demo/web", clusterIPs: ["10.96.0.10"],
        hosts: ["web.demo.svc.cluster.local", "web.demo.svc", "web.demo"],
        ports: [
            ServicePortEntry(
                name: "http", port: 80, targetPort: 8080, targetPortName: nil, protocol: "TCP", appProtocol: "http"
            )
        ]
    )

    static let policy = PolicyEntry(
        key: "demo/allow-monitoring", action: "ALLOW",
        rules: [
            PolicyRule(
                from: [
                    PolicyPeer(
                        identities: ["spiffe://cluster.local/ns/monitoring/sa/*"], namespaces: ["monitoring"],
                        serviceAccounts: nil
                    )
                ],
                to: [PolicyTarget(ports: [15000], methods: ["GET"], paths: ["/metrics"])]
            )
        ]
    )

    static let routes = RouteSet(
        service: "demo/web",
        routes: [
            RouteEntry(
                name: "demo/web-canary", port: 80, hostnames: ["web.demo.svc.cluster.local"],
                rules: [
                    RouteRuleEntry(
                        matches: [
                            RouteMatchEntry(
                                pathType: "PathPrefix", path: "/api",
                                headers: [ValueMatchEntry(type: "Exact", name: "x-canary", value: "1")],
                                queryParams: [ValueMatchEntry(type: "RegularExpression", name: "v", value: "^2")],
                                method: "GET"
                            )
                        ],
                        backends: [
                            BackendEntry(service: "demo/web", port: 80, weight: 90),
                            BackendEntry(service: "demo/web-canary", port: 80, weight: 10),
                        ],
                        requestTimeoutMs: 5000, backendRequestTimeoutMs: 2000,
                        retry: RetryEntry(attempts: 2, codes: [502, 503], backoffMs: 25)
                    )
                ]
            )
        ]
    )

    static let endpoints = EndpointSet(
        service: "demo/web",
        endpoints: [
            EndpointEntry(
                address: "10.211.0.2", ports: [EndpointPortEntry(name: "http", port: 8080, appProtocol: "http")],
                ready: true, serving: true, terminating: false, identity: "spiffe://cluster.local/ns/demo/sa/web",
                zone: "zone-a"
            )
        ]
    )

    /// A whole config holding every kind of entry.
    static let snapshot = ConfigSet(
        mesh: mesh, services: [webService], policies: [policy], routes: [routes], endpoints: [endpoints]
    )

    static let config = ConfigPush(version: 1, nonce: "b7e1c2d4a9f0", generation: 42, snapshot: snapshot)

    static let delta = DeltaPush(
        version: 3, base: 2, nonce: "0c5d8e1f7a23", generation: 43,
        upserts: ConfigSet(endpoints: [endpoints]),
        removals: ConfigKeys(services: ["demo/old"], policies: ["demo/deny-all"], routes: ["demo/api"])
    )

    static let renew = Renew(
        csr: csr, certificate: chain,
        signature: "MEUCIQDm2bXhT1Ms2X0nYh0aZxq8bHq1Tf3Jd4q0Wn5t7yK3OAIgU9yq8kq6vQ3cZ5mN2d9q0pQ7h3vT1wXbq2s3dE4fG5o="
    )

    static let clientMessages: [ClientMessage] = [
        .hello(hello),
        .hello(Hello(node: Node(pod: "p", namespace: "n", serviceAccount: "s", ip: "10.0.0.1"), token: "t", csr: csr)),
        .ack(Ack(version: 1, nonce: "b7e1c2d4a9f0")),
        .nack(Nack(version: 3, nonce: "0c5d8e1f7a23", error: "base mismatch: have version 1, delta applies to 2")),
        .subscribe(Subscription(services: ["demo/web", "demo/api"])),
        .unsubscribe(Subscription(services: ["demo/api"])),
        .renew(renew),
        .ping(Ping(id: 7)),
        .pong(Ping(id: 12)),
        .error(ErrorMessage(code: .invalidMessage, message: "delta.upserts.routes[0].service: missing", fatal: false)),
    ]

    static let serverMessages: [ServerMessage] = [
        .identity(identity),
        .config(config),
        .config(ConfigPush(version: 1, nonce: "n", generation: 0, snapshot: ConfigSet())),
        .delta(delta),
        .delta(
            DeltaPush(
                version: 4, base: 3, nonce: "m", generation: 44, upserts: ConfigSet(mesh: mesh), removals: ConfigKeys())
        ),
        .ping(Ping(id: 12)),
        .pong(Ping(id: 7)),
        .error(ErrorMessage(ProtocolError(.unsupportedProtocol, "protocol 2 is not supported; this server speaks 1"))),
    ]
}
