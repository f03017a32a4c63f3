/// Reads the ALPN protocols a TLS ClientHello offers, without a TLS library: the inbound
/// side tells mesh TLS (offering one of `MeshALPN`'s protocols) from an app's own TLS,
/// which passes through untouched, before anything answers the client.
///
/// Only the first TLS record is read (RFC 8446 §5.1: at most 2^14 bytes of payload); a
/// ClientHello that continues past it is judged by what the first record holds. Pure and
/// bounds-checked: every length is checked against what is left, so any bytes give an
/// answer, never a trap.
enum ClientHello {
    enum Parse: Equatable {
        /// The record is not complete yet.
        case needMoreBytes
        /// Not a TLS handshake record starting with a ClientHello.
        case notClientHello
        /// The protocols of its ALPN extension, in the client's order; empty without one.
        case offers([String])
    }

    /// A record header and the largest payload TLS allows.
    static let maxBytes = 5 + 16_384

    static func parse(_ bytes: UnsafeRawBufferPointer) -> Parse {
        guard bytes.count >= 5 else {
            // Judge what is there: a first byte other than handshake(22) is not TLS.
            return bytes.isEmpty || bytes[0] == 0x16 ? .needMoreBytes : .notClientHello
        }
        guard bytes[0] == 0x16, bytes[1] == 0x03 else { return .notClientHello }
        let recordLength = Int(bytes[3]) << 8 | Int(bytes[4])
        guard recordLength > 0, recordLength <= 16_384 else { return .notClientHello }
        guard bytes.count >= 5 + recordLength else { return .needMoreBytes }
        var reader = Reader(bytes: UnsafeRawBufferPointer(rebasing: bytes[5..<(5 + recordLength)]))
        // Handshake header: type client_hello(1), a 3-byte length.
        guard reader.u8() == 1, let _ = reader.u24() else { return .notClientHello }
        // legacy_version, random, legacy_session_id, cipher_suites, legacy_compression_methods.
        guard reader.skip(2 + 32), let session = reader.u8(), reader.skip(Int(session)),
            let suites = reader.u16(), reader.skip(Int(suites)),
            let compression = reader.u8(), reader.skip(Int(compression))
        else { return .notClientHello }
        // No extensions at all (TLS 1.2 allows it): no ALPN.
        guard let extensionsLength = reader.u16() else { return .offers([]) }
        guard var extensions = reader.sub(Int(extensionsLength)) ?? reader.rest() else { return .offers([]) }
        while let type = extensions.u16(), let length = extensions.u16() {
            guard var body = extensions.sub(Int(length)) else { return .offers([]) }
            guard type == 0x0010 else { continue }  // application_layer_protocol_negotiation
            guard let listLength = body.u16(), var list = body.sub(Int(listLength)) else { return .offers([]) }
            var protocols: [String] = []
            while let nameLength = list.u8() {
                guard nameLength > 0, let name = list.bytes(Int(nameLength)) else { break }
                protocols.append(String(decoding: name, as: UTF8.self))
            }
            return .offers(protocols)
        }
        return .offers([])
    }

    private struct Reader {
        let bytes: UnsafeRawBufferPointer
        var offset = 0

        var remaining: Int { bytes.count - offset }

        mutating func u8() -> UInt8? {
            guard remaining >= 1 else { return nil }
            defer { offset += 1 }
            return bytes[offset]
        }

        mutating func u16() -> UInt16? {
            guard remaining >= 2 else { return nil }
            defer { offset += 2 }
            return UInt16(bytes[offset]) << 8 | UInt16(bytes[offset + 1])
        }

        mutating func u24() -> Int? {
            guard remaining >= 3 else { return nil }
            defer { offset += 3 }
            return Int(bytes[offset]) << 16 | Int(bytes[offset + 1]) << 8 | Int(bytes[offset + 2])
        }

        mutating func skip(_ count: Int) -> Bool {
            guard count >= 0, remaining >= count else { return false }
            offset += count
            return true
        }

        mutating func bytes(_ count: Int) -> UnsafeRawBufferPointer? {
            guard count >= 0, remaining >= count else { return nil }
            defer { offset += count }
            return UnsafeRawBufferPointer(rebasing: bytes[offset..<(offset + count)])
        }

        /// The next `count` bytes as a reader of their own.
        mutating func sub(_ count: Int) -> Reader? {
            bytes(count).map { Reader(bytes: $0) }
        }

        /// What is left, as a reader (a length that overruns the record: read what is there).
        mutating func rest() -> Reader? {
            sub(remaining)
        }
    }
}

/// The ALPN protocols that mark mesh TLS between sidecars, and what each carries.
enum MeshALPN: String, CaseIterable, Sendable {
    case http1 = "weft/1+http1.1"
    case http2 = "weft/1+h2"
    case tcp = "weft/1+tcp"

    /// The mesh protocol a ClientHello offers first, if any.
    static func first(in offers: [String]) -> MeshALPN? {
        for offer in offers { if let known = MeshALPN(rawValue: offer) { return known } }
        return nil
    }
}
