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
/// - `GET /api/v1/traces/<trace-id>`: a kept trace as OTLP JSON (`{"resourceSpans": [...]}`)
/// - `GET /api/v1/traces?service=&minDuration=&status=&order=&limit=`: trace summaries
/// - `GET /traces`: the trace page (`TracesPage`), a waterfall per trace
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
    let traces: SpanStore?
    private let configState: Mutex<ConfigStatus>
    private let readiness = Mutex(false)
    let access: APIAccess
    let certificateLifetimeSeconds: Int?

    init(
        hub: PushHub, metrics: ControlMetrics, traces: SpanStore? = nil, config: ConfigStatus,
        access: APIAccess = .loopback, certificateLifetimeSeconds: Int? = nil
    ) {
        self.traces = traces
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
    func respond(method: String, path: String, query: String = "", fromLoopback: Bool = true) async -> Response {
        let parts = path.split(separator: "/").map(String.init)
        if parts.first == "api", access == .loopback, !fromLoopback {
            return .text(
                403,
                "\(path) answers only on loopback (weftctl in the control plane's pod, or through kubectl port-forward); start weft-control with --api-access any to open it\n"
            )
        }
        let known =
            ["live", "ready", "metrics", "traces", "api/v1/status", "api/v1/proxies", "api/v1/traces"].contains(
                parts.joined(separator: "/"))
            || (parts.count == 5 && parts[0...2] == ["api", "v1", "proxies"])
            || (parts.count == 4 && parts[0...2] == ["api", "v1", "traces"])
        guard known else {
            return .text(
                404,
                "no endpoint \(path); try /live, /ready, /metrics, /traces, /api/v1/status, /api/v1/proxies, /api/v1/proxies/<namespace>/<pod>, /api/v1/traces, /api/v1/traces/<trace-id>\n"
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
        case "traces":
            return Response(status: 200, contentType: "text/html; charset=utf-8", body: Array(TracesPage.html.utf8))
        case "api/v1/status":
            return .json(await status())
        case "api/v1/proxies":
            return .json(await hub.statuses())
        case "api/v1/traces":
            return traceList(query: query)
        case _ where parts.count == 4 && parts[2] == "traces":
            guard let traces else { return .text(404, "this control plane keeps no traces\n") }
            guard parts[3].utf8.count == 32, Hex.bytes(parts[3]) != nil else {
                return .text(400, "\(parts[3]) is not a trace id (32 hex digits)\n")
            }
            guard let resourceSpans = traces.trace(parts[3]) else {
                return .text(404, "no trace \(parts[3]) is kept (never received, or evicted)\n")
            }
            return Response(status: 200, contentType: "application/json", body: OTLPCodec.json(resourceSpans) + [0x0A])
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

    /// `service`, `minDuration` (`30ms`, `2s`, or nanoseconds), `status` (`error`, `ok`),
    /// `order` (`recent`, `slowest`), `limit` (1…1000, default 20).
    private func traceList(query: String) -> Response {
        guard let traces else { return .json([SpanStore.Summary]()) }
        var service: String?
        var minimum: UInt64 = 0
        var status: String?
        var order = SpanStore.Order.recent
        var limit = 20
        for pair in query.split(separator: "&") where !pair.isEmpty {
            let kv = pair.split(separator: "=", maxSplits: 1).map(String.init)
            let key = kv[0]
            let value = kv.count > 1 ? (kv[1].removingPercentEncoding ?? kv[1]) : ""
            switch key {
            case "service": service = value.isEmpty ? nil : value
            case "minDuration":
                guard let nanos = Self.nanoseconds(value) else {
                    return .text(400, "minDuration: \(value) is not a duration (e.g. 30ms, 2s)\n")
                }
                minimum = nanos
            case "status":
                guard ["error", "ok", ""].contains(value) else {
                    return .text(400, "status: \(value) is not error or ok\n")
                }
                status = value.isEmpty ? nil : value
            case "order":
                guard let known = SpanStore.Order(rawValue: value) else {
                    return .text(400, "order: \(value) is not recent or slowest\n")
                }
                order = known
            case "limit":
                guard let n = Int(value), (1...1000).contains(n) else {
                    return .text(400, "limit: \(value) is not between 1 and 1000\n")
                }
                limit = n
            default:
                return .text(400, "unknown parameter \(key); use service, minDuration, status, order, limit\n")
            }
        }
        return .json(
            traces.list(service: service, minDurationNanos: minimum, status: status, order: order, limit: limit))
    }

    /// `250us`, `30ms`, `2s`, `1m`, or a number of nanoseconds.
    static func nanoseconds(_ text: String) -> UInt64? {
        for (suffix, scale) in [("us", 1_000.0), ("ms", 1_000_000.0), ("s", 1e9), ("m", 60e9)]
        where text.hasSuffix(suffix) {
            guard let value = Double(text.dropLast(suffix.count)), value >= 0, value * scale < 1.8e19 else {
                return nil
            }
            return UInt64(value * scale)
        }
        return UInt64(text)
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
