import ArgumentParser
import Foundation
import WeftCore
import WeftIdentity

/// `weftctl ca issue`: a key and a leaf for one identity, for debugging and tests.
struct CAIssueCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "issue",
        abstract: "Make a P-256 key and a leaf certificate for a workload identity.",
        discussion: "Writes key.pem (0600), cert.pem (leaf, then intermediate) and bundle.crt into --out."
    )

    @Option(name: .long, help: "The directory to write key.pem, cert.pem and bundle.crt into.")
    var out: String

    @OptionGroup var options: IssueOptions

    func run() throws {
        let authority = try options.authority()
        let identity = options.identity
        let key = try WorkloadKey(identity: identity)
        let issued = try authority.issue(csrPEM: key.csrPEM, for: identity, lifetime: options.lifetime.duration)
        let directory = URL(fileURLWithPath: out)
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        try PEMOutput.write(key.privateKeyPEM, to: directory.appendingPathComponent("key.pem"), mode: 0o600)
        try PEMOutput.write(issued.chainPEM, to: directory.appendingPathComponent("cert.pem"), mode: 0o644)
        try PEMOutput.write(authority.trustBundlePEM, to: directory.appendingPathComponent("bundle.crt"), mode: 0o644)
        print("issued \(issued.identity) serial \(issued.serialHex) valid until \(issued.notAfter)")
        print("wrote \(directory.appendingPathComponent("key.pem").path), cert.pem, bundle.crt")
    }
}
