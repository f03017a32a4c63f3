import Logging
import NIOCore
import NIOEmbedded
import Synchronization
import WeftCore
import WeftIdentity
import WeftProtocol
import XCTest

@testable import WeftControl

/// One connection's life through the real handler, with the real CA: the hello path and
/// every refusal, each answered by an error frame and a close of that channel only.
final class ProxySessionHandlerTests: XCTestCase {
    private static let ca: CertificateAuthority = {
        // swift-format-ignore
        try! CertificateAuthority(files: CertificateAuthority.create(trustDomain: "cluster.local"))
    }()

    private var loop: EmbeddedEventLoop!
    private var hub: PushHub!

    override func setUp() {
        loop = EmbeddedEventLoop()
        hub = makeHub()
    }

    private func makeHub(
        limiter: IssuanceLimiter = IssuanceLimiter(), maxUnauthenticated: Int = 256,
        clock: @escaping @Sendable () -> UInt64 = { NIODeadline.now().uptimeNanoseconds }
    ) -> PushHub {
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        return PushHub(
            group: loop, initialMesh: MeshFixtures.mesh(generation: 1),
            issuer: CAWorkloadIssuer(ca: Self.ca, trustDomain: "cluster.local"),
            authenticator: try! SharedTokenAuthenticator(token: "secret\n"), metrics: ControlMetrics(), logger: logger,
            limiter: limiter, maxUnauthenticated: maxUnauthenticated, clock: clock)
    }

