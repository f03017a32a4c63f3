import WeftCore
import Yams

/// A YAML node together with its field path (`spec.rules[0].matches[1]`).
struct FieldNode {
    let node: Node
    let path: String

    var line: Int? { node.mark?.line }

    /// True for an explicit YAML null (`~`, `null`, or nothing after the colon).
    var isNull: Bool {
        if case .scalar = node, node.tagName == .null { return true }
        return false
    }
}

/// A YAML mapping together with its field path.
struct ObjectNode {
    let mapping: Node.Mapping
    let node: Node
    let path: String

    /// The path of a field of this object.
    func path(_ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

    /// The value of `key`, or nil when the key is absent or its value is null (Kubernetes
    /// treats both the same way).
    func field(_ key: String) -> FieldNode? {
        for (k, v) in mapping where k.scalar?.string == key {
            let value = FieldNode(node: v, path: path(key))
            return value.isNull ? nil : value
        }
        return nil
    }

    var line: Int? { node.mark?.line }
}

/// Reads one YAML document into typed values, collecting every error with its field path.
///
/// Every accessor returns nil (or an empty value) after recording an error, so a decoder
/// keeps going and reports all the problems of a document in one pass.
struct DocumentReader {
    let file: String
    let document: Int
    private(set) var errors: [ConfigError] = []
    private(set) var warnings: [ConfigError] = []
    /// Decoding the items of a List (Lists do not nest).
    var isInList = false
    /// The most items one List may hold.
    static let maxListItems = 10_000

    init(file: String, document: Int) {
        self.file = file
        self.document = document
    }

    mutating func fail(_ code: ConfigError.Code, _ field: String, _ reason: String, line: Int?) {
        errors.append(
            ConfigError(code: code, file: file, document: document, field: field, reason: reason, line: line))
    }

    mutating func fail(_ code: ConfigError.Code, _ node: FieldNode, _ reason: String) {
        fail(code, node.path, reason, line: node.line)
    }

    mutating func warn(_ code: ConfigError.Code, _ field: String, _ reason: String, line: Int?) {
        warnings.append(
            ConfigError(code: code, file: file, document: document, field: field, reason: reason, line: line))
    }

    mutating func missing(_ object: ObjectNode, _ key: String) {
        fail(.missingField, object.path(key), "is required", line: object.line)
    }

    // MARK: Shapes

    mutating func object(_ node: FieldNode?) -> ObjectNode? {
        guard let node else { return nil }
        guard case .mapping(let mapping) = node.node else {
            fail(.invalidType, node, "must be an object, got \(Self.kindName(node.node))")
            return nil
        }
        return ObjectNode(mapping: mapping, node: node.node, path: node.path)
    }

    mutating func object(_ parent: ObjectNode, _ key: String) -> ObjectNode? {
        object(parent.field(key))
    }

    /// The elements of a list field; empty when absent or after an error.
    mutating func list(_ parent: ObjectNode, _ key: String) -> [FieldNode] {
        guard let node = parent.field(key) else { return [] }
        guard case .sequence(let sequence) = node.node else {
            fail(.invalidType, node, "must be a list, got \(Self.kindName(node.node))")
            return []
        }
        return sequence.enumerated().map { FieldNode(node: $1, path: "\(node.path)[\($0)]") }
    }

    /// True when the key is present with a non-null value.
    func has(_ parent: ObjectNode, _ key: String) -> Bool { parent.field(key) != nil }

    // MARK: Scalars

    mutating func string(_ node: FieldNode) -> String? {
        guard case .scalar(let scalar) = node.node else {
            fail(.invalidType, node, "must be a string, got \(Self.kindName(node.node))")
            return nil
        }
        switch node.node.tagName {
        case .str, .timestamp:
            return scalar.string
        default:
            fail(.invalidType, node, "must be a string, got \(Self.kindName(node.node)) \(scalar.string) (quote it)")
            return nil
        }
    }

    mutating func string(_ parent: ObjectNode, _ key: String) -> String? {
        parent.field(key).flatMap { string($0) }
    }

    mutating func requiredString(_ parent: ObjectNode, _ key: String) -> String? {
        guard let node = parent.field(key) else {
            missing(parent, key)
            return nil
        }
        guard let value = string(node) else { return nil }
        if value.isEmpty {
            fail(.missingField, node, "must not be empty")
            return nil
        }
        return value
    }

