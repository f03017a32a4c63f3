#if canImport(Glibc)
    import Glibc
#endif
#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// The mesh CA's files, as PEM text: what `CertificateAuthority.create` makes and
/// `weftctl ca init` writes.
///
/// On disk (`write(to:force:)`):
///
/// | file | what | mode |
/// |---|---|---|
/// | `root.crt` | the self-signed root (10 years) | 0644 |
/// | `root.key` | its key; only needed to make a new intermediate, so it can be kept offline | 0600 |
/// | `intermediate.crt` | the issuing CA (1 year, pathLen 0), signed by the root | 0644 |
/// | `intermediate.key` | its key; the control plane signs leaves with it | 0600 |
/// | `bundle.crt` | the trust bundle: every trusted root, concatenated | 0644 |
///
/// The bundle holds more than one root while a root is being rotated (docs/operations.md).
public struct CAFiles: Sendable {
    public static let rootCertificateFile = "root.crt"
    public static let rootKeyFile = "root.key"
    public static let intermediateCertificateFile = "intermediate.crt"
    public static let intermediateKeyFile = "intermediate.key"
    public static let bundleFile = "bundle.crt"

    public var rootCertificatePEM: String
    public var rootKeyPEM: String
    public var intermediateCertificatePEM: String
    public var intermediateKeyPEM: String
    /// Every trusted root, PEM, the new root first.
    public var bundlePEM: String

    public init(
        rootCertificatePEM: String, rootKeyPEM: String, intermediateCertificatePEM: String,
        intermediateKeyPEM: String, bundlePEM: String
    ) {
        self.rootCertificatePEM = rootCertificatePEM
        self.rootKeyPEM = rootKeyPEM
        self.intermediateCertificatePEM = intermediateCertificatePEM
        self.intermediateKeyPEM = intermediateKeyPEM
        self.bundlePEM = bundlePEM
    }

    /// Writes the five files into `directory`, creating it if needed.
    ///
    /// Refuses when any of the five files exists, unless `force`: overwriting a CA
    /// silently would cut every workload off from the mesh at its next renewal.
    /// - Returns: the paths written, in the order of the table above.
    /// - Throws: `IdentityError` `.alreadyExists` naming the first file found, or
    ///   `.fileAccess` naming the file that could not be written.
    @discardableResult
    public func write(to directory: URL, force: Bool = false) throws(IdentityError) -> [URL] {
        let files: [(String, String, mode_t)] = [
            (Self.rootCertificateFile, rootCertificatePEM, 0o644),
            (Self.rootKeyFile, rootKeyPEM, 0o600),
            (Self.intermediateCertificateFile, intermediateCertificatePEM, 0o644),
            (Self.intermediateKeyFile, intermediateKeyPEM, 0o600),
            (Self.bundleFile, bundlePEM, 0o644),
        ]
        let urls = files.map { directory.appendingPathComponent($0.0) }
        if !force, let existing = urls.first(where: { FileManager.default.fileExists(atPath: $0.path) }) {
            throw IdentityError(
                .alreadyExists, what: existing.path, reason: "a CA already exists here (use --force to replace it)")
        }
        do {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        } catch {
            throw IdentityError(.fileAccess, what: directory.path, reason: "cannot create the directory: \(error)")
        }
        for ((_, text, mode), url) in zip(files, urls) {
            try PEMFiles.write(text, to: url, mode: mode)
        }
        return urls
    }
}
