import Glibc

/// The real `CommandRunner`: finds binaries in `PATH` and runs them with `posix_spawn`.
///
/// Standard input, output and error are pipes served by one `poll` loop, so a large
/// `iptables-save` output cannot deadlock against a large restore input. SIGPIPE is ignored in
/// this process (a binary that exits without reading its input must not kill us) and reset to
/// its default in the child.
public struct SpawnCommandRunner: CommandRunner {
    /// The search path used when `PATH` is not set, as in Debian's root shells.
    public static let defaultSearchPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

    /// The colon-separated directories searched by `locate(_:)`.
    public let searchPath: String

    /// Creates a runner that searches `searchPath`, by default this process's `PATH`.
    public init(searchPath: String? = nil) {
        self.searchPath = searchPath ?? getenv("PATH").map { String(cString: $0) } ?? Self.defaultSearchPath
    }

    /// The first executable regular file called `name` in the search path; a `name` with a
    /// slash is taken as a path.
    public func locate(_ name: String) -> String? {
        if name.contains("/") { return Self.isExecutableFile(name) ? name : nil }
        for directory in searchPath.split(separator: ":") {
            let candidate = "\(directory)/\(name)"
            if Self.isExecutableFile(candidate) { return candidate }
        }
        return nil
    }

    /// Runs the binary at `path` with `arguments` and `input` on its standard input.
    ///
    /// The child gets this process's environment, and `path` as its `argv[0]`.
    /// - Throws: `RedirectError.spawnFailed` when the pipes cannot be made or `posix_spawn` fails.
    public func run(_ path: String, arguments: [String], input: String) throws(RedirectError) -> CommandResult {
        signal(SIGPIPE, SIG_IGN)
        var pipes: [[Int32]] = []
        for _ in 0..<3 {
            var ends: [Int32] = [-1, -1]
            // pipe2 is not exported to Swift; no other thread spawns while init runs.
            guard pipe(&ends) == 0 else {
                let error = Self.failure(path, "cannot create a pipe", errno)
                Self.closeAll(Array(pipes.joined()))
                throw error
            }
            for end in ends { _ = fcntl(end, F_SETFD, FD_CLOEXEC) }
            pipes.append(ends)
        }
        let (stdinRead, stdinWrite) = (pipes[0][0], pipes[0][1])
        let (stdoutRead, stdoutWrite) = (pipes[1][0], pipes[1][1])
        let (stderrRead, stderrWrite) = (pipes[2][0], pipes[2][1])

        let pid: pid_t
        do throws(RedirectError) {
            defer { Self.closeAll([stdinRead, stdoutWrite, stderrWrite]) }
            pid = try Self.spawn(path, arguments: arguments, stdin: stdinRead, stdout: stdoutWrite, stderr: stderrWrite)
        } catch {
            Self.closeAll([stdinWrite, stdoutRead, stderrRead])
            throw error
        }
        let (output, errorOutput) = Self.exchange(
            input: Array(input.utf8), stdin: stdinWrite, stdout: stdoutRead, stderr: stderrRead)
        return CommandResult(
            status: Self.wait(for: pid),
            output: String(decoding: output, as: UTF8.self),
            errorOutput: String(decoding: errorOutput, as: UTF8.self))
    }

    private static func spawn(
        _ path: String, arguments: [String], stdin: Int32, stdout: Int32, stderr: Int32
    ) throws(RedirectError) -> pid_t {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        for (from, to) in [(stdin, STDIN_FILENO), (stdout, STDOUT_FILENO), (stderr, STDERR_FILENO)] {
            posix_spawn_file_actions_adddup2(&actions, from, to)
        }
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var defaultSignals = sigset_t()
        sigemptyset(&defaultSignals)
        sigaddset(&defaultSignals, SIGPIPE)
        posix_spawnattr_setsigdefault(&attributes, &defaultSignals)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGDEF))

        let argv: [UnsafeMutablePointer<CChar>?] = ([path] + arguments).map { strdup($0) } + [nil]
        defer { for argument in argv { free(argument) } }
        var pid: pid_t = 0
        let status = posix_spawn(&pid, path, &actions, &attributes, argv, environ)
        guard status == 0 else { throw failure(path, "posix_spawn failed", status) }
        return pid
    }

    /// Writes `input` and reads both outputs until the child closes them.
    private static func exchange(input: [UInt8], stdin: Int32, stdout: Int32, stderr: Int32) -> ([UInt8], [UInt8]) {
        var written = 0
        var inputFD = stdin
        var outputs: [[UInt8]] = [[], []]
        var outputFDs = [stdout, stderr]
        _ = fcntl(inputFD, F_SETFL, fcntl(inputFD, F_GETFL) | O_NONBLOCK)
        if input.isEmpty {
            close(inputFD)
            inputFD = -1
        }
        var buffer = [UInt8](repeating: 0, count: 65536)
        while inputFD >= 0 || outputFDs.contains(where: { $0 >= 0 }) {
            // poll ignores negative descriptors, so closed ones simply drop out.
            var fds = [
                pollfd(fd: inputFD, events: Int16(POLLOUT), revents: 0),
                pollfd(fd: outputFDs[0], events: Int16(POLLIN), revents: 0),
                pollfd(fd: outputFDs[1], events: Int16(POLLIN), revents: 0),
            ]
            if poll(&fds, nfds_t(fds.count), -1) < 0 {
                if errno == EINTR { continue }
                break
            }
            if inputFD >= 0 && fds[0].revents != 0 {
                let count = input.withUnsafeBytes { write(inputFD, $0.baseAddress! + written, $0.count - written) }
                if count > 0 { written += count }
                // EPIPE means the child stopped reading; its exit status will say why.
                if written == input.count || (count < 0 && errno != EAGAIN && errno != EINTR) {
                    close(inputFD)
                    inputFD = -1
                }
            }
            for index in 0..<2 where outputFDs[index] >= 0 && fds[index + 1].revents != 0 {
                let count = buffer.withUnsafeMutableBytes { read(outputFDs[index], $0.baseAddress, $0.count) }
                if count > 0 {
                    outputs[index] += buffer[..<count]
                } else if count == 0 || (errno != EAGAIN && errno != EINTR) {
                    close(outputFDs[index])
                    outputFDs[index] = -1
                }
            }
        }
        closeAll([inputFD] + outputFDs)
        return (outputs[0], outputs[1])
    }

    /// Waits for the child and decodes its status: the exit code, or 128 + the signal.
    private static func wait(for pid: pid_t) -> Int32 {
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 {
            if errno != EINTR { return 127 }
        }
        let signal = status & 0x7f
        return signal == 0 ? (status >> 8) & 0xff : 128 + signal
    }

    /// Closes the open descriptors among `descriptors`; negative ones are already closed.
    private static func closeAll(_ descriptors: [Int32]) {
        for descriptor in descriptors where descriptor >= 0 { close(descriptor) }
    }

    private static func isExecutableFile(_ path: String) -> Bool {
        var info = stat()
        return stat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFREG && access(path, X_OK) == 0
    }

    private static func failure(_ path: String, _ what: String, _ code: Int32) -> RedirectError {
        RedirectError(code: .spawnFailed, subject: path, detail: "\(what): \(String(cString: strerror(code)))")
    }
}
