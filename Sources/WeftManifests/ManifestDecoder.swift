import WeftCore
import Yams

/// Decodes multi-document Kubernetes YAML into mesh resources.
///
/// The YAML node tree is walked by hand rather than through Codable, so every error
/// carries the exact field path (`spec.rules[0].backendRefs[1].weight`) and line, and
/// every error of a file is collected, not just the first. Manifests are read the way
/// the API server reads them: unknown fields are ignored (status, managedFields,
/// annotations), defaults are applied, `kind: List` is expanded, empty documents are
/// skipped, and kinds the mesh does not read are skipped with a warning.
public enum ManifestDecoder {
    /// Decodes every document of `text`.
    /// - Parameters:
    ///   - text: YAML, one or more documents separated by `---`.
    ///   - file: the name used in errors, e.g. `mesh/routes.yaml`.
    public static func decode(_ text: String, file: String) -> ManifestDecodeResult {
        var entries: [ManifestDecodeResult.Entry] = []
        var errors: [ConfigError] = []
        var warnings: [ConfigError] = []
        var index = 0
        do {
            var documents = try compose_all(yaml: text)
            while let root = documents.next() {
                index += 1
                var reader = DocumentReader(file: file, document: index)
                for resource in reader.decodeDocument(root) {
                    entries.append(.init(resource: resource, document: index))
                }
                errors += reader.errors
                warnings += reader.warnings
            }
            if let error = documents.error { throw error }
        } catch {
            errors.append(yamlError(error, file: file, document: index + 1))
        }
        return ManifestDecodeResult(entries: entries, errors: errors, warnings: warnings)
    }

    /// A syntax error, located by line and column.
    private static func yamlError(_ error: Error, file: String, document: Int) -> ConfigError {
        func make(_ mark: Mark?, _ reason: String) -> ConfigError {
            let field = mark.map { "line \($0.line), column \($0.column)" } ?? "(yaml)"
            return ConfigError(
                code: .invalidYAML, file: file, document: document, field: field, reason: "invalid YAML: \(reason)",
                line: mark?.line)
        }
        guard let yaml = error as? YamlError else { return make(nil, "\(error)") }
        switch yaml {
        case .scanner(let context, let problem, let mark, _), .parser(let context, let problem, let mark, _),
            .composer(let context, let problem, let mark, _):
            let while_ = context.map { " (\($0.text) at line \($0.mark.line), column \($0.mark.column))" } ?? ""
            return make(mark, problem + while_)
        case .duplicatedKeysInMapping(let duplicates, let context):
            // Yams sorts the duplicates with `Node.<`, which does not order a list or a
            // mapping against a scalar: with one among them, which key comes first (and
            // whose line Yams reports) follows hash order. Sorted here, and without a line
            // then, the same text always gives the same error.
            let names = duplicates.sorted().map { "\"\($0)\"" }.joined(separator: ", ")
            let ordered = !duplicates.contains("<uncovertable>")
            return make(ordered ? context.mark : nil, "duplicate key \(names) in a mapping")
        case .reader(let problem, _, _, _):
            return make(nil, problem)
        default:
            return make(nil, "\(yaml)")
        }
    }
}

extension DocumentReader {
    /// Decodes one document (a resource or a List of them); empty documents give nothing.
    mutating func decodeDocument(_ root: Node) -> [MeshResource] {
        let node = FieldNode(node: root, path: "")
        if node.isNull { return [] }
        guard case .mapping(let mapping) = root else {
            fail(.invalidType, "(root)", "a document must be an object, got \(Self.kindName(root))", line: node.line)
            return []
        }
        return decodeObject(ObjectNode(mapping: mapping, node: root, path: ""))
    }

