import WeftCore

extension DocumentReader {
    /// weft.dev/v1alpha1 MeshConfig; every field has a default.
    mutating func decodeMeshConfig(_ root: ObjectNode) -> MeshConfig? {
        let start = errors.count
        let meta = metadata(root, rule: .subdomain)
        let defaults = MeshConfig.default
        var trustDomain = defaults.trustDomain
        var clusterDomain = defaults.clusterDomain
        var mode = defaults.mtlsMode
        var http1Transport = defaults.http1Transport
        var budget = defaults.retryBudget
        var tracing = defaults.tracing
        var outbound = defaults.outboundPolicy
        if let spec = object(root, "spec") {
            let domainExpectation = "must be a lowercase DNS name such as cluster.local"
            if let node = spec.field("trustDomain"),
                let value = validated(node, domainExpectation, NameRules.isDNS1123Subdomain)
            {
                trustDomain = value
            }
            if let node = spec.field("clusterDomain"),
                let value = validated(node, domainExpectation, NameRules.isDNS1123Subdomain)
            {
                clusterDomain = value
            }
            if let mtls = object(spec, "mtls") {
                mode = oneOf(mtls, "mode", ["STRICT": .strict, "PERMISSIVE": .permissive], default: mode) ?? mode
                http1Transport =
                    oneOf(mtls, "http1Transport", ["HTTP1": .http1, "HTTP2": .http2], default: http1Transport)
                    ?? http1Transport
            }
            if let retry = object(spec, "retryBudget") {
                var ratio = budget.ratio
                if let value = double(retry, "ratio") {
                    if (0...1).contains(value) {
                        ratio = value
                    } else {
                        fail(
                            .invalidField, retry.path("ratio"), "must be between 0 and 1, got \(value)",
                            line: retry.field("ratio")?.line)
                    }
                }
                var minimum = budget.minRetriesPerSecond
                if let value = int(retry, "minRetriesPerSecond") {
                    if value >= 0 {
                        minimum = value
                    } else {
                        fail(
                            .invalidField, retry.path("minRetriesPerSecond"), "must be ≥ 0, got \(value)",
                            line: retry.field("minRetriesPerSecond")?.line)
                    }
                }
                var window = budget.window
                if let value = duration(retry, "window") {
                    if value > .zero {
                        window = value
                    } else {
                        fail(
                            .invalidField, retry.path("window"), "must be longer than 0s",
                            line: retry.field("window")?.line)
                    }
                }
                budget = MeshConfig.RetryBudget(ratio: ratio, minRetriesPerSecond: minimum, window: window)
            }
            if let trace = object(spec, "tracing"), let value = double(trace, "sampling") {
                if (0...1).contains(value) {
                    tracing = MeshConfig.Tracing(sampling: value)
                } else {
                    fail(
                        .invalidField, trace.path("sampling"), "must be between 0 and 1, got \(value)",
                        line: trace.field("sampling")?.line)
                }
            }
            outbound =
                oneOf(
                    spec, "outboundPolicy", ["ALLOW_ANY": .allowAny, "REGISTRY_ONLY": .registryOnly], default: outbound)
                ?? outbound
        }
        guard errors.count == start, let meta else { return nil }
        return MeshConfig(
            metadata: meta, trustDomain: trustDomain, clusterDomain: clusterDomain, mtlsMode: mode,
            retryBudget: budget, tracing: tracing, outboundPolicy: outbound, http1Transport: http1Transport)
    }
}
