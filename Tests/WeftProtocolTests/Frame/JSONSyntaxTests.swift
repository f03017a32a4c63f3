import NIOCore
import XCTest

@testable import WeftProtocol

/// The syntax check that runs before decoding a control message.
final class JSONSyntaxTests: XCTestCase {
    func testValidDocuments() {
        for text in [
            #"{}"#, #"[]"#, #" {"a": [1, -2.5e+3, true, false, null, "x\u00e9\n"], "b": {}} "#, #""s""#, "0",
            #"{"type":"ping","id":1}"#,
        ] {
            XCTAssertNil(JSONSyntax.firstError(in: Array(text.utf8)), text)
        }
    }

    func testInvalidDocuments() {
        for text in [
            "", "{", #"{"a"}"#, #"{"a":}"#, #"{"a":1,}"#, "[1,]", "[1 2]", #"{"a":1}x"#, "01", "1.", "-", "1e",
            "tru", "nul", #""\q""#, "\"\u{01}\"", #""\u12G4""#, "{'a':1}", #"{"a":1}{}"#,
        ] {
            XCTAssertNotNil(JSONSyntax.firstError(in: Array(text.utf8)), text)
        }
        let depth = JSONSyntax.maxDepth
        let deep = String(repeating: "[", count: depth + 1) + String(repeating: "]", count: depth + 1)
        XCTAssertNotNil(JSONSyntax.firstError(in: Array(deep.utf8)))
        let fits = String(repeating: "[", count: depth) + String(repeating: "]", count: depth)
        XCTAssertNil(JSONSyntax.firstError(in: Array(fits.utf8)))
    }

    /// The fuzz finding: bad JSON in a field a message ignores, or in a label read in hash
    /// order, is always `invalid_json`.
    func testBadJSONAnywhereIsInvalidJSON() {
        for text in ["{\"type\":\"ping\",\"id\":1,\"x\":\"\u{01}\"}", #"{"type":"ping","id":1,"x":"\q"}"#] {
            XCTAssertThrowsError(try ClientMessage.decode(ByteBuffer(string: text))) { error in
                XCTAssertEqual((error as? ProtocolError)?.code, .invalidJSON, text)
            }
        }
    }
}
