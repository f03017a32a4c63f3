import Glibc
import XCTest

@testable import WeftProxy

final class ControlCacheTests: XCTestCase {
    private func temporaryDirectory() -> String {
        var template = Array("/tmp/weft-cache-XXXXXX".utf8CString)
        let path = template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)) }
        addTeardownBlock { _ = try? FileManager.default.removeItem(atPath: path) }
        return path + "/cache"
    }

    func testRoundTripWithPrivateFiles() throws {
        let cache = ControlCache(directory: temporaryDirectory())
        XCTAssertNil(try cache.loadIdentity(), "nothing cached yet")
        let identity = WorkloadIdentity(
            spiffeId: "spiffe://cluster.local/ns/demo/sa/client", chainPEM: "chain", keyPEM: "key",
            trustBundlePEM: "bundle", notBefore: "2026-11-25T10:00:00Z", notAfter: "2026-11-26T10:00:00Z")
        try cache.store(identity: identity)
        try cache.store(config: AppliedConfig(version: 3, generation: 2))
        XCTAssertEqual(try cache.loadIdentity(), identity)
        XCTAssertEqual(try cache.loadConfig()?.version, 3)
        for name in [ControlCache.identityFile, ControlCache.configFile] {
            var info = stat()
            XCTAssertEqual(stat("\(cache.directory)/\(name)", &info), 0)
            XCTAssertEqual(info.st_mode & 0o777, 0o600, name)
        }
        var dir = stat()
        XCTAssertEqual(stat(cache.directory, &dir), 0)
        XCTAssertEqual(dir.st_mode & 0o777, 0o700)
    }

    func testCorruptCacheIsAnErrorNamingTheFile() throws {
        let cache = ControlCache(directory: temporaryDirectory())
        try cache.store(config: AppliedConfig())
        let path = "\(cache.directory)/\(ControlCache.configFile)"
        let fd = open(path, O_WRONLY | O_TRUNC)
        _ = write(fd, "{not json", 9)
        close(fd)
        XCTAssertThrowsError(try cache.loadConfig()) { error in
            XCTAssertTrue("\(error)".hasPrefix(path), "\(error)")
        }
    }
}
