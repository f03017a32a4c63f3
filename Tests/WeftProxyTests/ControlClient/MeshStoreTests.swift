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

    func testClusterIPIndex() {
        let store = MeshStore()
        XCTAssertNil(store.service(ip: "10.96.0.10", port: 80))
        store.setConfig(config())
        XCTAssertEqual(store.service(ip: "10.96.0.10", port: 80), "demo/web")
        XCTAssertNil(store.service(ip: "10.96.0.10", port: 81), "port must match")
        XCTAssertNil(store.service(ip: "10.96.0.11", port: 80))
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
