import NIOCore
import NIOEmbedded
import NIOHPACK
import NIOHTTP2
import WeftProtocol
import XCTest

@testable import WeftProxy

/// The two senders of RequestMirror copies, on embedded channels: what they write, how
/// they read (and drop) the response, and when they give the connection back.
final class MirrorExchangeTests: XCTestCase {
    typealias F = MeshFixture

    /// A loop context whose route mirrors every request to demo/shadow (one endpoint,
    /// 10.230.0.9:8080), and the copy a request drew.
    private func mirrored(loop: EmbeddedEventLoop) throws -> (LoopContext, MirrorCopy) {
        var mesh = F()
        var rule = F.rule([], [("demo/web", 1)])
        rule.filters = [
            RouteFilterEntry(type: "RequestMirror", mirror: BackendEntry(service: "demo/shadow", port: 80, weight: 1))
        ]
        mesh.service(
            "demo/web", clusterIP: "10.97.0.1", endpoints: ["10.230.0.1"], routes: [F.route("demo/r", [rule])])
        mesh.service("demo/shadow", clusterIP: "10.97.0.2", endpoints: ["10.230.0.9"])
        let context = LoopContext(eventLoop: loop, discoveryTimeout: .seconds(1))
        context.install(try mesh.snapshot())
        var binding = OutboundBinding(key: AddressKey(ip: "10.97.0.1", port: 80)!)
        let head: HPACKHeaders = [":method": "POST", ":path": "/", ":scheme": "http", ":authority": "web"]
        guard case .forward(let attempt) = context.plan(&binding, request: HPACKRequestHeadView(headers: head)),
            let copy = context.drawMirrors(attempt.filters!.mirrors, requestTimeoutMs: 500)
        else { throw XCTSkip("no copy drawn") }
        return (context, copy)
    }

    /// An HTTP/1 pool whose one idle connection to the shadow endpoint is an embedded channel.
    private func pool(loop: EmbeddedEventLoop) throws -> (HTTP1UpstreamPool, EmbeddedChannel, HTTP1UpstreamConnection) {
        let pool = HTTP1UpstreamPool(eventLoop: loop, config: ProxyConfig())
        let address = try SocketAddress(ipAddress: "10.230.0.9", port: 8080)
        let connection = HTTP1UpstreamConnection(destination: address)
        connection.bucket = pool.bucket(for: address)
        let channel = EmbeddedChannel(handler: connection, loop: loop)
        try channel.connect(to: address).wait()
        pool.release(connection)
        return (pool, channel, connection)
    }

    private func written(_ channel: EmbeddedChannel) throws -> String {
        var text = ""
        while let buffer = try channel.readOutbound(as: ByteBuffer.self) { text += String(buffer: buffer) }
        return text
    }

    func testHTTP1CopyIsWrittenItsResponseDroppedAndTheConnectionReused() throws {
        let loop = EmbeddedEventLoop()
        let (mesh, drawn) = try mirrored(loop: loop)
        var copy = drawn
        let (pool, channel, connection) = try pool(loop: loop)
        copy.append(ByteBuffer(string: "hello"))
        let head = ByteBuffer(string: "POST /x HTTP/1.1\r\nhost: web\r\ncontent-length: 5\r\n\r\n")
        HTTP1MirrorExchange.send(copy, head: head, method: .post, pool: pool, mesh: mesh)
        XCTAssertEqual(try written(channel), "POST /x HTTP/1.1\r\nhost: web\r\ncontent-length: 5\r\n\r\nhello")
        XCTAssertEqual(mesh.mirrorsInFlight, 1)
        try channel.writeInbound(ByteBuffer(string: "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\ncontent-le"))
        XCTAssertEqual(mesh.mirrorsInFlight, 1, "an interim response and half a head end nothing")
        try channel.writeInbound(ByteBuffer(string: "ngth: 4\r\n\r\nbo"))
        XCTAssertEqual(mesh.mirrorsInFlight, 1, "half the body")
        try channel.writeInbound(ByteBuffer(string: "dy"))
        XCTAssertEqual(mesh.mirrorsInFlight, 0, "the copy ended with its response")
        XCTAssertTrue(pool.checkout(connection.bucket!) === connection, "the connection went back to the pool")
        XCTAssertTrue(channel.isActive)
    }

    func testHTTP1CopyThatGetsNoAnswerIsAbandonedAtItsTimeout() throws {
        let loop = EmbeddedEventLoop()
        let (mesh, copy) = try mirrored(loop: loop)
        let (pool, channel, connection) = try pool(loop: loop)
        HTTP1MirrorExchange.send(
            copy, head: ByteBuffer(string: "GET / HTTP/1.1\r\nhost: web\r\n\r\n"), method: .get, pool: pool, mesh: mesh)
        XCTAssertEqual(mesh.mirrorsInFlight, 1)
        loop.advanceTime(by: .milliseconds(499))
        XCTAssertEqual(mesh.mirrorsInFlight, 1)
        loop.advanceTime(by: .milliseconds(1))
        XCTAssertEqual(mesh.mirrorsInFlight, 0, "the route's 500 ms request timeout bounds the copy")
        XCTAssertFalse(channel.isActive, "a connection with a response outstanding is closed, not reused")
        XCTAssertNil(pool.checkout(connection.bucket!))
    }

