import Foundation
import XCTest

/// Replays the YAML fuzzer's inputs through the invariants it checks (`YAMLFuzzInvariants`):
/// every crash once found, kept under `fuzz/regressions/yaml/`, and the seed corpus under
/// `fuzz/corpus/yaml/` (the demo's control-plane/config/ among them), so a regression shows
/// up in `swift test` without building the libFuzzer harness (fuzz/run.sh).
final class YAMLFuzzRegressionTests: XCTestCase {
    /// The repository, found from this file: Tests/WeftCoreTests/YAMLFuzzRegressionTests.swift.
    private static let repository = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// Replays every file of fuzz/<folder>/yaml; a folder that does not exist has none.
    private func replay(_ folder: String, requireInputs: Bool) throws {
        let directory = Self.repository.appendingPathComponent("fuzz/\(folder)/yaml")
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
        let files = names.filter { !$0.hasPrefix(".") }.sorted()
        if requireInputs { XCTAssertFalse(files.isEmpty, "no inputs in fuzz/\(folder)/yaml") }
        for name in files {
            let data = try [UInt8](Data(contentsOf: directory.appendingPathComponent(name)))
            YAMLFuzzInvariants.check(data) { message in XCTFail("fuzz/\(folder)/yaml/\(name): \(message)") }
        }
    }

    func testYAMLRegressions() throws {
        try replay("regressions", requireInputs: false)
    }

    func testYAMLSeedCorpus() throws {
        try replay("corpus", requireInputs: true)
    }
}
