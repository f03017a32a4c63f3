import ArgumentParser

/// `weftctl ca`: the mesh CA's files, and leaves for debugging and tests.
struct CACommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ca",
        abstract: "Create the mesh CA, issue and sign leaf certificates, build trust bundles.",
        discussion: """
            The CA directory holds root.crt, root.key, intermediate.crt, intermediate.key
            and bundle.crt. Rotating the root: see docs/operations.md.
            """,
        subcommands: [CAInitCommand.self, CAIssueCommand.self, CASignCommand.self, CABundleCommand.self]
    )
}