    mutating func int(_ node: FieldNode) -> Int? {
        if case .scalar = node.node, node.node.tagName == .int, let value = node.node.int { return value }
        fail(.invalidType, node, "must be an integer, got \(Self.describe(node.node))")
        return nil
    }

    mutating func int(_ parent: ObjectNode, _ key: String) -> Int? {
        parent.field(key).flatMap { int($0) }
    }

    mutating func double(_ parent: ObjectNode, _ key: String) -> Double? {
        guard let node = parent.field(key) else { return nil }
        if case .scalar = node.node {
            switch node.node.tagName {
            case .int: if let value = node.node.int { return Double(value) }
            case .float: if let value = node.node.float, value.isFinite { return value }
            default: break
            }
        }
        fail(.invalidType, node, "must be a number, got \(Self.describe(node.node))")
        return nil
    }

    mutating func bool(_ parent: ObjectNode, _ key: String) -> Bool? {
        guard let node = parent.field(key) else { return nil }
        if case .scalar = node.node, node.node.tagName == .bool, let value = node.node.bool { return value }
        fail(.invalidType, node, "must be true or false, got \(Self.describe(node.node))")
        return nil
    }

    mutating func stringList(_ parent: ObjectNode, _ key: String) -> [String] {
        list(parent, key).compactMap { string($0) }
    }

    /// A map of strings (labels, selectors), each value at `path[key]`.
    mutating func stringMap(_ parent: ObjectNode, _ key: String) -> [String: String] {
        guard let object = object(parent, key) else { return [:] }
        var result: [String: String] = [:]
        for (k, v) in object.mapping {
            guard let name = k.scalar?.string else {
                fail(.invalidType, object.path, "keys must be strings", line: k.mark?.line)
                continue
            }
            let field = FieldNode(node: v, path: "\(object.path)[\(name)]")
            if field.isNull {
                result[name] = ""
            } else if let value = string(field) {
                result[name] = value
            }
        }
        return result
    }

    // MARK: Validated values

    /// A port number, 1...65535.
    mutating func port(_ node: FieldNode) -> Int? {
        guard let value = int(node) else { return nil }
        guard (1...65535).contains(value) else {
            fail(.invalidField, node, "must be between 1 and 65535, got \(value)")
            return nil
        }
        return value
    }

    mutating func port(_ parent: ObjectNode, _ key: String) -> Int? {
        parent.field(key).flatMap { port($0) }
    }

    /// One of a fixed set of strings; `default` when absent.
    mutating func oneOf<T>(_ parent: ObjectNode, _ key: String, _ choices: KeyValuePairs<String, T>, default value: T?)
        -> T?
    {
        guard let node = parent.field(key) else { return value }
        guard let text = string(node) else { return nil }
        for (name, choice) in choices where name == text { return choice }
        let names = choices.map(\.key).joined(separator: ", ")
        fail(.invalidField, node, "must be one of \(names), got \"\(text)\"")
        return nil
    }

    /// A string checked by `isValid`; records `expectation` as the reason when it fails.
    mutating func validated(_ node: FieldNode, _ expectation: String, _ isValid: (String) -> Bool) -> String? {
        guard let text = string(node) else { return nil }
        guard isValid(text) else {
            fail(.invalidField, node, "\(expectation), got \"\(text)\"")
            return nil
        }
        return text
    }

    /// A Gateway API duration (GEP-2257).
    mutating func duration(_ parent: ObjectNode, _ key: String) -> Duration? {
        guard let node = parent.field(key), let text = string(node) else { return nil }
        guard let value = GatewayDuration.parse(text) else {
            fail(
                .invalidField, node,
                "must be a duration such as 10s, 1h30m or 500ms (1 to 4 parts of up to 5 digits with h, m, s or ms), got \"\(text)\""
            )
            return nil
        }
        return value
    }

    // MARK: Descriptions

    static func kindName(_ node: Node) -> String {
        switch node {
        case .mapping: return "an object"
        case .sequence: return "a list"
        case .alias: return "an alias"
        case .scalar:
            switch node.tagName {
            case .int, .float: return "a number"
            case .bool: return "a boolean"
            case .null: return "null"
            default: return "a string"
            }
        }
    }

    static func describe(_ node: Node) -> String {
        if case .scalar(let scalar) = node {
            return node.tagName == .str ? "\"\(scalar.string)\"" : scalar.string
        }
        return kindName(node)
    }
}

extension Node {
    /// The resolved tag (`str`, `int`, `bool`, `float`, `null`...) of this node.
    var tagName: Tag.Name { Tag.Name(rawValue: tag.rawValue) }
}
