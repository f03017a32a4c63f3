import WeftCore
import WeftManifests
import XCTest

final class HTTPRouteDecodingTests: XCTestCase {
    private func route(_ yaml: String) -> HTTPRoute? {
        guard case .httpRoute(let r) = Fixtures.decodeClean(yaml).first else { return nil }
        return r
    }

    private func routeYAML(_ spec: String) -> String {
        """
        apiVersion: gateway.networking.k8s.io/v1
        kind: HTTPRoute
        metadata:
          name: r
          namespace: demo
        spec:
          parentRefs:
          - {group: "", kind: Service, name: web}

        """ + spec
    }

    func testKubectlOutputDecodes() throws {
        let r = try XCTUnwrap(route(Fixtures.route))
        XCTAssertEqual(r.metadata.name, "web-split")
        XCTAssertEqual(r.parentRefs, [.init(group: "", kind: "Service", name: "web", namespace: "demo", port: 80)])
        XCTAssertTrue(r.parentRefs[0].isService)
        XCTAssertEqual(r.rules.count, 2)
        let rule = r.rules[0]
        XCTAssertEqual(rule.matches.count, 1)
        XCTAssertEqual(rule.matches[0].path, .init(type: .pathPrefix, value: "/api"))
        XCTAssertEqual(rule.matches[0].headers, [.init(type: .exact, name: "x-canary", value: "true")])
        XCTAssertEqual(rule.matches[0].method, "GET")
        XCTAssertEqual(rule.backendRefs.map(\.name), ["web-v2", "web"])
        XCTAssertEqual(rule.backendRefs.map(\.weight), [90, 10])
        XCTAssertEqual(rule.backendRefs[1].kind, "Service")
        XCTAssertEqual(rule.backendRefs[1].group, "")
        XCTAssertEqual(rule.backendRefs[1].namespace, "demo")
        XCTAssertEqual(rule.timeouts, .init(request: .seconds(10), backendRequest: .seconds(2)))
        XCTAssertEqual(rule.retry, .init(codes: [502, 503], attempts: 3, backoff: .milliseconds(100)))
        XCTAssertEqual(r.rules[1].matches, [.matchAll], "a rule without matches matches PathPrefix /")
        XCTAssertEqual(r.rules[1].backendRefs[0].weight, 1, "weight defaults to 1")
    }

    func testRouteWithoutRulesGetsTheDefaultRule() throws {
        let r = try XCTUnwrap(route(routeYAML("")))
        XCTAssertEqual(
            r.rules, [HTTPRouteRule(name: nil, matches: [.matchAll], backendRefs: [], timeouts: nil, retry: nil)])
    }

    func testMatchDefaults() throws {
        let r = try XCTUnwrap(
            route(
                routeYAML(
                    """
                      rules:
                      - matches:
                        - headers: [{name: x-user, value: "1"}]
                          queryParams: [{type: RegularExpression, name: v, value: "^[0-9]+$"}]
                        - path: {type: Exact}
                        backendRefs: [{name: web, port: 80}]

                    """)))
        let matches = r.rules[0].matches
        XCTAssertEqual(matches[0].path, .init(type: .pathPrefix, value: "/"))
        XCTAssertEqual(matches[0].headers, [.init(type: .exact, name: "x-user", value: "1")])
        XCTAssertEqual(matches[0].queryParams, [.init(type: .regularExpression, name: "v", value: "^[0-9]+$")])
        XCTAssertNil(matches[0].method)
        XCTAssertEqual(matches[1].path, .init(type: .exact, value: "/"))
    }

    func testWeightBoundsWithTheExactMessage() {
        let yaml = routeYAML(
            """
              rules:
              - backendRefs:
                - {name: web, port: 80, weight: 1}
                - {name: web-v2, port: 80, weight: -1}
                - {name: web-v3, port: 80, weight: 1000001}

            """)
        let text = Fixtures.service + "\n---\n" + yaml
        XCTAssertEqual(
            Fixtures.errors(text, file: "mesh/routes.yaml"),
            [
                "mesh/routes.yaml: document 2: spec.rules[0].backendRefs[1].weight: must be ≥ 0",
                "mesh/routes.yaml: document 2: spec.rules[0].backendRefs[2].weight: must be ≤ 1000000",
            ])
    }

