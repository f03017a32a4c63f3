/// The configuration was rejected: every error of every file, and the warnings seen.
public struct ConfigValidationFailure: Error, Hashable, Sendable, CustomStringConvertible {
    public let errors: [ConfigError]
    public let warnings: [ConfigError]

    public init(errors: [ConfigError], warnings: [ConfigError] = []) {
        self.errors = errors
        self.warnings = warnings
    }

    public var description: String { errors.map(\.description).joined(separator: "\n") }
}
