import WeftCore

/// The JSON-over-TLS control protocol shared by `weft-control` and the sidecars.
///
/// Only the version constant exists so far; the frame codec and messages arrive with the
/// control-plane work (issue 4), specified in docs/protocol.md.
public enum ControlProtocol {
    /// The protocol version a hello carries.
    public static let version = 1
}
