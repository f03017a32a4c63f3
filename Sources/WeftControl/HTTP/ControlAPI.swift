import Synchronization
import WeftProtocol
import WeftTelemetry

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// The control plane's HTTP answers on :15014, independent of the HTTP codec.
///
/// - `GET /live`, `GET /ready` (ready once the CA, the config and the push port are up)
/// - `GET /metrics`: Prometheus text
/// - `GET /api/v1/status`: config state and a summary of proxies (`weftctl check`)
/// - `GET /api/v1/proxies`: every connected proxy's status
/// - `GET /api/v1/proxies/<namespace>/<pod>`: one proxy's status and the config it was
///   sent, rebuilt from the current generation (`weftctl config`)
public final class ControlAPI: Sendable {
    struct Response: Sendable {
        var status: Int
        var contentType: String
        var body: [UInt8]

        static func text(_ status: Int, _ text: String) -> Response {
            Response(status: status, contentType: "text/plain; charset=utf-8", body: Array(text.utf8))
        }

        static func json<T: Encodable>(_ value: T) -> Response {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
            let body = (try? encoder.encode(value)).map { Array($0) } ?? Array("{}".utf8)
            return Response(status: 200, contentType: "application/json", body: body + [0x0A])
        }
    }

    let hub: PushHub
    let metrics: ControlMetrics
    private let configState: Mutex<ConfigStatus>
    private let readiness = Mutex(false)
    let access: APIAccess
    let certificateLifetimeSeconds: Int?

    init(
        hub: PushHub, metrics: ControlMetrics, config: ConfigStatus, access: APIAccess = .loopback,
        certificateLifetimeSeconds: Int? = nil
    ) {
        self.certificateLifetimeSeconds = certificateLifetimeSeconds
        self.access = access
        self.hub = hub
        self.metrics = metrics
        self.configState = Mutex(config)
    }

    var configStatus: ConfigStatus { configState.withLock { $0 } }

    func updateConfigStatus(_ change: (inout ConfigStatus) -> Void) {
        configState.withLock { change(&$0) }
    }

    func markReady() { readiness.withLock { $0 = true } }

    /// - Parameter fromLoopback: whether the request came from a loopback address; with
    ///   `APIAccess.loopback`, `/api/` answers nothing else (403).
    func respond(method: String, path: String, fromLoopback: Bool = true) async -> Response {
        let parts = path.split(separator: "/").map(String.init)
        if parts.first == "api", access == .loopback, !fromLoopback {
            return .text(
                403,
                "\(path) answers only on loopback (weftctl in the control plane's pod, or through kubectl port-forward); start weft-control with --api-access any to open it\n"
            )
        }
        let known =
            ["live", "ready", "metrics", "api/v1/status", "api/v1/proxies"].contains(parts.joined(separator: "/"))
            || (parts.count == 5 && parts[0...2] == ["api", "v1", "proxies"])
        guard known else {
            return .text(
                404,
                "no endpoint \(path); try /live, /ready, /metrics, /api/v1/status, /api/v1/proxies, /api/v1/proxies/<namespace>/<pod>\n"
            )
        }
        guard method == "GET" || method == "HEAD" else {
            return .text(405, "method \(method) not allowed on \(path)\n")
        }
        switch parts.joined(separator: "/") {
        case "live":
            return .text(200, "live\n")
        case "ready":
            return readiness.withLock { $0 } ? .text(200, "ready\n") : .text(503, "not ready\n")
        case "metrics":
            var bytes: [UInt8] = []
            metrics.registry.emit(into: &bytes)
            return Response(status: 200, contentType: Telemetry.prometheusContentType, body: bytes)
        case "api/v1/status":
            return .json(await status())
        case "api/v1/proxies":
            return .json(await hub.statuses())
        default:
            let (namespace, pod) = (parts[3], parts[4])
            guard let (status, config) = await hub.config(namespace: namespace, pod: pod) else {
                return .text(404, "no connected proxy \(namespace)/\(pod)\n")
            }
            var body = Array("{\"status\":".utf8)
            body += Response.json(status).body
            body += Array(",\"config\":".utf8)
            body += config
            body += Array("}\n".utf8)
            return Response(status: 200, contentType: "application/json", body: body)
        }
    }

    func status() async -> ControlStatus {
        let config = configStatus
        let proxies = await hub.statuses()
        let generation = hub.currentMesh.generation
        let upToDate = proxies.filter { $0.ackedGeneration == generation && $0.ackedVersion == $0.version }
        let isNacked: (ProxyStatus) -> Bool = { $0.lastNack != nil && $0.ackedVersion < $0.version }
        let nacked = proxies.filter(isNacked)
        let behind = proxies.filter {
            !($0.ackedGeneration == generation && $0.ackedVersion == $0.version) && !isNacked($0)
        }
        return ControlStatus(
            config: config, trustDomain: hub.currentMesh.mesh.entry.trustDomain,
            proxies: .init(
                connected: proxies.count, upToDate: upToDate.count,
                behind: behind.map { "\($0.namespace)/\($0.pod)" },
                nacked: nacked.map { "\($0.namespace)/\($0.pod): \($0.lastNack ?? "")" }),
            certificateLifetimeSeconds: certificateLifetimeSeconds)
    }
}
