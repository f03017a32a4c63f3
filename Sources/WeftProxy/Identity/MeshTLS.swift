import NIOCore
import NIOPosix
import NIOSSL
import NIOTLS

/// The sidecar's TLS for traffic between sidecars, made from its current identity: its
/// certificate chain and key, and the mesh's trust bundle.
///
/// - Clients (origination) offer one `MeshALPN` protocol, naming what the connection
///   carries; servers (termination) accept any of them. TLS 1.3 only.
/// - The chain is verified against the trust bundle inside the handshake (BoringSSL); the
///   SPIFFE ID is checked right after it, synchronously, by `MeshPeerVerifier`: no Task per
///   handshake. Host names play no part: identities name peers.
/// - A server requires a client certificate (`certificateVerification` other than `.none`
///   makes BoringSSL ask for one and fail without it).
///
/// Immutable: a renewed identity makes a new `MeshTLS`, which new connections use at once;
/// connections already open keep theirs.
final class MeshTLS: Sendable {
    let spiffeID: String
    let notAfter: String
    private let clients: [NIOSSLContext]  // by MeshALPN.allCases order
    let server: NIOSSLContext

    init(identity: WorkloadIdentity) throws {
        let chain = try NIOSSLCertificate.fromPEMBytes(Array(identity.chainPEM.utf8))
        let key = try NIOSSLPrivateKey(bytes: Array(identity.keyPEM.utf8), format: .pem)
        let roots = try NIOSSLCertificate.fromPEMBytes(Array(identity.trustBundlePEM.utf8))
        guard !chain.isEmpty else { throw MeshTLSError("the identity's chain holds no certificate") }
        guard !roots.isEmpty else { throw MeshTLSError("the trust bundle holds no certificate") }
        func configure(_ configuration: inout TLSConfiguration) {
            configuration.minimumTLSVersion = .tlsv13
            configuration.trustRoots = .certificates(roots)
            configuration.certificateVerification = .noHostnameVerification
        }
        clients = try MeshALPN.allCases.map { alpn in
            var configuration = TLSConfiguration.makeClientConfiguration()
            configure(&configuration)
            configuration.certificateChain = chain.map { .certificate($0) }
            configuration.privateKey = .privateKey(key)
            configuration.applicationProtocols = [alpn.rawValue]
            return try NIOSSLContext(configuration: configuration)
        }
        var server = TLSConfiguration.makeServerConfiguration(
            certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(key))
        configure(&server)
        server.applicationProtocols = MeshALPN.allCases.map(\.rawValue)
        self.server = try NIOSSLContext(configuration: server)
        spiffeID = identity.spiffeId
        notAfter = identity.notAfter
    }

    /// The client context offering `alpn`.
    func client(_ alpn: MeshALPN) -> NIOSSLContext {
        switch alpn {
        case .http1: return clients[0]
        case .http2: return clients[1]
        case .tcp: return clients[2]
        case .http1OverHTTP2: return clients[3]
        }
    }
}

struct MeshTLSError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// A mesh peer presented another identity than the control plane gave for that endpoint.
struct MeshPeerMismatch: Error, CustomStringConvertible {
    let expected: String
    /// Nil when its certificate carries no single URI SAN.
    let presented: String?

    var description: String {
        "expected peer identity \(expected), presented \(presented ?? "no SPIFFE ID")"
    }
}

/// What a verified mesh peer is: its SPIFFE ID and the mesh protocol the handshake agreed.
struct MeshPeer: Sendable, Equatable {
    let spiffeID: String
    let alpn: MeshALPN?
}

