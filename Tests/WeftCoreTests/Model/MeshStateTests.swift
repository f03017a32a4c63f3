import WeftCore
import WeftManifests
import XCTest

final class MeshStateTests: XCTestCase {
    private func build(_ files: [(String, String)]) throws(ConfigValidationFailure) -> MeshState {
        try MeshState.build(from: files.map { (file: $0.0, result: ManifestDecoder.decode($0.1, file: $0.0)) })
    }

    private func failure(_ files: [(String, String)]) -> [String] {
        do {
            _ = try build(files)
            XCTFail("expected a failure")
            return []
        } catch {
            return error.errors.map(\.description)
        }
    }

    private static let demo: [(String, String)] = [
        ("services.yaml", Fixtures.service + "\n---\n" + Fixtures.endpointSliceList),
        ("pods.yaml", Fixtures.pod),
        ("routes.yaml", Fixtures.route),
        ("policy.yaml", Fixtures.policy),
    ]

    private let web = ServiceName(namespace: "demo", name: "web")

    func testEmptyStateHasDefaults() throws {
        let state = try build([])
        XCTAssertEqual(state.meshConfig, .default)
        XCTAssertEqual(state.services, [])
        XCTAssertEqual(state, MeshState.empty)
    }

    func testServiceIndexAndLookups() throws {
        let state = try build(Self.demo)
        XCTAssertEqual(state.serviceIndex.count, 1)
        let entry = state.serviceIndex[0]
        XCTAssertEqual(entry.service, web)
        XCTAssertEqual(entry.clusterIPs, ["10.96.0.10"])
        XCTAssertEqual(entry.ports.map(\.port), [80, 9090])
        XCTAssertEqual(entry.dnsNames, ["web.demo.svc.cluster.local", "web.demo.svc", "web.demo"])
        XCTAssertEqual(state.service(namespace: "demo", name: "web")?.name, web)
        XCTAssertEqual(state.service(clusterIP: "10.96.0.10", port: 9090)?.name, web)
        XCTAssertNil(state.service(clusterIP: "10.96.0.10", port: 81))
        XCTAssertEqual(state.service(host: "WEB.demo.svc.cluster.local")?.name, web)
        XCTAssertNil(state.service(host: "web"))
        XCTAssertEqual(state.pod(namespace: "demo", name: "web-0")?.serviceAccountName, "web")
        XCTAssertNil(state.pod(namespace: "other", name: "web-0"))
    }

    func testClusterDomainComesFromMeshConfig() throws {
        let mesh =
            "apiVersion: weft.dev/v1alpha1\nkind: MeshConfig\nmetadata: {name: m}\nspec: {clusterDomain: corp.internal}\n"
        let state = try build([("s.yaml", Fixtures.service), ("m.yaml", mesh)])
        XCTAssertEqual(state.serviceIndex[0].dnsNames[0], "web.demo.svc.corp.internal")
        XCTAssertEqual(state.meshConfig.clusterDomain, "corp.internal")
    }

    func testEndpointsCarryTheirPodIdentity() throws {
        let mesh =
            "apiVersion: weft.dev/v1alpha1\nkind: MeshConfig\nmetadata: {name: m}\nspec: {trustDomain: example.org}\n"
        let state = try build(Self.demo + [("mesh.yaml", mesh)])
        let endpoints = state.endpoints(for: web)
        XCTAssertEqual(endpoints.map(\.address), ["10.211.0.2", "10.211.0.3", "10.211.0.4"])
        XCTAssertEqual(endpoints[0].identity?.description, "spiffe://example.org/ns/demo/sa/web")
        XCTAssertNil(endpoints[1].identity, "Pod web-1 is not known")
        XCTAssertEqual(endpoints.map(\.ready), [true, false, true])
        XCTAssertEqual(endpoints.map(\.terminating), [false, true, false])
        XCTAssertEqual(endpoints[0].ports.map(\.port), [8080])
        XCTAssertEqual(endpoints[0].zone, "zone-a")
        XCTAssertEqual(endpoints[0].sliceName, "web-7x2kq")
        XCTAssertEqual(state.endpoints(for: ServiceName(namespace: "demo", name: "nope")), [])
    }

    func testEndpointsMergeAcrossSlices() throws {
        func slice(_ name: String, _ entries: String) -> String {
            """
            apiVersion: discovery.k8s.io/v1
            kind: EndpointSlice
            metadata:
              name: \(name)
              namespace: demo
              labels: {kubernetes.io/service-name: web}
            addressType: IPv4
            ports: [{name: http, port: 8080}]
            endpoints:
            \(entries)
            """
        }
        let a = slice("web-a", "- addresses: [10.0.0.2]\n  conditions: {ready: false}\n- addresses: [10.0.0.1]")
        let b = slice("web-b", "- addresses: [10.0.0.2]\n- addresses: [10.0.0.3]")
        let state = try build([("s.yaml", Fixtures.service), ("a.yaml", a), ("b.yaml", b)])
        let endpoints = state.endpoints(for: web)
        XCTAssertEqual(endpoints.map(\.address), ["10.0.0.1", "10.0.0.2", "10.0.0.3"])
        XCTAssertEqual(endpoints[1].ready, true, "a duplicate address keeps the ready entry")
        XCTAssertEqual(endpoints[1].sliceName, "web-b")
    }

