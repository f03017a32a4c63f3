import NIOCore
import NIOEmbedded
import NIOHPACK
import NIOHTTP2
import XCTest

@testable import WeftProxy

final class HTTP1OverHTTP2BridgeTests: XCTestCase {
    private func channel(_ role: HTTP1OverHTTP2Bridge.Role) throws -> EmbeddedChannel {
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(HTTP1OverHTTP2Bridge(role: role))
        // Active, as a stream channel is: a test that expects a close can see one.
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        XCTAssertTrue(channel.isActive)
        return channel
    }

    private func written(_ channel: EmbeddedChannel) throws -> [HTTP2Frame.FramePayload] {
        channel.embeddedEventLoop.run()  // the called side's END_STREAM flush runs just after
        var frames: [HTTP2Frame.FramePayload] = []
        while let frame = try channel.readOutbound(as: HTTP2Frame.FramePayload.self) { frames.append(frame) }
        return frames
    }

    private func read(_ channel: EmbeddedChannel) throws -> String {
        var text = ""
        while var buffer = try channel.readInbound(as: ByteBuffer.self) {
            text += buffer.readString(length: buffer.readableBytes)!
        }
        return text
    }

    private func headers(_ frame: HTTP2Frame.FramePayload?) -> (HPACKHeaders, Bool)? {
        guard case .headers(let headers) = frame else { return nil }
        return (headers.headers, headers.endStream)
    }

    private func data(_ frames: [HTTP2Frame.FramePayload]) -> (String, Bool) {
        var text = ""
        var ended = false
        for frame in frames {
            guard case .data(let data) = frame, case .byteBuffer(var buffer) = data.data else { continue }
            text += buffer.readString(length: buffer.readableBytes)!
            ended = ended || data.endStream
        }
        return (text, ended)
    }

    /// Not `writeOutbound`, which waits for the write's promise: the called side's last
    /// frame is flushed (and its promise completed) only once the loop runs.
    private func writeString(_ channel: EmbeddedChannel, _ text: String) throws {
        channel.writeAndFlush(ByteBuffer(string: text), promise: nil)
        try channel.throwIfErrorCaught()
    }

    // MARK: client side: request bytes → frames

    func testRequestHeadBecomesPseudoFieldsWithoutHopByHopFields() throws {
        let channel = try channel(.client)
        try writeString(
            channel,
            "GET /x?y=1 HTTP/1.1\r\nHost: web.demo:8080\r\nConnection: keep-alive, X-Hop\r\nX-Hop: 1\r\n"
                + "Keep-Alive: timeout=5\r\nAccept: */*\r\n\r\n")
        let frames = try written(channel)
        XCTAssertEqual(frames.count, 1)
        let (fields, endStream) = try XCTUnwrap(headers(frames.first))
        XCTAssertTrue(endStream, "a request without a body ends its stream with its HEADERS")
        XCTAssertEqual(fields.first(name: ":method"), "GET")
        XCTAssertEqual(fields.first(name: ":scheme"), "http")
        XCTAssertEqual(fields.first(name: ":authority"), "web.demo:8080")
        XCTAssertEqual(fields.first(name: ":path"), "/x?y=1")
        XCTAssertEqual(fields.first(name: "accept"), "*/*")
        for dropped in ["host", "connection", "x-hop", "keep-alive"] {
            XCTAssertFalse(fields.contains(name: dropped), "\(dropped) must not cross")
        }
    }

    func testChunkedRequestBodyIsDechunkedIntoData() throws {
        let channel = try channel(.client)
        try writeString(channel, "POST /upload HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel")
        try writeString(channel, "lo\r\n3;ext=1\r\n wo\r\n0\r\nX-Trailer: t\r\n\r\n")
        let frames = try written(channel)
        let (fields, endStream) = try XCTUnwrap(headers(frames.first))
        XCTAssertFalse(endStream)
        XCTAssertFalse(fields.contains(name: "transfer-encoding"))
        let (body, ended) = data(Array(frames.dropFirst()))
        XCTAssertEqual(body, "hello wo")
        XCTAssertTrue(ended)
    }

    func testContentLengthBodyPassesAndEndsTheStream() throws {
        let channel = try channel(.client)
        try writeString(channel, "PUT /k HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n\r\nab")
        try writeString(channel, "cd")
        let frames = try written(channel)
        XCTAssertEqual(try XCTUnwrap(headers(frames.first)).0.first(name: "content-length"), "4")
        XCTAssertEqual(data(Array(frames.dropFirst())).0, "abcd")
        XCTAssertTrue(data(Array(frames.dropFirst())).1)
    }

