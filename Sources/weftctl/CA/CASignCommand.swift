import ArgumentParser
import Foundation
import WeftCore
import WeftIdentity

/// `weftctl ca sign`: issues a leaf for an existing CSR (e.g. one openssl made).
struct CASignCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sign",
        abstract: "Issue a leaf for a CSR, if it asks for exactly the given identity.",
        discussion: "A CSR for another identity, a non-P-256 key or a bad signature is refused (exit code 1)."
    )

    @Option(name: .long, help: "The CSR file (PEM).")
    var csr: String

    @Option(name: .long, help: "Where to write the chain (leaf, then intermediate); standard output if omitted.")
    var out: String?

    @OptionGroup var options: IssueOptions

    func run() throws {
        let authority = try options.authority()
        let identity = options.identity
        let issued = try authority.issue(csrPEM: PEMInput.read(csr), for: identity, lifetime: options.lifetime.duration)
        if let out {
            try PEMOutput.write(issued.chainPEM, to: URL(fileURLWithPath: out), mode: 0o644)
            print("issued \(issued.identity) serial \(issued.serialHex) valid until \(issued.notAfter); wrote \(out)")
        } else {
            print(issued.chainPEM, terminator: "")
        }
    }
}