    func testHTTP1CopyWithAMalformedResponseClosesItsConnection() throws {
        let loop = EmbeddedEventLoop()
        let (mesh, copy) = try mirrored(loop: loop)
        let (pool, channel, _) = try pool(loop: loop)
        HTTP1MirrorExchange.send(
            copy, head: ByteBuffer(string: "GET / HTTP/1.1\r\nhost: web\r\n\r\n"), method: .get, pool: pool, mesh: mesh)
        try channel.writeInbound(ByteBuffer(string: "NOT HTTP\r\n\r\n"))
        XCTAssertEqual(mesh.mirrorsInFlight, 0)
        XCTAssertFalse(channel.isActive)
    }

    func testHTTP1CopyOfABodyOverTheLimitIsNotSent() throws {
        let loop = EmbeddedEventLoop()
        let (mesh, drawn) = try mirrored(loop: loop)
        var copy = drawn
        let (pool, channel, _) = try pool(loop: loop)
        copy.append(ByteBuffer(repeating: 0x61, count: RequestMirror.bodyLimit + 1))
        HTTP1MirrorExchange.send(
            copy, head: ByteBuffer(string: "POST / HTTP/1.1\r\n\r\n"), method: .post, pool: pool, mesh: mesh)
        XCTAssertEqual(try written(channel), "")
        XCTAssertEqual(mesh.mirrorsInFlight, 0)
    }

    // MARK: HTTP/2

    private func stream(body: [String] = [], trailers: HPACKHeaders? = nil) throws -> (
        EmbeddedChannel, HTTP2MirrorStream, () -> [MirrorResult]
    ) {
        let head: HPACKHeaders = [":method": "POST", ":path": "/svc/M", ":scheme": "http", ":authority": "web"]
        let stream = HTTP2MirrorStream(head: head, body: body.map { ByteBuffer(string: $0) }, trailers: trailers)
        var results: [MirrorResult] = []
        stream.onEnd = { results.append($0) }
        let channel = EmbeddedChannel()
        try channel.connect(to: try SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        try channel.pipeline.syncOperations.addHandler(stream)
        return (channel, stream, { results })
    }

    private func frames(_ channel: EmbeddedChannel) throws -> [String] {
        var out: [String] = []
        while let payload = try channel.readOutbound(as: HTTP2Frame.FramePayload.self) {
            switch payload {
            case .headers(let h): out.append("HEADERS\(h.endStream ? " END" : "")")
            case .data(let d):
                guard case .byteBuffer(let b) = d.data else { continue }
                out.append("DATA \(String(buffer: b))\(d.endStream ? " END" : "")")
            default: out.append("\(payload)")
            }
        }
        return out
    }

    func testHTTP2CopyWritesHeadBodyAndTrailersAndEndsWithTheResponse() throws {
        let (channel, stream, results) = try stream(body: ["a", "b"], trailers: ["x-t": "1"])
        XCTAssertEqual(try frames(channel), ["HEADERS", "DATA a", "DATA b", "HEADERS END"])
        try channel.writeInbound(HTTP2Frame.FramePayload.headers(.init(headers: [":status": "503"])))
        XCTAssertEqual(results(), [])
        try channel.writeInbound(HTTP2Frame.FramePayload.data(.init(data: .byteBuffer(ByteBuffer()), endStream: true)))
        XCTAssertEqual(results(), [.completed])
        XCTAssertEqual(stream.status, 503)
        XCTAssertTrue(channel.isActive, "no reset after a whole response: the stream closes itself")
    }

    func testHTTP2CopyWithoutBodyEndsWithItsHead() throws {
        let (channel, _, results) = try stream()
        XCTAssertEqual(try frames(channel), ["HEADERS END"])
        try channel.writeInbound(HTTP2Frame.FramePayload.headers(.init(headers: [":status": "200"], endStream: true)))
        XCTAssertEqual(results(), [.completed])
    }

    func testHTTP2CopyResetOrAbandonedEndsOnce() throws {
        let (channel, stream, results) = try stream(body: ["a"])
        _ = try frames(channel)
        stream.abandon()
        XCTAssertEqual(results(), [.timeout])
        XCTAssertFalse(channel.isActive)
        let (other, _, otherResults) = try self.stream()
        try other.close().wait()
        XCTAssertEqual(otherResults(), [.failed], "the stream closed before a whole response")
    }
}
