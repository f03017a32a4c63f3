import WeftTelemetry

/// The per-route handles of one (route, rule, backend): requests by status class and
/// their latency. Labels come from the config (route `namespace/name`, the rule's name or
/// index, the backend Service `namespace/name:port`), never from a request, so the label
/// set is bounded by the config. Made when a snapshot is installed, not per request; the
/// registry hands every loop the same handles.
final class RouteMetrics: Sendable {
    private let requests: [Counter]  // by status class
    private let duration: DurationHistogram

    init(registry: PrometheusCollectorRegistry, labels: RouteMetricLabels) {
        let base = [
            ("direction", "outbound"), ("route", labels.route), ("rule", labels.rule), ("backend", labels.backend),
        ]
        let requestName = MetricNameDescriptor(
            metricName: "weft_route_requests", unitName: "total",
            helpText: "Outbound requests by HTTPRoute, rule and backend, and response status class.")
        requests = Telemetry.StatusClass.allCases.map { status in
            registry.makeCounter(descriptor: requestName, labels: base + [("status_class", status.label)])
        }
        duration = registry.makeDurationHistogram(
            descriptor: MetricNameDescriptor(
                metricName: "weft_route_request_duration", unitName: "seconds",
                helpText: "Time from an outbound request's head to the end of its response, by route, rule and backend."
            ),
            labels: base, buckets: Telemetry.latencyBuckets)
    }

    func record(status: Int, duration: Duration) {
        requests[Telemetry.statusClass(status).rawValue - 1].increment()
        self.duration.record(duration)
    }
}

/// A route metric's labels, fixed when the snapshot is compiled. A Service port without
/// an HTTPRoute has route and rule "".
struct RouteMetricLabels: Sendable, Hashable {
    let route: String
    let rule: String
    let backend: String
}
