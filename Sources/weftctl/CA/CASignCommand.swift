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

    @Option(name: .long, help: "The CA directory (intermediate.crt, intermediate.key, bundle.crt).")
    var ca: String

    @Option(name: .long, help: "The CSR file (PEM).")
    var csr: String

    @Option(name: .long, help: "The namespace the CSR must ask for.")
    var namespace: String

    @Option(name: .long, help: "The service account the CSR must ask for.")
    var serviceAccount: String

    @Option(name: .long, help: "Where to write the chain (leaf, then intermediate); standard output if omitted.")
    var out: String?

    @Option(name: .long, help: "How long the leaf is valid: a number with s, m, h or d (e.g. 24h).")
    var lifetime: LifetimeArgument = LifetimeArgument(seconds: 86_400)

    @Option(name: .long, help: "The SPIFFE trust domain of the identity.")
    var trustDomain: String = MeshDefaults.trustDomain

    func run() throws {
        let authority = try CertificateAuthority(loadingFrom: ca)
        let identity = SPIFFEID(trustDomain: trustDomain, namespace: namespace, serviceAccount: serviceAccount)
        let issued = try authority.issue(csrPEM: PEMInput.read(csr), for: identity, lifetime: lifetime.duration)
        if let out {
            try PEMOutput.write(issued.chainPEM, to: URL(fileURLWithPath: out), mode: 0o644)
            print("issued \(issued.identity) serial \(issued.serialHex) valid until \(issued.notAfter); wrote \(out)")
        } else {
            print(issued.chainPEM, terminator: "")
        }
    }
}