    func testValidationErrors() {
        let yaml = routeYAML(
            """
              hostnames: ["web.example.com", "*.example.com", "10.0.0.1", "Bad Host"]
              rules:
              - name: Primary
                matches:
                - path: {type: Prefix, value: /}
                - path: {type: PathPrefix, value: api}
                - path: {type: Exact, value: /a//b}
                - path: {type: RegularExpression, value: "/(unclosed"}
                  headers:
                  - {name: "bad header", value: x}
                  - {type: Fuzzy, name: x-a, value: y}
                  - {name: x-b}
                  method: FETCH
                backendRefs:
                - {name: web}
                - {port: 80}
                timeouts:
                  request: 1s
                  backendRequest: 2s
                retry:
                  codes: [200, 503]
                  attempts: -1
                  backoff: 1.5s
              - timeouts: {request: 10 s}

            """)
        XCTAssertEqual(
            Fixtures.errors(yaml, file: "r.yaml"),
            [
                "r.yaml: document 1: spec.hostnames[2]: must be a hostname (a DNS name, optionally starting with *.), got \"10.0.0.1\"",
                "r.yaml: document 1: spec.hostnames[3]: must be a hostname (a DNS name, optionally starting with *.), got \"Bad Host\"",
                "r.yaml: document 1: spec.rules[0].name: must be a lowercase RFC 1123 label (a-z, 0-9 and '-', at most 63 characters), got \"Primary\"",
                "r.yaml: document 1: spec.rules[0].matches[0].path.type: must be one of Exact, PathPrefix, RegularExpression, got \"Prefix\"",
                "r.yaml: document 1: spec.rules[0].matches[1].path.value: must be an absolute path starting with /, got \"api\"",
                "r.yaml: document 1: spec.rules[0].matches[2].path.value: must not contain \"//\", got \"/a//b\"",
                "r.yaml: document 1: spec.rules[0].matches[3].path.value: must be a valid regular expression, got \"/(unclosed\"",
                "r.yaml: document 1: spec.rules[0].matches[3].headers[0].name: must be an HTTP header name, got \"bad header\"",
                "r.yaml: document 1: spec.rules[0].matches[3].headers[1].type: must be one of Exact, RegularExpression, got \"Fuzzy\"",
                "r.yaml: document 1: spec.rules[0].matches[3].headers[2].value: is required",
                "r.yaml: document 1: spec.rules[0].matches[3].method: must be one of GET, HEAD, POST, PUT, DELETE, CONNECT, OPTIONS, TRACE, PATCH, got \"FETCH\"",
                "r.yaml: document 1: spec.rules[0].backendRefs[0].port: is required for a Service backend",
                "r.yaml: document 1: spec.rules[0].backendRefs[1].name: is required",
                "r.yaml: document 1: spec.rules[0].timeouts.backendRequest: must not be longer than request (1s)",
                "r.yaml: document 1: spec.rules[0].retry.codes[0]: must be an HTTP status between 400 and 599, got 200",
                "r.yaml: document 1: spec.rules[0].retry.attempts: must be ≥ 0, got -1",
                "r.yaml: document 1: spec.rules[0].retry.backoff: must be a duration such as 10s, 1h30m or 500ms (1 to 4 parts of up to 5 digits with h, m, s or ms), got \"1.5s\"",
                "r.yaml: document 1: spec.rules[1].timeouts.request: must be a duration such as 10s, 1h30m or 500ms (1 to 4 parts of up to 5 digits with h, m, s or ms), got \"10 s\"",
            ])
    }

    func testZeroRequestTimeoutAllowsAnyBackendTimeout() throws {
        let r = try XCTUnwrap(route(routeYAML("  rules:\n  - timeouts: {request: 0s, backendRequest: 1h30m}\n")))
        XCTAssertEqual(r.rules[0].timeouts, .init(request: .zero, backendRequest: .seconds(5400)))
    }

    func testGatewayParentIsDecodedButWarned() throws {
        let yaml = """
            apiVersion: gateway.networking.k8s.io/v1
            kind: HTTPRoute
            metadata: {name: ingress, namespace: demo}
            spec:
              parentRefs:
              - name: public
                namespace: infra
              rules:
              - backendRefs: [{name: web, port: 80}]
            """
        let result = ManifestDecoder.decode(yaml, file: "g.yaml")
        XCTAssertEqual(result.errors, [])
        guard case .httpRoute(let r) = result.resources.first else { return XCTFail() }
        XCTAssertEqual(
            r.parentRefs,
            [.init(group: "gateway.networking.k8s.io", kind: "Gateway", name: "public", namespace: "infra", port: nil)])
        XCTAssertFalse(r.parentRefs[0].isService)
        XCTAssertEqual(
            result.warnings.map(\.description),
            [
                "g.yaml: document 1: spec.parentRefs[0]: parent infra/public is a Gateway; Weft only acts on Service parents (GAMMA), so this parent is ignored for the mesh",
                "g.yaml: document 1: spec.parentRefs: names no Service; the route is ignored for the mesh",
            ])
    }

