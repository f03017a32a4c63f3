import Synchronization
import WeftProtocol
import XCTest

@testable import WeftProxy

final class MeshStoreTests: XCTestCase {
    private func config() -> AppliedConfig {
        AppliedConfig(
            version: 1,
            services: [
                "demo/web": ServiceEntry(
                    key: "demo/web", clusterIPs: ["10.96.0.10"], hosts: [],
                    ports: [
                        ServicePortEntry(
                            name: nil, port: 80, targetPort: 8080, targetPortName: nil, protocol: "TCP",
                            appProtocol: nil)
                    ])
            ])
    }

    func testSnapshotsReachListenersRegisteredBeforeAndAfter() throws {
        let store = MeshStore()
        let seen = Mutex<[Int]>([])
        store.onSnapshot { snapshot in seen.withLock { $0.append(snapshot.version) } }
        XCTAssertNil(store.snapshot)
        let config = config()
        store.setConfig(config, snapshot: try MeshSnapshotCompiler.compile(config, namespace: "demo"))
        XCTAssertEqual(seen.withLock { $0 }, [1])
        // A listener registered later gets the current snapshot at once.
        let late = Mutex<[Int]>([])
        store.onSnapshot { snapshot in late.withLock { $0.append(snapshot.version) } }
        XCTAssertEqual(late.withLock { $0 }, [1])
        XCTAssertEqual(store.snapshot?.servicePortByAddress.count, 1)
    }

    func testSubscriptionsReachTheCurrentSessionOnceAndSurviveReconnects() async {
        let store = MeshStore()
        store.subscribe("demo/early")  // while disconnected: only remembered, for the hello
        let first = store.attachSubscriber()
        store.subscribe("demo/web")
        store.subscribe("demo/web")  // the second time is not new
        var iterator = first.makeAsyncIterator()
        let got = await iterator.next()
        XCTAssertEqual(got, .subscribe("demo/web"))
        // A new session replaces the stream; the old one finishes.
        let second = store.attachSubscriber()
        let ended = await iterator.next()
        XCTAssertNil(ended)
        store.subscribe("demo/api")
        var next = second.makeAsyncIterator()
        let got2 = await next.next()
        XCTAssertEqual(got2, .subscribe("demo/api"))
        XCTAssertEqual(store.subscriptions, ["demo/api", "demo/early", "demo/web"])
    }
}

extension MeshStoreTests {
    func testIdleSubscriptionsAreDroppedAndAnnounced() async {
        let store = MeshStore()
        let changes = store.attachSubscriber()
        let t0 = ContinuousClock.now
        store.subscribe("demo/web")
        store.subscribe("demo/api")
        store.noteUsed(["demo/web", "demo/not-subscribed"], now: t0 + .seconds(500))
        // demo/api was subscribed before t0 + 1 s and never used since: idle after 600 s.
        XCTAssertEqual(store.dropIdle(olderThan: .seconds(600), now: t0 + .seconds(700)), ["demo/api"])
        XCTAssertEqual(store.subscriptions, ["demo/web"])
        XCTAssertEqual(store.dropIdle(olderThan: .seconds(600), now: t0 + .seconds(1000)), [])
        XCTAssertEqual(store.dropIdle(olderThan: .seconds(600), now: t0 + .seconds(1200)), ["demo/web"])
        var iterator = changes.makeAsyncIterator()
        var seen: [SubscriptionChange] = []
        for _ in 0..<4 { if let change = await iterator.next() { seen.append(change) } }
        XCTAssertEqual(
            seen,
            [.subscribe("demo/web"), .subscribe("demo/api"), .unsubscribe(["demo/api"]), .unsubscribe(["demo/web"])])
        // Used again: subscribed again.
        store.subscribe("demo/api")
        XCTAssertEqual(store.subscriptions, ["demo/api"])
    }
}
