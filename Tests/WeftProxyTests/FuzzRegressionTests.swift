import Foundation
import XCTest

@testable import WeftProxy

/// Replays the fuzzers' inputs through the invariants the fuzzers check
/// (`HTTP1FuzzInvariants`, `DetectFuzzInvariants`): every crash once found, kept under
/// `fuzz/regressions/<target>/`, and the seed corpus under `fuzz/corpus/<target>/`.
///
/// So a regression shows up in `swift test`, without building the libFuzzer harnesses.
final class FuzzRegressionTests: XCTestCase {
    /// The repository, found from this file: Tests/WeftProxyTests/FuzzRegressionTests.swift.
    private static let repository = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    private func inputs(_ folder: String, _ target: String) throws -> [URL] {
        let directory = Self.repository.appendingPathComponent("fuzz/\(folder)/\(target)")
        let names = try FileManager.default.contentsOfDirectory(atPath: directory.path)
        return names.filter { !$0.hasPrefix(".") }.sorted().map { directory.appendingPathComponent($0) }
    }

    private func replay(_ folder: String, _ target: String, through check: ([UInt8], (String) -> Void) -> Void) throws {
        let files = try inputs(folder, target)
        XCTAssertFalse(files.isEmpty, "no inputs in fuzz/\(folder)/\(target)")
        for file in files {
            let data = try [UInt8](Data(contentsOf: file))
            check(data) { message in XCTFail("fuzz/\(folder)/\(target)/\(file.lastPathComponent): \(message)") }
        }
    }

    func testHTTP1Regressions() throws {
        try replay("regressions", "http1", through: HTTP1FuzzInvariants.check)
    }

    func testDetectRegressions() throws {
        try replay("regressions", "detect", through: DetectFuzzInvariants.check)
    }

    func testHTTP1SeedCorpus() throws {
        try replay("corpus", "http1", through: HTTP1FuzzInvariants.check)
    }

    func testDetectSeedCorpus() throws {
        try replay("corpus", "detect", through: DetectFuzzInvariants.check)
    }

    /// The references the invariants compare against give the known answers, so a
    /// passing replay means the parser agrees with something that is itself right.
    func testReferencesAgreeWithKnownAnswers() {
        XCTAssertEqual(HTTP1FuzzInvariants.referenceScan(Array("GET / HTTP/1.1\r\n\r\nX".utf8)), .end(18))
        XCTAssertEqual(HTTP1FuzzInvariants.referenceScan(Array("GET / HTTP/1.1\nX".utf8)), .failed(.bareLF))
        XCTAssertEqual(HTTP1FuzzInvariants.referenceScan(Array("GET / HTTP/1.1\r\n".utf8)), .incomplete)
        XCTAssertEqual(
            HTTP1FuzzInvariants.referenceChunked(Array("5\r\nhello\r\n0\r\n\r\nX".utf8)),
            HTTP1FuzzInvariants.BodyOutcome(consumed: 15, isComplete: true, failed: false))
        XCTAssertEqual(HTTP1FuzzInvariants.referenceChunked(Array("5 x\r\n".utf8)).failed, true)
        XCTAssertEqual(
            HTTP1FuzzInvariants.referenceChunked(Array("5\r\nhel".utf8)),
            HTTP1FuzzInvariants.BodyOutcome(consumed: 6, isComplete: false, failed: false))
    }
}
