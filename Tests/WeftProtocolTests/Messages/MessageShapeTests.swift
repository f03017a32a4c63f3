import Foundation
import NIOCore
import WeftProtocol
import XCTest

/// The JSON a message becomes has the shape docs/protocol.md specifies: these key names,
/// `type` exactly once, optional fields left out when absent.
final class MessageShapeTests: XCTestCase {
    private func keys(_ object: Any?) -> Set<String> { Set((object as? [String: Any])?.keys ?? [:].keys) }
    private func first(_ object: Any?) -> Any? { (object as? [Any])?.first }

    func testTypeAppearsExactlyOnceAtTheTopOfEveryMessage() {
        let payloads =
            ProtocolFixtures.clientMessages.map { ($0.type, $0.encode()) }
            + ProtocolFixtures.serverMessages.map { ($0.type, $0.encode()) }
        for (type, payload) in payloads {
            let keys = topLevelKeys(payload)
            XCTAssertEqual(keys.filter { $0 == "type" }.count, 1, "\(type): \(keys)")
            XCTAssertEqual(Set(keys).count, keys.count, "\(type) repeats a key: \(keys)")
        }
    }

    func testTypeCarriesTheMessageName() throws {
        for message in ProtocolFixtures.clientMessages {
            XCTAssertEqual(try jsonObject(message.encode())["type"] as? String, message.type)
        }
        for message in ProtocolFixtures.serverMessages {
            XCTAssertEqual(try jsonObject(message.encode())["type"] as? String, message.type)
        }
    }

    func testHelloShape() throws {
        let object = try jsonObject(ClientMessage.hello(ProtocolFixtures.hello).encode())
        XCTAssertEqual(
            keys(object), ["type", "protocol", "proxyVersion", "node", "token", "csr", "subscriptions"])
        XCTAssertEqual(keys(object["node"]), ["pod", "namespace", "serviceAccount", "ip", "labels"])
        XCTAssertEqual(object["protocol"] as? Int, 1)
        XCTAssertEqual(object["subscriptions"] as? [String], ["demo/web"])
    }

    func testHelloLeavesAbsentOptionalsOut() throws {
        let hello = Hello(node: ProtocolFixtures.node, token: "t", csr: ProtocolFixtures.csr)
        XCTAssertEqual(
            keys(try jsonObject(ClientMessage.hello(hello).encode())), ["type", "protocol", "node", "token", "csr"])
    }

    func testSmallClientMessageShapes() throws {
        XCTAssertEqual(
            keys(try jsonObject(ClientMessage.ack(Ack(version: 1, nonce: "n")).encode())), ["type", "version", "nonce"])
        XCTAssertEqual(
            keys(try jsonObject(ClientMessage.nack(Nack(version: 1, nonce: "n", error: "e")).encode())),
            ["type", "version", "nonce", "error"])
        XCTAssertEqual(
            keys(try jsonObject(ClientMessage.subscribe(Subscription(services: [])).encode())), ["type", "services"])
        XCTAssertEqual(
            keys(try jsonObject(ClientMessage.unsubscribe(Subscription(services: [])).encode())), ["type", "services"])
        XCTAssertEqual(
            keys(try jsonObject(ClientMessage.renew(ProtocolFixtures.renew).encode())),
            ["type", "csr", "certificate", "signature"])
        XCTAssertEqual(keys(try jsonObject(ClientMessage.ping(Ping(id: 1)).encode())), ["type", "id"])
        XCTAssertEqual(keys(try jsonObject(ServerMessage.pong(Ping(id: 1)).encode())), ["type", "id"])
    }

    func testErrorShape() throws {
        let object = try jsonObject(
            ServerMessage.error(ErrorMessage(code: .helloTimeout, message: "no hello within 10 s", fatal: true))
                .encode())
        XCTAssertEqual(keys(object), ["type", "code", "message", "fatal"])
        XCTAssertEqual(object["code"] as? String, "hello_timeout")
        XCTAssertEqual(object["fatal"] as? Bool, true)
    }

    func testIdentityShape() throws {
        let object = try jsonObject(ServerMessage.identity(ProtocolFixtures.identity).encode())
        XCTAssertEqual(keys(object), ["type", "spiffeId", "chain", "trustBundle", "notBefore", "notAfter", "session"])
        XCTAssertEqual(object["notAfter"] as? String, "2026-11-26T10:00:00Z")
    }