    func testDuplicateResourceAcrossFilesNamesBoth() {
        let again = Fixtures.service.replacingOccurrences(of: "10.96.0.10", with: "10.96.0.11")
        XCTAssertEqual(
            failure([("a/services.yaml", Fixtures.service), ("b/more.yaml", "---\n" + again)]),
            [
                "b/more.yaml: document 1: metadata.name: Service demo/web is already defined in a/services.yaml document 1"
            ])
    }

    func testDuplicateWithinOneFile() {
        let yaml =
            "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: p}\n"
        XCTAssertEqual(
            failure([("pods.yaml", yaml)]),
            ["pods.yaml: document 2: metadata.name: Pod default/p is already defined in pods.yaml document 1"])
    }

    func testSameNameInOtherNamespaceOrKindIsFine() throws {
        let other = Fixtures.service.replacingOccurrences(of: "namespace: demo", with: "namespace: prod")
        let route =
            "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: web, namespace: demo}\nspec: {parentRefs: [{kind: Service, group: '', name: web}]}\n"
        XCTAssertEqual(
            try build([("a.yaml", Fixtures.service), ("b.yaml", other), ("c.yaml", route)]).services.count, 2)
    }

    func testTwoMeshConfigsAreAnError() {
        let one = "apiVersion: weft.dev/v1alpha1\nkind: MeshConfig\nmetadata: {name: mesh}\n"
        let two = "apiVersion: weft.dev/v1alpha1\nkind: MeshConfig\nmetadata: {name: other}\n"
        let errors = failure([("mesh.yaml", one), ("extra/mesh.yaml", two)])
        XCTAssertEqual(
            errors,
            [
                "extra/mesh.yaml: document 1: metadata.name: only one MeshConfig is allowed; other repeats mesh from mesh.yaml document 1"
            ])
    }

    func testDecodeErrorsOfEveryFileAreReported() {
        let bad1 = "apiVersion: v1\nkind: Service\nmetadata: {name: a}\nspec: {ports: [{port: 0}]}\n"
        let bad2 = "apiVersion: v1\nkind: Pod\nmetadata: {name: B}\n"
        XCTAssertEqual(
            failure([("one.yaml", bad1), ("two.yaml", bad2)]),
            [
                "one.yaml: document 1: spec.ports[0].port: must be between 1 and 65535, got 0",
                "two.yaml: document 1: metadata.name: must be a lowercase RFC 1123 subdomain (a-z, 0-9, '-' and '.', at most 253 characters), got \"B\"",
            ])
    }

    func testMissingBackendServiceIsAWarning() throws {
        let state = try build(Self.demo)
        XCTAssertEqual(
            state.warnings.map(\.description),
            [
                "routes.yaml: document 1: spec.rules[0].backendRefs[0]: Service demo/web-v2 does not exist; this backend gets no traffic"
            ])
        XCTAssertEqual(state.warnings.map(\.code), [.unresolvedReference])
    }

    func testMissingParentAndSliceServiceAreWarnings() throws {
        let route = """
            apiVersion: gateway.networking.k8s.io/v1
            kind: HTTPRoute
            metadata: {name: r, namespace: demo}
            spec:
              parentRefs: [{group: "", kind: Service, name: ghost}]
              rules: [{backendRefs: [{name: web, port: 81}]}]
            """
        let state = try build([
            ("s.yaml", Fixtures.service), ("r.yaml", route),
            (
                "e.yaml",
                Fixtures.endpointSliceList.replacingOccurrences(of: "service-name: web", with: "service-name: gone")
            ),
        ])
        XCTAssertEqual(
            state.warnings.map(\.description),
            [
                "r.yaml: document 1: spec.parentRefs[0]: Service demo/ghost does not exist",
                "r.yaml: document 1: spec.rules[0].backendRefs[0].port: Service demo/web has no port 81; this backend gets no traffic",
                "e.yaml: document 1: metadata.labels[kubernetes.io/service-name]: Service demo/gone does not exist",
            ])
        XCTAssertEqual(state.routes(for: ServiceName(namespace: "demo", name: "ghost")), [])
    }

    func testRoutesForServiceAndPort() throws {
        let state = try build(Self.demo)
        XCTAssertEqual(state.routes(for: web).map(\.metadata.name), ["web-split"])
        XCTAssertEqual(state.routes(for: web, port: 80).map(\.metadata.name), ["web-split"])
        XCTAssertEqual(state.routes(for: web, port: 9090), [], "the route is attached to port 80 only")
    }

