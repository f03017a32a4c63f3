import Logging
import NIOCore
import NIOPosix
import NIOSSL
import WeftProtocol

/// The push listener on :15012: TLS 1.3, then the frame codec, then one
/// `ProxySessionHandler` per connection.
///
/// Channel options keep an idle connection small (docs/ARCHITECTURE.md, "Control plane
/// memory"): a receive buffer that starts at 512 bytes and adapts, one read per wake-up,
/// and a bounded write buffer whose high-water mark is the slow-consumer limit.
public struct PushServer: Sendable {
    let hub: PushHub
    let tls: ServingCertificate
    let logger: Logger

    init(hub: PushHub, tls: ServingCertificate, logger: Logger) {
        self.hub = hub
        self.tls = tls
        self.logger = logger
    }

    /// Binds and returns the listening channel.
    func bind(host: String, port: Int, group: any EventLoopGroup) async throws -> any Channel {
        let hub = self.hub
        let tls = self.tls
        let logger = self.logger
        return try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 4096)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
            .childChannelOption(.maxMessagesPerRead, value: 1)
            .childChannelOption(
                .recvAllocator, value: AdaptiveRecvByteBufferAllocator(minimum: 64, initial: 512, maximum: 65536)
            )
            .childChannelOption(
                .writeBufferWaterMark,
                value: .init(low: PushHub.writeBufferHighWater / 16, high: PushHub.writeBufferHighWater)
            )
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandlers([
                        NIOSSLServerHandler(context: tls.current),
                        SmallFlushWriter(),
                        ByteToMessageHandler(
                            ControlFrameDecoder(
                                maxFrameBytes: ControlProtocol.maxClientFrameBytes,
                                maxFirstFrameBytes: ControlProtocol.maxHelloFrameBytes)),
                        ControlFrameEncoder(),
                        ProxySessionHandler(hub: hub, logger: logger),
                    ])
                }
            }
            .bind(host: host, port: port)
            .get()
    }

    /// The TLS settings of the push port: TLS 1.3 only, no client certificates (proxies
    /// authenticate in the hello; docs/protocol.md, "Transport").
    static func tlsContext(chainPEM: String, keyPEM: String) throws -> NIOSSLContext {
        let chain = try NIOSSLCertificate.fromPEMBytes(Array(chainPEM.utf8)).map {
            NIOSSLCertificateSource.certificate($0)
        }
        let key = try NIOSSLPrivateKey(bytes: Array(keyPEM.utf8), format: .pem)
        var configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: chain, privateKey: .privateKey(key))
        configuration.minimumTLSVersion = .tlsv13
        configuration.certificateVerification = .none
        return try NIOSSLContext(configuration: configuration)
    }
}
