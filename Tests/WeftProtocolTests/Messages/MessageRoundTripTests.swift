import NIOCore
import WeftProtocol
import XCTest

final class MessageRoundTripTests: XCTestCase {
    func testEveryClientMessageRoundTrips() throws {
        for message in ProtocolFixtures.clientMessages {
            XCTAssertEqual(try ClientMessage.decode(message.encode()), message, message.type)
        }
    }

    func testEveryServerMessageRoundTrips() throws {
        for message in ProtocolFixtures.serverMessages {
            XCTAssertEqual(try ServerMessage.decode(message.encode()), message, message.type)
        }
    }

    func testFixturesCoverEveryMessageType() {
        XCTAssertEqual(
            Set(ProtocolFixtures.clientMessages.map(\.type)),
            ["hello", "ack", "nack", "subscribe", "unsubscribe", "renew", "ping", "pong", "error"])
        XCTAssertEqual(
            Set(ProtocolFixtures.serverMessages.map(\.type)), ["identity", "config", "delta", "ping", "pong", "error"])
    }

    func testTheFullConfigHoldsEveryKindOfEntry() throws {
        guard case .config(let push) = try ServerMessage.decode(ServerMessage.config(ProtocolFixtures.config).encode())
        else { return XCTFail("not a config") }
        XCTAssertEqual(push.snapshot.mesh, ProtocolFixtures.mesh)
        XCTAssertEqual(push.snapshot.services, [ProtocolFixtures.webService])
        XCTAssertEqual(push.snapshot.policies, [ProtocolFixtures.policy])
        XCTAssertEqual(push.snapshot.routes, [ProtocolFixtures.routes])
        XCTAssertEqual(push.snapshot.endpoints, [ProtocolFixtures.endpoints])
        XCTAssertEqual(push.snapshot.services?.first?.ports.first?.targetPort, 8080)
        XCTAssertEqual(push.snapshot.mesh?.traceSampling, 0.01)
    }

    func testEveryErrorCodeRoundTripsByItsWireName() throws {
        for code in ProtocolError.Code.allCases {
            let message = ServerMessage.error(ErrorMessage(code: code, message: "m", fatal: true))
            let object = try jsonObject(message.encode())
            XCTAssertEqual(object["code"] as? String, code.rawValue)
            XCTAssertEqual(try ServerMessage.decode(message.encode()), message)
        }
    }

    func testErrorCodeWireNamesAreStable() {
        // Published codes never change meaning or spelling (docs/protocol.md, "Errors").
        XCTAssertEqual(
            ProtocolError.Code.allCases.map(\.rawValue),
            [
                "oversized_frame", "empty_frame", "truncated_frame", "invalid_json", "unknown_type", "invalid_message",
                "unsupported_protocol", "unexpected_message", "unauthenticated", "forbidden_identity", "invalid_csr",
                "hello_timeout", "slow_consumer", "idle_timeout", "unknown_service", "internal_error", "shutting_down",
                "rate_limited",
            ])
    }

    func testEqualValuesEncodeToEqualBytes() {
        XCTAssertEqual(
            ServerMessage.config(ProtocolFixtures.config).encode(),
            ServerMessage.config(ProtocolFixtures.config).encode())
        XCTAssertEqual(
            MessageCoder.encodeValue(ProtocolFixtures.snapshot), MessageCoder.encodeValue(ProtocolFixtures.snapshot))
    }

    func testRenewProofSignsTheSessionAndTheCSR() {
        let bytes = RenewProof.signedBytes(
            session: "3f9c2a7e5b1d4c8a", csr: "-----BEGIN CERTIFICATE REQUEST-----\nMII=\n")
        XCTAssertEqual(
            bytes, Array("weft-renew-v1\n3f9c2a7e5b1d4c8a\n-----BEGIN CERTIFICATE REQUEST-----\nMII=\n".utf8))
        XCTAssertEqual(
            Array(bytes.prefix(14)),
            [
                0x77, 0x65, 0x66, 0x74, 0x2D, 0x72, 0x65, 0x6E, 0x65, 0x77, 0x2D, 0x76, 0x31, 0x0A,
            ])
    }

    func testRenewProofDiffersPerSession() {
        XCTAssertNotEqual(
            RenewProof.signedBytes(session: "a", csr: ProtocolFixtures.csr),
            RenewProof.signedBytes(session: "b", csr: ProtocolFixtures.csr))
        XCTAssertEqual(RenewProof.signedBytes(session: "", csr: ""), Array("weft-renew-v1\n\n".utf8))
    }
}
