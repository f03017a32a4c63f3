import WeftCore
import WeftProtocol
import XCTest

final class InboundAuthorizerTests: XCTestCase {
    private let client = "spiffe://cluster.local/ns/demo/sa/client"
    private let intruder = "spiffe://cluster.local/ns/demo/sa/intruder"
    private let ops = "spiffe://cluster.local/ns/ops/sa/anything"
    private let prometheus = "spiffe://cluster.local/ns/monitoring/sa/prometheus"

    /// docs/configuration.md's example policy.
    private var webAllowClient: PolicyEntry {
        PolicyEntry(
            key: "demo/web-allow-client", action: "ALLOW",
            rules: [
                PolicyRule(
                    from: [
                        PolicyPeer(
                            identities: [client, "spiffe://cluster.local/ns/ops/*"], namespaces: nil,
                            serviceAccounts: nil),
                        PolicyPeer(identities: nil, namespaces: ["monitoring"], serviceAccounts: ["demo/prometheus"]),
                    ],
                    to: [PolicyTarget(ports: [8080], methods: ["GET", "HEAD"], paths: ["/api/*", "/healthz"])])
            ])
    }

    private func decide(
        _ authorizer: InboundAuthorizer, _ identity: String?, address: String = "10.0.0.9", port: Int = 8080,
        _ method: String? = "GET", _ path: String? = "/api/x"
    ) -> AuthzDecision {
        authorizer.authorize(
            AuthzCaller(identity: identity, address: address), AuthzRequest(port: port, method: method, path: path))
    }

    func testRuleMatching() throws {
        let a = try InboundAuthorizer(policies: [webAllowClient], strict: false, probes: [])
        XCTAssertTrue(decide(a, client, "GET", "/api/users").allowed)
        XCTAssertEqual(decide(a, client, "GET", "/api/users").reason, .rule)
        XCTAssertTrue(decide(a, ops, "HEAD", "/healthz").allowed)
        XCTAssertTrue(decide(a, client, "GET", "/api/users?x=/y").allowed, "the query is not part of the path")
        XCTAssertFalse(
            decide(a, prometheus, "GET", "/healthz").allowed,
            "serviceAccounts demo/prometheus, and namespaces must match too")
        XCTAssertFalse(decide(a, intruder).allowed)
        XCTAssertEqual(decide(a, intruder).reason, .noRule)
        XCTAssertFalse(decide(a, nil).allowed, "a plaintext caller has no identity")
        XCTAssertFalse(decide(a, client, port: 9090).allowed)
        XCTAssertFalse(decide(a, client, "POST", "/api/x").allowed)
        XCTAssertFalse(decide(a, client, "GET", "/healthz/x").allowed)
        XCTAssertFalse(decide(a, client, nil, nil).allowed, "opaque TCP has no method")
    }

    func testNoPolicyAllowsAndIsOpen() {
        let a = InboundAuthorizer.open
        XCTAssertTrue(a.isOpen)
        XCTAssertEqual(decide(a, nil).reason, .noPolicy)
        XCTAssertEqual(a.admit(AuthzCaller(identity: nil, address: nil), port: 1).fixed?.reason, .noPolicy)
    }

    func testDenyWinsOverAllowWithoutOrder() throws {
        let deny = PolicyEntry(
            key: "demo/a-deny-admin", action: "DENY",
            rules: [PolicyRule(from: nil, to: [PolicyTarget(ports: nil, methods: nil, paths: ["/admin*"])])])
        let allowAll = PolicyEntry(key: "demo/z-allow", action: "ALLOW", rules: [PolicyRule(from: nil, to: nil)])
        for order in [[deny, allowAll], [allowAll, deny]] {
            let a = try InboundAuthorizer(policies: order, strict: false, probes: [])
            let denied = decide(a, client, "GET", "/admin/users")
            XCTAssertFalse(denied.allowed)
            XCTAssertEqual(denied.reason, .denyRule)
            XCTAssertEqual(a.policies[denied.policy!].key, "demo/a-deny-admin")
            XCTAssertTrue(decide(a, client, "GET", "/x").allowed)
        }
    }

    func testDenyPolicyAloneDoesNotDefaultDeny() throws {
        let deny = PolicyEntry(
            key: "demo/deny-intruder", action: "DENY",
            rules: [
                PolicyRule(from: [PolicyPeer(identities: [intruder], namespaces: nil, serviceAccounts: nil)], to: nil)
            ])
        let a = try InboundAuthorizer(policies: [deny], strict: false, probes: [])
        XCTAssertTrue(decide(a, client).allowed)
        XCTAssertEqual(decide(a, client).reason, .noPolicy)
        XCTAssertEqual(decide(a, intruder).reason, .denyRule)
        // A rule that needs only L4 decides the connection before any request.
        let admission = a.admit(AuthzCaller(identity: intruder, address: nil), port: 8080)
        XCTAssertEqual(admission.fixed?.reason, .denyRule)
    }

