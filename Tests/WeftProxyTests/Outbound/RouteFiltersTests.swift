import NIOCore
import NIOHPACK
import XCTest

@testable import WeftProxy

final class RouteFiltersTests: XCTestCase {
    private func parsed(_ text: String, request: Bool = true) throws -> ([UInt8], HTTP1Head) {
        let bytes = Array(text.utf8)
        var head = HTTP1Head()
        try bytes.withUnsafeBytes {
            try HTTP1HeadParser.parse($0, kind: request ? .request : .response(requestMethod: .get), into: &head)
        }
        return (bytes, head)
    }

    func testReplacePrefixMatchKeepsTheRestOfThePath() {
        func apply(_ edit: PathEdit, _ path: String, prefix: Int) -> String {
            Array(path.utf8).withUnsafeBytes { edit.apply(to: $0, matchedPrefix: prefix) }
        }
        XCTAssertEqual(apply(.prefix("/two"), "/one/x", prefix: 4), "/two/x")
        XCTAssertEqual(apply(.prefix("/two"), "/one", prefix: 4), "/two")
        XCTAssertEqual(apply(.prefix("/"), "/one/x", prefix: 4), "/x")
        XCTAssertEqual(apply(.prefix("/"), "/one", prefix: 4), "/")
        XCTAssertEqual(apply(.prefix("/two/"), "/one/x", prefix: 4), "/two/x")
        XCTAssertEqual(apply(.full("/all"), "/one/x", prefix: 4), "/all")
    }

    func testTheEditedRequestHeadReplacesAddsAndRemoves() throws {
        let (bytes, head) = try parsed(
            "GET /old/a?q=1 HTTP/1.1\r\nHost: web\r\nX-Keep: 1\r\nX-Set: old\r\nx-remove: gone\r\nConnection: keep-alive, x-hop\r\nX-Hop: h\r\n\r\n"
        )
        let edits = HeaderEdits(set: [("X-Set", "new")], add: [("X-Add", "a")], remove: ["X-Remove"])
        let out = bytes.withUnsafeBytes {
            HTTP1HeadEditor.edit(
                $0, head: head, isRequest: true, edits: [edits], host: "api.example", path: "/new/a",
                extraLines: "weft-retry-attempt: 1\r\n", allocator: ByteBufferAllocator())
        }
        XCTAssertEqual(
            String(buffer: out),
            "GET /new/a?q=1 HTTP/1.1\r\nX-Keep: 1\r\nhost: api.example\r\nX-Set: new\r\nX-Add: a\r\n"
                + "weft-retry-attempt: 1\r\n\r\n",
            "hop-by-hop fields (Connection and what it names) are dropped as always")
    }

    func testTheEditedResponseHeadCanClose() throws {
        let (bytes, head) = try parsed(
            "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nServer: x\r\n\r\n", request: false)
        let out = bytes.withUnsafeBytes {
            HTTP1HeadEditor.edit(
                $0, head: head, isRequest: false,
                edits: [HeaderEdits(set: [], add: [("x-mesh", "weft")], remove: ["server"])],
                close: true, allocator: ByteBufferAllocator())
        }
        XCTAssertEqual(
            String(buffer: out), "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nx-mesh: weft\r\nconnection: close\r\n\r\n")
    }

    func testHPACKEdits() {
        var headers: HPACKHeaders = [":method": "GET", "x-set": "old", "x-remove": "y", "x-keep": "k"]
        HeaderEdits(set: [("X-Set", "new")], add: [("x-add", "1")], remove: ["X-REMOVE"]).apply(to: &headers)
        XCTAssertEqual(headers[canonicalForm: "x-set"], ["new"])
        XCTAssertEqual(headers[canonicalForm: "x-add"], ["1"])
        XCTAssertFalse(headers.contains(name: "x-remove"))
        XCTAssertEqual(headers[canonicalForm: "x-keep"], ["k"])
    }

    func testRedirectLocations() throws {
        let (bytes, head) = try parsed("GET /one/x?q=1 HTTP/1.1\r\nHost: web.demo:8080\r\n\r\n")
        func location(_ plan: RedirectPlan, authority: String = "web.demo:8080", port: Int = 8080) -> String {
            bytes.withUnsafeBytes {
                plan.location(
                    for: HTTP1RequestHeadView(bytes: $0, head: head), authority: authority, requestPort: port,
                    matchedPrefix: 4)
            }
        }
        XCTAssertEqual(
            location(RedirectPlan(scheme: nil, hostname: "other", port: nil, path: nil, status: 302)),
            "http://other:8080/one/x?q=1", "the request's port is kept")
        XCTAssertEqual(
            location(RedirectPlan(scheme: "https", hostname: nil, port: nil, path: nil, status: 301)),
            "https://web.demo/one/x?q=1", "a new scheme without a port uses its well-known port")
        XCTAssertEqual(
            location(RedirectPlan(scheme: nil, hostname: nil, port: 80, path: .prefix("/two"), status: 302)),
            "http://web.demo/two/x?q=1", "port 80 for http is left out")
        XCTAssertEqual(
            location(
                RedirectPlan(scheme: nil, hostname: nil, port: nil, path: .full("/z"), status: 308), authority: "web",
                port: 80),
            "http://web/z?q=1")
    }
}
