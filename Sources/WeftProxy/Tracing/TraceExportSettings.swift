import WeftTelemetry

/// Where and as whom a sidecar exports its spans (issue 12): the control plane's OTLP/HTTP
/// intake, and the resource attributes every span of this pod carries.
public struct TraceExportSettings: Sendable {
    /// The intake's host and port (`POST /v1/traces`, protobuf).
    public let host: String
    public let port: Int
    /// OpenTelemetry resource attributes: `service.name`, `k8s.pod.name`,
    /// `k8s.namespace.name`, and ours (`weft.identity`).
    public let resource: [(String, SpanRecord.Value)]
    /// This pod's SPIFFE ID: the source of its CLIENT spans, the destination of its SERVER spans.
    public let identity: String

    public init(host: String, port: Int, serviceName: String, pod: String, namespace: String, identity: String) {
        self.host = host
        self.port = port
        self.identity = identity
        self.resource = [
            ("service.name", .string(serviceName)), ("k8s.pod.name", .string(pod)),
            ("k8s.namespace.name", .string(namespace)), ("weft.identity", .string(identity)),
            ("telemetry.sdk.name", .string("weft-proxy")), ("telemetry.sdk.language", .string("swift")),
        ]
    }

    /// OpenTelemetry's `service.name` for a pod: its `app.kubernetes.io/name` label, else
    /// its `app` label, else the pod's name.
    public static func serviceName(labels: [String: String], pod: String) -> String {
        labels["app.kubernetes.io/name"] ?? labels["app"] ?? pod
    }
}