    private mutating func decodeObject(_ object: ObjectNode) -> [MeshResource] {
        let apiVersion = requiredString(object, "apiVersion")
        let kind = requiredString(object, "kind")
        guard let apiVersion, let kind else { return [] }
        switch (apiVersion, kind) {
        case ("v1", "List"):
            // A List holds resources, never Lists: nested Lists whose items are YAML
            // aliases of earlier ones multiply the work by the items per level (an
            // 833-byte file made the decoder run for minutes).
            guard !isInList else {
                fail(.invalidField, object.path("kind"), "a List inside a List is not read", line: object.line)
                return []
            }
            let items = list(object, "items")
            guard items.count <= Self.maxListItems else {
                fail(
                    .invalidField, object.path("items"),
                    "\(items.count) items; a List holds at most \(Self.maxListItems)", line: object.line)
                return []
            }
            isInList = true
            defer { isInList = false }
            var resources: [MeshResource] = []
            for item in items {
                guard let itemObject = self.object(item) else { continue }
                resources += decodeObject(itemObject)
            }
            return resources
        case ("v1", "Service"):
            return decodeService(object).map { [.service($0)] } ?? []
        case ("v1", "Pod"):
            return decodePod(object).map { [.pod($0)] } ?? []
        case ("discovery.k8s.io/v1", "EndpointSlice"):
            return decodeEndpointSlice(object).map { [.endpointSlice($0)] } ?? []
        case ("gateway.networking.k8s.io/v1", "HTTPRoute"), ("gateway.networking.k8s.io/v1beta1", "HTTPRoute"):
            return decodeHTTPRoute(object).map { [.httpRoute($0)] } ?? []
        case ("gateway.networking.k8s.io/v1", "GRPCRoute"):
            return decodeHTTPRoute(object, grpc: true).map { [.httpRoute($0)] } ?? []
        case ("weft.dev/v1alpha1", "AuthorizationPolicy"):
            return decodeAuthorizationPolicy(object).map { [.authorizationPolicy($0)] } ?? []
        case ("weft.dev/v1alpha1", "MeshConfig"):
            return decodeMeshConfig(object).map { [.meshConfig($0)] } ?? []
        default:
            let name = object.field("metadata").flatMap { ($0.node.mapping?["name"]?.string) }.map { " \($0)" } ?? ""
            var hint = ""
            if let known = Self.knownAPIVersions[kind] { hint = " (Weft reads \(known) \(kind))" }
            warn(
                .unknownKind, object.path("kind"),
                "\(apiVersion) \(kind)\(name) is not a kind Weft reads\(hint); skipped", line: object.line)
            return []
        }
    }

    /// For a kind Weft reads under another apiVersion, the one it expects (a hint in the
    /// warning: `weft.dev/v1 MeshConfig` is most likely a typo).
    static let knownAPIVersions: [String: String] = [
        "Service": "v1", "Pod": "v1", "EndpointSlice": "discovery.k8s.io/v1",
        "HTTPRoute": "gateway.networking.k8s.io/v1", "GRPCRoute": "gateway.networking.k8s.io/v1",
        "MeshConfig": "weft.dev/v1alpha1",
        "AuthorizationPolicy": "weft.dev/v1alpha1",
    ]

    enum NameRule {
        case subdomain, label1035

        func isValid(_ s: String) -> Bool {
            switch self {
            case .subdomain: return NameRules.isDNS1123Subdomain(s)
            case .label1035: return NameRules.isDNS1035Label(s)
            }
        }

        var expectation: String {
            switch self {
            case .subdomain:
                return "must be a lowercase RFC 1123 subdomain (a-z, 0-9, '-' and '.', at most 253 characters)"
            case .label1035:
                return
                    "must be a lowercase RFC 1035 label (a-z, 0-9 and '-', starting with a letter, at most 63 characters)"
            }
        }
    }

    static let labelExpectation = "must be a lowercase RFC 1123 label (a-z, 0-9 and '-', at most 63 characters)"

    /// `metadata`: name (required, checked by `rule`), namespace (default `default`), labels.
    mutating func metadata(_ root: ObjectNode, rule: NameRule) -> ObjectMeta? {
        guard root.field("metadata") != nil else {
            missing(root, "metadata")
            return nil
        }
        guard let meta = object(root, "metadata") else { return nil }
        let start = errors.count
        var name: String?
        if let node = meta.field("name") {
            name = validated(node, rule.expectation, rule.isValid)
        } else {
            missing(meta, "name")
        }
        var namespace = "default"
        if let node = meta.field("namespace"),
            let value = validated(node, Self.labelExpectation, NameRules.isDNS1123Label)
        {
            namespace = value
        }
        let labels = labelMap(meta, "labels")
        let created = string(meta, "creationTimestamp")
        let annotations = stringMap(meta, "annotations").filter { $0.key.contains("weft.dev/") }
        guard errors.count == start, let name else { return nil }
        return ObjectMeta(
            name: name, namespace: namespace, labels: labels, creationTimestamp: created, annotations: annotations)
    }

    /// A map of labels (or a selector's matchLabels), keys and values checked.
    mutating func labelMap(_ parent: ObjectNode, _ key: String) -> [String: String] {
        let map = stringMap(parent, key)
        let line = parent.field(key)?.line
        for (k, v) in map.sorted(by: { $0.key < $1.key }) {
            let path = "\(parent.path(key))[\(k)]"
            if !NameRules.isLabelKey(k) {
                fail(
                    .invalidField, path,
                    "label key must be an optional DNS prefix and '/' then at most 63 of a-z, A-Z, 0-9, '-', '_', '.'",
                    line: line)
            } else if !NameRules.isLabelValue(v) {
                fail(
                    .invalidField, path,
                    "label value must be at most 63 of a-z, A-Z, 0-9, '-', '_', '.', alphanumeric at both ends, got \"\(v)\"",
                    line: line)
            }
        }
        return map
    }
}
