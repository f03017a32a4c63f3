@_exported import Prometheus

/// Metrics exposition shared by the proxy's and the control plane's admin servers.
///
/// Both sides keep their metrics in a `PrometheusCollectorRegistry` whose handles are
/// created once at start-up; the hot path only increments them.
public enum Telemetry {
    /// The Prometheus text exposition format's content type.
    public static let prometheusContentType = "text/plain; version=0.0.4; charset=utf-8"

    /// The `status_class` label for an HTTP status: "1xx" … "5xx".
    public static func statusClass(_ status: Int) -> StatusClass {
        StatusClass(rawValue: min(max(status / 100, 1), 5)) ?? .serverError
    }

    /// The five HTTP status classes, as metric label values.
    public enum StatusClass: Int, CaseIterable, Sendable {
        case informational = 1, success, redirection, clientError, serverError

        public var label: String { "\(rawValue)xx" }
    }

    /// Latency buckets, in seconds, for request histograms: from 0.5 ms to 30 s.
    public static let latencyBuckets: [Duration] = [
        .microseconds(500), .milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10),
        .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500),
        .seconds(1), .milliseconds(2500), .seconds(5), .seconds(10), .seconds(30),
    ]
}
