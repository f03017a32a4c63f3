#if canImport(Glibc)
    import Glibc

    /// A Linux inotify instance watching folders for anything that can change the config.
    ///
    /// Used from one thread only (the folder source's watch thread). Events are not parsed:
    /// any event means "rescan", which keeps this small and makes a queue overflow harmless.
    final class InotifyWatcher {
        private let fd: Int32

        /// The events that can change what the folder holds: a file written and closed,
        /// renamed in or out (editors and the ConfigMap `..data` swap), created, deleted,
        /// or a watched folder itself deleted or moved. Not IN_ATTRIB: reading a file can
        /// update its atime, and the reload's own reads would wake the watcher again.
        private static let mask: UInt32 =
            UInt32(IN_CLOSE_WRITE) | UInt32(IN_MOVED_TO) | UInt32(IN_MOVED_FROM) | UInt32(IN_CREATE)
            | UInt32(IN_DELETE) | UInt32(IN_DELETE_SELF) | UInt32(IN_MOVE_SELF)

        /// nil when the kernel refuses an instance (for example the user's limit is reached).
        init?() {
            let fd = inotify_init1(Int32(IN_NONBLOCK) | Int32(IN_CLOEXEC))
            guard fd >= 0 else { return nil }
            self.fd = fd
        }

        deinit { close(fd) }

        /// Adds watches for the folders. Re-adding a watched folder is harmless, and picks
        /// up a folder re-created under the same name; the kernel drops the watch of a
        /// folder that goes away by itself.
        func watch(_ directories: [String]) {
            for directory in directories {
                _ = inotify_add_watch(fd, directory, Self.mask)
            }
        }

        /// Waits up to `milliseconds` for events; true when some arrived (they are drained).
        func wait(milliseconds: Int32) -> Bool {
            var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&pfd, 1, milliseconds) > 0 else { return false }
            var buffer = [UInt8](repeating: 0, count: 16 * 1024)
            var sawEvents = false
            while true {
                let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
                if count <= 0 { break }
                sawEvents = true
            }
            return sawEvents
        }
    }
#endif
