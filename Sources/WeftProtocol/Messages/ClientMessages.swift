/// The proxy's first frame: who it is, how it proves it, and the CSR for its identity.
public struct Hello: Codable, Hashable, Sendable {
    /// The protocol version the proxy speaks (`ControlProtocol.version`).
    public var `protocol`: Int
    /// The proxy's build, for `weftctl check`; free text.
    public var proxyVersion: String?
    public var node: Node
    /// The bootstrap credential: a projected ServiceAccount token in Kubernetes, the shared
    /// token in standalone mode.
    public var token: String
    /// A PEM PKCS#10 CSR for `spiffe://<trust-domain>/ns/<namespace>/sa/<serviceAccount>`,
    /// signed by a P-256 key the proxy made and keeps.
    public var csr: String
    /// Services (`namespace/name`) to subscribe at once, e.g. after a reconnect.
    public var subscriptions: [String]?

    public init(
        protocol: Int = ControlProtocol.version, proxyVersion: String? = nil, node: Node, token: String, csr: String,
        subscriptions: [String]? = nil
    ) {
        self.protocol = `protocol`
        self.proxyVersion = proxyVersion
        self.node = node
        self.token = token
        self.csr = csr
        self.subscriptions = subscriptions
    }
}

/// The pod a proxy runs in, as the Downward API reports it.
public struct Node: Codable, Hashable, Sendable {
    public var pod: String
    public var namespace: String
    public var serviceAccount: String
    public var ip: String
    public var labels: [String: String]

    public init(pod: String, namespace: String, serviceAccount: String, ip: String, labels: [String: String] = [:]) {
        self.pod = pod
        self.namespace = namespace
        self.serviceAccount = serviceAccount
        self.ip = ip
        self.labels = labels
    }
}

/// Accepts a `config` or `delta`: the proxy now runs on `version`.
public struct Ack: Codable, Hashable, Sendable {
    public var version: Int
    public var nonce: String

    public init(version: Int, nonce: String) {
        self.version = version
        self.nonce = nonce
    }
}

/// Refuses a `config` or `delta`; the proxy stays on its previous version.
public struct Nack: Codable, Hashable, Sendable {
    public var version: Int
    public var nonce: String
    /// Why, naming the entry and field.
    public var error: String
    /// A stable code for the refusal (`invalid_regex`, `invalid_route`, `base_mismatch`…);
    /// absent from proxies older than it.
    public var code: String?

    public init(version: Int, nonce: String, error: String, code: String? = nil) {
        self.version = version
        self.nonce = nonce
        self.error = error
        self.code = code
    }
}

/// Starts (or, as `unsubscribe`, stops) deltas for destinations: each `namespace/name`.
public struct Subscription: Codable, Hashable, Sendable {
    public var services: [String]

    public init(services: [String]) { self.services = services }
}

/// Asks for a new certificate, proving possession of the current one.
///
/// `signature` is an ECDSA P-256 SHA-256 signature (DER, base64) made with the current
/// certificate's key over `RenewProof.signedBytes(session:csr:)`, which binds the proof to
/// this connection's session so it cannot be replayed elsewhere.
public struct Renew: Codable, Hashable, Sendable {
    public var csr: String
    /// The current chain, PEM, leaf first.
    public var certificate: String
    public var signature: String

    public init(csr: String, certificate: String, signature: String) {
        self.csr = csr
        self.certificate = certificate
        self.signature = signature
    }
}

/// The bytes a `renew` signature covers.
public enum RenewProof {
    public static func signedBytes(session: String, csr: String) -> [UInt8] {
        Array("weft-renew-v1\n\(session)\n\(csr)".utf8)
    }
}

/// A heartbeat; answered by a `pong` with the same id. Sent by either side.
public struct Ping: Codable, Hashable, Sendable {
    public var id: Int
    /// A proxy's mesh TLS handshake failures so far (optional; a proxy sends it once it has
    /// any): `weftctl check` reports proxies whose peers fail handshakes.
    public var tlsFailures: TLSFailureReport?

    public init(id: Int, tlsFailures: TLSFailureReport? = nil) {
        self.id = id
        self.tlsFailures = tlsFailures
    }
}

/// Mesh TLS handshakes a proxy refused or failed since it started.
public struct TLSFailureReport: Codable, Hashable, Sendable {
    /// Callers whose handshake this proxy refused or that did not finish.
    public var inbound: Int
    /// Endpoints this proxy could not complete mesh TLS with (handshake or wrong identity).
    public var outbound: Int
    /// The last failure in words (peer, expected identity, error).
    public var last: String?

    public init(inbound: Int, outbound: Int, last: String?) {
        self.inbound = inbound
        self.outbound = outbound
        self.last = last
    }
}

/// A refusal or failure. With `fatal` true the sender closes the connection after it.
public struct ErrorMessage: Codable, Hashable, Sendable {
    public var code: ProtocolError.Code
    public var message: String
    public var fatal: Bool

    public init(code: ProtocolError.Code, message: String, fatal: Bool) {
        self.code = code
        self.message = message
        self.fatal = fatal
    }

    public init(_ error: ProtocolError, fatal: Bool = true) {
        self.init(code: error.code, message: error.reason, fatal: fatal)
    }
}

/// The one field every version's hello keeps, read before the rest (docs/protocol.md §15).
struct HelloVersion: Decodable {
    var `protocol`: Int
}
