import WeftCore

extension DocumentReader {
    /// discovery.k8s.io/v1 EndpointSlice.
    mutating func decodeEndpointSlice(_ root: ObjectNode) -> EndpointSlice? {
        let start = errors.count
        let meta = metadata(root, rule: .subdomain)
        let serviceName = meta?.labels["kubernetes.io/service-name"]
        if meta != nil, serviceName == nil {
            warn(
                .unresolvedReference, "metadata.labels",
                "has no kubernetes.io/service-name label; the slice belongs to no Service and is ignored",
                line: root.line)
        }
        var addressType: EndpointSlice.AddressType?
        if has(root, "addressType") {
            addressType = oneOf(
                root, "addressType", ["IPv4": .ipv4, "IPv6": .ipv6, "FQDN": .fqdn], default: nil)
        } else {
            missing(root, "addressType")
        }

        var ports: [EndpointSlice.Port] = []
        for node in list(root, "ports") {
            guard let object = object(node) else { continue }
            let portStart = errors.count
            var name = ""
            if let nameNode = object.field("name"), let value = string(nameNode), !value.isEmpty {
                if NameRules.isDNS1123Label(value) {
                    name = value
                } else {
                    fail(.invalidField, nameNode, "\(Self.labelExpectation), got \"\(value)\"")
                }
            }
            let port = port(object, "port")
            let proto = oneOf(object, "protocol", Self.protocols, default: TransportProtocol.tcp) ?? .tcp
            let appProtocol = string(object, "appProtocol")
            guard errors.count == portStart else { continue }
            ports.append(EndpointSlice.Port(name: name, port: port, protocol: proto, appProtocol: appProtocol))
        }

        var endpoints: [EndpointSlice.Endpoint] = []
        for node in list(root, "endpoints") {
            guard let object = object(node) else { continue }
            let endpointStart = errors.count
            var addresses: [String] = []
            let addressNodes = list(object, "addresses")
            if addressNodes.isEmpty {
                fail(.missingField, object.path("addresses"), "must have at least one address", line: object.line)
            }
            for addressNode in addressNodes {
                let address: String?
                switch addressType {
                case .ipv4: address = validated(addressNode, "must be an IPv4 address", NameRules.isIPv4)
                case .ipv6: address = validated(addressNode, "must be an IPv6 address", NameRules.isIPv6)
                case .fqdn:
                    address = validated(addressNode, "must be a DNS name", NameRules.isDNS1123Subdomain)
                case nil: address = string(addressNode)
                }
                if let address { addresses.append(address) }
            }
            var ready = true
            var serving: Bool?
            var terminating = false
            if let conditions = self.object(object, "conditions") {
                ready = bool(conditions, "ready") ?? true
                serving = bool(conditions, "serving")
                terminating = bool(conditions, "terminating") ?? false
            }
            var targetRef: EndpointSlice.TargetReference?
            if let ref = self.object(object, "targetRef") {
                let kind = string(ref, "kind") ?? ""
                let name = string(ref, "name") ?? ""
                var namespace = meta?.namespace ?? "default"
                if let nsNode = ref.field("namespace"),
                    let value = validated(nsNode, Self.labelExpectation, NameRules.isDNS1123Label)
                {
                    namespace = value
                }
                if !kind.isEmpty || !name.isEmpty {
                    targetRef = EndpointSlice.TargetReference(kind: kind, name: name, namespace: namespace)
                }
            }
            let nodeName = string(object, "nodeName")
            let zone = string(object, "zone")
            var hostname: String?
            if let hostNode = object.field("hostname") {
                hostname = validated(hostNode, Self.labelExpectation, NameRules.isDNS1123Label)
            }
            guard errors.count == endpointStart else { continue }
            endpoints.append(
                EndpointSlice.Endpoint(
                    addresses: addresses,
                    conditions: .init(ready: ready, serving: serving ?? ready, terminating: terminating),
                    targetRef: targetRef, nodeName: nodeName, zone: zone, hostname: hostname))
        }
        guard errors.count == start, let meta, let addressType else { return nil }
        return EndpointSlice(
            metadata: meta, serviceName: serviceName, addressType: addressType, ports: ports, endpoints: endpoints)
    }
}
