import NIOCore
import NIOEmbedded
import NIOPosix
import NIOSSL
import WeftCore
import WeftIdentity
import XCTest

@testable import WeftProxy

/// Mesh TLS between two sidecars, both ends in memory (BoringSSL on each side): the
/// client offers a mesh ALPN and checks the server's SPIFFE ID; the server requires a
/// client certificate chaining to the bundle and learns the client's SPIFFE ID.
final class MeshTLSTests: XCTestCase {
    private static let ca = try! CertificateAuthority(files: CertificateAuthority.create(trustDomain: "cluster.local"))
    private static let otherCA = try! CertificateAuthority(
        files: CertificateAuthority.create(trustDomain: "cluster.local"))

    static func identity(_ sa: String, namespace: String = "demo", ca: CertificateAuthority = ca) throws
        -> WorkloadIdentity
    {
        let id = SPIFFEID(trustDomain: "cluster.local", namespace: namespace, serviceAccount: sa)
        let key = try WorkloadKey(identity: id)
        let issued = try ca.issue(csrPEM: key.csrPEM, for: id)
        return WorkloadIdentity(
            spiffeId: id.description, chainPEM: issued.chainPEM, keyPEM: key.privateKeyPEM,
            trustBundlePEM: ca.trustBundlePEM, notBefore: "", notAfter: "")
    }

    private struct Pair {
        let client: EmbeddedChannel
        let server: EmbeddedChannel
        let clientPeer: EventLoopFuture<MeshPeer>
        let serverPeer: EventLoopFuture<MeshPeer>
    }

    private func handshake(client: NIOSSLContext, expecting: String?, server: NIOSSLContext) throws -> Pair {
        let loop = EmbeddedEventLoop()
        let clientPeer = loop.makePromise(of: MeshPeer.self)
        let serverPeer = loop.makePromise(of: MeshPeer.self)
        let c = EmbeddedChannel(loop: loop)
        let s = EmbeddedChannel(loop: loop)
        try c.pipeline.syncOperations.addHandler(NIOSSLClientHandler(context: client, serverHostname: nil))
        try c.pipeline.syncOperations.addHandler(MeshPeerVerifier(expected: expecting, verified: clientPeer))
        try s.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: server))
        try s.pipeline.syncOperations.addHandler(MeshPeerVerifier(expected: nil, verified: serverPeer))
        let address = try SocketAddress(ipAddress: "127.0.0.1", port: 1)
        try s.connect(to: address).wait()
        try c.connect(to: address).wait()
        for _ in 0..<20 {
            var moved = false
            while let b = try c.readOutbound(as: ByteBuffer.self) {
                try? s.writeInbound(b)
                moved = true
            }
            while let b = try s.readOutbound(as: ByteBuffer.self) {
                try? c.writeInbound(b)
                moved = true
            }
            if !moved { break }
        }
        return Pair(client: c, server: s, clientPeer: clientPeer.futureResult, serverPeer: serverPeer.futureResult)
    }

    func testSidecarsAgreeOnTheProtocolAndLearnEachOthersIdentity() throws {
        let web = try MeshTLS(identity: Self.identity("web"))
        let api = try MeshTLS(identity: Self.identity("api"))
        let pair = try handshake(client: web.client(.http1), expecting: api.spiffeID, server: api.server)
        XCTAssertEqual(
            try pair.clientPeer.wait(), MeshPeer(spiffeID: "spiffe://cluster.local/ns/demo/sa/api", alpn: .http1))
        XCTAssertEqual(
            try pair.serverPeer.wait(), MeshPeer(spiffeID: "spiffe://cluster.local/ns/demo/sa/web", alpn: .http1))
        // Application bytes flow once verified (the verifier has left the pipeline).
        try pair.client.writeAndFlush(ByteBuffer(string: "GET / HTTP/1.1\r\n\r\n")).wait()
        while let b = try pair.client.readOutbound(as: ByteBuffer.self) { try pair.server.writeInbound(b) }
        XCTAssertEqual(
            try pair.server.readInbound(as: ByteBuffer.self).map { String(buffer: $0) }, "GET / HTTP/1.1\r\n\r\n")
    }

    func testAServerPresentingAnotherIdentityIsRefused() throws {
        let web = try MeshTLS(identity: Self.identity("web"))
        let intruder = try MeshTLS(identity: Self.identity("intruder"))
        let pair = try handshake(
            client: web.client(.http1), expecting: "spiffe://cluster.local/ns/demo/sa/api", server: intruder.server)
        XCTAssertThrowsError(try pair.clientPeer.wait()) { error in
            XCTAssertEqual(
                "\(error)",
                "expected peer identity spiffe://cluster.local/ns/demo/sa/api, presented spiffe://cluster.local/ns/demo/sa/intruder"
            )
        }
        XCTAssertFalse(pair.client.isActive, "the connection is closed")
    }

    func testAPeerOfAnotherCAOrWithoutACertificateFailsTheHandshake() throws {
        let web = try MeshTLS(identity: Self.identity("web"))
        let stranger = try MeshTLS(identity: Self.identity("api", ca: Self.otherCA))
        let unknownServer = try handshake(
            client: web.client(.http1), expecting: stranger.spiffeID, server: stranger.server)
        XCTAssertThrowsError(try unknownServer.clientPeer.wait(), "a server certificate chaining to an unknown root")
        let unknownClient = try handshake(client: stranger.client(.http1), expecting: web.spiffeID, server: web.server)
        XCTAssertThrowsError(try unknownClient.serverPeer.wait(), "a client certificate chaining to an unknown root")

        var anonymous = TLSConfiguration.makeClientConfiguration()
        anonymous.certificateVerification = .none
        anonymous.applicationProtocols = [MeshALPN.http1.rawValue]
        let noCertificate = try handshake(
            client: NIOSSLContext(configuration: anonymous), expecting: nil, server: web.server)
        XCTAssertThrowsError(try noCertificate.serverPeer.wait(), "our ALPN without a client certificate")
    }

    func testTheSPIFFEIDIsTheCertificatesSingleURI() throws {
        let identity = try Self.identity("web")
        let leaf = try NIOSSLCertificate.fromPEMBytes(Array(identity.chainPEM.utf8))[0]
        XCTAssertEqual(MeshPeerVerifier.spiffeID(of: leaf), "spiffe://cluster.local/ns/demo/sa/web")
        let root = try NIOSSLCertificate.fromPEMBytes(Array(Self.ca.trustBundlePEM.utf8))[0]
        XCTAssertNil(MeshPeerVerifier.spiffeID(of: root), "a CA has no SPIFFE URI")
    }
}

