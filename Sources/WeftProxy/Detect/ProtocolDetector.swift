/// The protocol a connection speaks, judged from its first bytes.
enum DetectedProtocol: Equatable {
    case http1
    /// HTTP/2 with prior knowledge: the client sent the h2c connection preface.
    case http2
    /// A TLS ClientHello; `serverName` is its SNI, when it has one.
    case tls(serverName: String?)
    case opaque

    /// The `protocol` label for metrics.
    var label: String {
        switch self {
        case .http1: return "http1"
        case .http2: return "http2"
        case .tls: return "tls"
        case .opaque: return "opaque"
        }
    }
}

/// Classifies a connection from the bytes a client sent first.
///
/// Pure and allocation-free until it has an answer, so it is fuzzed directly. It asks
/// for more bytes only while the bytes so far are a prefix of something it recognises,
/// and never for more than `maxBytes`; the caller's timeout covers clients that stall.
enum ProtocolDetector {
    enum Verdict: Equatable {
        case needMoreBytes
        case detected(DetectedProtocol)
    }

    /// The most bytes detection ever waits for: a TLS record header plus the largest record.
    static let maxBytes = 5 + 16_384

    /// The longest request line detection waits for before calling a connection opaque.
    static let maxRequestLine = 8 * 1024

    private static let h2Preface: [UInt8] = Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8)
    private static let http1Version: [UInt8] = Array("HTTP/1.".utf8)

    /// The longest method detection accepts; longer tokens are not HTTP.
    static let maxMethod = 16

    static func detect(_ bytes: UnsafeRawBufferPointer) -> Verdict {
        guard !bytes.isEmpty else { return .needMoreBytes }
        if bytes[0] == 0x16 { return detectTLS(bytes) }
        if bytes[0] == UInt8(ascii: "P") {
            let common = min(bytes.count, h2Preface.count)
            var isPrefix = true
            for index in 0..<common where bytes[index] != h2Preface[index] {
                isPrefix = false
                break
            }
            if isPrefix { return common == h2Preface.count ? .detected(.http2) : .needMoreBytes }
        }
        return detectHTTP1(bytes)
    }

    /// The methods of RFC 9110, PATCH and WebDAV's: a connection that starts with one of
    /// them and a space is HTTP/1, whatever follows, so the HTTP/1 parser judges (and rejects) the
    /// rest of the request line. Calling it opaque would hand a malformed or smuggling
    /// request to the app verbatim.
    private static let knownMethods: [[UInt8]] = [
        "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH",
        "PROPFIND", "PROPPATCH", "MKCOL", "COPY", "MOVE", "LOCK", "UNLOCK",
    ].map { Array($0.utf8) }

    /// HTTP/1 if the bytes start like a request, after any empty lines (RFC 9112 §2.2):
    /// - a known method and a space;
    /// - any other method token, a space, and a target in origin or asterisk form (`/`, `*`);
    /// - or `TOKEN SP TARGET SP HTTP/1.` (absolute and authority forms of other methods).
    ///
    /// Otherwise opaque. The limits are checked against where a run ends, not against how
    /// many bytes have arrived, so that the verdict does not depend on how the bytes were
    /// segmented: a verdict reached on a prefix is the verdict on every longer input.
    private static func detectHTTP1(_ bytes: UnsafeRawBufferPointer) -> Verdict {
        var index = 0
        while index < bytes.count && index < maxRequestLine && (bytes[index] == 0x0D || bytes[index] == 0x0A) {
            index += 1
        }
        if index >= maxRequestLine { return .detected(.opaque) }
        if index == bytes.count { return .needMoreBytes }
        let methodStart = index
        while index < bytes.count && index - methodStart <= maxMethod && HTTP1HeadParser.isTokenByte(bytes[index]) {
            index += 1
        }
        if index - methodStart > maxMethod { return .detected(.opaque) }
        if index == bytes.count { return .needMoreBytes }
        guard index > methodStart, bytes[index] == 0x20 else { return .detected(.opaque) }
        if isKnownMethod(UnsafeRawBufferPointer(rebasing: bytes[methodStart..<index])) { return .detected(.http1) }
        index += 1
        if index == bytes.count { return .needMoreBytes }
        if bytes[index] == UInt8(ascii: "/") || bytes[index] == UInt8(ascii: "*") { return .detected(.http1) }
        let targetStart = index
        while index < bytes.count && index < maxRequestLine && bytes[index] > 0x20 && bytes[index] < 0x7F { index += 1 }
        if index >= maxRequestLine { return .detected(.opaque) }
        if index == bytes.count { return .needMoreBytes }
        guard index > targetStart, bytes[index] == 0x20 else { return .detected(.opaque) }
        index += 1
        for expected in http1Version {
            if index == bytes.count { return .needMoreBytes }
            if bytes[index] != expected { return .detected(.opaque) }
            index += 1
        }
        return .detected(.http1)
    }

    static func isKnownMethod(_ token: UnsafeRawBufferPointer) -> Bool {
        for method in knownMethods where method.count == token.count {
            if method.elementsEqual(token) { return true }
        }
        return false
    }

    /// A TLS handshake record whose first message is a ClientHello.
    private static func detectTLS(_ bytes: UnsafeRawBufferPointer) -> Verdict {
        // record: type(1)=22, version(2)=3.x, length(2); handshake: type(1)=1, length(3)
        if bytes.count < 6 { return prefixOfRecordHeader(bytes) ? .needMoreBytes : .detected(.opaque) }
        guard bytes[1] == 0x03, bytes[2] <= 0x04, bytes[5] == 0x01 else { return .detected(.opaque) }
        let recordLength = Int(bytes[3]) << 8 | Int(bytes[4])
        guard recordLength > 4, recordLength <= 16_384 else { return .detected(.opaque) }
        guard bytes.count >= 5 + recordLength else {
            return .needMoreBytes
        }
        let record = UnsafeRawBufferPointer(rebasing: bytes[5..<(5 + recordLength)])
        return .detected(.tls(serverName: ClientHelloReader.serverName(inHandshake: record)))
    }

    private static func prefixOfRecordHeader(_ bytes: UnsafeRawBufferPointer) -> Bool {
        if bytes.count > 1 && bytes[1] != 0x03 { return false }
        if bytes.count > 2 && bytes[2] > 0x04 { return false }
        if bytes.count > 5 && bytes[5] != 0x01 { return false }
        return true
    }
}

