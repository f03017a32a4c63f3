import WeftCore

extension DocumentReader {
    /// weft.dev/v1alpha1 AuthorizationPolicy.
    mutating func decodeAuthorizationPolicy(_ root: ObjectNode) -> AuthorizationPolicy? {
        let start = errors.count
        let meta = metadata(root, rule: .subdomain)
        let namespace = meta?.namespace ?? "default"
        guard let spec = object(root, "spec") else {
            if !has(root, "spec") { missing(root, "spec") }
            return nil
        }
        let selector = object(spec, "selector").map { labelSelector($0) } ?? .everything
        let action =
            oneOf(spec, "action", ["ALLOW": .allow, "DENY": .deny], default: AuthorizationPolicy.Action.allow) ?? .allow
        var rules: [AuthorizationPolicy.Rule] = []
        for node in list(spec, "rules") {
            guard let rule = object(node) else { continue }
            let from = list(rule, "from").compactMap { source($0, namespace: namespace) }
            let to = list(rule, "to").compactMap { operation($0) }
            rules.append(AuthorizationPolicy.Rule(from: from, to: to))
        }
        guard errors.count == start, let meta else { return nil }
        return AuthorizationPolicy(metadata: meta, selector: selector, action: action, rules: rules)
    }

    /// `matchLabels` and `matchExpressions`.
    mutating func labelSelector(_ object: ObjectNode) -> LabelSelector {
        let labels = labelMap(object, "matchLabels")
        var requirements: [LabelSelector.Requirement] = []
        for node in list(object, "matchExpressions") {
            guard let expression = self.object(node) else { continue }
            let start = errors.count
            var key: String?
            if let keyNode = expression.field("key") {
                key = validated(keyNode, "must be a label key", NameRules.isLabelKey)
            } else {
                missing(expression, "key")
            }
            var op: LabelSelector.Requirement.Operator?
            if has(expression, "operator") {
                op = oneOf(
                    expression, "operator",
                    ["In": .in, "NotIn": .notIn, "Exists": .exists, "DoesNotExist": .doesNotExist], default: nil)
            } else {
                missing(expression, "operator")
            }
            let values = stringList(expression, "values")
            if let op {
                let needsValues = op == .in || op == .notIn
                if needsValues && values.isEmpty {
                    fail(
                        .missingField, expression.path("values"), "must not be empty for \(op.rawValue)",
                        line: expression.line)
                } else if !needsValues && !values.isEmpty {
                    fail(
                        .invalidField, expression.path("values"), "must be empty for \(op.rawValue)",
                        line: expression.line)
                }
            }
            guard errors.count == start, let key, let op else { continue }
            requirements.append(LabelSelector.Requirement(key: key, operator: op, values: values))
        }
        return LabelSelector(matchLabels: labels, matchExpressions: requirements)
    }

    private mutating func source(_ node: FieldNode, namespace: String) -> AuthorizationPolicy.Source? {
        guard let object = object(node) else { return nil }
        let start = errors.count
        var identities: [String] = []
        for idNode in list(object, "identities") {
            if let id = validated(
                idNode,
                "must be a SPIFFE ID (spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>), optionally ending in *",
                Self.isIdentityPattern)
            {
                identities.append(id)
            }
        }
        var namespaces: [String] = []
        for nsNode in list(object, "namespaces") {
            if let ns = validated(nsNode, Self.labelExpectation, NameRules.isDNS1123Label) { namespaces.append(ns) }
        }
        var accounts: [String] = []
        for saNode in list(object, "serviceAccounts") {
            guard
                let sa = validated(
                    saNode, "must be a service account name or namespace/name",
                    { s in
                        let parts = s.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
                        return parts.count == 1 && NameRules.isDNS1123Subdomain(parts[0])
                            || parts.count == 2 && NameRules.isDNS1123Label(parts[0])
                                && NameRules.isDNS1123Subdomain(parts[1])
                    })
            else { continue }
            accounts.append(sa.contains("/") ? sa : "\(namespace)/\(sa)")
        }
        var blocks: [CIDR] = []
        for blockNode in list(object, "ipBlocks") {
            if let text = validated(
                blockNode, "must be a CIDR such as 10.0.0.0/8 or fd00::/64, or an IP address",
                { CIDR(parsing: $0) != nil })
            {
                blocks.append(CIDR(parsing: text)!)
            }
        }
        if errors.count == start, identities.isEmpty, namespaces.isEmpty, accounts.isEmpty, blocks.isEmpty {
            fail(
                .missingField, node,
                "must name at least one of identities, namespaces, serviceAccounts, ipBlocks (leave out from to match any source)"
            )
        }
        guard errors.count == start else { return nil }
        return AuthorizationPolicy.Source(
            identities: identities, namespaces: namespaces, serviceAccounts: accounts, ipBlocks: blocks)
    }

    /// `*`, a SPIFFE ID, or a `spiffe://` prefix ending in `*`.
    static func isIdentityPattern(_ s: String) -> Bool {
        if s == "*" { return true }
        guard s.hasPrefix("spiffe://"), s.count > "spiffe://".count else { return false }
        if s.hasSuffix("*") { return !s.dropLast().contains("*") }
        return !s.contains("*") && SPIFFEID(parsing: s) != nil
    }

    private mutating func operation(_ node: FieldNode) -> AuthorizationPolicy.Operation? {
        guard let object = object(node) else { return nil }
        let start = errors.count
        let ports = list(object, "ports").compactMap { port($0) }
        var methods: [String] = []
        for methodNode in list(object, "methods") {
            if let method = validated(
                methodNode, "must be an upper-case HTTP method such as GET",
                { NameRules.isHeaderName($0) && $0 == $0.uppercased() })
            {
                methods.append(method)
            }
        }
        var paths: [String] = []
        for pathNode in list(object, "paths") {
            if let path = validated(
                pathNode, "must be an absolute path, optionally ending in * (prefix), or *",
                { $0 == "*" || ($0.hasPrefix("/") && !$0.dropLast().contains("*")) })
            {
                paths.append(path)
            }
        }
        if errors.count == start, ports.isEmpty, methods.isEmpty, paths.isEmpty {
            fail(.missingField, node, "must name at least one of ports, methods, paths (leave out to to match any)")
        }
        guard errors.count == start else { return nil }
        return AuthorizationPolicy.Operation(ports: ports, methods: methods, paths: paths)
    }
}