    func testNonServiceBackendsAreWarnings() {
        let yaml = routeYAML(
            """
              rules:
              - backendRefs:
                - {group: example.com, kind: Bucket, name: b}

            """)
        let result = ManifestDecoder.decode(yaml, file: "f.yaml")
        XCTAssertEqual(result.errors, [])
        XCTAssertEqual(
            result.warnings.map(\.description),
            [
                "f.yaml: document 1: spec.rules[0].backendRefs[0]: only Service backends are supported; example.com/Bucket gets no traffic"
            ])
    }

    func testFiltersDecode() throws {
        let r = try XCTUnwrap(
            route(
                routeYAML(
                    """
                      rules:
                      - matches: [{path: {type: PathPrefix, value: /old}}]
                        filters:
                        - type: RequestHeaderModifier
                          requestHeaderModifier:
                            set: [{name: x-set, value: "1"}]
                            add: [{name: x-add, value: "2"}]
                            remove: [x-gone]
                        - type: ResponseHeaderModifier
                          responseHeaderModifier: {add: [{name: x-mesh, value: weft}]}
                        - type: URLRewrite
                          urlRewrite: {hostname: new.example, path: {type: ReplacePrefixMatch, replacePrefixMatch: /new}}
                        backendRefs:
                        - name: web
                          port: 80
                          filters:
                          - type: RequestHeaderModifier
                            requestHeaderModifier: {set: [{name: x-backend, value: web}]}
                      - filters:
                        - type: RequestRedirect
                          requestRedirect: {scheme: https, statusCode: 301, path: {type: ReplaceFullPath, replaceFullPath: /x}}

                    """)))
        XCTAssertEqual(
            r.rules[0].filters,
            [
                .requestHeaderModifier(
                    .init(
                        set: [.init(name: "x-set", value: "1")], add: [.init(name: "x-add", value: "2")],
                        remove: ["x-gone"])),
                .responseHeaderModifier(.init(set: [], add: [.init(name: "x-mesh", value: "weft")], remove: [])),
                .urlRewrite(.init(hostname: "new.example", path: .replacePrefixMatch("/new"))),
            ])
        XCTAssertEqual(
            r.rules[0].backendRefs[0].filters,
            [.requestHeaderModifier(.init(set: [.init(name: "x-backend", value: "web")], add: [], remove: []))])
        XCTAssertEqual(
            r.rules[1].filters,
            [
                .requestRedirect(
                    .init(scheme: "https", hostname: nil, path: .replaceFullPath("/x"), port: nil, statusCode: 301))
            ])
    }

    func testFilterMistakesAreErrorsNamingTheField() {
        let both = routeYAML(
            """
              rules:
              - filters:
                - {type: RequestRedirect, requestRedirect: {hostname: a}}
                - {type: URLRewrite, urlRewrite: {hostname: b}}

            """)
        XCTAssertEqual(
            Fixtures.errors(both),
            ["test.yaml: document 1: spec.rules[0].filters: RequestRedirect and URLRewrite cannot both be set"])
        let prefixOnExact = routeYAML(
            """
              rules:
              - matches: [{path: {type: Exact, value: /a}}]
                filters:
                - {type: URLRewrite, urlRewrite: {path: {type: ReplacePrefixMatch, replacePrefixMatch: /b}}}

            """)
        XCTAssertEqual(Fixtures.errors(prefixOnExact).count, 1)
        XCTAssertTrue(
            Fixtures.errors(prefixOnExact)[0].contains("ReplacePrefixMatch needs every match"),
            "\(Fixtures.errors(prefixOnExact))")
        let badStatus = routeYAML(
            """
              rules:
              - filters:
                - {type: RequestRedirect, requestRedirect: {statusCode: 200}}

            """)
        XCTAssertEqual(
            Fixtures.errors(badStatus),
            [
                "test.yaml: document 1: spec.rules[0].filters[0].requestRedirect.statusCode: must be 301, 302, 303, 307 or 308, got 200"
            ])
    }

    func testRequestMirrorDecodesItsShare() throws {
        let r = try XCTUnwrap(
            route(
                routeYAML(
                    """
                      rules:
                      - filters:
                        - {type: RequestMirror, requestMirror: {backendRef: {name: shadow, port: 8080}}}
                        - {type: RequestMirror, requestMirror: {backendRef: {name: shadow, namespace: other, port: 80}, percent: 25}}
                        - type: RequestMirror
                          requestMirror: {backendRef: {name: shadow, port: 80}, fraction: {numerator: 1, denominator: 3}}

                    """)))
        XCTAssertEqual(
            r.rules[0].filters,
            [
                .requestMirror(.init(service: .init(namespace: "demo", name: "shadow"), port: 8080, percent: 100)),
                .requestMirror(.init(service: .init(namespace: "other", name: "shadow"), port: 80, percent: 25)),
                .requestMirror(.init(service: .init(namespace: "demo", name: "shadow"), port: 80, percent: 33)),
            ])
    }