    private func connect(decoder: Bool = false) throws -> EmbeddedChannel {
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        let channel = EmbeddedChannel(loop: loop)
        if decoder {
            try channel.pipeline.syncOperations.addHandler(
                ByteToMessageHandler(
                    ControlFrameDecoder(
                        maxFrameBytes: ControlProtocol.maxClientFrameBytes,
                        maxFirstFrameBytes: ControlProtocol.maxHelloFrameBytes)))
        }
        try channel.pipeline.syncOperations.addHandler(ProxySessionHandler(hub: hub, logger: logger))
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 40000)).wait()
        return channel
    }

    private func hello(
        pod: String = "client-0", namespace: String = "demo", serviceAccount: String = "client",
        csrFor: String? = nil, token: String = "secret", protocol version: Int = 1
    ) throws -> ByteBuffer {
        let key = try WorkloadKey(
            identity: SPIFFEID(namespace: namespace, serviceAccount: csrFor ?? serviceAccount))
        let node = Node(
            pod: pod, namespace: namespace, serviceAccount: serviceAccount, ip: "10.211.0.1",
            labels: ["app": "client"])
        return ClientMessage.hello(Hello(protocol: version, node: node, token: token, csr: key.csrPEM)).encode()
    }

    private func next(_ channel: EmbeddedChannel) throws -> ServerMessage? {
        guard let frame = try channel.readOutbound(as: ByteBuffer.self) else { return nil }
        return try ServerMessage.decode(frame)
    }

    /// Asserts the channel answered with an error frame of `code` and closed.
    private func assertRefused(
        _ channel: EmbeddedChannel, _ code: ProtocolError.Code, file: StaticString = #filePath, line: UInt = #line
    ) throws {
        guard case .error(let error) = try next(channel) else {
            return XCTFail("expected an error frame", file: file, line: line)
        }
        XCTAssertEqual(error.code, code, error.message, file: file, line: line)
        XCTAssertTrue(error.fatal, file: file, line: line)
        XCTAssertNil(try next(channel), "nothing after the error", file: file, line: line)
        XCTAssertFalse(channel.isActive, "closed", file: file, line: line)
    }

    func testHelloGetsIdentityThenConfigAndAckIsCounted() throws {
        let channel = try connect()
        try channel.writeInbound(hello())
        guard case .identity(let identity) = try next(channel) else { return XCTFail("identity first") }
        XCTAssertEqual(identity.spiffeId, "spiffe://cluster.local/ns/demo/sa/client")
        XCTAssertEqual(SPIFFEPeer.spiffeID(ofLeafPEM: identity.chain)?.description, identity.spiffeId)
        XCTAssertTrue(identity.trustBundle.contains("BEGIN CERTIFICATE"))
        guard case .config(let config) = try next(channel) else { return XCTFail("then config") }
        XCTAssertEqual(config.version, 1)
        try channel.writeInbound(ClientMessage.ack(Ack(version: 1, nonce: config.nonce)).encode())
        XCTAssertTrue(channel.isActive)
        let statuses = hub.statusesOnLoop()
        XCTAssertEqual(statuses.map(\.ackedVersion), [1])
        // A publish reaches the established session as a delta.
        hub.publish(MeshFixtures.mesh(generation: 2, extraService: true, previous: hub.currentMesh))
        loop.run()
        guard case .delta(let delta) = try next(channel) else { return XCTFail("delta after publish") }
        XCTAssertEqual(delta.upserts.services?.map(\.key), ["demo/extra"])
        // Ping is answered.
        try channel.writeInbound(ClientMessage.ping(Ping(id: 7)).encode())
        guard case .pong(let pong) = try next(channel) else { return XCTFail("pong") }
        XCTAssertEqual(pong.id, 7)
    }

    func testFirstMessageMustBeHello() throws {
        let channel = try connect()
        try channel.writeInbound(ClientMessage.ack(Ack(version: 1, nonce: "x")).encode())
        try assertRefused(channel, .unexpectedMessage)
    }

    func testSecondHelloIsRefused() throws {
        let channel = try connect()
        try channel.writeInbound(hello())
        _ = try next(channel)
        _ = try next(channel)
        try channel.writeInbound(hello())
        try assertRefused(channel, .unexpectedMessage)
    }

    func testInvalidJSONAndUnknownType() throws {
        let a = try connect()
        try a.writeInbound(ByteBuffer(string: "{not json"))
        try assertRefused(a, .invalidJSON)
        let b = try connect()
        try b.writeInbound(ByteBuffer(string: #"{"type":"frobnicate"}"#))
        try assertRefused(b, .unknownType)
        let c = try connect()
        try c.writeInbound(ByteBuffer(string: #"{"type":"hello","protocol":1}"#))
        try assertRefused(c, .invalidMessage)
    }

    func testWrongProtocolVersion() throws {
        let channel = try connect()
        try channel.writeInbound(hello(protocol: 2))
        try assertRefused(channel, .unsupportedProtocol)
        // A later version's hello need not decode as version 1's: the version is read first.
        let later = try connect()
        try later.writeInbound(ByteBuffer(string: #"{"type":"hello","protocol":2,"node":"a string now"}"#))
        try assertRefused(later, .unsupportedProtocol)
        // Without a version it is an invalid hello, naming the field.
        let none = try connect()
        try none.writeInbound(ByteBuffer(string: #"{"type":"hello","token":"t"}"#))
        try assertRefused(none, .invalidMessage)
    }

    func testWrongTokenGetsNoCertificate() throws {
        let channel = try connect()
        try channel.writeInbound(hello(token: "guess"))
        try assertRefused(channel, .unauthenticated)
    }

    func testCSRForSomeoneElsesIdentity() throws {
        let channel = try connect()
        try channel.writeInbound(hello(csrFor: "web"))
        try assertRefused(channel, .forbiddenIdentity)
    }

    func testKnownPodWithAnotherServiceAccount() throws {
        let channel = try connect()
        // The mesh knows web-0 runs as `web`; a hello claiming it as `client` is refused.
        try channel.writeInbound(hello(pod: "web-0", serviceAccount: "client"))
        try assertRefused(channel, .forbiddenIdentity)
    }

    func testControlPlaneIdentityIsNeverIssuedThroughAHello() throws {
        // The red-team case: a token holder asked for the control plane's own identity.
        let channel = try connect()
        try channel.writeInbound(hello(pod: "rogue", namespace: "weft-system", serviceAccount: "weft-control"))
        try assertRefused(channel, .forbiddenIdentity)
        // Nor anything else in its namespace, even for a pod the config lists there.
        let other = try connect()
        try other.writeInbound(hello(pod: "client-0", namespace: "weft-system", serviceAccount: "client"))
        try assertRefused(other, .forbiddenIdentity)
        XCTAssertEqual(hub.metrics.registry.emitToString().contains("weft_control_certificates_issued_total 0"), true)
    }

    func testUnknownPodIsNotIssuedWithTheSharedToken() throws {
        // `--pod evil --sa web` got sa/web before: a pod the config does not list.
        let channel = try connect()
        try channel.writeInbound(hello(pod: "evil", serviceAccount: "web"))
        guard case .error(let error) = try next(channel) else { return XCTFail("expected an error frame") }
        XCTAssertEqual(error.code, .forbiddenIdentity)
        XCTAssertTrue(error.message.contains("demo/evil is not in the config"), error.message)
        XCTAssertFalse(channel.isActive)
    }

    func testIssuanceIsRateLimitedPerPodAndAReconnectStillWorks() throws {
        let clock = FakeClock(1_000_000_000)
        hub = makeHub(
            limiter: IssuanceLimiter(
                perPod: .init(burst: 3, secondsPerToken: 10), perSource: .init(burst: 100, secondsPerToken: 1)),
            clock: { clock.now })
        for _ in 0..<3 {
            let channel = try connect()
            try channel.writeInbound(hello())
            guard case .identity = try next(channel) else { return XCTFail("a reconnect gets its identity again") }
        }
        let limited = try connect()
        try limited.writeInbound(hello())
        guard case .error(let error) = try next(limited) else { return XCTFail("expected rate_limited") }
        XCTAssertEqual(error.code, .rateLimited)
        XCTAssertTrue(
            error.message.contains("pod demo/client-0") && error.message.contains("retry in 10 s"), error.message)
        // Another pod from the same address is not held up by this one.
        let web = try connect()
        try web.writeInbound(hello(pod: "web-0", serviceAccount: "web"))
        guard case .identity = try next(web) else { return XCTFail("another pod is issued") }
        clock.advance(seconds: 10)
        let later = try connect()
        try later.writeInbound(hello())
        guard case .identity = try next(later) else { return XCTFail("issued again once a token came back") }
    }

    func testTooManyUnauthenticatedConnectionsAreClosedAtOnce() throws {
        hub = makeHub(maxUnauthenticated: 2)
        let first = try connect()
        let second = try connect()
        let third = try connect()
        XCTAssertTrue(first.isActive && second.isActive)
        XCTAssertFalse(third.isActive, "over the limit: closed before its handshake")
        XCTAssertEqual(hub.unauthenticated.value, 2)
        // A hello accepted leaves the count; so does a close.
        try first.writeInbound(hello())
        XCTAssertEqual(hub.unauthenticated.value, 1)
        _ = try? second.close().wait()
        XCTAssertEqual(hub.unauthenticated.value, 0)
        XCTAssertTrue(try connect().isActive)
    }

    func testHelloFrameLimitIsSmallerThanLaterFrames() throws {
        let channel = try connect(decoder: true)
        var header = ByteBuffer()
        header.writeInteger(UInt32(ControlProtocol.maxHelloFrameBytes + 1))
        try channel.writeInbound(header)
        try assertRefused(channel, .oversizedFrame)
    }

    func testOversizedFrameIsRefusedBeforeItsBody() throws {
        let channel = try connect(decoder: true)
        var header = ByteBuffer()
        header.writeInteger(UInt32(ControlProtocol.maxClientFrameBytes + 1))
        try channel.writeInbound(header)
        try assertRefused(channel, .oversizedFrame)
    }

    func testHelloTimeout() throws {
        let channel = try connect()
        loop.advanceTime(by: .seconds(9))
        XCTAssertTrue(channel.isActive)
        loop.advanceTime(by: .seconds(2))
        try assertRefused(channel, .helloTimeout)
    }

    func testOneBadConnectionLeavesOthersServed() throws {
        let good = try connect()
        try good.writeInbound(hello())
        _ = try next(good)
        guard case .config(let config) = try next(good) else { return XCTFail("config") }
        let bad = try connect()
        try bad.writeInbound(ByteBuffer(string: "garbage"))
        try assertRefused(bad, .invalidJSON)
        try good.writeInbound(ClientMessage.ack(Ack(version: 1, nonce: config.nonce)).encode())
        XCTAssertTrue(good.isActive)
        let statuses = hub.statusesOnLoop()
        XCTAssertEqual(statuses.count, 1)
    }

    func testSubscribeToAnUnknownServiceIsAnsweredAndNoted() throws {
        let channel = try connect()
        try channel.writeInbound(hello())
        _ = try next(channel)
        _ = try next(channel)
        try channel.writeInbound(ClientMessage.subscribe(Subscription(services: ["demo/nope"])).encode())
        guard case .delta(let delta) = try next(channel) else { return XCTFail("delta") }
        XCTAssertEqual(delta.upserts.endpoints?.first?.service, "demo/nope")
        guard case .error(let note) = try next(channel) else { return XCTFail("note") }
        XCTAssertEqual(note.code, .unknownService)
        XCTAssertFalse(note.fatal)
        XCTAssertTrue(channel.isActive)
        try channel.writeInbound(ClientMessage.subscribe(Subscription(services: ["not a key"])).encode())
        try assertRefused(channel, .invalidMessage)
    }

    /// A proxy that stops reading gets nothing queued while it is above the high-water
    /// mark, catches up when it drains, and is closed if it stays stuck for the grace.
    func testSlowConsumer() throws {
        let channel = try connect()
        try channel.writeInbound(hello())
        _ = try next(channel)
        _ = try next(channel)
        channel.isWritable = false
        channel.pipeline.fireChannelWritabilityChanged()
        let g2 = MeshFixtures.mesh(generation: 2, extraService: true, previous: hub.currentMesh)
        hub.publish(g2)
        loop.run()
        XCTAssertNil(try next(channel), "nothing is queued for a connection that is not reading")
        loop.advanceTime(by: .seconds(5))
        channel.isWritable = true
        channel.pipeline.fireChannelWritabilityChanged()
        guard case .delta(let delta) = try next(channel) else { return XCTFail("caught up when it drained") }
        XCTAssertEqual(delta.generation, 2)
        loop.advanceTime(by: .seconds(10))
        XCTAssertTrue(channel.isActive, "the timer was cancelled when it drained")

        channel.isWritable = false
        channel.pipeline.fireChannelWritabilityChanged()
        hub.publish(MeshFixtures.mesh(generation: 3, previous: g2))
        loop.run()
        loop.advanceTime(by: .seconds(9))
        XCTAssertTrue(channel.isActive)
        loop.advanceTime(by: .seconds(2))
        // No error frame: it would queue behind what the proxy is not reading.
        XCTAssertNil(try next(channel))
        XCTAssertFalse(channel.isActive, "closed as a slow consumer")
        var exposition: [UInt8] = []
        hub.metrics.registry.emit(into: &exposition)
        XCTAssertTrue(
            String(decoding: exposition, as: UTF8.self).contains(
                #"weft_control_protocol_errors_total{code="slow_consumer"} 1"#))
    }

    /// Swallows writes without completing them: a peer that stopped reading just before
    /// the error frame.
    private final class NeverWritten: ChannelOutboundHandler {
        typealias OutboundIn = ByteBuffer
        var pending: [EventLoopPromise<Void>] = []
        func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
            if let promise { pending.append(promise) }
        }
    }

    func testAnErrorFrameThatIsNeverWrittenStillCloses() throws {
        let channel = try connect()
        let blackHole = NeverWritten()
        try channel.pipeline.syncOperations.addHandler(blackHole, position: .first)
        try channel.writeInbound(ByteBuffer(string: "{not json"))
        XCTAssertTrue(channel.isActive, "waits for the error frame to be written")
        loop.advanceTime(by: ProxySessionHandler.errorFrameGrace - .milliseconds(1))
        XCTAssertTrue(channel.isActive)
        loop.advanceTime(by: .milliseconds(1))
        XCTAssertFalse(channel.isActive, "closed after the grace")
        for promise in blackHole.pending { promise.fail(ChannelError.ioOnClosedChannel) }
    }

    /// One sweep per loop drives heartbeats: a ping after 15 s without sending, a close
    /// after 45 s without receiving.
    func testHeartbeatsAndIdleTimeout() throws {
        hub.startSweeping()
        defer { hub.stopSweeping() }
        let channel = try connect()
        try channel.writeInbound(hello())
        _ = try next(channel)
        _ = try next(channel)
        loop.advanceTime(by: .seconds(16))
        guard case .ping = try next(channel) else { return XCTFail("a ping after 15 s of quiet") }
        loop.advanceTime(by: .seconds(20))
        try channel.writeInbound(ClientMessage.pong(Ping(id: 1)).encode())
        loop.advanceTime(by: .seconds(30))
        XCTAssertTrue(channel.isActive, "the pong counted as traffic")
        while case .ping = try next(channel) {}
        loop.advanceTime(by: .seconds(20))
        var message = try next(channel)
        while case .ping = message { message = try next(channel) }
        guard case .error(let error) = message else { return XCTFail("an error frame after 45 s without reads") }
        XCTAssertEqual(error.code, .idleTimeout)
        XCTAssertFalse(channel.isActive)
    }
}

/// A monotonic clock the test moves by hand.
final class FakeClock: Sendable {
    private let nanoseconds: Mutex<UInt64>
    init(_ start: UInt64) { nanoseconds = Mutex(start) }
    var now: UInt64 { nanoseconds.withLock { $0 } }
    func advance(seconds: UInt64) { nanoseconds.withLock { $0 += seconds * 1_000_000_000 } }
}
