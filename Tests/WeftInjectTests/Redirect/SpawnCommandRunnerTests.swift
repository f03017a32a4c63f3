import XCTest

@testable import WeftInject

final class SpawnCommandRunnerTests: XCTestCase {
    private let runner = SpawnCommandRunner(searchPath: "/nonexistent:/usr/bin:/bin")

    func testLocatesExecutablesInTheSearchPath() {
        XCTAssertEqual(runner.locate("sh").map { $0.hasSuffix("/sh") }, true)
        XCTAssertNil(runner.locate("weft-no-such-binary"))
        XCTAssertNil(runner.locate("."), "a directory is not a binary")
        XCTAssertNil(SpawnCommandRunner(searchPath: "").locate("sh"))
        XCTAssertEqual(runner.locate("/bin/sh"), "/bin/sh")
    }

    func testFeedsInputAndCapturesOutput() throws {
        let result = try runner.run(runner.locate("cat")!, arguments: [], input: "*nat\nCOMMIT\n")
        XCTAssertEqual(result, CommandResult(status: 0, output: "*nat\nCOMMIT\n"))
    }

    func testLargeInputAndOutputDoNotDeadlock() throws {
        let big = String(repeating: "-A WEFT_OUTBOUND -d 10.0.0.0/8 -j RETURN\n", count: 50_000)
        let sh = runner.locate("sh")!
        let result = try runner.run(
            sh, arguments: ["-c", "cat; cat >&2 </dev/null; head -c 300000 /dev/zero >&2"], input: big)
        XCTAssertEqual(result.output, big)
        XCTAssertEqual(result.errorOutput.utf8.count, 300_000)
    }

    func testExitStatusAndStandardError() throws {
        let result = try runner.run(runner.locate("sh")!, arguments: ["-c", "echo oops >&2; exit 3"], input: "")
        XCTAssertEqual(result, CommandResult(status: 3, errorOutput: "oops\n"))
        XCTAssertFalse(result.succeeded)
    }

    func testChildThatIgnoresItsInputDoesNotKillUs() throws {
        let big = String(repeating: "x", count: 1 << 20)
        let result = try runner.run(runner.locate("sh")!, arguments: ["-c", "exit 0"], input: big)
        XCTAssertEqual(result.status, 0)
    }

    func testSignalIsReportedAs128PlusSignal() throws {
        let result = try runner.run(runner.locate("sh")!, arguments: ["-c", "kill -TERM $$"], input: "")
        XCTAssertEqual(result.status, 128 + 15)
    }

    func testMissingBinaryIsASpawnFailure() {
        XCTAssertThrowsError(try runner.run("/nonexistent/iptables-restore", arguments: [], input: "")) { error in
            XCTAssertEqual((error as? RedirectError)?.code, .spawnFailed)
            XCTAssertEqual((error as? RedirectError)?.subject, "/nonexistent/iptables-restore")
        }
    }
}
