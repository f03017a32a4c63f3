import NIOCore

/// Assembles JSON from pre-encoded fragments, so a push to thousands of proxies copies
/// bytes instead of re-encoding values.
enum JSONFragments {
    static func array(_ items: [[UInt8]]) -> [UInt8] {
        var out: [UInt8] = [UInt8(ascii: "[")]
        out.reserveCapacity(items.reduce(2) { $0 + $1.count + 1 })
        for (i, item) in items.enumerated() {
            if i > 0 { out.append(UInt8(ascii: ",")) }
            out.append(contentsOf: item)
        }
        out.append(UInt8(ascii: "]"))
        return out
    }
}

/// Writes one JSON object into a ByteBuffer, key by key.
struct JSONObjectWriter {
    private(set) var buffer: ByteBuffer
    private var needsComma = [false]

    init(buffer: ByteBuffer) {
        self.buffer = buffer
        self.buffer.writeInteger(UInt8(ascii: "{"))
    }

    private mutating func key(_ name: String) {
        if needsComma[needsComma.count - 1] { buffer.writeInteger(UInt8(ascii: ",")) }
        needsComma[needsComma.count - 1] = true
        buffer.writeInteger(UInt8(ascii: "\""))
        buffer.writeString(name)  // our own keys: plain ASCII, no escaping needed
        buffer.writeString("\":")
    }

    mutating func field(_ name: String, int value: Int) {
        key(name)
        buffer.writeString(String(value))
    }

    mutating func field(_ name: String, string value: String) {
        key(name)
        Self.writeString(value, into: &buffer)
    }

    mutating func field(_ name: String, raw: [UInt8]) {
        key(name)
        buffer.writeBytes(raw)
    }

    mutating func field(_ name: String, strings: [String]) {
        key(name)
        buffer.writeInteger(UInt8(ascii: "["))
        for (i, s) in strings.enumerated() {
            if i > 0 { buffer.writeInteger(UInt8(ascii: ",")) }
            Self.writeString(s, into: &buffer)
        }
        buffer.writeInteger(UInt8(ascii: "]"))
    }

    /// `"name":[f1,f2,…]` from fragments.
    mutating func field(_ name: String, fragments: [[UInt8]]) {
        key(name)
        buffer.writeInteger(UInt8(ascii: "["))
        for (i, f) in fragments.enumerated() {
            if i > 0 { buffer.writeInteger(UInt8(ascii: ",")) }
            buffer.writeBytes(f)
        }
        buffer.writeInteger(UInt8(ascii: "]"))
    }

    mutating func beginObject(_ name: String) {
        key(name)
        buffer.writeInteger(UInt8(ascii: "{"))
        needsComma.append(false)
    }

    mutating func endObject() {
        needsComma.removeLast()
        buffer.writeInteger(UInt8(ascii: "}"))
    }

    mutating func finish() -> ByteBuffer {
        buffer.writeInteger(UInt8(ascii: "}"))
        return buffer
    }

    static func writeString(_ s: String, into buffer: inout ByteBuffer) {
        buffer.writeInteger(UInt8(ascii: "\""))
        for byte in s.utf8 {
            switch byte {
            case UInt8(ascii: "\""): buffer.writeString("\\\"")
            case UInt8(ascii: "\\"): buffer.writeString("\\\\")
            case 0..<0x20:
                buffer.writeString("\\u00")
                let hex = Array("0123456789abcdef".utf8)
                buffer.writeInteger(hex[Int(byte >> 4)])
                buffer.writeInteger(hex[Int(byte & 0xF)])
            default: buffer.writeInteger(byte)
            }
        }
        buffer.writeInteger(UInt8(ascii: "\""))
    }
}
