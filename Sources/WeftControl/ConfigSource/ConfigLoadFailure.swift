import WeftCore

/// The initial configuration could not be loaded: the folder is unreadable or some file
/// has errors. A start-up error: `weft-control` prints `description` and exits non-zero.
public struct ConfigLoadFailure: Error, Hashable, Sendable, CustomStringConvertible {
    /// Every error found, in file order.
    public let errors: [ConfigError]

    public init(errors: [ConfigError]) {
        self.errors = errors
    }

    /// One error per line.
    public var description: String { errors.map(\.description).joined(separator: "\n") }
}
