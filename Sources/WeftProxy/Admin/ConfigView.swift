#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// What `GET /config` shows: the identity (never its key) and the config in force.
struct ConfigView: Encodable {
    struct IdentitySummary: Encodable {
        var spiffeId: String
        var notBefore: String
        var notAfter: String
    }

    var controlPlane: Bool
    var connected: Bool
    var identity: IdentitySummary?
    var version: Int?
    var generation: Int?
    var subscriptions: [String]
    var config: AppliedConfig?

    init(store: MeshStore?) {
        controlPlane = store != nil
        connected = store?.isConnected ?? false
        identity = store?.identity.map {
            IdentitySummary(spiffeId: $0.spiffeId, notBefore: $0.notBefore, notAfter: $0.notAfter)
        }
        let config = store?.config
        version = config?.version
        generation = config?.generation
        subscriptions = store?.subscriptions ?? []
        self.config = config
    }

    func json() -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        return ((try? encoder.encode(self)).map { Array($0) } ?? Array("{}".utf8)) + [0x0A]
    }
}
