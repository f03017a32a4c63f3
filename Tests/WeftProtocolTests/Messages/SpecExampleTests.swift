import Foundation
import NIOCore
import WeftProtocol
import XCTest

/// Every JSON example in docs/protocol.md decodes as the message it claims to be, so the
/// specification cannot drift from the implementation.
final class SpecExampleTests: XCTestCase {
    private static let clientTypes: Set = [
        "hello", "ack", "nack", "subscribe", "unsubscribe", "renew", "ping", "pong", "error",
    ]
    private static let serverTypes: Set = ["identity", "config", "delta", "ping", "pong", "error"]

    private func examples() throws -> [String] {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().deletingLastPathComponent()
        let text = try String(contentsOf: root.appendingPathComponent("docs/protocol.md"), encoding: .utf8)
        var blocks: [String] = []
        var current: [Substring]?
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            if current == nil, line == "```json" {
                current = []
            } else if let lines = current, line == "```" {
                blocks.append(lines.joined(separator: "\n"))
                current = nil
            } else {
                current?.append(line)
            }
        }
        return blocks
    }

    func testEveryExampleDecodesAndRoundTrips() throws {
        var seenClient: Set<String> = []
        var seenServer: Set<String> = []
        for example in try examples() {
            let payload = ByteBuffer(string: example)
            let type = try XCTUnwrap(try jsonObject(payload)["type"] as? String, example)
            XCTAssertTrue(Self.clientTypes.contains(type) || Self.serverTypes.contains(type), type)
            if Self.clientTypes.contains(type) {
                let message = try ClientMessage.decode(payload)
                XCTAssertEqual(try ClientMessage.decode(message.encode()), message)
                seenClient.insert(type)
            }
            if Self.serverTypes.contains(type) {
                let message = try ServerMessage.decode(payload)
                XCTAssertEqual(try ServerMessage.decode(message.encode()), message)
                seenServer.insert(type)
            }
        }
        XCTAssertEqual(seenClient, Self.clientTypes, "docs/protocol.md lacks an example")
        XCTAssertEqual(seenServer, Self.serverTypes, "docs/protocol.md lacks an example")
    }

    func testExamplesSayExactlyWhatTheImplementationWouldSend() throws {
        // An example that decodes could still carry a misspelt (hence ignored) optional key,
        // at any depth; re-encoding the decoded message must give back the same JSON.
        for example in try examples() {
            let payload = ByteBuffer(string: example)
            let type = try jsonObject(payload)["type"] as? String ?? ""
            let encoded =
                Self.clientTypes.contains(type)
                ? try ClientMessage.decode(payload).encode() : try ServerMessage.decode(payload).encode()
            XCTAssertEqual(try canonical(payload), try canonical(encoded), type)
        }
    }

    private func canonical(_ payload: ByteBuffer) throws -> String {
        let object = try JSONSerialization.jsonObject(with: Data(payload.readableBytesView))
        let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
        return String(decoding: data, as: UTF8.self)
    }
}
