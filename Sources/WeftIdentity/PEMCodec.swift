/// PEM encoding and decoding on bytes, for the issuance path.
///
/// swift-asn1's `PEMDocument` walks `String` indices and goes through Foundation's
/// base64; issuance does one decode (the CSR) and one encode (the leaf) per call, so
/// both are done here on `[UInt8]` (RFC 7468: 64-column lines, strict base64).
enum PEMCodec {
    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
    private static let reverse: [UInt8] = {
        var table = [UInt8](repeating: 0xFF, count: 256)
        for (index, byte) in alphabet.enumerated() { table[Int(byte)] = UInt8(index) }
        return table
    }()

    /// `-----BEGIN label-----`, the base64 of `der` in 64-column lines, `-----END label-----`, and a newline.
    static func encode(_ der: [UInt8], label: String) -> String {
        let header = Array("-----BEGIN \(label)-----\n".utf8)
        let footer = Array("-----END \(label)-----\n".utf8)
        let base64Count = (der.count + 2) / 3 * 4
        var out = [UInt8]()
        out.reserveCapacity(header.count + base64Count + base64Count / 64 + 1 + footer.count)
        out.append(contentsOf: header)
        var column = 0
        var index = 0
        func put(_ byte: UInt8) {
            out.append(byte)
            column += 1
            if column == 64 {
                out.append(UInt8(ascii: "\n"))
                column = 0
            }
        }
        while index + 3 <= der.count {
            let value = UInt32(der[index]) << 16 | UInt32(der[index + 1]) << 8 | UInt32(der[index + 2])
            put(alphabet[Int(value >> 18 & 63)])
            put(alphabet[Int(value >> 12 & 63)])
            put(alphabet[Int(value >> 6 & 63)])
            put(alphabet[Int(value & 63)])
            index += 3
        }
        let rest = der.count - index
        if rest > 0 {
            let value = UInt32(der[index]) << 16 | (rest == 2 ? UInt32(der[index + 1]) << 8 : 0)
            put(alphabet[Int(value >> 18 & 63)])
            put(alphabet[Int(value >> 12 & 63)])
            put(rest == 2 ? alphabet[Int(value >> 6 & 63)] : UInt8(ascii: "="))
            put(UInt8(ascii: "="))
        }
        if column != 0 { out.append(UInt8(ascii: "\n")) }
        out.append(contentsOf: footer)
        return String(decoding: out, as: UTF8.self)
    }

    /// The DER bytes of the single PEM block in `text` whose label is one of `labels`;
    /// nil if there is no such block, its base64 is bad, or anything but whitespace surrounds it.
    static func decode(_ text: String, labels: [String]) -> [UInt8]? {
        var text = text
        return text.withUTF8 { bytes -> [UInt8]? in
            let begin = Array("-----BEGIN ".utf8)
            let dashes = Array("-----".utf8)
            var start = 0
            while start < bytes.count, isSpace(bytes[start]) { start += 1 }
            guard bytes.count - start > begin.count, bytes[start..<start + begin.count].elementsEqual(begin) else {
                return nil
            }
            var cursor = start + begin.count
            let labelStart = cursor
            while cursor < bytes.count, bytes[cursor] != UInt8(ascii: "-") { cursor += 1 }
            let label = bytes[labelStart..<cursor]
            guard labels.contains(where: { $0.utf8.elementsEqual(label) }),
                bytes.count - cursor >= dashes.count, bytes[cursor..<cursor + dashes.count].elementsEqual(dashes)
            else { return nil }
            cursor += dashes.count
            let footer = Array("-----END ".utf8) + Array(label) + dashes
            var der = [UInt8]()
            der.reserveCapacity((bytes.count - cursor) * 3 / 4)
            var accumulator: UInt32 = 0
            var bits = 0
            var padding = 0
            while cursor < bytes.count {
                let byte = bytes[cursor]
                if byte == UInt8(ascii: "-") { break }
                cursor += 1
                if isSpace(byte) { continue }
                if byte == UInt8(ascii: "=") {
                    padding += 1
                    continue
                }
                let value = reverse[Int(byte)]
                guard value != 0xFF, padding == 0 else { return nil }
                accumulator = accumulator << 6 | UInt32(value)
                bits += 6
                if bits >= 8 {
                    bits -= 8
                    der.append(UInt8(truncatingIfNeeded: accumulator >> UInt32(bits)))
                }
            }
            guard padding <= 2, bytes.count - cursor >= footer.count,
                bytes[cursor..<cursor + footer.count].elementsEqual(footer)
            else { return nil }
            cursor += footer.count
            while cursor < bytes.count {
                guard isSpace(bytes[cursor]) else { return nil }
                cursor += 1
            }
            return der.isEmpty ? nil : der
        }
    }

    private static func isSpace(_ byte: UInt8) -> Bool {
        byte == 0x20 || byte == 0x0A || byte == 0x0D || byte == 0x09
    }
}
