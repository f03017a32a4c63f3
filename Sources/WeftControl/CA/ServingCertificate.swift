import Logging
import NIOSSL
import Synchronization
import WeftCore
import WeftIdentity

/// The push port's own certificate: issued by the mesh CA for the control plane's SPIFFE
/// ID at start-up, and re-issued every 12 hours (24 h lifetime), so it never expires under
/// a running control plane. New connections pick up the new one; open ones keep theirs.
final class ServingCertificate: Sendable {
    private let ca: CertificateAuthority
    private let identity: SPIFFEID
    private let logger: Logger
    private let context: Mutex<NIOSSLContext>

    static let lifetime: Duration = .seconds(86_400)
    static let renewEvery: Duration = .seconds(43_200)

    init(ca: CertificateAuthority, identity: SPIFFEID, logger: Logger) throws {
        self.ca = ca
        self.identity = identity
        self.logger = logger
        self.context = Mutex(try Self.issue(ca: ca, identity: identity))
    }

    var current: NIOSSLContext { context.withLock { $0 } }

    private static func issue(ca: CertificateAuthority, identity: SPIFFEID) throws -> NIOSSLContext {
        let key = try WorkloadKey(identity: identity)
        let issued = try ca.issue(csrPEM: key.csrPEM, for: identity, lifetime: lifetime)
        return try PushServer.tlsContext(chainPEM: issued.chainPEM, keyPEM: key.privateKeyPEM)
    }

    func renewPeriodically() async {
        while !Task.isCancelled {
            do {
                try await Task.sleep(for: Self.renewEvery)
                let fresh = try Self.issue(ca: ca, identity: identity)
                context.withLock { $0 = fresh }
                logger.info("serving certificate renewed", metadata: ["identity": "\(identity)"])
            } catch is CancellationError {
                return
            } catch {
                logger.error("serving certificate renewal failed; retrying in 12 h", metadata: ["error": "\(error)"])
            }
        }
    }
}
