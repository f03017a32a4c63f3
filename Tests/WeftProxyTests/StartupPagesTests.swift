import Glibc
import XCTest

@testable import WeftProxy

final class StartupPagesTests: XCTestCase {
    /// The process's resident pages, from /proc/self/statm (second field).
    private func residentPages() throws -> Int {
        let fd = open("/proc/self/statm", O_RDONLY)
        guard fd >= 0 else { throw XCTSkip("/proc is not mounted") }
        defer { close(fd) }
        var bytes = [UInt8](repeating: 0, count: 256)
        let n = bytes.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        let fields = String(decoding: bytes[..<max(n, 0)], as: UTF8.self).split(separator: " ")
        return try XCTUnwrap(Int(fields[1]))
    }

    func testCodePagesAreLetGoAndTheProcessRunsOn() throws {
        let before = try residentPages()
        let advised = StartupPages.release()
        let after = try residentPages()
        // The test binary, the Swift runtime and libc: several MB of code and read-only data.
        XCTAssertGreaterThan(advised, 1 << 20)
        XCTAssertLessThan(after, before, "advised \(advised) bytes, resident pages \(before) → \(after)")
        // Code runs on after its pages are gone (each faults back in), and data is intact:
        // writable segments were left alone.
        var words: [String: Int] = [:]
        for word in "the code pages come back when they run again, the data never left".split(separator: " ") {
            words[String(word), default: 0] += 1
        }
        XCTAssertEqual(words["the"], 2)
        XCTAssertEqual(String(describing: StartupPagesTests.self), "StartupPagesTests")
    }
}
