import Foundation
import XCTest

/// Replays the control fuzzer's inputs through the invariants it checks
/// (`ControlFuzzInvariants`): every crash once found, kept under `fuzz/regressions/control/`,
/// and the seed corpus under `fuzz/corpus/control/`, so a regression shows up in `swift test`
/// without building the libFuzzer harness (fuzz/run.sh).
final class ControlFuzzRegressionTests: XCTestCase {
    /// The repository, found from this file: Tests/WeftProtocolTests/ControlFuzzRegressionTests.swift.
    private static let repository = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// Replays every file of fuzz/<folder>/control; a folder that does not exist has none.
    private func replay(_ folder: String, requireInputs: Bool) throws {
        let directory = Self.repository.appendingPathComponent("fuzz/\(folder)/control")
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
        let files = names.filter { !$0.hasPrefix(".") }.sorted()
        if requireInputs { XCTAssertFalse(files.isEmpty, "no inputs in fuzz/\(folder)/control") }
        for name in files {
            let data = try [UInt8](Data(contentsOf: directory.appendingPathComponent(name)))
            ControlFuzzInvariants.check(data) { message in XCTFail("fuzz/\(folder)/control/\(name): \(message)") }
        }
    }

    func testControlRegressions() throws {
        try replay("regressions", requireInputs: false)
    }

    func testControlSeedCorpus() throws {
        try replay("corpus", requireInputs: true)
    }

    /// The reference the frame invariants compare against gives the known answers.
    func testReferenceSplitAgreesWithKnownAnswers() {
        let ping = Array(#"{"id":1,"type":"ping"}"#.utf8)
        let frame = [0, 0, 0, UInt8(ping.count)] + ping
        typealias Split = ControlFuzzInvariants.Split
        XCTAssertEqual(
            ControlFuzzInvariants.referenceSplit(frame + frame + [0, 0], limit: 64),
            Split(frames: [ping, ping], end: .needMore(buffered: 2)))
        XCTAssertEqual(
            ControlFuzzInvariants.referenceSplit(frame + [0, 0, 0, 0], limit: 64),
            Split(frames: [ping], end: .failed(.emptyFrame)))
        XCTAssertEqual(
            ControlFuzzInvariants.referenceSplit(frame, limit: ping.count - 1),
            Split(frames: [], end: .failed(.oversizedFrame)))
        XCTAssertEqual(
            ControlFuzzInvariants.referenceSplit(Array(frame.dropLast()), limit: 64),
            Split(frames: [], end: .needMore(buffered: frame.count - 1)))
    }
}
