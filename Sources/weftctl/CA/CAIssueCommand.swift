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

    @Option(name: .long, help: "The CA directory (intermediate.crt, intermediate.key, bundle.crt).")
    var ca: String

    @Option(name: .long, help: "The workload's Kubernetes namespace.")
    var namespace: String

    @Option(name: .long, help: "The workload's Kubernetes service account.")
    var serviceAccount: String

    @Option(name: .long, help: "The directory to write key.pem, cert.pem and bundle.crt into.")
    var out: String

    @Option(name: .long, help: "How long the leaf is valid: a number with s, m, h or d (e.g. 24h).")
    var lifetime: LifetimeArgument = LifetimeArgument(seconds: 86_400)

    @Option(name: .long, help: "The SPIFFE trust domain of the identity.")
    var trustDomain: String = MeshDefaults.trustDomain

    func run() throws {
        let authority = try CertificateAuthority(loadingFrom: ca)
        let identity = SPIFFEID(trustDomain: trustDomain, namespace: namespace, serviceAccount: serviceAccount)
        let key = try WorkloadKey(identity: identity)
        let issued = try authority.issue(csrPEM: key.csrPEM, for: identity, lifetime: lifetime.duration)
        let directory = URL(fileURLWithPath: out)
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        try PEMOutput.write(key.privateKeyPEM, to: directory.appendingPathComponent("key.pem"), mode: 0o600)
        try PEMOutput.write(issued.chainPEM, to: directory.appendingPathComponent("cert.pem"), mode: 0o644)
        try PEMOutput.write(authority.trustBundlePEM, to: directory.appendingPathComponent("bundle.crt"), mode: 0o644)
        print("issued \(issued.identity) serial \(issued.serialHex) valid until \(issued.notAfter)")
        print("wrote \(directory.appendingPathComponent("key.pem").path), cert.pem, bundle.crt")
    }
}