/// Placed after a `NIOSSLHandler`: once the handshake completes, reads the peer's SPIFFE ID
/// (the URI SAN of the leaf BoringSSL already verified against the trust bundle) and, when
/// an identity is expected (origination), checks it; then fulfils `verified` and removes
/// itself. A mismatch, a failed handshake or a close before it fails `verified` and closes
/// the connection.
final class MeshPeerVerifier: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = NIOAny

    private let expected: String?
    let verified: EventLoopPromise<MeshPeer>
    private var isDone = false

    init(expected: String?, verified: EventLoopPromise<MeshPeer>) {
        self.expected = expected
        self.verified = verified
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard case TLSUserEvent.handshakeCompleted(let negotiated) = event else {
            context.fireUserInboundEventTriggered(event)
            return
        }
        let presented = (try? context.pipeline.syncOperations.nioSSL_peerCertificate())
            .flatMap { $0 }.flatMap(Self.spiffeID(of:))
        if let expected, presented != expected {
            fail(context, MeshPeerMismatch(expected: expected, presented: presented))
            return
        }
        guard let presented else {
            fail(context, MeshPeerMismatch(expected: "a SPIFFE ID", presented: nil))
            return
        }
        isDone = true
        let peer = MeshPeer(spiffeID: presented, alpn: negotiated.flatMap(MeshALPN.init(rawValue:)))
        verified.succeed(peer)
        context.fireUserInboundEventTriggered(event)
        // The handlers behind learn the verified peer without reading the certificate again.
        context.fireUserInboundEventTriggered(peer)
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
    }

    /// Fails `verified` if nothing settled it yet (the connection never got to a handshake).
    func abandon(_ error: Error) {
        guard !isDone else { return }
        isDone = true
        verified.fail(error)
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        if isDone {
            context.fireErrorCaught(error)
        } else {
            fail(context, error)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        if !isDone { fail(context, ChannelError.eof) }
        context.fireChannelInactive()
    }

    private func fail(_ context: ChannelHandlerContext, _ error: Error) {
        guard !isDone else { return }
        isDone = true
        verified.fail(error)
        // The handlers behind (a terminator counting refusals) learn why.
        context.fireErrorCaught(error)
        context.close(promise: nil)
    }

    /// The single SPIFFE URI SAN of a certificate; nil when it has none or several.
    static func spiffeID(of certificate: NIOSSLCertificate) -> String? {
        var found: String?
        for name in certificate._subjectAlternativeNames() where name.nameType == .uri {
            if found != nil { return nil }
            found = name.contents.withUnsafeBufferPointer { String(decoding: $0, as: UTF8.self) }
        }
        guard let found, found.hasPrefix("spiffe://") else { return nil }
        return found
    }
}

@available(*, unavailable)
extension MeshPeerVerifier: Sendable {}

/// Why a connection to an endpoint failed, as an error answer names it: a plain connect
/// failure, a mesh TLS handshake that failed, or a peer with the wrong identity.
struct ConnectFailure {
    let kind: ProxyErrorKind
    let detail: String

    init(_ error: Error, to destination: SocketAddress, meshIdentity: String?) {
        let address = describe(destination)
        switch error {
        case let mismatch as MeshPeerMismatch:
            kind = .peerIdentity
            detail =
                "endpoint \(address) presented \(mismatch.presented ?? "no SPIFFE ID"), expected \(mismatch.expected)"
        case _ where meshIdentity != nil && (error is NIOSSLError || error is BoringSSLError || error is MeshTLSError):
            kind = .tlsHandshake
            detail = "mesh TLS with endpoint \(address) (expecting \(meshIdentity!)) failed: \(describe(error))"
        default:
            kind = .connectFailed
            detail = "connect to \(address) failed: \(describe(error))"
        }
    }
}

/// How a sidecar dials an endpoint: plain TCP, or, for a meshed endpoint (`meshIdentity`
/// set), mesh TLS offering `alpn`, the future succeeding only once the endpoint proved
/// that identity (`MeshPeerVerifier`), so nothing is sent before. Shared by the HTTP/1
/// pool, the HTTP/2 pool and opaque TCP; each adds its own handlers before the TLS
/// handler (`beforeTLS`: they see the encrypted bytes) and after it (`afterTLS`).
enum MeshDial {
    static func connect(
        _ bootstrap: ClientBootstrap, to address: SocketAddress, meshIdentity: String?, tls: MeshTLS?,
        alpn: MeshALPN, on eventLoop: EventLoop,
        beforeTLS: @escaping (ChannelPipeline.SynchronousOperations) throws -> Void = { _ in },
        afterTLS: @escaping (ChannelPipeline.SynchronousOperations) throws -> Void = { _ in },
        connected: (() -> Void)? = nil
    ) -> EventLoopFuture<Channel> {
        var verifier: MeshPeerVerifier?
        var context: NIOSSLContext?
        if let meshIdentity {
            guard let tls else {
                return eventLoop.makeFailedFuture(MeshTLSError("this proxy holds no identity yet for mesh TLS"))
            }
            verifier = MeshPeerVerifier(expected: meshIdentity, verified: eventLoop.makePromise(of: MeshPeer.self))
            context = tls.client(alpn)
        }
        return bootstrap.channelInitializer { channel in
            channel.eventLoop.makeCompletedFuture {
                let sync = channel.pipeline.syncOperations
                try beforeTLS(sync)
                if let context, let verifier {
                    try sync.addHandler(NIOSSLClientHandler(context: context, serverHostname: nil))
                    try sync.addHandler(verifier)
                }
                try afterTLS(sync)
            }
        }
        .connect(to: address)
        .flatMap { channel in
            connected?()  // TCP is up; the handshake (if any) follows
            guard let verifier else { return channel.eventLoop.makeSucceededFuture(channel) }
            return verifier.verified.futureResult.map { _ in channel }
        }
        .flatMapError { error in
            // A connect that failed never reached the handshake: settle the promise.
            verifier?.abandon(error)
            return eventLoop.makeFailedFuture(error)
        }
    }
}
