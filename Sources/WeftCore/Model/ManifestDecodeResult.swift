/// What decoding one file produced: the resources, and every error and warning.
public struct ManifestDecodeResult: Hashable, Sendable {
    /// A decoded resource and where it was found.
    public struct Entry: Hashable, Sendable {
        public let resource: MeshResource
        /// The 1-based document index within the file.
        public let document: Int

        public init(resource: MeshResource, document: Int) {
            self.resource = resource
            self.document = document
        }
    }

    public let entries: [Entry]
    /// Problems that make the file unusable; a config source rejects a change with any.
    public let errors: [ConfigError]
    /// Problems that do not (unknown kinds skipped, unresolved references...).
    public let warnings: [ConfigError]

    public init(entries: [Entry], errors: [ConfigError], warnings: [ConfigError]) {
        self.entries = entries
        self.errors = errors
        self.warnings = warnings
    }

    /// The decoded resources in file order.
    public var resources: [MeshResource] { entries.map(\.resource) }
}