    func testAllowWithoutRulesDeniesEverything() throws {
        let a = try InboundAuthorizer(
            policies: [PolicyEntry(key: "demo/lockdown", action: "ALLOW", rules: [])], strict: false, probes: [])
        XCTAssertEqual(decide(a, client).reason, .noRule)
        XCTAssertEqual(a.admit(AuthzCaller(identity: client, address: nil), port: 8080).fixed?.reason, .noRule)
    }

    func testAdmissionLeavesOnlyL7RulesForRequests() throws {
        let a = try InboundAuthorizer(policies: [webAllowClient], strict: false, probes: [])
        XCTAssertNil(a.admit(AuthzCaller(identity: client, address: nil), port: 8080).fixed, "paths decide per request")
        XCTAssertEqual(
            a.admit(AuthzCaller(identity: client, address: nil), port: 9090).fixed?.reason, .noRule,
            "no rule can match port 9090: denied per connection")
        let l4 = PolicyEntry(
            key: "demo/l4", action: "ALLOW",
            rules: [
                PolicyRule(
                    from: [PolicyPeer(identities: ["*"], namespaces: nil, serviceAccounts: nil)],
                    to: [PolicyTarget(ports: [5432], methods: nil, paths: nil)])
            ])
        let b = try InboundAuthorizer(policies: [l4], strict: false, probes: [])
        XCTAssertEqual(b.admit(AuthzCaller(identity: client, address: nil), port: 5432).fixed?.reason, .rule)
        XCTAssertTrue(decide(b, client, port: 5432, nil, nil).allowed, "opaque TCP matches a rule without methods")
        XCTAssertFalse(decide(b, nil, port: 5432, nil, nil).allowed, "* is any mesh peer, not plaintext")
    }

    func testIPBlocks() throws {
        let p = PolicyEntry(
            key: "demo/nodes", action: "ALLOW",
            rules: [
                PolicyRule(
                    from: [
                        PolicyPeer(
                            identities: nil, namespaces: nil, serviceAccounts: nil,
                            ipBlocks: ["10.1.0.0/16", "fd00::/64"])
                    ], to: nil)
            ])
        let a = try InboundAuthorizer(policies: [p], strict: false, probes: [])
        XCTAssertTrue(decide(a, nil, address: "10.1.200.3").allowed)
        XCTAssertTrue(decide(a, nil, address: "::ffff:10.1.0.1").allowed, "IPv4-mapped")
        XCTAssertTrue(decide(a, nil, address: "fd00::17").allowed)
        XCTAssertFalse(decide(a, nil, address: "10.2.0.1").allowed)
        XCTAssertFalse(decide(a, nil, address: "fd00:0:0:1::1").allowed)
        let bad = PolicyEntry(
            key: "demo/bad", action: "ALLOW",
            rules: [
                PolicyRule(
                    from: [
                        PolicyPeer(identities: nil, namespaces: nil, serviceAccounts: nil, ipBlocks: ["10.0.0.0/33"])
                    ],
                    to: nil)
            ])
        XCTAssertThrowsError(try InboundAuthorizer(policies: [bad], strict: false, probes: [])) { error in
            XCTAssertEqual(
                "\(error)", "policies[demo/bad].rules[0].from[0].ipBlocks[0]: \"10.0.0.0/33\" is not a CIDR")
        }
    }

    func testStrictRefusesPlaintextButProbes() throws {
        let probes = [
            ProbeEntry(port: 8080, path: "/healthz", method: "GET"),
            ProbeEntry(port: 9000, path: ProbeEntry.grpcHealthPath, method: "POST"),
        ]
        let a = try InboundAuthorizer(policies: [], strict: true, probes: probes)
        XCTAssertFalse(a.isOpen)
        XCTAssertEqual(decide(a, nil, "GET", "/api").reason, .strict)
        XCTAssertEqual(decide(a, nil, "GET", "/healthz").reason, .probe)
        XCTAssertEqual(decide(a, nil, "HEAD", "/healthz?verbose=1").reason, .probe)
        XCTAssertEqual(decide(a, nil, "POST", "/healthz").reason, .strict, "only the probe's method")
        XCTAssertEqual(decide(a, nil, port: 9090, "GET", "/healthz").reason, .strict, "only the probe's port")
        XCTAssertEqual(decide(a, nil, port: 9000, "POST", ProbeEntry.grpcHealthPath).reason, .probe)
        XCTAssertEqual(decide(a, nil, nil, nil).reason, .strict, "TCP in plaintext")
        XCTAssertEqual(decide(a, client).reason, .noPolicy, "a mesh peer passes")
        XCTAssertEqual(a.admit(AuthzCaller(identity: nil, address: nil), port: 5432).fixed?.reason, .strict)
    }

