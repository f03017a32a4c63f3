import Foundation
import WeftIdentity

/// Writing PEM files from the command line with a given mode (keys: 0600).
enum PEMOutput {
    static func write(_ text: String, to url: URL, mode: Int) throws {
        let manager = FileManager.default
        // Create empty with the final mode first, so a key is never readable by others.
        if !manager.fileExists(atPath: url.path) {
            guard manager.createFile(atPath: url.path, contents: nil, attributes: [.posixPermissions: mode]) else {
                throw IdentityError(.fileAccess, what: url.path, reason: "cannot create the file")
            }
        }
        do {
            try manager.setAttributes([.posixPermissions: mode], ofItemAtPath: url.path)
            try Data(text.utf8).write(to: url)
        } catch {
            throw IdentityError(.fileAccess, what: url.path, reason: "cannot write: \(error)")
        }
    }
}
