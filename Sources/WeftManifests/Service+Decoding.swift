import WeftCore

extension DocumentReader {
    static let protocols: KeyValuePairs<String, TransportProtocol> = ["TCP": .tcp, "UDP": .udp, "SCTP": .sctp]

    /// core/v1 Service.
    mutating func decodeService(_ root: ObjectNode) -> Service? {
        let start = errors.count
        let meta = metadata(root, rule: .label1035)
        guard let spec = object(root, "spec") else {
            if !has(root, "spec") { missing(root, "spec") }
            return nil
        }
        let type =
            oneOf(
                spec, "type",
                [
                    "ClusterIP": .clusterIP, "NodePort": .nodePort, "LoadBalancer": .loadBalancer,
                    "ExternalName": .externalName,
                ],
                default: Service.ServiceType.clusterIP) ?? .clusterIP

        let ipExpectation = "must be an IP address or None"
        var clusterIP: String?
        if let node = spec.field("clusterIP") {
            clusterIP = validated(node, ipExpectation) { $0 == "None" || $0.isEmpty || NameRules.isIP($0) }
        }
        var clusterIPs: [String] = []
        let ipNodes = list(spec, "clusterIPs")
        if ipNodes.count > 2 {
            fail(.invalidField, spec.path("clusterIPs"), "must have at most 2 addresses", line: spec.line)
        }
        for node in ipNodes {
            if let ip = validated(node, ipExpectation, { $0 == "None" || NameRules.isIP($0) }) { clusterIPs.append(ip) }
        }
        if let clusterIP, !clusterIP.isEmpty, let first = clusterIPs.first, first != clusterIP {
            fail(.invalidField, ipNodes[0], "must equal spec.clusterIP (\"\(clusterIP)\"), got \"\(first)\"")
        }
        if clusterIPs.isEmpty, let clusterIP, !clusterIP.isEmpty { clusterIPs = [clusterIP] }
        let isHeadless = clusterIPs.first == "None"
        if isHeadless { clusterIPs = [] }

        var ports: [Service.Port] = []
        let portNodes = list(spec, "ports")
        var seenNames: Set<String> = []
        var seenPorts: Set<String> = []
        for node in portNodes {
            guard let object = object(node) else { continue }
            let portStart = errors.count
            var name = ""
            if let nameNode = object.field("name") {
                name = validated(nameNode, Self.labelExpectation, NameRules.isDNS1123Label) ?? ""
                if !name.isEmpty, !seenNames.insert(name).inserted {
                    fail(.invalidField, nameNode, "duplicate port name \"\(name)\"")
                }
            } else if portNodes.count > 1 {
                fail(
                    .missingField, object.path("name"), "is required when the Service has more than one port",
                    line: object.line)
            }
            let port = port(object, "port")
            if port == nil, !has(object, "port") { missing(object, "port") }
            let proto = oneOf(object, "protocol", Self.protocols, default: TransportProtocol.tcp) ?? .tcp
            var target: Service.TargetPort? = port.map { .number($0) }
            if let targetNode = object.field("targetPort") {
                target = targetPort(targetNode)
            }
            let appProtocol = string(object, "appProtocol")
            if let port, !seenPorts.insert("\(port)/\(proto.rawValue)").inserted {
                fail(.invalidField, object.path("port"), "duplicate port \(port)/\(proto.rawValue)", line: object.line)
            }
            guard errors.count == portStart, let port, let target else { continue }
            ports.append(
                Service.Port(name: name, port: port, targetPort: target, protocol: proto, appProtocol: appProtocol))
        }
        if portNodes.isEmpty, !isHeadless, type != .externalName {
            fail(
                .missingField, spec.path("ports"), "is required (at least one port) unless the Service is headless",
                line: spec.line)
        }
        let selector = labelMap(spec, "selector")
        guard errors.count == start, let meta else { return nil }
        return Service(
            metadata: meta, type: type, clusterIPs: clusterIPs, isHeadless: isHeadless, ports: ports,
            selector: selector)
    }

    /// An int-or-string target port: a number 1...65535 or an IANA service name.
    private mutating func targetPort(_ node: FieldNode) -> Service.TargetPort? {
        if case .scalar = node.node, node.node.tagName == .int {
            return port(node).map { .number($0) }
        }
        return validated(
            node, "must be a port number (1-65535) or a port name (at most 15 of a-z, 0-9 and '-', with a letter)",
            NameRules.isIANAServiceName
        ).map { .name($0) }
    }
}
