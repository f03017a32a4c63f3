import WeftProtocol
import XCTest

@testable import WeftProxy

final class RouteExplainerTests: XCTestCase {
    typealias F = MeshFixture

    private func push(_ mesh: MeshFixture) -> ConfigPush {
        let c = mesh.config
        return ConfigPush(
            version: 1, nonce: "n", generation: 1,
            snapshot: ConfigSet(
                mesh: c.mesh, services: Array(c.services.values), policies: [], routes: Array(c.routes.values),
                endpoints: Array(c.endpoints.values)))
    }

    func testExplainsTheRuleTakenAndWhyTheOthersWereNot() throws {
        var mesh = F()
        mesh.service(
            "demo/web", clusterIP: "10.97.0.1", endpoints: ["10.230.0.1"],
            routes: [
                F.route(
                    "demo/r",
                    [
                        F.rule(
                            [
                                F.path(
                                    "PathPrefix", "/api",
                                    headers: [ValueMatchEntry(type: "Exact", name: "x-canary", value: "yes")])
                            ],
                            [("demo/v2", 1)], name: "canary"),
                        F.rule([F.path("PathPrefix", "/api")], [("demo/web", 9), ("demo/v2", 1)], name: "api"),
                    ])
            ])
        mesh.service("demo/v2", clusterIP: "10.97.0.2", endpoints: [])
        let text = try RouteExplainer.explain(
            config: push(mesh), namespace: "demo", method: "GET", url: "http://10.97.0.1/api/x", headers: [])
        XCTAssertTrue(text.contains("service    demo/web port 80"), text)
        XCTAssertTrue(
            text.contains("1. demo/r rule canary: PathPrefix /api, header x-canary  ✗ header x-canary does not match"),
            text)
        XCTAssertTrue(text.contains("2. demo/r rule api: PathPrefix /api  ✓ taken"), text)
        XCTAssertTrue(text.contains("demo/web:80  weight 9 (90%)  10.230.0.1:8080"), text)
        XCTAssertTrue(text.contains("demo/v2:80  weight 1 (10%)  no ready endpoint (503 no-endpoints)"), text)
        let byName = try RouteExplainer.explain(
            config: push(mesh), namespace: "demo", method: "GET", url: "http://web.demo.svc.cluster.local/other",
            headers: [])
        XCTAssertTrue(byName.contains("result     no rule matches: 404 no-route"), byName)
        let outside = try RouteExplainer.explain(
            config: push(mesh), namespace: "demo", method: "GET", url: "http://192.0.2.7:8080/", headers: [])
        XCTAssertTrue(outside.contains("no Service of the mesh: passed through to it (ALLOW_ANY)"), outside)
    }
}
