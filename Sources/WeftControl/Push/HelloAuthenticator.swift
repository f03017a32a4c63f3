import WeftProtocol

/// Decides whether a hello's credentials prove the workload it claims to be.
///
/// Standalone mode uses a shared token (`SharedTokenAuthenticator`). The Kubernetes mode
/// will send the projected ServiceAccount token (audience `weft`) to TokenReview and
/// compare the namespace and service account it returns with `node`, which is why the
/// result names the workload rather than returning a Bool. TokenReview is a network call:
/// when it lands, this requirement becomes `async` and the hello completes through
/// `makeFutureWithTask` back on the connection's loop, as a renewal's proof check already
/// does (`ProxySessionHandler`). The shared token stays synchronous until then, so a hello
/// costs no extra hop today.
public protocol HelloAuthenticator: Sendable {
    /// - Returns: what the credentials prove.
    /// - Throws: `ProtocolError.unauthenticated` naming the pod, never echoing the token.
    func authenticate(token: String, node: Node) throws(ProtocolError) -> ProvenWorkload
}

/// What a hello's credentials prove about the caller.
public struct ProvenWorkload: Sendable, Equatable {
    /// How far the credentials go.
    public enum Strength: Sendable, Equatable {
        /// Membership of the mesh only (the shared token): the hello's claims are believed
        /// only where the config backs them, so only pods in the config are issued, with
        /// their recorded service account.
        case meshMember
        /// The workload itself (TokenReview of a projected ServiceAccount token): the
        /// namespace and service account are the token's, not the hello's.
        case workload
    }

    public var namespace: String
    public var serviceAccount: String
    public var strength: Strength

    public init(namespace: String, serviceAccount: String, strength: Strength) {
        self.namespace = namespace
        self.serviceAccount = serviceAccount
        self.strength = strength
    }
}

/// Accepts one shared token, read from `--token-file`.
///
/// A shared token proves membership of the mesh, not a particular workload
/// (`.meshMember`): the push server then issues only to pods in the config, with the
/// service account recorded there. Compared in constant time.
public struct SharedTokenAuthenticator: HelloAuthenticator {
    private let token: [UInt8]

    /// - Throws: when the token is empty after trimming whitespace.
    public init(token: String) throws(ProtocolError) {
        let trimmed = Self.trimmed(token)
        guard !trimmed.isEmpty else { throw ProtocolError(.unauthenticated, "the token file is empty") }
        self.token = Array(trimmed.utf8)
    }

    public func authenticate(token: String, node: Node) throws(ProtocolError) -> ProvenWorkload {
        let offered = Array(token.utf8)
        var difference = UInt8(offered.count == self.token.count ? 0 : 1)
        for i in 0..<self.token.count {
            difference |= self.token[i] ^ (i < offered.count ? offered[i] : 0)
        }
        guard difference == 0 else {
            throw ProtocolError(.unauthenticated, "the token of pod \(node.namespace)/\(node.pod) is not accepted")
        }
        return ProvenWorkload(namespace: node.namespace, serviceAccount: node.serviceAccount, strength: .meshMember)
    }

    private static func trimmed(_ text: String) -> String {
        var s = Substring(text)
        while let c = s.first, c.isWhitespace { s.removeFirst() }
        while let c = s.last, c.isWhitespace { s.removeLast() }
        return String(s)
    }
}
