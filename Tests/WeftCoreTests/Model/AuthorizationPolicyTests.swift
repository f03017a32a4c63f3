import WeftCore
import XCTest

final class AuthorizationPolicyTests: XCTestCase {
    private func policy(_ yaml: String) -> AuthorizationPolicy? {
        guard case .authorizationPolicy(let p) = Fixtures.decodeClean(yaml).first else { return nil }
        return p
    }

    private func policyYAML(_ spec: String) -> String {
        "apiVersion: weft.dev/v1alpha1\nkind: AuthorizationPolicy\nmetadata:\n  name: p\n  namespace: demo\nspec:\n"
            + spec
    }

    func testDecodes() throws {
        let p = try XCTUnwrap(policy(Fixtures.policy))
        XCTAssertEqual(p.selector.matchLabels, ["app": "web"])
        XCTAssertEqual(p.action, .allow)
        XCTAssertEqual(p.rules.count, 1)
        XCTAssertEqual(p.rules[0].from.count, 2)
        XCTAssertEqual(
            p.rules[0].from[0].identities,
            ["spiffe://cluster.local/ns/demo/sa/client", "spiffe://cluster.local/ns/ops/*"])
        XCTAssertEqual(p.rules[0].from[1].namespaces, ["monitoring"])
        XCTAssertEqual(
            p.rules[0].from[1].serviceAccounts, ["demo/prometheus"], "a bare name is in the policy's namespace")
        XCTAssertEqual(p.rules[0].to, [.init(ports: [8080], methods: ["GET", "HEAD"], paths: ["/api/*", "/healthz"])])
    }

    func testDefaults() throws {
        let p = try XCTUnwrap(policy(policyYAML("  rules: [{}]\n")))
        XCTAssertEqual(p.selector, .everything)
        XCTAssertEqual(p.action, .allow)
        XCTAssertEqual(p.rules, [.init(from: [], to: [])])
    }

    func testWildcardIdentityAndIPBlocksDecode() throws {
        let p = try XCTUnwrap(
            policy(
                policyYAML(
                    "  action: DENY\n  rules:\n  - from: [{identities: ['*']}, {ipBlocks: [10.0.0.0/8, 'fd00::1']}]\n"))
        )
        XCTAssertEqual(p.action, .deny)
        XCTAssertEqual(p.rules[0].from[0].identities, ["*"])
        XCTAssertEqual(p.rules[0].from[1].ipBlocks.map(\.description), ["10.0.0.0/8", "fd00::1/128"])
    }

    func testMatchExpressions() throws {
        let p = try XCTUnwrap(
            policy(
                policyYAML(
                    """
                      selector:
                        matchLabels: {tier: backend}
                        matchExpressions:
                        - {key: app, operator: In, values: [web, api]}
                        - {key: canary, operator: DoesNotExist}

                    """)))
        XCTAssertTrue(p.selector.matches(["tier": "backend", "app": "web"]))
        XCTAssertFalse(p.selector.matches(["tier": "backend", "app": "db"]))
        XCTAssertFalse(p.selector.matches(["tier": "backend", "app": "web", "canary": "1"]))
        XCTAssertFalse(p.selector.matches(["app": "web"]))
    }

    func testValidationErrors() {
        let yaml = policyYAML(
            """
              selector:
                matchLabels: {"app!": web}
                matchExpressions:
                - {key: app, operator: In}
                - {key: app, operator: Exists, values: [x]}
                - {key: app, operator: Near, values: [x]}
              action: AUDIT
              rules:
              - from:
                - identities: ["spiffe://cluster.local/ns/demo", "web", "spiffe://*/ns/x"]
                  ipBlocks: [10.0.0.0/33]
                - namespaces: [Demo]
                  serviceAccounts: ["a/b/c"]
                - {}
                to:
                - ports: [0]
                  methods: [get]
                  paths: [api]
                - {}

            """)
        XCTAssertEqual(
            Fixtures.errors(yaml, file: "pol.yaml"),
            [
                "pol.yaml: document 1: spec.selector.matchLabels[app!]: label key must be an optional DNS prefix and '/' then at most 63 of a-z, A-Z, 0-9, '-', '_', '.'",
                "pol.yaml: document 1: spec.selector.matchExpressions[0].values: must not be empty for In",
                "pol.yaml: document 1: spec.selector.matchExpressions[1].values: must be empty for Exists",
                "pol.yaml: document 1: spec.selector.matchExpressions[2].operator: must be one of In, NotIn, Exists, DoesNotExist, got \"Near\"",
                "pol.yaml: document 1: spec.action: must be one of ALLOW, DENY, got \"AUDIT\"",
                "pol.yaml: document 1: spec.rules[0].from[0].identities[0]: must be a SPIFFE ID (spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>), optionally ending in *, got \"spiffe://cluster.local/ns/demo\"",
                "pol.yaml: document 1: spec.rules[0].from[0].identities[1]: must be a SPIFFE ID (spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>), optionally ending in *, got \"web\"",
                "pol.yaml: document 1: spec.rules[0].from[0].identities[2]: must be a SPIFFE ID (spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>), optionally ending in *, got \"spiffe://*/ns/x\"",
                "pol.yaml: document 1: spec.rules[0].from[0].ipBlocks[0]: must be a CIDR such as 10.0.0.0/8 or fd00::/64, or an IP address, got \"10.0.0.0/33\"",
                "pol.yaml: document 1: spec.rules[0].from[1].namespaces[0]: must be a lowercase RFC 1123 label (a-z, 0-9 and '-', at most 63 characters), got \"Demo\"",
                "pol.yaml: document 1: spec.rules[0].from[1].serviceAccounts[0]: must be a service account name or namespace/name, got \"a/b/c\"",
                "pol.yaml: document 1: spec.rules[0].from[2]: must name at least one of identities, namespaces, serviceAccounts, ipBlocks (leave out from to match any source)",
                "pol.yaml: document 1: spec.rules[0].to[0].ports[0]: must be between 1 and 65535, got 0",
                "pol.yaml: document 1: spec.rules[0].to[0].methods[0]: must be an upper-case HTTP method such as GET, got \"get\"",
                "pol.yaml: document 1: spec.rules[0].to[0].paths[0]: must be an absolute path, optionally ending in * (prefix), or *, got \"api\"",
                "pol.yaml: document 1: spec.rules[0].to[1]: must name at least one of ports, methods, paths (leave out to to match any)",
            ])
    }

    func testSpecIsRequired() {
        XCTAssertEqual(
            Fixtures.errors(
                "apiVersion: weft.dev/v1alpha1\nkind: AuthorizationPolicy\nmetadata: {name: p}\n", file: "p.yaml"),
            ["p.yaml: document 1: spec: is required"])
    }
}
