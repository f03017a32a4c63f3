import WeftCore
import WeftProtocol

/// The control plane: config sources, per-proxy state, push server and CA.
///
/// Arrives with issue 4; until then `weft-control` explains that it is not available.
public enum ControlPlane {
    /// The message `weft-control` prints while the control plane is not built yet.
    public static let unavailableMessage =
        "weft-control: the control plane (CA, config push on :\(MeshDefaults.controlPushPort)) is not part of this build yet; sidecars run without it and forward to original destinations"
}
