import NIOHPACK
import WeftProtocol
import XCTest

@testable import WeftProxy

/// Route matching and Gateway API precedence, through both drivers' head views.
final class RouteTableTests: XCTestCase {
    typealias F = MeshFixture

    /// The rule (route name and rule index) an HTTP/1 request and the same HTTP/2
    /// request take; the test fails if the drivers disagree.
    private func taken(_ table: RouteTable, _ method: String, _ target: String, headers: [(String, String)] = [])
        throws -> String?
    {
        let text =
            "\(method) \(target) HTTP/1.1\r\nHost: web\r\n"
            + headers.map { "\($0.0): \($0.1)\r\n" }.joined() + "\r\n"
        let bytes = Array(text.utf8)
        var head = HTTP1Head()
        try bytes.withUnsafeBytes { try HTTP1HeadParser.parse($0, kind: .request, into: &head) }
        let one = bytes.withUnsafeBytes { table.match(HTTP1RequestHeadView(bytes: $0, head: head)) }
        var hpack: HPACKHeaders = [":method": method, ":path": target, ":scheme": "http", ":authority": "web"]
        for (name, value) in headers { hpack.add(name: name.lowercased(), value: value) }
        let two = table.match(HPACKRequestHeadView(headers: hpack))
        XCTAssertEqual(one, two, "HTTP/1 and HTTP/2 disagree on \(method) \(target)")
        return one.map { "\(table.rules[$0].route)#\(table.rules[$0].ruleIndex)" }
    }

    private func table(_ routes: [RouteEntry]) throws -> RouteTable {
        var mesh = F()
        mesh.service("demo/web", clusterIP: "10.97.0.1", endpoints: ["10.230.0.1"], routes: routes)
        mesh.service("demo/a", clusterIP: "10.97.0.2")
        let snapshot = try mesh.snapshot()
        guard
            case .ready(let table) = snapshot.servicePorts[
                snapshot.servicePortByAddress[AddressKey(ip: "10.97.0.1", port: 80)!]!
            ].state
        else {
            XCTFail("demo/web is not ready")
            throw CancellationError()
        }
        return table
    }

    func testPathPrefixMatchesWholeElementsOnly() throws {
        let t = try table([F.route("demo/r", [F.rule([F.path("PathPrefix", "/foo/")], [("demo/a", 1)])])])
        XCTAssertEqual(try taken(t, "GET", "/foo"), "demo/r#0")
        XCTAssertEqual(try taken(t, "GET", "/foo/"), "demo/r#0")
        XCTAssertEqual(try taken(t, "GET", "/foo/bar?x=1"), "demo/r#0")
        XCTAssertNil(try taken(t, "GET", "/foobar"))
        XCTAssertNil(try taken(t, "GET", "/"))
    }

    func testExactBeatsPrefixAndLongerPrefixBeatsShorter() throws {
        let t = try table([
            F.route(
                "demo/r",
                [
                    F.rule([F.path("PathPrefix", "/")], [("demo/a", 1)]),
                    F.rule([F.path("PathPrefix", "/v1")], [("demo/a", 1)]),
                    F.rule([F.path("PathPrefix", "/v1/users")], [("demo/a", 1)]),
                    F.rule([F.path("Exact", "/v1/users/me")], [("demo/a", 1)]),
                ])
        ])
        XCTAssertEqual(try taken(t, "GET", "/v1/users/me"), "demo/r#3")
        XCTAssertEqual(try taken(t, "GET", "/v1/users/me/x"), "demo/r#2")
        XCTAssertEqual(try taken(t, "GET", "/v1/other"), "demo/r#1")
        XCTAssertEqual(try taken(t, "GET", "/v2"), "demo/r#0")
    }

