import NIOCore
import WeftProtocol
import XCTest

/// Asserts that `body` throws a `ProtocolError` with `code`, and that its reason mentions
/// each of `mentioning` (the field, the type name, ...).
func XCTAssertProtocolError<T>(
    _ body: @autoclosure () throws -> T, _ code: ProtocolError.Code, mentioning: [String] = [],
    file: StaticString = #filePath, line: UInt = #line
) {
    XCTAssertThrowsError(try body(), file: file, line: line) { error in
        guard let error = error as? ProtocolError else {
            return XCTFail("expected a ProtocolError, got \(error)", file: file, line: line)
        }
        XCTAssertEqual(error.code, code, "\(error)", file: file, line: line)
        for word in mentioning {
            XCTAssertTrue(
                error.reason.contains(word), "\"\(error.reason)\" does not mention \(word)", file: file, line: line)
        }
    }
}

extension ByteBuffer {
    /// A frame header: `length` as 4 bytes, big-endian.
    static func frameHeader(_ length: UInt32) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.writeInteger(length)
        return buffer
    }

    /// A whole frame around `payload`.
    static func frame(_ payload: String) -> ByteBuffer {
        var buffer = frameHeader(UInt32(payload.utf8.count))
        buffer.writeString(payload)
        return buffer
    }
}
