import WeftCore

/// What a config source reports after the initial load.
public enum ConfigEvent: Sendable {
    /// A change was accepted: this is the new state, to be pushed to the proxies.
    case updated(MeshState)
    /// A change was refused because some file has errors; the last good state stays in
    /// force. Every error names its file, document and field.
    case rejected([ConfigError])
    /// After a rejection, the folder is valid again and equal to the state in force: the
    /// rejection no longer applies, and there is nothing to push.
    case restored
}
