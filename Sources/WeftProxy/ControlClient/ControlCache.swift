import Glibc

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// The last good identity and config on disk, so a proxy restarted while the control
/// plane is away still comes up with both.
///
/// In Kubernetes the folder is a memory-backed emptyDir: the key never reaches a disk and
/// survives container restarts but not the pod. Files are written whole to a temporary
/// name with mode 0600 and renamed, so a crash never leaves half a file.
struct ControlCache: Sendable {
    let directory: String

    static let identityFile = "identity.json"
    static let configFile = "config.json"

    func store(identity: WorkloadIdentity) throws {
        try write(Self.identityFile, value: identity)
    }

    func store(config: AppliedConfig) throws {
        try write(Self.configFile, value: config)
    }

    func loadIdentity() throws -> WorkloadIdentity? { try read(Self.identityFile) }
    func loadConfig() throws -> AppliedConfig? { try read(Self.configFile) }

    private func write<T: Encodable>(_ name: String, value: T) throws {
        mkdir(directory, 0o700)
        let data = try JSONEncoder().encode(value)
        let path = "\(directory)/\(name)"
        let temporary = "\(path).tmp"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw CacheError(path: temporary, operation: "open", errno: errno) }
        defer { close(fd) }
        fchmod(fd, 0o600)
        let written = data.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
        guard written == data.count else { throw CacheError(path: temporary, operation: "write", errno: errno) }
        guard fsync(fd) == 0 || errno == EINVAL else {
            throw CacheError(path: temporary, operation: "fsync", errno: errno)
        }
        guard rename(temporary, path) == 0 else { throw CacheError(path: path, operation: "rename", errno: errno) }
    }

    private func read<T: Decodable>(_ name: String) throws -> T? {
        let path = "\(directory)/\(name)"
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            if errno == ENOENT { return nil }
            throw CacheError(path: path, operation: "open", errno: errno)
        }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let n = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n < 0 { throw CacheError(path: path, operation: "read", errno: errno) }
            if n == 0 { break }
            bytes.append(contentsOf: chunk[0..<n])
        }
        do {
            return try JSONDecoder().decode(T.self, from: Data(bytes))
        } catch {
            throw CacheError(path: path, operation: "decode", errno: 0, detail: "\(error)")
        }
    }
}

struct CacheError: Error, CustomStringConvertible {
    let path: String
    let operation: String
    let errno: Int32
    var detail: String? = nil

    var description: String {
        if let detail { return "\(path): \(operation): \(detail)" }
        return "\(path): \(operation) failed: \(String(cString: strerror(errno)))"
    }
}

/// Reads a whole small file (token, bundle) as text; errors name the file.
func readTextFile(_ path: String) throws -> String {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { throw CacheError(path: path, operation: "open", errno: errno) }
    defer { close(fd) }
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 16 * 1024)
    while bytes.count < 4 << 20 {
        let n = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
        if n < 0 { throw CacheError(path: path, operation: "read", errno: errno) }
        if n == 0 { break }
        bytes.append(contentsOf: chunk[0..<n])
    }
    return String(decoding: bytes, as: UTF8.self)
}
