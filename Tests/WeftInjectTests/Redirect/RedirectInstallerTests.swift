import XCTest

@testable import WeftInject

final class RedirectInstallerTests: XCTestCase {
    private let config = RedirectConfig()

    private func expectError(
        _ code: RedirectError.Code, subject: String, _ body: () throws -> Void, line: UInt = #line
    ) -> RedirectError? {
        do {
            try body()
            XCTFail("expected \(code)", line: line)
        } catch let error as RedirectError {
            XCTAssertEqual(error.code, code, "\(error)", line: line)
            XCTAssertEqual(error.subject, subject, line: line)
            return error
        } catch {
            XCTFail("unexpected \(error)", line: line)
        }
        return nil
    }

    func testDryRunRunsNothingAndLabelsEachFragment() {
        let runner = FakeCommandRunner(installed: [])
        let text = RedirectInstaller(runner: runner, mode: .nft).dryRun(config)
        XCTAssertEqual(runner.calls, [])
        XCTAssertEqual(
            text,
            "# iptables-nft-restore (IPv4): replaces the WEFT_ lines of the nat table\n"
                + RedirectRules(config: config, family: .ipv4).fragment
                + "# ip6tables-nft-restore (IPv6, if the IPv6 nat table is usable): replaces the WEFT_ lines of the nat table\n"
                + RedirectRules(config: config, family: .ipv6).fragment)
        let v4Only = RedirectInstaller(runner: runner, ipv6: .off).dryRun(config)
        XCTAssertEqual(
            v4Only,
            "# iptables-restore (IPv4): replaces the WEFT_ lines of the nat table\n"
                + RedirectRules(config: config, family: .ipv4).fragment)
        XCTAssertEqual(runner.calls, [])
    }

    func testApplyReadsBothTablesThenRestoresEachWithTheLockWait() throws {
        let runner = FakeCommandRunner()
        let notes = try RedirectInstaller(runner: runner).apply(config)
        XCTAssertEqual(
            runner.calls.map { [$0.tool] + $0.arguments },
            [
                ["iptables-save", "-t", "nat"], ["ip6tables-save", "-t", "nat"],
                ["iptables-restore", "--wait=30"], ["ip6tables-restore", "--wait=30"],
            ])
        XCTAssertEqual(
            runner.calls[2].input, NatTable().installing(RedirectRules(config: config, family: .ipv4)).restoreInput)
        XCTAssertEqual(
            runner.calls[3].input, NatTable().installing(RedirectRules(config: config, family: .ipv6)).restoreInput)
        XCTAssertEqual(
            notes,
            [
                "iptables-restore: installed the redirect rules in the IPv4 nat table",
                "ip6tables-restore: installed the redirect rules in the IPv6 nat table",
            ])
    }

    func testApplyTwiceLeavesTheSameTablesAndKeepsForeignRules() throws {
        let runner = FakeCommandRunner()
        runner.tables["iptables-legacy"] = "*nat\n:OUTPUT ACCEPT [0:0]\n-A OUTPUT -d 10.0.0.1/32 -j RETURN\nCOMMIT\n"
        let installer = RedirectInstaller(runner: runner, mode: .legacy, ipv6: .off)
        _ = try installer.apply(config)
        let once = runner.tables
        _ = try installer.apply(config)
        XCTAssertEqual(runner.tables, once)
        XCTAssertEqual(Set(runner.tools), ["iptables-legacy-save", "iptables-legacy-restore"])
        let table = try NatTable(saved: once["iptables-legacy"]!, tool: "t")
        XCTAssertTrue(table.rules.contains("-A OUTPUT -d 10.0.0.1/32 -j RETURN"))
        XCTAssertEqual(table.rules.filter { $0.contains("-j WEFT_OUTBOUND") }.count, 1)
    }

    func testMissingRestoreBinaryIsNamedWithTheFix() {
        let runner = FakeCommandRunner(installed: ["iptables-save"])
        let error = expectError(.toolNotFound, subject: "iptables-restore") {
            _ = try RedirectInstaller(runner: runner).apply(config)
        }
        XCTAssertEqual(
            error?.description,
            "iptables-restore not found in PATH: install the iptables package (Debian: apt-get install iptables) or pass --iptables-mode"
        )
        XCTAssertEqual(runner.calls, [])
    }

    func testMissingIPv6ToolsAreSkippedInAutoAndAnErrorWhenOn() throws {
        let runner = FakeCommandRunner(installed: ["iptables-save", "iptables-restore"])
        let notes = try RedirectInstaller(runner: runner, ipv6: .auto).apply(config)
        XCTAssertEqual(runner.tools, ["iptables-save", "iptables-restore"])
        XCTAssertEqual(notes.count, 2)
        XCTAssertTrue(notes[0].hasPrefix("IPv6 skipped (--ipv6 auto): ip6tables-restore not found in PATH"), notes[0])

        let strict = FakeCommandRunner(installed: ["iptables-save", "iptables-restore"])
        _ = expectError(.toolNotFound, subject: "ip6tables-restore") {
            _ = try RedirectInstaller(runner: strict, ipv6: .on).apply(config)
        }
        XCTAssertEqual(strict.tools, ["iptables-save"], "nothing is restored before both tables are read")
    }