    func testProbesPassDefaultDenyButNotDeny() throws {
        let probes = [ProbeEntry(port: 8080, path: "/healthz", method: "GET")]
        let a = try InboundAuthorizer(policies: [webAllowClient], strict: false, probes: probes)
        XCTAssertEqual(decide(a, nil, "GET", "/healthz").reason, .probe)
        XCTAssertEqual(decide(a, nil, "GET", "/api/x").reason, .noRule)
        let deny = PolicyEntry(
            key: "demo/no-plaintext", action: "DENY",
            rules: [
                PolicyRule(
                    from: [PolicyPeer(identities: nil, namespaces: nil, serviceAccounts: nil, ipBlocks: ["0.0.0.0/0"])],
                    to: nil)
            ])
        let b = try InboundAuthorizer(policies: [deny], strict: true, probes: probes)
        XCTAssertEqual(decide(b, nil, "GET", "/healthz").reason, .denyRule, "an explicit DENY wins over a probe")
    }

    func testExplanations() throws {
        let a = try InboundAuthorizer(policies: [webAllowClient], strict: false, probes: [])
        let caller = AuthzCaller(identity: intruder, address: "10.0.0.9")
        let request = AuthzRequest(port: 8080, method: "GET", path: "/api/x")
        XCTAssertEqual(
            a.explain(a.authorize(caller, request), caller: caller, request: request),
            "pod selected by demo/web-allow-client; no rule allows spiffe://cluster.local/ns/demo/sa/intruder to GET /api/x on port 8080 (demo/web-allow-client rules[0] allows only spiffe://cluster.local/ns/demo/sa/client, spiffe://cluster.local/ns/ops/* or namespaces monitoring and service accounts demo/prometheus)"
        )
        let wrongPath = AuthzRequest(port: 8080, method: "DELETE", path: "/api/x")
        let byClient = AuthzCaller(identity: client, address: "10.0.0.9")
        XCTAssertEqual(
            a.explain(a.authorize(byClient, wrongPath), caller: byClient, request: wrongPath),
            "pod selected by demo/web-allow-client; no rule allows spiffe://cluster.local/ns/demo/sa/client to DELETE /api/x on port 8080 (demo/web-allow-client rules[0] matches the caller but allows only GET|HEAD /api/*|/healthz on port 8080)"
        )
        let plain = AuthzCaller(identity: nil, address: "10.0.0.9")
        let strict = try InboundAuthorizer(policies: [], strict: true, probes: [])
        let tcp = AuthzRequest(port: 5432)
        XCTAssertEqual(
            strict.explain(strict.authorize(plain, tcp), caller: plain, request: tcp),
            "mTLS is STRICT: an unauthenticated caller (10.0.0.9, no mesh TLS) is refused; only meshed pods may call (probes the pod declares excepted)"
        )
        XCTAssertEqual(
            a.explain(a.authorize(byClient, request), caller: byClient, request: request),
            "allowed by demo/web-allow-client rules[0] for spiffe://cluster.local/ns/demo/sa/client")
    }

    func testPathsAreComparedAsTheAppResolvesThem() throws {
        for (target, want) in [
            ("/admin", "/admin"), ("http://web.demo/admin?x=1", "/admin"), ("HTTPS://h:8443", "/"),
            ("//admin", "/admin"), ("/./admin", "/admin"), ("/%61dmin", "/admin"), ("/public/../admin", "/admin"),
            ("/../../admin", "/admin"), ("/a/b/..", "/a/"), ("/a/.", "/a/"), ("/a//b/", "/a/b/"),
            ("/a%2fb", "/a%2Fb"), ("/a%zz", "/a%zz"), ("*", "*"), ("api/x", "/api/x"), ("/api#frag", "/api"),
        ] {
            XCTAssertEqual(AuthzPath.normalized(target), want, target)
        }
        let deny = PolicyEntry(
            key: "demo/no-admin", action: "DENY",
            rules: [PolicyRule(from: nil, to: [PolicyTarget(ports: nil, methods: nil, paths: ["/admin*"])])])
        let a = try InboundAuthorizer(policies: [deny], strict: false, probes: [])
        for target in ["http://x/admin", "//admin", "/./admin", "/%61dmin", "/public/../admin/users"] {
            XCTAssertEqual(decide(a, client, "GET", target).reason, .denyRule, target)
        }
        XCTAssertEqual(decide(a, client, "GET", "/administrator").reason, .denyRule, "a prefix is a prefix")
        XCTAssertEqual(decide(a, client, "GET", "/public/admin").reason, .noPolicy)
    }

    func testCIDRParsing() {
        XCTAssertEqual(CIDR(parsing: "10.1.2.3/8")?.description, "10.0.0.0/8")
        XCTAssertEqual(CIDR(parsing: "10.1.2.3")?.description, "10.1.2.3/32")
        XCTAssertEqual(CIDR(parsing: "fd00::1/64")?.description, "fd00::/64")
        for bad in ["10.0.0.0/", "10.0.0.0/-1", "10.0.0/8", "fd00::/129", "a/b", "", "10.0.0.0/8/8", "10.0.0.0/ 8"] {
            XCTAssertNil(CIDR(parsing: bad), bad)
        }
    }
}
