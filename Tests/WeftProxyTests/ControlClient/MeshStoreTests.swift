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
        XCTAssertEqual(got, "demo/web")
        // A new session replaces the stream; the old one finishes.
        let second = store.attachSubscriber()
        let ended = await iterator.next()
        XCTAssertNil(ended)
        store.subscribe("demo/api")
        var next = second.makeAsyncIterator()
        let got2 = await next.next()
        XCTAssertEqual(got2, "demo/api")
        XCTAssertEqual(store.subscriptions, ["demo/api", "demo/early", "demo/web"])
    }
}