    /// The yaml fuzzer's find: `numerator * 100` trapped on a numerator near Int.max.
    func testRequestMirrorShareOutOfRangeIsAnErrorNotATrap() {
        func mirror(_ share: String) -> [String] {
            Fixtures.errors(
                routeYAML(
                    """
                      rules:
                      - filters:
                        - {type: RequestMirror, requestMirror: {backendRef: {name: shadow, port: 80}, \(share)}}

                    """))
        }
        XCTAssertEqual(
            mirror("fraction: {numerator: 999999999999999999, denominator: 1}"),
            [
                "test.yaml: document 1: spec.rules[0].filters[0].requestMirror.fraction: needs 0 ≤ numerator ≤ denominator and denominator > 0, got 999999999999999999/1"
            ])
        XCTAssertEqual(mirror("fraction: {numerator: 1, denominator: 0}").count, 1)
        XCTAssertEqual(mirror("fraction: {numerator: -1}").count, 1)
        XCTAssertEqual(mirror("fraction: {denominator: 10}").count, 1)
        XCTAssertEqual(
            mirror("percent: 101"),
            ["test.yaml: document 1: spec.rules[0].filters[0].requestMirror.percent: must be 0-100, got 101"])
        XCTAssertEqual(mirror("percent: 5, fraction: {numerator: 1}").count, 1)
    }

    func testV1beta1IsAccepted() {
        let yaml = routeYAML("").replacingOccurrences(of: "/v1\n", with: "/v1beta1\n")
        XCTAssertEqual(Fixtures.decodeClean(yaml).map(\.kind), ["HTTPRoute"])
    }
}

extension HTTPRouteDecodingTests {
    func testGRPCRouteMethodMatchesBecomePathMatches() throws {
        let yaml = """
            apiVersion: gateway.networking.k8s.io/v1
            kind: GRPCRoute
            metadata:
              name: g
              namespace: demo
              annotations: {retry.weft.dev/grpc: "unavailable, 8", retry.weft.dev/attempts: "2", other/x: y}
            spec:
              parentRefs: [{group: "", kind: Service, name: echo}]
              rules:
              - matches:
                - method: {service: pkg.Echo, method: Say}
                - method: {service: pkg.Echo}
                - method: {method: Say}
                - method: {type: RegularExpression, service: "pkg\\\\..*"}
                  headers: [{name: x-v, value: "2"}]
                backendRefs: [{name: echo-v2, port: 7070}]
            """
        guard case .httpRoute(let r)? = Fixtures.decodeClean(yaml).first else { return XCTFail("not decoded") }
        XCTAssertTrue(r.isGRPC)
        XCTAssertEqual(
            r.metadata.annotations, ["retry.weft.dev/grpc": "unavailable, 8", "retry.weft.dev/attempts": "2"])
        XCTAssertEqual(
            r.rules[0].matches.map(\.path),
            [
                .init(type: .exact, value: "/pkg.Echo/Say"), .init(type: .pathPrefix, value: "/pkg.Echo"),
                .init(type: .regularExpression, value: "/[^/]+/Say"),
                .init(type: .regularExpression, value: "/pkg\\..*/[^/]+"),
            ])
        XCTAssertEqual(r.rules[0].matches[3].headers, [.init(type: .exact, name: "x-v", value: "2")])
        XCTAssertEqual(r.rules[0].retry, .init(codes: [], attempts: 2, backoff: nil, grpcCodes: [14, 8]))
    }
}

extension HTTPRouteDecodingTests {
    func testBadGRPCRetryAnnotationsAreErrorsNamingTheAnnotation() {
        let yaml = """
            apiVersion: gateway.networking.k8s.io/v1
            kind: GRPCRoute
            metadata:
              name: g
              namespace: demo
              annotations: {retry.weft.dev/grpc: "unavailable, sometimes", retry.weft.dev/attempts: "-1"}
            spec:
              parentRefs: [{group: "", kind: Service, name: echo}]
              rules: [{backendRefs: [{name: echo, port: 7070}]}]
            """
        let errors = Fixtures.errors(yaml)
        XCTAssertEqual(errors.count, 2, "\(errors)")
        XCTAssertTrue(
            errors.contains { $0.contains("metadata.annotations[retry.weft.dev/grpc]") && $0.contains("sometimes") },
            "\(errors)")
        XCTAssertTrue(errors.contains { $0.contains("metadata.annotations[retry.weft.dev/attempts]") }, "\(errors)")
    }
}
