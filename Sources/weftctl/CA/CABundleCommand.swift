import ArgumentParser
import Foundation
import WeftIdentity

/// `weftctl ca bundle`: merges trust bundles (root rotation).
struct CABundleCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bundle",
        abstract: "Write a trust bundle holding every root of the given files, without duplicates.",
        discussion: "Used to rotate the mesh root; see docs/operations.md, \"Rotating the mesh root\"."
    )

    @Option(name: .long, help: "The bundle file to write (may be one of the inputs).")
    var out: String

    @Argument(help: ArgumentHelp("Bundles or root certificates (PEM) to merge, in order.", valueName: "file"))
    var inputs: [String]

    func validate() throws {
        if inputs.isEmpty {
            throw ValidationError("give at least one bundle or root certificate file")
        }
    }

    func run() throws {
        var merged: TrustBundle?
        for path in inputs {
            let bundle = try TrustBundle(pem: PEMInput.read(path), what: path)
            merged = merged.map { $0.merging(bundle) } ?? bundle
        }
        guard let merged else { return }
        try PEMOutput.write(merged.pem, to: URL(fileURLWithPath: out), mode: 0o644)
        print("wrote \(out): \(merged.roots.count) root(s)")
        for root in merged.roots {
            print("  \(root.subject)  valid until \(root.notValidAfter)")
        }
    }
}
