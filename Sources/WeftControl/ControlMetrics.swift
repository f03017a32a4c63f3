import WeftProtocol
import WeftTelemetry

/// Every metric handle of the control plane, created once at start-up.
public final class ControlMetrics: Sendable {
    public let registry: PrometheusCollectorRegistry
    let proxiesConnected: Gauge
    let configPushLatency: DurationHistogram
    let deltaPushLatency: DurationHistogram
    let acks: Counter
    let nacks: Counter
    let configsRejected: Counter
    let configGeneration: Gauge
    let certificatesIssued: Counter
    let certificatesRenewed: Counter
    let pushes: Counter
    /// Connections closed at once because too many had not said hello yet.
    let connectionsRefused: Counter
    /// Spans the OTLP intake kept, and rejected (invalid ids).
    let spansAccepted: Counter
    let spansRejected: Counter
    /// Exports the intake refused with 429 (a client over `--otlp-rate-limit`).
    let exportsLimited: Counter
    /// Spans sent on to `--otlp-forward`'s collector, and dropped on the way.
    let spansForwarded: Counter
    let spansForwardDropped: Counter
    /// What the trace store holds: traces, the bytes they are charged, traces evicted.
    let traceStoreTraces: Gauge
    let traceStoreBytes: Gauge
    let tracesEvicted: Gauge
    private let protocolErrors: [ProtocolError.Code: Counter]

    public init(registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry()) {
        self.registry = registry
        proxiesConnected = registry.makeGauge(
            descriptor: .init(
                metricName: "weft_control_proxies_connected",
                helpText: "Proxies connected to this control plane, past their hello."))
        let latency = MetricNameDescriptor(
            metricName: "weft_control_push_latency", unitName: "seconds",
            helpText:
                "From an accepted config change (delta) or a hello (config) until the proxy acked the push that carried it."
        )
        let buckets: [Duration] = [
            .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100),
            .milliseconds(250), .milliseconds(500), .seconds(1), .milliseconds(2500), .seconds(5), .seconds(10),
        ]
        configPushLatency = registry.makeDurationHistogram(
            descriptor: latency, labels: [("kind", "config")], buckets: buckets)
        deltaPushLatency = registry.makeDurationHistogram(
            descriptor: latency, labels: [("kind", "delta")], buckets: buckets)
        acks = registry.makeCounter(
            descriptor: .init(metricName: "weft_control_acks", unitName: "total", helpText: "Pushes acked by proxies."))
        nacks = registry.makeCounter(
            descriptor: .init(
                metricName: "weft_control_nacks", unitName: "total",
                helpText: "Pushes refused by proxies; they stay on their last good config."))
        configsRejected = registry.makeCounter(
            descriptor: .init(
                metricName: "weft_control_config_rejected", unitName: "total",
                helpText: "Config changes that failed validation; the last good config stayed in force."))
        configGeneration = registry.makeGauge(
            descriptor: .init(
                metricName: "weft_control_config_generation", helpText: "The generation of the config in force."))
        certificatesIssued = registry.makeCounter(
            descriptor: .init(
                metricName: "weft_control_certificates_issued", unitName: "total",
                helpText: "Workload certificates issued (hello and renew)."))
        spansAccepted = registry.makeCounter(
            descriptor: .init(
                metricName: "weft_control_spans_received", unitName: "total",
                helpText: "Spans the OTLP/HTTP intake (:4318) accepted into the trace store."))
        spansRejected = registry.makeCounter(
            descriptor: .init(
                metricName: "weft_control_spans_rejected", unitName: "total",
                helpText: "Spans the OTLP/HTTP intake rejected (a trace or span id of the wrong length or all zero)."))
        exportsLimited = registry.makeCounter(
            descriptor: .init(
                metricName: "weft_control_otlp_exports_limited", unitName: "total",
                helpText: "Exports the OTLP/HTTP intake answered 429: their client was over --otlp-rate-limit."))
        spansForwarded = registry.makeCounter(
            descriptor: .init(
                metricName: "weft_control_otlp_forwarded_spans", unitName: "total",
                helpText: "Spans sent on to the --otlp-forward collector, which took them."))
        spansForwardDropped = registry.makeCounter(
            descriptor: .init(
                metricName: "weft_control_otlp_forward_dropped_spans", unitName: "total",
                helpText:
                    "Spans not forwarded: the forward queue was full, or the collector failed or did not answer."))
        traceStoreTraces = registry.makeGauge(
            descriptor: .init(metricName: "weft_control_trace_store_traces", helpText: "Traces the store keeps."))
        traceStoreBytes = registry.makeGauge(
            descriptor: .init(
                metricName: "weft_control_trace_store_bytes",
                helpText: "Bytes the kept traces are charged against --trace-memory (an estimate of their memory)."))
        tracesEvicted = registry.makeGauge(
            descriptor: .init(
                metricName: "weft_control_traces_evicted",
                helpText: "Traces evicted (oldest first) to stay within --trace-memory, since start."))
        connectionsRefused = registry.makeCounter(
            descriptor: .init(
                metricName: "weft_control_connections_refused", unitName: "total",
                helpText: "Push connections closed at once because too many had not been authenticated yet."))
        certificatesRenewed = registry.makeCounter(
            descriptor: .init(
                metricName: "weft_control_certificates_renewed", unitName: "total",
                helpText: "Workload certificates issued for a renew."))
        pushes = registry.makeCounter(
            descriptor: .init(
                metricName: "weft_control_pushes", unitName: "total", helpText: "Config and delta frames sent."))
        let errors = MetricNameDescriptor(
            metricName: "weft_control_protocol_errors", unitName: "total",
            helpText:
                "Proxy connections closed for a protocol error, by code (with an error frame where the proxy still reads)."
        )
        var byCode: [ProtocolError.Code: Counter] = [:]
        for code in ProtocolError.Code.allCases {
            byCode[code] = registry.makeCounter(descriptor: errors, labels: [("code", code.rawValue)])
        }
        protocolErrors = byCode
    }

    func protocolError(_ code: ProtocolError.Code) {
        protocolErrors[code]?.increment()
    }
}
