import Foundation
import WeftCore
import WeftManifests

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The YAML files of a config folder at one moment, and a fingerprint to notice changes.
///
/// Walks the folder recursively in sorted order, skipping hidden files and folders, and
/// following symlinks. That is how a Kubernetes ConfigMap mount is read: its visible
/// names (`mesh.yaml`) are symlinks through `..data` into a hidden, timestamped folder
/// that the kubelet swaps atomically; the hidden entries themselves are never read.
struct FolderListing: Equatable {
    struct File: Equatable {
        /// Relative to the config folder: the name errors use.
        let relativePath: String
        let absolutePath: String
        let size: Int64
        let modified: Int64
        let inode: UInt64
        let device: UInt64
    }

    let root: String
    let files: [File]
    /// The root and every visible folder under it (for inotify watches).
    let directories: [String]

    /// What the poll compares: paths, sizes, mtimes and inodes.
    var fingerprint: [File] { files }

    /// Lists `root`.
    /// - Throws: `ConfigLoadFailure` when the root is not a readable folder.
    static func scan(_ root: String) throws(ConfigLoadFailure) -> FolderListing {
        var info = stat()
        var problem: String?
        if stat(root, &info) != 0 {
            problem = String(cString: strerror(errno))
        } else if (info.st_mode & S_IFMT) != S_IFDIR {
            problem = "not a folder"
        } else if access(root, R_OK | X_OK) != 0 {
            problem = String(cString: strerror(errno))
        }
        if let problem {
            throw ConfigLoadFailure(errors: [
                ConfigError(
                    code: .unreadableFile, file: root, document: 0, field: "",
                    reason: "cannot read the config folder: \(problem)")
            ])
        }
        var files: [File] = []
        var directories = [root]
        var visited: Set<[UInt64]> = [[UInt64(info.st_dev), UInt64(info.st_ino)]]
        walk(root, prefix: "", files: &files, directories: &directories, visited: &visited)
        files.sort { $0.relativePath < $1.relativePath }
        return FolderListing(root: root, files: files, directories: directories)
    }

    private static func walk(
        _ dir: String, prefix: String, files: inout [File], directories: inout [String], visited: inout Set<[UInt64]>
    ) {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: dir) else { return }
        for name in names.sorted() where !name.hasPrefix(".") {
            let path = dir.hasSuffix("/") ? dir + name : "\(dir)/\(name)"
            let relative = prefix.isEmpty ? name : "\(prefix)/\(name)"
            var info = stat()
            guard stat(path, &info) == 0 else { continue }  // a dangling symlink, or gone meanwhile
            switch info.st_mode & S_IFMT {
            case S_IFDIR:
                guard visited.insert([UInt64(info.st_dev), UInt64(info.st_ino)]).inserted else { continue }
                directories.append(path)
                walk(path, prefix: relative, files: &files, directories: &directories, visited: &visited)
            case S_IFREG where name.hasSuffix(".yaml") || name.hasSuffix(".yml"):
                files.append(
                    File(
                        relativePath: relative, absolutePath: path, size: Int64(info.st_size),
                        modified: Int64(info.st_mtim.tv_sec) * 1_000_000_000 + Int64(info.st_mtim.tv_nsec),
                        inode: UInt64(info.st_ino), device: UInt64(info.st_dev)))
            default:
                continue
            }
        }
    }

    /// Reads and decodes every file, then builds the state.
    /// - Returns: the state, or every error of every file.
    func load() -> Result<MeshState, ConfigValidationFailure> {
        var results: [(file: String, result: ManifestDecodeResult)] = []
        var readErrors: [ConfigError] = []
        for file in files {
            guard let data = FileManager.default.contents(atPath: file.absolutePath) else {
                readErrors.append(
                    ConfigError(
                        code: .unreadableFile, file: file.relativePath, document: 0, field: "",
                        reason: "cannot be read"))
                continue
            }
            guard let text = String(data: data, encoding: .utf8) else {
                readErrors.append(
                    ConfigError(
                        code: .unreadableFile, file: file.relativePath, document: 0, field: "",
                        reason: "is not UTF-8 text"))
                continue
            }
            results.append((file.relativePath, ManifestDecoder.decode(text, file: file.relativePath)))
        }
        do {
            let state = try MeshState.build(from: results)
            guard readErrors.isEmpty else {
                return .failure(ConfigValidationFailure(errors: readErrors, warnings: state.warnings))
            }
            return .success(state)
        } catch {
            return .failure(ConfigValidationFailure(errors: readErrors + error.errors, warnings: error.warnings))
        }
    }
}