/// The HTTP/1 pool's mesh TLS origination against a real TLS server on loopback.
final class MeshTLSOriginationTests: XCTestCase {
    private func server(_ tls: MeshTLS, group: EventLoopGroup) throws -> Channel {
        try ServerBootstrap(group: group)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tls.server))
                }
            }
            .bind(host: "127.0.0.1", port: 0).wait()
    }

    private func connect(to server: Channel, expecting identity: String, as client: MeshTLS, loop: EventLoop)
        throws -> EventLoopFuture<HTTP1UpstreamConnection>
    {
        try loop.submit {
            let pool = HTTP1UpstreamPool(eventLoop: loop, config: ProxyConfig())
            return pool.connect(pool.bucket(for: server.localAddress!, meshIdentity: identity), tls: client)
        }.wait()
    }

    func testTheServerMustPresentTheExpectedIdentity() throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { try? group.syncShutdownGracefully() }
        let loop = group.next()
        let web = try MeshTLS(identity: MeshTLSTests.identity("web"))
        let api = try MeshTLS(identity: MeshTLSTests.identity("api"))
        let intruder = try MeshTLS(identity: MeshTLSTests.identity("intruder"))
        let good = try server(api, group: group)
        defer { try? good.close().wait() }
        let connection = try connect(to: good, expecting: api.spiffeID, as: web, loop: loop).wait()
        XCTAssertTrue(try loop.submit { connection.isActive }.wait(), "the expected identity: connected")

        let bad = try server(intruder, group: group)
        defer { try? bad.close().wait() }
        XCTAssertThrowsError(try connect(to: bad, expecting: api.spiffeID, as: web, loop: loop).wait()) { error in
            guard let mismatch = error as? MeshPeerMismatch else { return XCTFail("\(error)") }
            XCTAssertEqual(mismatch.presented, intruder.spiffeID)
            let failure = ConnectFailure(error, to: bad.localAddress!, meshIdentity: api.spiffeID)
            XCTAssertEqual(failure.kind, .peerIdentity)
            XCTAssertTrue(failure.detail.contains("presented \(intruder.spiffeID), expected \(api.spiffeID)"))
        }
    }

    func testAPlaintextServerFailsTheHandshakeAndAProxyWithoutIdentityDoesNotTry() throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { try? group.syncShutdownGracefully() }
        let loop = group.next()
        let web = try MeshTLS(identity: MeshTLSTests.identity("web"))
        let plain = try ServerBootstrap(group: group)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    // Answers the ClientHello with an HTTP response: not TLS.
                    try channel.pipeline.syncOperations.addHandler(PlainAnswer())
                }
            }
            .bind(host: "127.0.0.1", port: 0).wait()
        defer { try? plain.close().wait() }
        XCTAssertThrowsError(try connect(to: plain, expecting: web.spiffeID, as: web, loop: loop).wait()) { error in
            let failure = ConnectFailure(error, to: plain.localAddress!, meshIdentity: web.spiffeID)
            XCTAssertEqual(failure.kind, .tlsHandshake, "\(error)")
        }
        let noIdentity = try loop.submit {
            let pool = HTTP1UpstreamPool(eventLoop: loop, config: ProxyConfig())
            return pool.connect(pool.bucket(for: plain.localAddress!, meshIdentity: web.spiffeID), tls: nil)
        }.wait()
        XCTAssertThrowsError(try noIdentity.wait()) { error in
            XCTAssertEqual(
                ConnectFailure(error, to: plain.localAddress!, meshIdentity: web.spiffeID).kind, .tlsHandshake)
        }
    }

    private final class PlainAnswer: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        typealias OutboundOut = ByteBuffer
        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: "HTTP/1.1 400 Bad Request\r\n\r\n")))
                .whenComplete { _ in context.close(promise: nil) }
        }
    }
}
