/// The OpenMetrics text format (what Prometheus asks for with
/// `Accept: application/openmetrics-text`), the one that carries exemplars: a latency
/// bucket then names the trace of a request it counted.
public enum OpenMetrics {
    public static let contentType = "application/openmetrics-text; version=1.0.0; charset=utf-8"

    /// Whether a scrape's `Accept` header asks for OpenMetrics.
    public static func isAccepted(_ accept: String?) -> Bool {
        accept?.lowercased().contains("application/openmetrics-text") ?? false
    }

    /// Prometheus text (version 0.0.4, as swift-prometheus writes it) as OpenMetrics: a
    /// counter family is named without its samples' `_total` (a counter whose samples
    /// lack it becomes `unknown`); everything else is the same. The caller ends the
    /// exposition with `eof`.
    public static func fromPrometheusText(_ text: String) -> String {
        var counters: Set<Substring> = []
        for line in text.split(separator: "\n") where line.hasPrefix("# TYPE ") && line.hasSuffix(" counter") {
            counters.insert(line.dropFirst(7).dropLast(8))
        }
        var out = ""
        out.reserveCapacity(text.utf8.count + 64)
        for line in text.split(separator: "\n", omittingEmptySubsequences: true) {
            if line.hasPrefix("# TYPE ") || line.hasPrefix("# HELP ") {
                let rest = line.dropFirst(7)
                let name = rest.prefix { $0 != " " }
                if counters.contains(name) {
                    let kind = line.hasPrefix("# TYPE ") ? "TYPE" : "HELP"
                    if name.hasSuffix("_total") {
                        out += "# \(kind) \(name.dropLast(6))\(rest.dropFirst(name.count))\n"
                    } else if kind == "TYPE" {
                        out += "# TYPE \(name) unknown\n"
                    } else {
                        out += line + "\n"
                    }
                    continue
                }
            }
            out += line + "\n"
        }
        return out
    }

    public static let eof = "# EOF\n"
}