    func testUnusableIPv6NatTableIsSkippedInAuto() throws {
        let runner = FakeCommandRunner()
        runner.failures["ip6tables-save"] = [
            CommandResult(status: 1, errorOutput: "ip6tables-save: Table does not exist (do you need to insmod?)\n")
        ]
        let notes = try RedirectInstaller(runner: runner).apply(config)
        XCTAssertEqual(runner.tools, ["iptables-save", "ip6tables-save", "iptables-restore"])
        XCTAssertTrue(notes[0].contains("Table does not exist"), notes[0])

        runner.failures["ip6tables-restore"] = [CommandResult(status: 2, errorOutput: "line 3 failed\n")]
        let restoreNotes = try RedirectInstaller(runner: runner).apply(config)
        XCTAssertTrue(
            restoreNotes[1].hasPrefix("IPv6 skipped (--ipv6 auto): ip6tables-restore failed"), restoreNotes[1])

        runner.failures["ip6tables-restore"] = [CommandResult(status: 2, errorOutput: "line 3 failed\n")]
        let error = expectError(.toolFailed, subject: "ip6tables-restore") {
            _ = try RedirectInstaller(runner: runner, ipv6: .on).apply(config)
        }
        XCTAssertEqual(
            error?.description,
            "ip6tables-restore failed: exit status 2: line 3 failed (--dry-run prints the rules that were being installed)"
        )
    }

    func testPermissionDeniedIsMappedToTheCapabilityHint() {
        let runner = FakeCommandRunner()
        let message =
            "iptables-save v1.8.9 (nf_tables): Could not fetch rule set generation id: Permission denied (you must be root)"
        runner.failures["iptables-save"] = [CommandResult(status: 4, errorOutput: message + "\n")]
        let error = expectError(.permissionDenied, subject: "iptables-save") {
            _ = try RedirectInstaller(runner: runner).apply(config)
        }
        XCTAssertEqual(
            error?.description,
            "weft-proxy init needs the NET_ADMIN capability (run the init container as root with NET_ADMIN / NET_RAW); iptables-save said: "
                + message)
    }

    func testVagueFailureWithoutNetAdminIsACapabilityError() {
        let vague = CommandResult(status: 2, errorOutput: "iptables-restore: unable to initialize table 'nat'\n")
        let runner = FakeCommandRunner()
        runner.failures["iptables-legacy-restore"] = [vague]
        _ = expectError(.permissionDenied, subject: "iptables-legacy-restore") {
            _ = try RedirectInstaller(runner: runner, mode: .legacy, hasNetAdmin: false).apply(config)
        }
        runner.failures["iptables-legacy-restore"] = [vague]
        _ = expectError(.toolFailed, subject: "iptables-legacy-restore") {
            _ = try RedirectInstaller(runner: runner, mode: .legacy, hasNetAdmin: true).apply(config)
        }
    }

    func testRestoreWithoutWaitSupportIsRetriedWithoutTheFlag() throws {
        let runner = FakeCommandRunner()
        runner.failures["iptables-restore"] = [
            CommandResult(status: 2, errorOutput: "iptables-restore: unrecognized option '--wait=30'\n")
        ]
        _ = try RedirectInstaller(runner: runner, ipv6: .off).apply(config)
        XCTAssertEqual(
            runner.calls.map { [$0.tool] + $0.arguments },
            [["iptables-save", "-t", "nat"], ["iptables-restore", "--wait=30"], ["iptables-restore"]])
        XCTAssertTrue(runner.tables["iptables"]!.contains("WEFT_OUT_REDIRECT"))
    }

    func testCleanupWithNothingInstalledRestoresNothing() throws {
        let runner = FakeCommandRunner()
        let notes = try RedirectInstaller(runner: runner).cleanup()
        XCTAssertEqual(runner.tools, ["iptables-save", "ip6tables-save"])
        XCTAssertEqual(
            notes,
            [
                "iptables-save: no redirect rules in the IPv4 nat table",
                "ip6tables-save: no redirect rules in the IPv6 nat table",
            ])
    }

    func testCleanupRemovesOursAndKeepsForeignRules() throws {
        let runner = FakeCommandRunner()
        let foreign = "*nat\n:OUTPUT ACCEPT [0:0]\n-A OUTPUT -d 10.0.0.1/32 -j RETURN\nCOMMIT\n"
        runner.tables["iptables-nft"] = foreign
        let installer = RedirectInstaller(runner: runner, mode: .nft)
        _ = try installer.apply(config)
        XCTAssertTrue(runner.tables["ip6tables-nft"]!.contains("WEFT_"))
        let notes = try installer.cleanup()
        XCTAssertEqual(notes.count, 2)
        XCTAssertFalse(runner.tables["iptables-nft"]!.contains("WEFT_"))
        XCTAssertFalse(runner.tables["ip6tables-nft"]!.contains("WEFT_"))
        XCTAssertEqual(
            try NatTable(saved: runner.tables["iptables-nft"]!, tool: "t").rules, ["-A OUTPUT -d 10.0.0.1/32 -j RETURN"]
        )
    }

    func testUnreadableSaveStopsBeforeRestoring() {
        let runner = FakeCommandRunner()
        runner.tables["iptables"] = "*nat\n:OUTPUT ACCEPT [0:0]\n"
        _ = expectError(.unreadableSave, subject: "iptables-save") {
            _ = try RedirectInstaller(runner: runner).apply(config)
        }
        XCTAssertEqual(runner.tools, ["iptables-save"])
    }
}
