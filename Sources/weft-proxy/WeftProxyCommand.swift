import ArgumentParser

@main
struct WeftProxyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "weft-proxy",
        abstract: "The Weft sidecar proxy.",
        discussion: """
            A Pod's init step runs `weft-proxy init` to redirect its TCP to the proxy; the \
            sidecar container runs `weft-proxy run` as UID 2102, whose own traffic is never redirected.
            """,
        subcommands: [RunCommand.self, InitCommand.self]
    )
}