    func testConfigShape() throws {
        let object = try jsonObject(ServerMessage.config(ProtocolFixtures.config).encode())
        XCTAssertEqual(keys(object), ["type", "version", "nonce", "generation", "snapshot"])
        let snapshot = object["snapshot"] as? [String: Any]
        XCTAssertEqual(keys(snapshot), ["mesh", "services", "policies", "routes", "endpoints"])

        let mesh = snapshot?["mesh"]
        XCTAssertEqual(keys(mesh), ["trustDomain", "mtls", "retryBudget", "traceSampling", "outboundPolicy"])
        XCTAssertEqual(keys((mesh as? [String: Any])?["retryBudget"]), ["ratio", "minRetriesPerSecond", "windowMs"])

        let service = first(snapshot?["services"]) as? [String: Any]
        XCTAssertEqual(keys(service), ["key", "clusterIPs", "hosts", "ports"])
        XCTAssertEqual(service?["clusterIPs"] as? [String], ["10.96.0.10"])
        // targetPortName is nil, so it is left out rather than sent as null.
        XCTAssertEqual(keys(first(service?["ports"])), ["name", "port", "targetPort", "protocol", "appProtocol"])

        let policy = first(snapshot?["policies"]) as? [String: Any]
        XCTAssertEqual(keys(policy), ["key", "action", "rules"])
        let rule = first(policy?["rules"]) as? [String: Any]
        XCTAssertEqual(keys(rule), ["from", "to"])
        XCTAssertEqual(keys(first(rule?["from"])), ["identities", "namespaces"])
        XCTAssertEqual(keys(first(rule?["to"])), ["ports", "methods", "paths"])

        let routeSet = first(snapshot?["routes"]) as? [String: Any]
        XCTAssertEqual(keys(routeSet), ["service", "routes"])
        let route = first(routeSet?["routes"]) as? [String: Any]
        XCTAssertEqual(keys(route), ["name", "port", "hostnames", "rules"])
        let routeRule = first(route?["rules"]) as? [String: Any]
        XCTAssertEqual(
            keys(routeRule), ["matches", "backends", "requestTimeoutMs", "backendRequestTimeoutMs", "retry"])
        let match = first(routeRule?["matches"]) as? [String: Any]
        XCTAssertEqual(keys(match), ["pathType", "path", "headers", "queryParams", "method"])
        XCTAssertEqual(keys(first(match?["headers"])), ["type", "name", "value"])
        XCTAssertEqual(keys(first(routeRule?["backends"])), ["service", "port", "weight"])
        XCTAssertEqual(keys(routeRule?["retry"]), ["attempts", "codes", "backoffMs"])

        let endpointSet = first(snapshot?["endpoints"]) as? [String: Any]
        XCTAssertEqual(keys(endpointSet), ["service", "endpoints"])
        let endpoint = first(endpointSet?["endpoints"]) as? [String: Any]
        XCTAssertEqual(
            keys(endpoint), ["address", "ports", "ready", "serving", "terminating", "identity", "zone"])
        XCTAssertEqual(endpoint?["identity"] as? String, "spiffe://cluster.local/ns/demo/sa/web")
        XCTAssertEqual(keys(first(endpoint?["ports"])), ["name", "port", "appProtocol"])
    }

    func testAnEmptyConfigSendsAnEmptySnapshotObject() throws {
        let push = ConfigPush(version: 1, nonce: "n", generation: 0, snapshot: ConfigSet())
        let object = try jsonObject(ServerMessage.config(push).encode())
        XCTAssertEqual(keys(object["snapshot"]), [])
    }

    func testDeltaShape() throws {
        let object = try jsonObject(ServerMessage.delta(ProtocolFixtures.delta).encode())
        XCTAssertEqual(keys(object), ["type", "version", "base", "nonce", "generation", "upserts", "removals"])
        XCTAssertEqual(keys(object["upserts"]), ["endpoints"])
        XCTAssertEqual(keys(object["removals"]), ["services", "policies", "routes"])
        XCTAssertEqual((object["removals"] as? [String: Any])?["routes"] as? [String], ["demo/api"])
    }

    func testPEMAndPathsAreNotEscaped() throws {
        let payload = ClientMessage.hello(ProtocolFixtures.hello).encode()
        let text = String(buffer: payload)
        XCTAssertTrue(text.contains("demo/web"), text)
        XCTAssertFalse(text.contains(#"\/"#), text)
    }
}
