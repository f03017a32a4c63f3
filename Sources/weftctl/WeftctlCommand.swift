import ArgumentParser
import WeftCore

@main
struct WeftctlCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "weftctl",
        abstract: "The Weft command line.",
        subcommands: [
            DefaultsCommand.self, CheckCommand.self, ConfigCommand.self, AuthzCommand.self, TraceCommand.self,
            CACommand.self,
        ]
    )
}

/// `weftctl defaults`: the mesh's well-known ports and identities.
struct DefaultsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "defaults",
        abstract: "Print the mesh's default ports, proxy UID and trust domain."
    )

    func run() {
        print(
            """
            outbound capture port   \(MeshDefaults.outboundPort)
            inbound capture port    \(MeshDefaults.inboundPort)
            proxy admin port        \(MeshDefaults.adminPort)
            proxy UID/GID           \(MeshDefaults.proxyUID)/\(MeshDefaults.proxyGID)
            control plane push      \(MeshDefaults.controlPushPort)
            control plane HTTP      \(MeshDefaults.controlHTTPPort)
            opaque ports            \(MeshDefaults.opaquePorts.map(String.init).joined(separator: ","))
            trust domain            \(MeshDefaults.trustDomain)
            """)
    }
}
