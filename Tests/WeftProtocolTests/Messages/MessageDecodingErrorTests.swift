import Foundation
import NIOCore
import WeftProtocol
import XCTest

final class MessageDecodingErrorTests: XCTestCase {
    private func client(_ json: String) throws -> ClientMessage { try ClientMessage.decode(ByteBuffer(string: json)) }
    private func server(_ json: String) throws -> ServerMessage { try ServerMessage.decode(ByteBuffer(string: json)) }

    /// A valid hello as a proxy would send it, for tests that break one field.
    private let helloJSON = """
        {"type":"hello","protocol":1,"node":{"pod":"client-0","namespace":"demo","serviceAccount":"client",\
        "ip":"10.211.0.5","labels":{"app":"client"}},"token":"t","csr":"-----BEGIN CERTIFICATE REQUEST-----\\n"}
        """

    func testTheHelloFixtureItselfDecodes() throws {
        guard case .hello(let hello) = try client(helloJSON) else { return XCTFail("not a hello") }
        XCTAssertEqual(hello.node.pod, "client-0")
        XCTAssertNil(hello.subscriptions)
        XCTAssertNil(hello.proxyVersion)
    }

    func testNotJSONIsInvalidJSON() {
        XCTAssertProtocolError(try client("hello there"), .invalidJSON)
        XCTAssertProtocolError(try server("{\"type\":\"ping\",\"id\":1"), .invalidJSON)
    }

