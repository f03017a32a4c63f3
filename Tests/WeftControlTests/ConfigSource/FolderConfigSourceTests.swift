import Foundation
import Logging
import WeftCore
import XCTest

@testable import WeftControl

final class FolderConfigSourceTests: XCTestCase {
    private func source(
        _ folder: ConfigFolder, coalesce: Duration = .milliseconds(50), poll: Duration = .seconds(60),
        inotify: Bool = true
    ) -> FolderConfigSource {
        FolderConfigSource(
            directory: folder.path, logger: .test, pollInterval: poll, coalesceDelay: coalesce, usesInotify: inotify)
    }

    /// Starts watching; the returned task is cancelled by the test.
    private func startWatching(_ source: FolderConfigSource) -> (Task<Void, Error>, EventInbox) {
        let inbox = EventInbox()
        let task = Task { try await source.watch { await inbox.put($0) } }
        return (task, inbox)
    }

    /// Lets the watch thread start and install its watches before a test changes files.
    private func settle() async throws { try await Task.sleep(for: .milliseconds(150)) }

    // MARK: Initial load

    func testInitialLoadReadsNestedFilesInOrderAndSkipsHiddenOnes() throws {
        let folder = try ConfigFolder()
        try folder.write("mesh.yaml", Manifests.mesh)
        try folder.write("demo/services.yaml", Manifests.service())
        try folder.write("demo/routes.yml", Manifests.route())
        try folder.write(".hidden.yaml", "this: [is not loaded")
        try folder.write(".git/config.yaml", "neither: [is this")
        try folder.write("README.md", "not yaml: [")
        let state = try source(folder).loadInitial()
        XCTAssertEqual(state.services.map(\.metadata.name), ["web"])
        XCTAssertEqual(state.routes(for: ServiceName(namespace: "demo", name: "web")).count, 1)
        XCTAssertEqual(
            state.origins[ResourceID(kind: "HTTPRoute", namespace: "demo", name: "web")],
            .init(file: "demo/routes.yml", document: 1))
        let listing = try FolderListing.scan(folder.path)
        XCTAssertEqual(listing.files.map(\.relativePath), ["demo/routes.yml", "demo/services.yaml", "mesh.yaml"])
    }

    func testInitialLoadFailureListsEveryErrorWithRelativeNames() throws {
        let folder = try ConfigFolder()
        try folder.write("mesh/routes.yaml", Manifests.service() + "\n---\n" + Manifests.route(weight: -1))
        try folder.write("pods.yaml", "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nstatus: {podIP: nope}\n")
        let source = source(folder)
        XCTAssertThrowsError(try source.loadInitial()) { error in
            XCTAssertEqual(
                (error as? ConfigLoadFailure)?.description,
                """
                mesh/routes.yaml: document 2: spec.rules[0].backendRefs[0].weight: must be ≥ 0
                pods.yaml: document 1: status.podIP: must be an IP address, got "nope"
                """)
        }
        XCTAssertNil(source.current)
    }

    func testMissingFolderIsAStartupError() {
        let source = FolderConfigSource(directory: "/nonexistent/weft-config", logger: .test)
        XCTAssertThrowsError(try source.loadInitial()) { error in
            XCTAssertEqual(
                (error as? ConfigLoadFailure)?.description,
                "/nonexistent/weft-config: cannot read the config folder: No such file or directory")
            XCTAssertEqual((error as? ConfigLoadFailure)?.errors.first?.code, .unreadableFile)
        }
    }

    func testEmptyFolderGivesTheDefaults() throws {
        let folder = try ConfigFolder()
        XCTAssertEqual(try source(folder).loadInitial(), MeshState.empty)
    }

