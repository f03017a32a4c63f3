import WeftCore

extension DocumentReader {
    /// core/v1 Pod: labels, service account, IPs, phase and readiness.
    mutating func decodePod(_ root: ObjectNode) -> Pod? {
        let start = errors.count
        let meta = metadata(root, rule: .subdomain)
        var serviceAccount = "default"
        var isMeshed = false
        var probes: [Pod.Probe] = []
        if let spec = object(root, "spec") {
            let node = spec.field("serviceAccountName") ?? spec.field("serviceAccount")
            if let node, let value = validated(node, NameRule.subdomain.expectation, NameRules.isDNS1123Subdomain) {
                serviceAccount = value
            }
            // Native sidecars (initContainers with restartPolicy Always) count too.
            for key in ["containers", "initContainers"] {
                for node in list(spec, key) {
                    guard let container = object(node) else { continue }
                    if string(container, "name") == Pod.sidecarContainerName {
                        isMeshed = true
                    } else {
                        probes += containerProbes(container)
                    }
                }
            }
        }
        var podIPs: [String] = []
        var phase: String?
        var isReady = false
        if let status = object(root, "status") {
            var podIP: String?
            if let node = status.field("podIP") {
                podIP = validated(node, "must be an IP address", NameRules.isIP)
            }
            for node in list(status, "podIPs") {
                guard let entry = object(node), let ipNode = entry.field("ip") else { continue }
                if let ip = validated(ipNode, "must be an IP address", NameRules.isIP) { podIPs.append(ip) }
            }
            if podIPs.isEmpty, let podIP { podIPs = [podIP] }
            phase = string(status, "phase")
            for node in list(status, "conditions") {
                guard let condition = object(node) else { continue }
                if string(condition, "type") == "Ready", string(condition, "status") == "True" { isReady = true }
            }
        }
        guard errors.count == start, let meta else { return nil }
        return Pod(
            metadata: meta, serviceAccountName: serviceAccount, podIPs: podIPs, phase: phase, isReady: isReady,
            isMeshed: isMeshed, probes: probes)
    }

    /// A container's `httpGet` and `grpc` probes, a named port resolved against its ports.
    /// A probe whose port does not resolve is left out (the kubelet would fail it too).
    private mutating func containerProbes(_ container: ObjectNode) -> [Pod.Probe] {
        var named: [String: Int] = [:]
        for node in list(container, "ports") {
            guard let port = object(node), let name = string(port, "name"),
                let number = port.field("containerPort")?.node.scalar.flatMap({ Int($0.string) })
            else { continue }
            named[name] = number
        }
        var probes: [Pod.Probe] = []
        for key in ["livenessProbe", "readinessProbe", "startupProbe"] {
            guard let probe = object(container, key) else { continue }
            if let http = object(probe, "httpGet"), let text = http.field("port")?.node.scalar?.string {
                // An HTTPS probe arrives as TLS of its own, not as a request the sidecar can
                // match: it is not accepted in plaintext (docs/configuration.md).
                guard let port = Int(text) ?? named[text], (1...65535).contains(port),
                    (string(http, "scheme") ?? "HTTP").uppercased() == "HTTP"
                else { continue }
                var path = string(http, "path") ?? "/"
                if !path.hasPrefix("/") { path = "/" + path }  // as the kubelet does
                probes.append(Pod.Probe(port: port, path: path, method: "GET"))
            } else if let grpc = object(probe, "grpc"), let text = grpc.field("port")?.node.scalar?.string,
                let port = Int(text),
                (1...65535).contains(port)
            {
                probes.append(Pod.Probe(port: port, path: "/grpc.health.v1.Health/Check", method: "POST"))
            }
        }
        return probes
    }
}
