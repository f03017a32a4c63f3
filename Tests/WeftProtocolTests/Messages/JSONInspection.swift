import Foundation
import NIOCore
import XCTest

/// The payload as a JSON object, through JSONSerialization (independent of the Codable
/// path under test).
func jsonObject(_ payload: ByteBuffer, file: StaticString = #filePath, line: UInt = #line) throws -> [String: Any] {
    let object = try JSONSerialization.jsonObject(with: Data(payload.readableBytesView))
    return try XCTUnwrap(object as? [String: Any], "not a JSON object", file: file, line: line)
}

/// The keys of the payload's top-level object in the order they appear, duplicates kept
/// (JSONSerialization would hide a duplicate).
func topLevelKeys(_ payload: ByteBuffer) -> [String] {
    let bytes = Array(payload.readableBytesView)
    var keys: [String] = []
    var depth = 0
    var index = 0
    var expectingKey = false
    while index < bytes.count {
        let byte = bytes[index]
        switch byte {
        case UInt8(ascii: "{"), UInt8(ascii: "["):
            depth += 1
            expectingKey = byte == UInt8(ascii: "{") && depth == 1
        case UInt8(ascii: "}"), UInt8(ascii: "]"):
            depth -= 1
        case UInt8(ascii: ","):
            expectingKey = depth == 1
        case UInt8(ascii: "\""):
            var end = index + 1
            while bytes[end] != UInt8(ascii: "\"") { end += bytes[end] == UInt8(ascii: "\\") ? 2 : 1 }
            if expectingKey { keys.append(String(decoding: bytes[(index + 1)..<end], as: UTF8.self)) }
            expectingKey = false
            index = end
        default:
            break
        }
        index += 1
    }
    return keys
}