    func testAbsoluteFormTargetGivesAuthorityAndPath() throws {
        let channel = try channel(.client)
        try writeString(channel, "GET http://other:81/p?q HTTP/1.1\r\nHost: other:81\r\n\r\n")
        let (fields, _) = try XCTUnwrap(headers(try written(channel).first))
        XCTAssertEqual(fields.first(name: ":authority"), "other:81")
        XCTAssertEqual(fields.first(name: ":path"), "/p?q")
    }

    func testBytesAfterTheRequestCloseTheStream() throws {
        let channel = try channel(.client)
        XCTAssertThrowsError(try writeString(channel, "GET / HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\n"))
        XCTAssertFalse(channel.isActive)
    }

    // MARK: client side: response frames → bytes

    func testResponseWithLengthBecomesHTTP11() throws {
        let channel = try channel(.client)
        try writeString(channel, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        try channel.writeInbound(
            HTTP2Frame.FramePayload.headers(
                .init(headers: [":status": "200", "content-length": "5", "server": "nginx"])))
        try channel.writeInbound(
            HTTP2Frame.FramePayload.data(.init(data: .byteBuffer(.init(string: "hello")), endStream: true)))
        XCTAssertEqual(try read(channel), "HTTP/1.1 200 OK\r\ncontent-length: 5\r\nserver: nginx\r\n\r\nhello")
    }

    func testResponseWithoutLengthIsChunkedWithItsTrailers() throws {
        let channel = try channel(.client)
        try writeString(channel, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        try channel.writeInbound(HTTP2Frame.FramePayload.headers(.init(headers: [":status": "200"])))
        try channel.writeInbound(HTTP2Frame.FramePayload.data(.init(data: .byteBuffer(.init(string: "abc")))))
        try channel.writeInbound(HTTP2Frame.FramePayload.headers(.init(headers: ["x-sum": "9"], endStream: true)))
        XCTAssertEqual(
            try read(channel), "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nx-sum: 9\r\n\r\n")
    }

    func testInterimThenFinalResponse() throws {
        let channel = try channel(.client)
        try writeString(channel, "POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n")
        try channel.writeInbound(HTTP2Frame.FramePayload.headers(.init(headers: [":status": "100"])))
        try channel.writeInbound(HTTP2Frame.FramePayload.headers(.init(headers: [":status": "204"], endStream: true)))
        XCTAssertEqual(try read(channel), "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n")
    }

    func testHeadResponseKeepsItsLengthAndHasNoBody() throws {
        let channel = try channel(.client)
        try writeString(channel, "HEAD / HTTP/1.1\r\nHost: a\r\n\r\n")
        try channel.writeInbound(
            HTTP2Frame.FramePayload.headers(
                .init(headers: [":status": "200", "content-length": "42"], endStream: true)))
        XCTAssertEqual(try read(channel), "HTTP/1.1 200 OK\r\ncontent-length: 42\r\n\r\n")
    }

    func testEmptyResponseGetsAZeroLength() throws {
        let channel = try channel(.client)
        try writeString(channel, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        try channel.writeInbound(HTTP2Frame.FramePayload.headers(.init(headers: [":status": "200"], endStream: true)))
        XCTAssertEqual(try read(channel), "HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
    }

    func testResponseWithoutStatusResetsOnlyTheStream() throws {
        let channel = try channel(.client)
        try writeString(channel, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        XCTAssertThrowsError(
            try channel.writeInbound(HTTP2Frame.FramePayload.headers(.init(headers: ["x": "1"], endStream: true))))
        XCTAssertFalse(channel.isActive)
        XCTAssertEqual(try read(channel), "")
    }

    func testControlFramesDoNotReachTheHTTP1Side() throws {
        let channel = try channel(.client)
        try writeString(channel, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        try channel.writeInbound(HTTP2Frame.FramePayload.windowUpdate(windowSizeIncrement: 100))
        try channel.writeInbound(
            HTTP2Frame.FramePayload.priority(.init(exclusive: false, dependency: .rootStream, weight: 1)))
        XCTAssertEqual(try read(channel), "")
        XCTAssertTrue(channel.isActive)
    }

    func testDataBeforeHeadersResetsTheStream() throws {
        let channel = try channel(.client)
        XCTAssertThrowsError(
            try channel.writeInbound(HTTP2Frame.FramePayload.data(.init(data: .byteBuffer(.init(string: "x"))))))
        XCTAssertFalse(channel.isActive)
    }

    // MARK: server side: request frames → bytes, response bytes → frames

    func testRequestFramesBecomeAnHTTP11RequestChunkedWithoutLength() throws {
        let channel = try channel(.server)
        try channel.writeInbound(
            HTTP2Frame.FramePayload.headers(
                .init(headers: [
                    ":method": "POST", ":scheme": "http", ":authority": "web:80", ":path": "/p", "x-a": "1",
                ])))
        try channel.writeInbound(
            HTTP2Frame.FramePayload.data(.init(data: .byteBuffer(.init(string: "hello")), endStream: true)))
        XCTAssertEqual(
            try read(channel),
            "POST /p HTTP/1.1\r\nhost: web:80\r\nx-a: 1\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n")
    }

    func testRequestWithoutBodyHasNoFraming() throws {
        let channel = try channel(.server)
        try channel.writeInbound(
            HTTP2Frame.FramePayload.headers(
                .init(headers: [":method": "GET", ":scheme": "http", ":authority": "a", ":path": "/"], endStream: true))
        )
        XCTAssertEqual(try read(channel), "GET / HTTP/1.1\r\nhost: a\r\n\r\n")
    }

    func testResponseBytesBecomeFramesWithInterimHeads() throws {
        let channel = try channel(.server)
        try channel.writeInbound(
            HTTP2Frame.FramePayload.headers(
                .init(headers: [":method": "GET", ":scheme": "http", ":authority": "a", ":path": "/"], endStream: true))
        )
        _ = try read(channel)
        try writeString(
            channel,
            "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: keep-alive\r\n"
                + "Transfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n")
        let frames = try written(channel)
        XCTAssertEqual(try XCTUnwrap(headers(frames[0])).0.first(name: ":status"), "100")
        let (final, endStream) = try XCTUnwrap(headers(frames[1]))
        XCTAssertEqual(final.first(name: ":status"), "200")
        XCTAssertEqual(final.first(name: "content-type"), "text/plain")
        XCTAssertFalse(endStream)
        XCTAssertFalse(final.contains(name: "connection"))
        XCTAssertFalse(final.contains(name: "transfer-encoding"))
        XCTAssertEqual(data(Array(frames.dropFirst(2))).0, "ok")
        XCTAssertTrue(data(Array(frames.dropFirst(2))).1)
    }

    func testTheCalledSidesEndIsFlushedAfterTheHandlerThatWroteIt() throws {
        // HTTP1ProxyHandler flushes, then returns the app's connection to its pool: the
        // stream must not close (and take that connection down) in between.
        let channel = try channel(.server)
        try channel.writeInbound(
            HTTP2Frame.FramePayload.headers(
                .init(headers: [":method": "GET", ":scheme": "http", ":authority": "a", ":path": "/"], endStream: true))
        )
        _ = try read(channel)
        try writeString(channel, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        XCTAssertNil(try channel.readOutbound(as: HTTP2Frame.FramePayload.self), "flushed within the write's call")
        XCTAssertEqual(data(try written(channel)).0, "ok")
    }

    func testHeadResponseEndsWithItsHeaders() throws {
        let channel = try channel(.server)
        try channel.writeInbound(
            HTTP2Frame.FramePayload.headers(
                .init(
                    headers: [":method": "HEAD", ":scheme": "http", ":authority": "a", ":path": "/"], endStream: true)))
        _ = try read(channel)
        try writeString(channel, "HTTP/1.1 200 OK\r\nContent-Length: 42\r\n\r\n")
        let frames = try written(channel)
        XCTAssertEqual(frames.count, 1)
        XCTAssertEqual(try XCTUnwrap(headers(frames[0])).1, true)
    }

    func testResponseEndedByTheAppsCloseEndsTheStreamCleanly() throws {
        let channel = try channel(.server)
        try channel.writeInbound(
            HTTP2Frame.FramePayload.headers(
                .init(headers: [":method": "GET", ":scheme": "http", ":authority": "a", ":path": "/"], endStream: true))
        )
        _ = try read(channel)
        try writeString(channel, "HTTP/1.1 200 OK\r\n\r\nuntil")
        try writeString(channel, " close")
        channel.close(promise: nil)
        let frames = try written(channel)
        XCTAssertEqual(data(Array(frames.dropFirst())).0, "until close")
        XCTAssertTrue(data(Array(frames.dropFirst())).1, "the stream ends with END_STREAM, not a reset")
    }

    func testAFieldValueThatWouldForgeAnHTTP1LineResetsTheStream() throws {
        // HPACK carries any byte; as HTTP/1 a CR LF in a value would start a field of its
        // own (or a second request). Nothing of such a head reaches the app.
        for (name, value) in [
            ("x-a", "1\r\nx-injected: 2"), ("x-a", "nul\u{0}"), ("bad name", "v"), ("x-b\r\nx-c", "v"),
        ] {
            let channel = try channel(.server)
            XCTAssertThrowsError(
                try channel.writeInbound(
                    HTTP2Frame.FramePayload.headers(
                        .init(
                            headers: HPACKHeaders([
                                (":method", "GET"), (":scheme", "http"), (":authority", "a"), (":path", "/"),
                                (name, value),
                            ]), endStream: true))), "\(name): \(value)")
            XCTAssertFalse(channel.isActive)
            XCTAssertEqual(try read(channel), "")
        }
    }

    func testARequestLineThatWouldBreakResetsTheStream() throws {
        for (method, path, authority) in [
            ("GET", "/a b", "a"), ("GE T", "/", "a"), ("GET", "/\r\nx: y", "a"), ("", "/", "a"),
            ("GET", "/", "a\r\n\r\nGET /admin HTTP/1.1"), ("GET", "/", "a\u{0}"),
        ] {
            let channel = try channel(.server)
            XCTAssertThrowsError(
                try channel.writeInbound(
                    HTTP2Frame.FramePayload.headers(
                        .init(
                            headers: [":method": method, ":scheme": "http", ":path": path, ":authority": authority],
                            endStream: true))), "\(method) \(path) \(authority)")
            XCTAssertFalse(channel.isActive, "\(method) \(path) \(authority)")
            XCTAssertEqual(try read(channel), "")
        }
    }

    func testUppercaseFieldNamesAreMalformed() throws {
        // HTTP/2 names are lowercase; an uppercase Transfer-Encoding would pass the
        // hop-by-hop filter and reach the app next to the bridge's own framing.
        let channel = try channel(.server)
        XCTAssertThrowsError(
            try channel.writeInbound(
                HTTP2Frame.FramePayload.headers(
                    .init(
                        headers: HPACKHeaders([
                            (":method", "POST"), (":scheme", "http"), (":authority", "a"), (":path", "/"),
                            ("Transfer-Encoding", "gzip"),
                        ])))))
        XCTAssertEqual(try read(channel), "")
    }

    func testA101ResponseOnAStreamResetsIt() throws {
        let channel = try channel(.client)
        try writeString(channel, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        XCTAssertThrowsError(
            try channel.writeInbound(
                HTTP2Frame.FramePayload.headers(.init(headers: [":status": "101", "upgrade": "websocket"]))))
        XCTAssertFalse(channel.isActive)
        XCTAssertEqual(try read(channel), "")
    }

    func testA204FromTheAppLosesItsContentLength() throws {
        // HTTP/2 checks a Content-Length against the DATA that follows; a 204 has none.
        let channel = try channel(.server)
        try channel.writeInbound(
            HTTP2Frame.FramePayload.headers(
                .init(
                    headers: [":method": "DELETE", ":scheme": "http", ":authority": "a", ":path": "/"], endStream: true)
            ))
        _ = try read(channel)
        try writeString(channel, "HTTP/1.1 204 No Content\r\nContent-Length: 7\r\nX-A: 1\r\n\r\n")
        let frames = try written(channel)
        let (fields, endStream) = try XCTUnwrap(headers(frames.first))
        XCTAssertTrue(endStream)
        XCTAssertFalse(fields.contains(name: "content-length"))
        XCTAssertEqual(fields.first(name: "x-a"), "1")
    }

    func testAResponseFieldThatWouldForgeALineResetsTheStream() throws {
        let channel = try channel(.client)
        try writeString(channel, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        XCTAssertThrowsError(
            try channel.writeInbound(
                HTTP2Frame.FramePayload.headers(
                    .init(headers: [":status": "200", "set-cookie": "a\r\n\r\nforged body"], endStream: true))))
        XCTAssertFalse(channel.isActive)
        XCTAssertEqual(try read(channel), "")
    }

    func testRequestWithoutPathResetsTheStream() throws {
        let channel = try channel(.server)
        XCTAssertThrowsError(
            try channel.writeInbound(
                HTTP2Frame.FramePayload.headers(.init(headers: [":method": "GET"], endStream: true))))
        XCTAssertFalse(channel.isActive)
        XCTAssertEqual(try read(channel), "")
    }
}
