import ArgumentParser
import Foundation
import WeftCore
import WeftIdentity

/// `weftctl ca init`: makes a new root and intermediate.
struct CAInitCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "init",
        abstract: "Create a new mesh CA (a P-256 root and an intermediate) in a directory."
    )

    @Option(name: .long, help: "The directory to write the CA files into (created if missing).")
    var out: String

    @Option(name: .long, help: "The SPIFFE trust domain the CA issues for.")
    var trustDomain: String = MeshDefaults.trustDomain

    @Option(
        name: .long,
        help: ArgumentHelp(
            "A trust bundle whose roots stay trusted next to the new root (root rotation); repeatable.",
            valueName: "bundle.crt"))
    var trustAlso: [String] = []

    @Flag(name: .long, help: "Replace an existing CA in --out.")
    var force = false

    func run() throws {
        var also: TrustBundle?
        for path in trustAlso {
            let bundle = try TrustBundle(pem: PEMInput.read(path), what: path)
            also = also.map { $0.merging(bundle) } ?? bundle
        }
        let files = try CertificateAuthority.create(trustDomain: trustDomain, alsoTrusting: also)
        let written = try files.write(to: URL(fileURLWithPath: out), force: force)
        for url in written {
            print("wrote \(url.path)")
        }
        let roots = try TrustBundle(pem: files.bundlePEM).roots.count
        print("trust domain \(trustDomain); bundle.crt holds \(roots) root(s)")
    }
}