    func testGatewayOnlyRouteIsIgnoredForTheMesh() throws {
        let route = """
            apiVersion: gateway.networking.k8s.io/v1
            kind: HTTPRoute
            metadata: {name: ingress, namespace: demo}
            spec:
              parentRefs: [{name: public}]
              rules: [{backendRefs: [{name: web, port: 80}]}]
            """
        let state = try build([("s.yaml", Fixtures.service), ("r.yaml", route)])
        XCTAssertEqual(state.httpRoutes.count, 1)
        XCTAssertEqual(state.routes(for: web), [])
    }

    func testRouteOrderIsOldestThenName() throws {
        func route(_ name: String, _ created: String?) -> String {
            let ts = created.map { "\n  creationTimestamp: \"\($0)\"" } ?? ""
            return """
                apiVersion: gateway.networking.k8s.io/v1
                kind: HTTPRoute
                metadata:
                  name: \(name)
                  namespace: demo\(ts)
                spec:
                  parentRefs: [{group: "", kind: Service, name: web}]
                """
        }
        let state = try build([
            ("s.yaml", Fixtures.service),
            (
                "r.yaml",
                [
                    route("b", nil), route("a", nil), route("new", "2024-06-01T00:00:00Z"),
                    route("old", "2023-01-01T00:00:00Z"),
                ].joined(separator: "\n---\n")
            ),
        ])
        XCTAssertEqual(state.routes(for: web).map(\.metadata.name), ["old", "new", "a", "b"])
    }

    func testRouteMatchPrecedence() throws {
        let route = """
            apiVersion: gateway.networking.k8s.io/v1
            kind: HTTPRoute
            metadata: {name: r, namespace: demo}
            spec:
              parentRefs: [{group: "", kind: Service, name: web}]
              rules:
              - name: catch-all
                backendRefs: [{name: web, port: 80}]
              - name: regex
                matches: [{path: {type: RegularExpression, value: "/v[0-9]+/.*"}}]
              - name: prefix-api
                matches:
                - path: {value: /api}
                - path: {value: /api}
                  method: POST
                - path: {value: /api}
                  headers: [{name: a, value: "1"}, {name: b, value: "2"}]
                - path: {value: /api}
                  headers: [{name: a, value: "1"}]
                  queryParams: [{name: q, value: "1"}]
              - name: prefix-api-users
                matches: [{path: {value: /api/users}}]
              - name: exact
                matches: [{path: {type: Exact, value: /api}}]
            ---
            apiVersion: gateway.networking.k8s.io/v1
            kind: HTTPRoute
            metadata: {name: s, namespace: demo}
            spec:
              parentRefs: [{group: "", kind: Service, name: web}]
              rules:
              - name: other-exact
                matches: [{path: {type: Exact, value: /api}}]
            """
        let state = try build([("s.yaml", Fixtures.service), ("r.yaml", route)])
        let order = state.routeMatches(for: web).map { c -> String in
            "\(c.route.metadata.name)/\(c.rule.name ?? "")/\(c.match.method ?? "")\(c.match.headers.count)\(c.match.queryParams.count)"
        }
        XCTAssertEqual(
            order,
            [
                "r/exact/00", "s/other-exact/00", "r/prefix-api-users/00", "r/prefix-api/POST00", "r/prefix-api/20",
                "r/prefix-api/11", "r/prefix-api/00", "r/catch-all/00", "r/regex/00",
            ])
    }

    func testPoliciesSelectingPod() throws {
        let policies = """
            apiVersion: weft.dev/v1alpha1
            kind: AuthorizationPolicy
            metadata: {name: all-in-demo, namespace: demo}
            spec: {action: DENY, rules: [{from: [{namespaces: [evil]}]}]}
            ---
            apiVersion: weft.dev/v1alpha1
            kind: AuthorizationPolicy
            metadata: {name: other-app, namespace: demo}
            spec: {selector: {matchLabels: {app: db}}}
            ---
            apiVersion: weft.dev/v1alpha1
            kind: AuthorizationPolicy
            metadata: {name: other-namespace, namespace: prod}
            spec: {selector: {matchLabels: {app: web}}}
            """
        let state = try build(Self.demo + [("more.yaml", policies)])
        let pod = try XCTUnwrap(state.pod(namespace: "demo", name: "web-0"))
        XCTAssertEqual(
            state.policies(selecting: pod).map(\.metadata.name), ["all-in-demo", "web-allow-client"])
    }

    func testEqualityIgnoresFileNamesAndWarnings() throws {
        let a = try build(Self.demo)
        let b = try build(
            Self.demo.map { ("renamed/" + $0.0, $0.1) } + [
                ("x.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n")
            ])
        XCTAssertEqual(a, b)
        XCTAssertNotEqual(a.warnings, b.warnings)
        let c = try build([Self.demo[0]])
        XCTAssertNotEqual(a, c)
    }
}