/// Reads a ClientHello handshake message's extensions: the SNI (recorded by detection) and
/// the ALPN offers (the inbound side tells mesh TLS from an app's own by them).
///
/// Detection never rejects a connection for a malformed hello (the TLS server behind the
/// proxy decides that): a malformed one reads as having neither.
enum ClientHelloReader {
    static func serverName(inHandshake message: UnsafeRawBufferPointer) -> String? {
        guard var body = extensionBody(0, inHandshake: message),  // server_name
            body.u16() != nil, body.u8() == 0, let nameLength = body.u16(),
            let name = body.take(nameLength), !name.isEmpty
        else { return nil }
        guard name.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else { return nil }
        return String(decoding: name, as: UTF8.self)
    }

    /// The protocols of the ALPN extension, in the client's order; empty without one.
    static func applicationProtocols(inHandshake message: UnsafeRawBufferPointer) -> [String] {
        guard var body = extensionBody(0x0010, inHandshake: message),  // application_layer_protocol_negotiation
            let listLength = body.u16(), var list = body.sub(listLength)
        else { return [] }
        var protocols: [String] = []
        while let length = list.u8(), length > 0, let name = list.take(Int(length)) {
            protocols.append(String(decoding: name, as: UTF8.self))
        }
        return protocols
    }

    /// The ALPN offers of the ClientHello in a whole first TLS record (`bytes` from its
    /// header on, as detection buffered it); empty when it is not one or has none.
    static func applicationProtocols(inRecord bytes: UnsafeRawBufferPointer) -> [String] {
        guard bytes.count > 5, bytes[0] == 0x16 else { return [] }
        let length = min(Int(bytes[3]) << 8 | Int(bytes[4]), bytes.count - 5)
        return applicationProtocols(inHandshake: UnsafeRawBufferPointer(rebasing: bytes[5..<(5 + length)]))
    }

    /// The body of the first extension of `type`; nil when there is none or the hello is
    /// malformed.
    private static func extensionBody(_ wanted: Int, inHandshake message: UnsafeRawBufferPointer) -> ByteReader? {
        var reader = ByteReader(message)
        guard reader.u8() == 1, let length = reader.u24(), length <= reader.remaining else { return nil }
        guard reader.skip(2 + 32),  // legacy_version, random
            let sessionLength = reader.u8(), reader.skip(Int(sessionLength)),
            let suitesLength = reader.u16(), reader.skip(suitesLength),
            let compressionLength = reader.u8(), reader.skip(Int(compressionLength)),
            let extensionsLength = reader.u16(),
            var extensions = reader.sub(extensionsLength)
        else { return nil }
        while extensions.remaining >= 4 {
            guard let type = extensions.u16(), let length = extensions.u16(), let body = extensions.sub(length)
            else { return nil }
            if type == wanted { return body }
        }
        return nil
    }

    /// A bounds-checked cursor over a byte buffer; every read returns nil past the end.
    private struct ByteReader {
        private let bytes: UnsafeRawBufferPointer
        private var index: Int
        private let end: Int

        init(_ bytes: UnsafeRawBufferPointer) {
            self.bytes = bytes
            self.index = 0
            self.end = bytes.count
        }

        private init(_ bytes: UnsafeRawBufferPointer, index: Int, end: Int) {
            self.bytes = bytes
            self.index = index
            self.end = end
        }

        var remaining: Int { end - index }

        mutating func u8() -> UInt8? {
            guard index < end else { return nil }
            defer { index += 1 }
            return bytes[index]
        }

        mutating func u16() -> Int? {
            guard let high = u8(), let low = u8() else { return nil }
            return Int(high) << 8 | Int(low)
        }

        mutating func u24() -> Int? {
            guard let high = u8(), let rest = u16() else { return nil }
            return Int(high) << 16 | rest
        }

        mutating func skip(_ count: Int) -> Bool {
            guard count <= remaining else { return false }
            index += count
            return true
        }

        /// Splits off the next `count` bytes as a reader of their own; nil when too short.
        mutating func sub(_ count: Int) -> ByteReader? {
            guard count <= remaining else { return nil }
            defer { index += count }
            return ByteReader(bytes, index: index, end: index + count)
        }

        mutating func take(_ count: Int) -> UnsafeRawBufferPointer.SubSequence? {
            guard count <= remaining else { return nil }
            defer { index += count }
            return bytes[index..<(index + count)]
        }
    }
}
