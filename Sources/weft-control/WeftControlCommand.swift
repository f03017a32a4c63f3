import ArgumentParser
import WeftControl

@main
struct WeftControlCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "weft-control",
        abstract: "The Weft control plane: certificate authority and config server for the sidecars.",
        discussion: """
            Not part of this build yet: the CA, the folder and Kubernetes config sources and the \
            JSON-over-TLS push server arrive with the control-plane work. Sidecars run without it \
            and forward every connection to its original destination.
            """
    )

    func run() throws {
        print(ControlPlane.unavailableMessage)
        throw ExitCode(2)
    }
}
