/// One problem found in the mesh configuration: which file, which document, which field.
///
/// Errors are values, collected rather than thrown one at a time, so a user sees every
/// mistake of a file in one pass. `description` is the stable, user-facing form:
/// `mesh/routes.yaml: document 2: spec.rules[0].backendRefs[1].weight: must be ≥ 0`.
/// A problem with a whole file (it cannot be read) has `document == 0`, and then the
/// description is `file: reason`.
///
/// The same type carries warnings (for example an unknown kind that was skipped); the
/// list it sits in says which it is.
public struct ConfigError: Error, Hashable, Sendable, CustomStringConvertible {
    /// A stable code for the kind of problem. Tests and tools compare codes, never reasons.
    ///
    /// A struct rather than an enum so that new codes can be added without breaking
    /// anyone who switches over them (see STYLE.md on swift-nio-ssl's error enum).
    public struct Code: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
        public let rawValue: String
        public init(rawValue: String) { self.rawValue = rawValue }
        public var description: String { rawValue }

        /// The text is not valid YAML (the reason names the line and column).
        public static let invalidYAML = Code(rawValue: "invalidYAML")
        /// A document is not a mapping, or a field has the wrong YAML type.
        public static let invalidType = Code(rawValue: "invalidType")
        /// A required field is absent.
        public static let missingField = Code(rawValue: "missingField")
        /// A field is present but its value is not allowed.
        public static let invalidField = Code(rawValue: "invalidField")
        /// A kind Weft does not read (a warning; the document is skipped).
        public static let unknownKind = Code(rawValue: "unknownKind")
        /// The same kind, namespace and name appears twice.
        public static let duplicateResource = Code(rawValue: "duplicateResource")
        /// More than one MeshConfig in the whole configuration.
        public static let duplicateMeshConfig = Code(rawValue: "duplicateMeshConfig")
        /// A reference to a resource that does not exist (a warning, as Gateway API's
        /// `ResolvedRefs=False`).
        public static let unresolvedReference = Code(rawValue: "unresolvedReference")
        /// A field Weft decodes but does not act on (a warning).
        public static let unsupportedField = Code(rawValue: "unsupportedField")
        /// A file or directory could not be read.
        public static let unreadableFile = Code(rawValue: "unreadableFile")
    }

    public let code: Code
    /// The file, relative to the config folder (or whatever name the caller gave).
    public let file: String
    /// The 1-based index of the YAML document within the file; 0 for the whole file.
    public let document: Int
    /// The field path, Kubernetes style: `spec.rules[0].backendRefs[1].weight`.
    public let field: String
    /// What is wrong, for a human.
    public let reason: String
    /// The 1-based line of the offending node, when known. Not part of `description`.
    public let line: Int?

    public init(code: Code, file: String, document: Int, field: String, reason: String, line: Int? = nil) {
        self.code = code
        self.file = file
        self.document = document
        self.field = field
        self.reason = reason
        self.line = line
    }

    public var description: String {
        document == 0 ? "\(file): \(reason)" : "\(file): document \(document): \(field): \(reason)"
    }
}