    func testInvalidUTF8IsInvalidJSON() {
        var bytes = ByteBuffer(string: #"{"type":"ack","version":1,"nonce":""#)
        bytes.writeBytes([0xFF, 0xFE])
        bytes.writeString(#""}"#)
        XCTAssertProtocolError(try ClientMessage.decode(bytes), .invalidJSON)
    }

    func testInvalidUTF8InAnIgnoredFieldIsInvalidJSON() {
        var bytes = ByteBuffer(string: #"{"type":"ping","id":1,"x":""#)
        bytes.writeBytes([0xFF, 0xFE])
        bytes.writeString(#""}"#)
        XCTAssertProtocolError(try ClientMessage.decode(bytes), .invalidJSON)
    }

    func testAnArrayIsAnUnknownType() {
        XCTAssertProtocolError(try client(#"[{"type":"ping","id":1}]"#), .unknownType)
        XCTAssertProtocolError(try server("[]"), .unknownType)
    }

    func testOtherJSONValuesAreUnknownTypes() {
        XCTAssertProtocolError(try client(#""hello""#), .unknownType)
        XCTAssertProtocolError(try server("42"), .unknownType)
    }

    func testInvalidUTF8IsInvalidJSONEvenWithoutTheTypeCheck() {
        var bytes = ByteBuffer(string: #"{"type":"ack","version":1,"nonce":""#)
        bytes.writeBytes([0xC3, 0x28])
        bytes.writeString(#""}"#)
        XCTAssertProtocolError(try MessageCoder(bytes).body(Ack.self), .invalidJSON)
    }

    func testAnObjectWithoutTypeIsAnUnknownType() {
        XCTAssertProtocolError(try client(#"{"version":1,"nonce":"n"}"#), .unknownType, mentioning: ["type"])
    }

    func testANonStringTypeIsAnUnknownType() {
        XCTAssertProtocolError(try client(#"{"type":7}"#), .unknownType)
        XCTAssertProtocolError(try client(#"{"type":{"name":"ping"}}"#), .unknownType)
    }

    func testANullTypeIsAnUnknownType() {
        XCTAssertProtocolError(try client(#"{"type":null,"id":1}"#), .unknownType)
    }

    func testAnUnknownTypeIsNamedInTheReason() {
        XCTAssertProtocolError(try client(#"{"type":"frobnicate"}"#), .unknownType, mentioning: ["frobnicate"])
        XCTAssertProtocolError(try server(#"{"type":"frobnicate"}"#), .unknownType, mentioning: ["frobnicate"])
    }

    func testTypesAreCaseSensitive() {
        XCTAssertProtocolError(try client(#"{"type":"Ping","id":1}"#), .unknownType, mentioning: ["Ping"])
        XCTAssertProtocolError(try client(#"{"Type":"ping","id":1}"#), .unknownType)
    }

    func testEachSideRefusesTheOtherSidesMessages() {
        let config = ServerMessage.config(ProtocolFixtures.config).encode()
        XCTAssertProtocolError(try ClientMessage.decode(config), .unknownType, mentioning: ["config"])
        let hello = ClientMessage.hello(ProtocolFixtures.hello).encode()
        XCTAssertProtocolError(try ServerMessage.decode(hello), .unknownType, mentioning: ["hello"])
    }

    func testHelloWithoutCSRNamesTheField() {
        let json = helloJSON.replacingOccurrences(of: #","csr":"-----BEGIN CERTIFICATE REQUEST-----\n""#, with: "")
        XCTAssertFalse(json.contains("csr"))
        XCTAssertProtocolError(try client(json), .invalidMessage, mentioning: ["csr", "missing"])
    }

    func testAMissingNestedFieldIsNamedByItsPath() {
        let json = helloJSON.replacingOccurrences(of: #""ip":"10.211.0.5","#, with: "")
        XCTAssertProtocolError(try client(json), .invalidMessage, mentioning: ["node.ip"])
    }

    func testHelloLabelsAreRequired() {
        let json = helloJSON.replacingOccurrences(of: #","labels":{"app":"client"}"#, with: "")
        XCTAssertProtocolError(try client(json), .invalidMessage, mentioning: ["node.labels"])
    }

    func testAckWithAStringVersionNamesTheField() {
        XCTAssertProtocolError(
            try client(#"{"type":"ack","version":"1","nonce":"b7e1c2d4a9f0"}"#), .invalidMessage,
            mentioning: ["version"])
    }

    func testANullRequiredFieldIsInvalid() {
        XCTAssertProtocolError(try client(#"{"type":"ping","id":null}"#), .invalidMessage, mentioning: ["id"])
    }

    func testAWrongTypeDeepInAConfigNamesItsPath() {
        let json = """
            {"type":"config","version":1,"nonce":"n","generation":1,"snapshot":{"endpoints":[{"service":"demo/web",\
            "endpoints":[{"address":"10.211.0.2","ports":[{"name":"http","port":"8080"}],"ready":true,"serving":true,\
            "terminating":false}]}]}}
            """
        XCTAssertProtocolError(
            try server(json), .invalidMessage, mentioning: ["snapshot.endpoints[0].endpoints[0].ports[0].port"])
    }

    func testAnUnknownErrorCodeIsAnInvalidMessage() {
        XCTAssertProtocolError(
            try server(#"{"type":"error","code":"teapot","message":"short and stout","fatal":true}"#), .invalidMessage,
            mentioning: ["code"])
    }

    func testUnknownFieldsAreIgnored() throws {
        let json = helloJSON.replacingOccurrences(
            of: #""token":"t""#, with: #""token":"t","future":{"nested":[1,2,3]},"priority":"high""#
        ).replacingOccurrences(of: #""pod":"client-0""#, with: #""pod":"client-0","uid":"8d1c""#)
        guard case .hello(let hello) = try client(json) else { return XCTFail("not a hello") }
        guard case .hello(let plain) = try client(helloJSON) else { return XCTFail("not a hello") }
        XCTAssertEqual(hello, plain)

        let ack = try client(#"{"type":"ack","version":2,"nonce":"n","receivedAt":"2026-11-25T10:00:00Z"}"#)
        XCTAssertEqual(ack, .ack(Ack(version: 2, nonce: "n")))
    }

    func testOptionalFieldsMayBeNullOrAbsent() throws {
        let json = helloJSON.replacingOccurrences(
            of: #""token":"t""#, with: #""token":"t","subscriptions":null,"proxyVersion":null"#)
        guard case .hello(let hello) = try client(json) else { return XCTFail("not a hello") }
        XCTAssertNil(hello.subscriptions)
        let empty = try server(#"{"type":"config","version":1,"nonce":"n","generation":0,"snapshot":{}}"#)
        XCTAssertEqual(empty, .config(ConfigPush(version: 1, nonce: "n", generation: 0, snapshot: ConfigSet())))
    }

    func testADeltaNeedsItsRemovalsObject() {
        XCTAssertProtocolError(
            try server(#"{"type":"delta","version":2,"base":1,"nonce":"n","generation":3,"upserts":{}}"#),
            .invalidMessage, mentioning: ["removals"])
    }
}
