import Foundation
import WeftIdentity

/// Reading a PEM file named on the command line, with errors that name it.
enum PEMInput {
    static func read(_ path: String) throws -> String {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw IdentityError(.missingFile, what: path, reason: "no such file, or not readable")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw IdentityError(.badPEM, what: path, reason: "not UTF-8 text, so not PEM")
        }
        return text
    }
}