    func testMethodHeadersAndQueryRankAfterPath() throws {
        let t = try table([
            F.route(
                "demo/r",
                [
                    F.rule([F.path("PathPrefix", "/")], [("demo/a", 1)]),
                    F.rule(
                        [F.path("PathPrefix", "/", query: [ValueMatchEntry(type: "Exact", name: "v", value: "2")])],
                        [("demo/a", 1)]),
                    F.rule(
                        [
                            F.path(
                                "PathPrefix", "/",
                                headers: [ValueMatchEntry(type: "Exact", name: "X-Canary", value: "yes")])
                        ],
                        [("demo/a", 1)]),
                    F.rule([F.path("PathPrefix", "/", method: "POST")], [("demo/a", 1)]),
                ])
        ])
        // A method match outranks header matches, which outrank query matches.
        XCTAssertEqual(try taken(t, "POST", "/?v=2", headers: [("x-canary", "yes")]), "demo/r#3")
        XCTAssertEqual(try taken(t, "GET", "/?v=2", headers: [("X-CANARY", "yes")]), "demo/r#2")
        XCTAssertEqual(try taken(t, "GET", "/?a=1&v=2"), "demo/r#1")
        XCTAssertEqual(try taken(t, "GET", "/?v=22"), "demo/r#0", "values match exactly")
        XCTAssertEqual(
            try taken(t, "GET", "/", headers: [("x-canary", "Yes")]), "demo/r#0", "values are case-sensitive")
    }

    func testRegularExpressionsMatchWholePathsAndValues() throws {
        let t = try table([
            F.route(
                "demo/r",
                [
                    F.rule([F.path("RegularExpression", "/items/[0-9]+")], [("demo/a", 1)]),
                    F.rule(
                        [
                            F.path(
                                "PathPrefix", "/",
                                headers: [ValueMatchEntry(type: "RegularExpression", name: "user", value: "adm.*")])
                        ], [("demo/a", 1)]),
                ])
        ])
        XCTAssertEqual(try taken(t, "GET", "/items/42"), "demo/r#0")
        XCTAssertNil(try taken(t, "GET", "/items/42x"), "a regular expression must match the whole path")
        XCTAssertEqual(try taken(t, "GET", "/x", headers: [("user", "admin")]), "demo/r#1")
        XCTAssertNil(try taken(t, "GET", "/x", headers: [("user", "xadmin")]))
    }

    func testOlderRouteWinsATieAndRuleOrderBreaksTheRest() throws {
        let t = try table([
            F.route("demo/older", [F.rule([F.path("PathPrefix", "/api")], [("demo/a", 1)])]),
            F.route("demo/newer", [F.rule([F.path("PathPrefix", "/api")], [("demo/a", 1)])]),
        ])
        XCTAssertEqual(try taken(t, "GET", "/api/x"), "demo/older#0")
    }

    func testAbsoluteFormTargetsMatchOnTheirPath() throws {
        let t = try table([F.route("demo/r", [F.rule([F.path("Exact", "/a")], [("demo/a", 1)])])])
        XCTAssertEqual(try taken(t, "GET", "/a?q=1"), "demo/r#0")
        let bytes = Array("GET http://web.demo/a?q=1 HTTP/1.1\r\nHost: web.demo\r\n\r\n".utf8)
        var head = HTTP1Head()
        try bytes.withUnsafeBytes { try HTTP1HeadParser.parse($0, kind: .request, into: &head) }
        XCTAssertEqual(bytes.withUnsafeBytes { t.match(HTTP1RequestHeadView(bytes: $0, head: head)) }, 0)
    }

    func testWeightedBackendsFollowTheirWeights() {
        let backends = WeightedBackends([(backend: 7, weight: 90), (backend: 8, weight: 10), (backend: 9, weight: 0)])
        var random = LoopRandom(seed: 42)
        var counts: [Int: Int] = [:]
        for _ in 0..<10_000 { counts[backends.pick(using: &random)!, default: 0] += 1 }
        XCTAssertNil(counts[9], "weight 0 gets no traffic")
        XCTAssertEqual(Double(counts[8]!) / 10_000, 0.1, accuracy: 0.015)
        XCTAssertNil(WeightedBackends([(backend: 1, weight: 0)]).pick(using: &random))
    }
}
