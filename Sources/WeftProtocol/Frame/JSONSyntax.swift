/// Checks that bytes are one JSON value (RFC 8259), before any decoding.
///
/// JSONDecoder checks only what it reads: a bad escape or a control character in a key it
/// ignores passes, and in a `[String: String]` (read in hash order) whether a bad string
/// or a wrong type is found first varied from run to run, so the same frame was refused
/// as `invalid_json` or `invalid_message` at random (found by the `control` fuzz target).
/// Checking the whole payload first makes every syntax error `invalid_json`, always.
///
/// One pass, no allocation but a stack of open containers, nesting bounded by
/// `maxDepth`. UTF-8 validity is checked separately.
public enum JSONSyntax {
    /// Deeper nesting than any message of the protocol needs is refused.
    public static let maxDepth = 64

    /// Where the payload stops being JSON, or nil when it is one valid value.
    public static func firstError(in bytes: [UInt8]) -> String? {
        var scanner = Scanner(bytes: bytes)
        return scanner.document()
    }

    private struct Scanner {
        let bytes: [UInt8]
        var index = 0

        init(bytes: [UInt8]) { self.bytes = bytes }

        private var current: UInt8? { index < bytes.count ? bytes[index] : nil }

        private mutating func skipWhitespace() {
            while let byte = current, byte == 0x20 || byte == 0x09 || byte == 0x0A || byte == 0x0D { index += 1 }
        }

        private func error(_ what: String) -> String { "\(what) at byte \(index)" }

        mutating func document() -> String? {
            // Containers still open: true for an object, false for an array.
            var open: [Bool] = []
            skipWhitespace()
            while true {
                // A value.
                guard let byte = current else { return error("a value expected") }
                switch byte {
                case UInt8(ascii: "{"), UInt8(ascii: "["):
                    guard open.count < JSONSyntax.maxDepth else {
                        return error("nesting deeper than \(JSONSyntax.maxDepth)")
                    }
                    let isObject = byte == UInt8(ascii: "{")
                    index += 1
                    skipWhitespace()
                    if current == (isObject ? UInt8(ascii: "}") : UInt8(ascii: "]")) {
                        index += 1
                        break  // an empty container is a whole value
                    }
                    open.append(isObject)
                    if isObject {
                        if let problem = key() { return problem }
                    }
                    continue
                case UInt8(ascii: "\""):
                    if let problem = string() { return problem }
                case UInt8(ascii: "t"):
                    if let problem = literal("true") { return problem }
                case UInt8(ascii: "f"):
                    if let problem = literal("false") { return problem }
                case UInt8(ascii: "n"):
                    if let problem = literal("null") { return problem }
                case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
                    if let problem = number() { return problem }
                default:
                    return error("unexpected byte 0x\(String(byte, radix: 16))")
                }
                // After a value: a separator, a close, or the end.
                while true {
                    skipWhitespace()
                    guard let isObject = open.last else {
                        return current == nil ? nil : error("more after the value")
                    }
                    guard let byte = current else { return error("unterminated \(isObject ? "object" : "array")") }
                    if byte == UInt8(ascii: ",") {
                        index += 1
                        skipWhitespace()
                        if isObject, let problem = key() { return problem }
                        break
                    }
                    if byte == (isObject ? UInt8(ascii: "}") : UInt8(ascii: "]")) {
                        index += 1
                        open.removeLast()
                        continue
                    }
                    return error("expected , or \(isObject ? "}" : "]")")
                }
            }
        }

        /// A member's key and its colon; leaves the index at the value.
        private mutating func key() -> String? {
            guard current == UInt8(ascii: "\"") else { return error("a string key expected") }
            if let problem = string() { return problem }
            skipWhitespace()
            guard current == UInt8(ascii: ":") else { return error("expected :") }
            index += 1
            skipWhitespace()
            return nil
        }

        private mutating func string() -> String? {
            index += 1  // the opening quote
            while let byte = current {
                switch byte {
                case UInt8(ascii: "\""):
                    index += 1
                    return nil
                case UInt8(ascii: "\\"):
                    index += 1
                    guard let escaped = current else { return error("unterminated escape") }
                    switch escaped {
                    case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"), UInt8(ascii: "b"),
                        UInt8(ascii: "f"), UInt8(ascii: "n"), UInt8(ascii: "r"), UInt8(ascii: "t"):
                        index += 1
                    case UInt8(ascii: "u"):
                        index += 1
                        for _ in 0..<4 {
                            guard let hex = current, Self.isHex(hex) else { return error("bad \\u escape") }
                            index += 1
                        }
                    default:
                        return error("bad escape")
                    }
                case 0x00..<0x20:
                    return error("a control character in a string")
                default:
                    index += 1
                }
            }
            return error("unterminated string")
        }

        private mutating func literal(_ word: StaticString) -> String? {
            let expected = UnsafeRawBufferPointer(start: word.utf8Start, count: word.utf8CodeUnitCount)
            for byte in expected {
                guard current == byte else { return error("bad literal") }
                index += 1
            }
            return nil
        }

        private mutating func number() -> String? {
            if current == UInt8(ascii: "-") { index += 1 }
            guard let first = current, Self.isDigit(first) else { return error("a digit expected") }
            index += 1
            if first != UInt8(ascii: "0") { while let d = current, Self.isDigit(d) { index += 1 } }
            if current == UInt8(ascii: ".") {
                index += 1
                guard let d = current, Self.isDigit(d) else { return error("a digit expected after .") }
                while let d = current, Self.isDigit(d) { index += 1 }
            }
            if current == UInt8(ascii: "e") || current == UInt8(ascii: "E") {
                index += 1
                if current == UInt8(ascii: "+") || current == UInt8(ascii: "-") { index += 1 }
                guard let d = current, Self.isDigit(d) else { return error("a digit expected in the exponent") }
                while let d = current, Self.isDigit(d) { index += 1 }
            }
            return nil
        }

        private static func isDigit(_ byte: UInt8) -> Bool { byte >= 0x30 && byte <= 0x39 }

        private static func isHex(_ byte: UInt8) -> Bool {
            isDigit(byte) || (byte >= 0x41 && byte <= 0x46) || (byte >= 0x61 && byte <= 0x66)
        }
    }
}
