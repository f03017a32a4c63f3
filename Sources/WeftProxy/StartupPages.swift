import Glibc

/// Lets go of the code pages the proxy ran only while starting.
///
/// Starting up runs code that a serving sidecar never runs again: argument parsing, key
/// generation, the first TLS handshake and config decode, listener set-up. Each page of
/// it stays mapped, and the kernel maps a 64 KiB fault-around window of neighbours with
/// every page it faults in. Once the proxy is ready, `release()` unmaps the pages of
/// every read-only segment (code, read-only data) of the binary and its libraries with
/// `MADV_DONTNEED`; whatever still runs faults its page back in from the page cache (a
/// minor fault) on first use. The resident set then holds what the proxy has run since.
///
/// Safe because those segments are never written: `MADV_DONTNEED` on a private file
/// mapping drops this process's copy of a page, and for a page never written that copy is
/// the file's. Writable segments (data, and RELRO, whose pages the loader relocated) are
/// left alone. The page cache is not touched: other processes mapping the same binary keep
/// their pages, and the kernel reclaims unmapped file pages first under memory pressure.
///
/// One caveat: uprobes (bpftrace, perf probe) placed on the proxy's code before `release()`
/// are lost with the page that held them; attach them after the proxy is ready.
/// BENCHMARKS.md, "Start-up pages", has the measurements.
public enum StartupPages {
    /// `dl_iterate_phdr`'s type (link.h, which the Glibc module does not export).
    private typealias Iterate =
        @convention(c) (
            @convention(c) (UnsafeRawPointer?, Int, UnsafeMutableRawPointer?) -> CInt, UnsafeMutableRawPointer?
        ) -> CInt

    /// Advises `MADV_DONTNEED` on the non-writable loadable segments of every object
    /// loaded in this process, except the vDSO. Returns how many bytes were advised (0 if
    /// the loader's `dl_iterate_phdr` cannot be found, in which case nothing changes).
    @discardableResult
    public static func release() -> Int {
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "dl_iterate_phdr") else { return 0 }
        let iterate = unsafeBitCast(symbol, to: Iterate.self)
        var advised = 0
        _ = iterate(
            { info, _, context in
                guard let info, let context else { return 0 }
                context.assumingMemoryBound(to: Int.self).pointee += StartupPages.releaseSegments(of: info)
                return 0
            }, &advised)
        return advised
    }

    /// One `struct dl_phdr_info` (64-bit): load address at 0, name at 8, program headers
    /// at 16, their count (a 16-bit `Elf64_Half`) at 24. Each `Elf64_Phdr` is 56 bytes:
    /// `p_type` at 0, `p_flags` at 4, `p_vaddr` at 16, `p_memsz` at 40.
    fileprivate static func releaseSegments(of info: UnsafeRawPointer) -> Int {
        let base = UInt(info.load(as: UInt64.self))
        if let name = info.load(fromByteOffset: 8, as: UnsafePointer<CChar>?.self),
            strstr(name, "linux-vdso") != nil
        {
            return 0
        }
        guard let headers = info.load(fromByteOffset: 16, as: UnsafeRawPointer?.self) else { return 0 }
        let count = Int(info.load(fromByteOffset: 24, as: UInt16.self))
        let page = UInt(sysconf(Int32(_SC_PAGESIZE)))
        let loadable: UInt32 = 1  // PT_LOAD
        let writable: UInt32 = 2  // PF_W
        var total = 0
        for index in 0..<count {
            let header = headers + index * 56
            let type = header.load(as: UInt32.self)
            let flags = header.load(fromByteOffset: 4, as: UInt32.self)
            let address = UInt(header.load(fromByteOffset: 16, as: UInt64.self))
            let size = UInt(header.load(fromByteOffset: 40, as: UInt64.self))
            guard type == loadable, flags & writable == 0, size > 0 else { continue }
            // Only the pages wholly inside the segment: with an old linker's layout a
            // segment's first or last page can also hold the start of a writable one,
            // which the loader maps over it, and dropping that page would lose data.
            let start = (base + address + page - 1) & ~(page - 1)
            let end = (base + address + size) & ~(page - 1)
            guard start < end else { continue }
            if madvise(UnsafeMutableRawPointer(bitPattern: start), Int(end - start), MADV_DONTNEED) == 0 {
                total += Int(end - start)
            }
        }
        return total
    }
}