    func testTheDefaultConfigFolderLoadsCleanly() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().deletingLastPathComponent()
        let directory = root.appendingPathComponent("control-plane/config").path
        let listing = try FolderListing.scan(directory)
        XCTAssertEqual(
            listing.files.map(\.relativePath), ["mesh.yaml", "policy.yaml", "routes.yaml", "services.yaml"])
        let state = try FolderConfigSource(directory: directory, logger: .test).loadInitial()
        XCTAssertEqual(state.warnings, [])
        XCTAssertEqual(state.meshConfig.trustDomain, "cluster.local")
        let web = ServiceName(namespace: "demo", name: "web")
        XCTAssertEqual(state.service(clusterIP: "10.96.0.10", port: 80)?.ports.first?.targetPort, .number(8080))
        XCTAssertEqual(state.endpoints(for: web).map(\.address), ["10.211.0.2"])
        XCTAssertEqual(
            state.endpoints(for: web).first?.identity?.description, "spiffe://cluster.local/ns/demo/sa/web")
        XCTAssertEqual(state.routes(for: web, port: 80).count, 1)
        let webPod = try XCTUnwrap(state.pod(namespace: "demo", name: "web-0"))
        let client = try XCTUnwrap(state.pod(namespace: "demo", name: "client-0"))
        let policies = state.policies(selecting: webPod)
        XCTAssertEqual(policies.map(\.metadata.name), ["web-allow-client"])
        XCTAssertEqual(
            policies[0].rules[0].from.first?.identities, [client.identity(trustDomain: "cluster.local").description])
        XCTAssertEqual(state.policies(selecting: client), [])
    }

    // MARK: Watching

    func testAChangeIsDelivered() async throws {
        let folder = try ConfigFolder()
        try folder.write("services.yaml", Manifests.service())
        let source = source(folder)
        let initial = try source.loadInitial()
        let (task, inbox) = startWatching(source)
        defer { task.cancel() }
        try await settle()

        try folder.write("services.yaml", Manifests.service(port: 8081))
        let event = await inbox.next()
        let state = try XCTUnwrap(event?.state, "expected an update, got \(String(describing: event))")
        XCTAssertNotEqual(state, initial)
        XCTAssertEqual(state.services.first?.ports.first?.port, 8081)
        XCTAssertEqual(source.current, state)
    }

    func testABadChangeIsRejectedKeepingTheLastGoodStateThenAFixIsAccepted() async throws {
        let folder = try ConfigFolder()
        try folder.write("mesh/services.yaml", Manifests.service())
        try folder.write("mesh/routes.yaml", Manifests.route())
        let source = source(folder)
        let good = try source.loadInitial()
        let (task, inbox) = startWatching(source)
        defer { task.cancel() }
        try await settle()

        try folder.write("mesh/routes.yaml", "---\n# an empty document\n---\n" + Manifests.route(weight: 2_000_000))
        let rejected = await inbox.next()
        XCTAssertEqual(
            rejected?.errors,
            ["mesh/routes.yaml: document 2: spec.rules[0].backendRefs[0].weight: must be ≤ 1000000"])
        XCTAssertEqual(source.current, good, "the last good state stays in force")

        try folder.write("mesh/routes.yaml", Manifests.route(weight: 5))
        let fixedEvent = await inbox.next()
        let fixed = try XCTUnwrap(fixedEvent?.state)
        XCTAssertEqual(fixed.httpRoutes.first?.rules.first?.backendRefs.first?.weight, 5)
        XCTAssertEqual(source.current, fixed)
    }

    func testABurstOfWritesIsCoalescedIntoOneReload() async throws {
        let folder = try ConfigFolder()
        try folder.write("services.yaml", Manifests.service())
        let source = source(folder, coalesce: .milliseconds(200))
        _ = try source.loadInitial()
        let (task, inbox) = startWatching(source)
        defer { task.cancel() }
        try await settle()

        for port in 1000..<1020 {
            try folder.write("services.yaml", Manifests.service(port: port))
        }
        try folder.write("routes.yaml", Manifests.route(weight: 7))
        let stateEvent = await inbox.next()
        let state = try XCTUnwrap(stateEvent?.state)
        XCTAssertEqual(state.services.first?.ports.first?.port, 1019)
        XCTAssertEqual(state.httpRoutes.count, 1)
        let extra = await inbox.next(timeout: .milliseconds(600))
        XCTAssertNil(extra, "one burst, one update")
    }

    func testAFolderThatNeverGoesQuietIsStillReloaded() async throws {
        let folder = try ConfigFolder()
        try folder.write("services.yaml", Manifests.service())
        let source = source(folder, coalesce: .milliseconds(300))
        _ = try source.loadInitial()
        let (task, inbox) = startWatching(source)
        defer { task.cancel() }
        try await settle()

        // A write every 50 ms for 2 s: never quiet for 300 ms.
        let writer = Task {
            for i in 0..<40 {
                try folder.write("noise.yaml", "# \(i)\n")
                if i == 0 { try folder.write("services.yaml", Manifests.service(port: 92)) }
                try await Task.sleep(for: .milliseconds(50))
            }
        }
        defer { writer.cancel() }
        let event = await inbox.next(timeout: .milliseconds(1900))
        XCTAssertEqual(event?.state?.services.first?.ports.first?.port, 92, "reloaded within the burst")
    }

    func testAReloadWithoutChangesDeliversNothing() async throws {
        let folder = try ConfigFolder()
        try folder.write("services.yaml", Manifests.service())
        let source = source(folder)
        _ = try source.loadInitial()
        let (task, inbox) = startWatching(source)
        defer { task.cancel() }
        try await settle()

        try folder.write("services.yaml", Manifests.service())  // same content, new mtime
        try folder.write("notes.yaml", "# only a comment\n")
        let none = await inbox.next(timeout: .milliseconds(500))
        XCTAssertNil(none)

        try folder.write("services.yaml", Manifests.service(port: 90))
        let event1 = await inbox.next()
        XCTAssertEqual(event1?.state?.services.first?.ports.first?.port, 90, "still watching")
    }

    func testTheSameErrorsAreReportedOnce() async throws {
        let folder = try ConfigFolder()
        try folder.write("services.yaml", Manifests.service())
        let source = source(folder)
        _ = try source.loadInitial()
        let (task, inbox) = startWatching(source)
        defer { task.cancel() }
        try await settle()

        try folder.write("bad.yaml", "apiVersion: v1\nkind: Pod\n")
        let event2 = await inbox.next()
        XCTAssertEqual(event2?.errors, ["bad.yaml: document 1: metadata: is required"])
        try folder.write("other.yaml", "# unrelated\n")
        let again = await inbox.next(timeout: .milliseconds(500))
        XCTAssertNil(again)
        try folder.remove("bad.yaml")
        let event3 = await inbox.next()
        XCTAssertEqual(
            event3?.isRestored, true,
            "back to the state in force: the rejection is cleared, nothing to push")
        let none = await inbox.next(timeout: .milliseconds(500))
        XCTAssertNil(none)
        try folder.write("services.yaml", Manifests.service(port: 91))
        let event4 = await inbox.next()
        XCTAssertEqual(event4?.state?.services.first?.ports.first?.port, 91)
    }

    func testRemovingAFileIsAChange() async throws {
        let folder = try ConfigFolder()
        try folder.write("services.yaml", Manifests.service())
        try folder.write("routes.yaml", Manifests.route())
        let source = source(folder)
        _ = try source.loadInitial()
        let (task, inbox) = startWatching(source)
        defer { task.cancel() }
        try await settle()

        try folder.remove("routes.yaml")
        let event5 = await inbox.next()
        XCTAssertEqual(event5?.state?.httpRoutes, [])
    }

    func testANewSubfolderIsWatched() async throws {
        let folder = try ConfigFolder()
        try folder.write("services.yaml", Manifests.service())
        let source = source(folder)
        _ = try source.loadInitial()
        let (task, inbox) = startWatching(source)
        defer { task.cancel() }
        try await settle()

        try folder.write("team/routes.yaml", Manifests.route(weight: 3))
        let event6 = await inbox.next()
        XCTAssertEqual(event6?.state?.httpRoutes.count, 1)
        try await settle()
        try folder.write("team/routes.yaml", Manifests.route(weight: 4))
        let event7 = await inbox.next()
        XCTAssertEqual(
            event7?.state?.httpRoutes.first?.rules.first?.backendRefs.first?.weight, 4,
            "a change inside the new folder is seen too")
    }

    func testAConfigMapDataSymlinkSwapIsDetected() async throws {
        // The kubelet's layout: visible names link through ..data into a hidden folder,
        // and an update swaps ..data atomically with a rename.
        let folder = try ConfigFolder()
        try folder.write("..2024_01_01_00_00_00.1/services.yaml", Manifests.service())
        try folder.write("..2024_01_01_00_00_00.1/routes.yaml", Manifests.route(weight: 1))
        try folder.symlink("..data", to: "..2024_01_01_00_00_00.1")
        try folder.symlink("services.yaml", to: "..data/services.yaml")
        try folder.symlink("routes.yaml", to: "..data/routes.yaml")
        let source = source(folder)
        let initial = try source.loadInitial()
        XCTAssertEqual(initial.httpRoutes.first?.rules.first?.backendRefs.first?.weight, 1)
        XCTAssertEqual(
            initial.origins[ResourceID(kind: "Service", namespace: "demo", name: "web")],
            .init(file: "services.yaml", document: 1), "read through the visible names")
        let (task, inbox) = startWatching(source)
        defer { task.cancel() }
        try await settle()

        try folder.write("..2024_01_01_00_05_00.2/services.yaml", Manifests.service())
        try folder.write("..2024_01_01_00_05_00.2/routes.yaml", Manifests.route(weight: 9))
        try folder.symlink("..data_tmp", to: "..2024_01_01_00_05_00.2")
        try folder.rename("..data_tmp", "..data")
        try folder.remove("..2024_01_01_00_00_00.1")

        let stateEvent = await inbox.next()
        let state = try XCTUnwrap(stateEvent?.state)
        XCTAssertEqual(state.httpRoutes.first?.rules.first?.backendRefs.first?.weight, 9)
    }

    func testThePollCatchesChangesWithoutInotify() async throws {
        let folder = try ConfigFolder()
        try folder.write("services.yaml", Manifests.service())
        let source = source(folder, poll: .milliseconds(100), inotify: false)
        _ = try source.loadInitial()
        let (task, inbox) = startWatching(source)
        defer { task.cancel() }
        try await settle()

        try folder.write("services.yaml", Manifests.service(port: 8443))
        let event8 = await inbox.next()
        XCTAssertEqual(event8?.state?.services.first?.ports.first?.port, 8443)
    }

    func testWatchWithoutInitialLoadStartsWithALoadEvent() async throws {
        let folder = try ConfigFolder()
        try folder.write("services.yaml", Manifests.service())
        let (task, inbox) = startWatching(source(folder))
        defer { task.cancel() }
        let event9 = await inbox.next()
        XCTAssertEqual(event9?.state?.services.count, 1)
    }

    func testCancellingTheTaskEndsTheWatch() async throws {
        let folder = try ConfigFolder()
        let source = source(folder)
        _ = try source.loadInitial()
        let inbox = EventInbox()
        let task = Task {
            try await source.watch { _ in }
            await inbox.put(.rejected([]))  // marks the end of watch
        }
        try await settle()
        task.cancel()
        let end = await inbox.next()
        XCTAssertEqual(end?.errors, [], "watch returned after cancellation")
    }
}
