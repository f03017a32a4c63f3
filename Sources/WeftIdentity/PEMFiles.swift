import Crypto
import SwiftASN1
import X509

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

#if canImport(Glibc)
    import Glibc
    private let systemWrite = Glibc.write
#elseif canImport(Darwin)
    import Darwin
    private let systemWrite = Darwin.write
#endif

/// Reading and writing the CA's PEM files, with errors that name the file.
///
/// Internal: the public surface is `CAFiles` and `CertificateAuthority(loadingFrom:)`.
enum PEMFiles {
    /// Reads a whole file as UTF-8 text.
    static func readText(_ url: URL) throws(IdentityError) -> String {
        guard FileManager.default.fileExists(atPath: url.path) else {
            throw IdentityError(.missingFile, what: url.path, reason: "no such file")
        }
        guard let data = FileManager.default.contents(atPath: url.path) else {
            throw IdentityError(.fileAccess, what: url.path, reason: "cannot read the file")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw IdentityError(.badPEM, what: url.path, reason: "not UTF-8 text, so not PEM")
        }
        return text
    }

    /// Every `CERTIFICATE` block in `text`, decoded. At least one is required.
    static func certificates(in text: String, what: String) throws(IdentityError) -> [Certificate] {
        let documents: [PEMDocument]
        do {
            documents = try PEMDocument.parseMultiple(pemString: text)
        } catch {
            throw IdentityError(.badPEM, what: what, reason: "not valid PEM: \(error)")
        }
        var certificates: [Certificate] = []
        for (index, document) in documents.enumerated() where document.discriminator == "CERTIFICATE" {
            do {
                certificates.append(try Certificate(derEncoded: document.derBytes))
            } catch {
                throw IdentityError(
                    .badPEM, what: what, reason: "certificate #\(index + 1) does not decode as X.509: \(error)")
            }
        }
        if certificates.isEmpty {
            throw IdentityError(.badPEM, what: what, reason: "no CERTIFICATE block")
        }
        return certificates
    }

    /// The P-256 private key in `text` (PKCS#8 `PRIVATE KEY` or SEC1 `EC PRIVATE KEY`).
    static func p256Key(in text: String, what: String) throws(IdentityError) -> P256.Signing.PrivateKey {
        let documents: [PEMDocument]
        do {
            documents = try PEMDocument.parseMultiple(pemString: text)
        } catch {
            throw IdentityError(.badPEM, what: what, reason: "not valid PEM: \(error)")
        }
        guard let document = documents.first(where: { $0.discriminator.hasSuffix("PRIVATE KEY") }) else {
            throw IdentityError(.badPEM, what: what, reason: "no PRIVATE KEY block")
        }
        do {
            return try P256.Signing.PrivateKey(pemRepresentation: document.pemString)
        } catch {
            throw IdentityError(
                .unsupportedKey, what: what, reason: "not an ECDSA P-256 private key (\(document.discriminator))")
        }
    }

    /// PEM text for certificates, concatenated.
    static func pem(_ certificates: [Certificate]) throws(IdentityError) -> String {
        var text = ""
        for certificate in certificates {
            do {
                text += try certificate.serializeAsPEM().pemString + "\n"
            } catch {
                throw IdentityError(.cryptoFailure, what: "certificate", reason: "cannot encode as PEM: \(error)")
            }
        }
        return text
    }

    /// Writes `text` to `url` with `mode`, replacing the file; the mode holds from the
    /// first byte, so a key is never readable by others, not even briefly.
    static func write(_ text: String, to url: URL, mode: mode_t) throws(IdentityError) {
        let fd = open(url.path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode)
        if fd < 0 {
            throw IdentityError(
                .fileAccess, what: url.path, reason: "cannot create: \(String(cString: strerror(errno)))")
        }
        defer { close(fd) }
        // An existing file keeps its old mode through O_CREAT; set it explicitly.
        if fchmod(fd, mode) != 0 {
            throw IdentityError(
                .fileAccess, what: url.path, reason: "cannot chmod: \(String(cString: strerror(errno)))")
        }
        var bytes = Array(text.utf8)[...]
        while !bytes.isEmpty {
            let written = bytes.withUnsafeBytes { systemWrite(fd, $0.baseAddress, $0.count) }
            if written < 0 {
                if errno == EINTR { continue }
                throw IdentityError(
                    .fileAccess, what: url.path, reason: "cannot write: \(String(cString: strerror(errno)))")
            }
            bytes = bytes.dropFirst(written)
        }
    }
}
