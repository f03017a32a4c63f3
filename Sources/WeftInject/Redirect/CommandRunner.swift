/// Runs external binaries for the installer: the seam that lets its logic be tested.
///
/// `SpawnCommandRunner` is the real one; tests substitute a fake that records calls and
/// answers with canned results.
public protocol CommandRunner: Sendable {
    /// The full path of the binary `name` as found in `PATH`, or `nil` when it is not there.
    func locate(_ name: String) -> String?

    /// Runs the binary at `path`, writes `input` to its standard input, and waits for it.
    ///
    /// A non-zero exit is not an error here: it comes back in the result for the caller to judge.
    /// - Throws: `RedirectError.spawnFailed` when the binary cannot be started at all.
    func run(_ path: String, arguments: [String], input: String) throws(RedirectError) -> CommandResult
}

/// How a binary ended and what it printed.
public struct CommandResult: Sendable, Equatable {
    /// The exit status, or 128 plus the signal number when a signal ended it.
    public var status: Int32
    /// Everything written to standard output.
    public var output: String
    /// Everything written to standard error.
    public var errorOutput: String

    /// Creates a result.
    public init(status: Int32, output: String = "", errorOutput: String = "") {
        self.status = status
        self.output = output
        self.errorOutput = errorOutput
    }

    /// Whether the binary exited with status 0.
    public var succeeded: Bool { status == 0 }
}
