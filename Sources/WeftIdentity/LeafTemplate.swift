import Crypto
import SwiftASN1
import X509

#if canImport(Glibc)
    import Glibc
#endif
#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// A workload leaf's DER, assembled from parts fixed at CA load.
///
/// Every leaf of a CA differs only in serial, validity, key, SAN and SKI; issuer, the
/// constant extensions and the algorithm identifiers are serialized once here. Building
/// the leaf through swift-certificates' `Certificate` took ~40% of an issuance (DER
/// trees, key conversions, a second serialization); this writes the bytes directly and
/// signs the TBS with the intermediate's key. `CertificateAuthorityTests` decode every
/// issued leaf with swift-certificates and openssl checks it in the e2e suite, so the
/// encoding is checked by two independent parsers.
struct LeafTemplate: Sendable {
    private let issuerDER: [UInt8]
    private let constantExtensionsDER: [UInt8]
    private let signingKey: P256.Signing.PrivateKey

    /// `AlgorithmIdentifier { ecdsa-with-SHA256 }`, without parameters (RFC 5758).
    private static let ecdsaWithSHA256: [UInt8] = [
        0x30, 0x0A, 0x06, 0x08, 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x04, 0x03, 0x02,
    ]
    /// `SubjectPublicKeyInfo` prefix for an uncompressed P-256 point (id-ecPublicKey,
    /// prime256v1), followed by the 65-byte x9.63 point.
    private static let p256SPKIPrefix: [UInt8] = [
        0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x02, 0x01, 0x06, 0x08, 0x2A, 0x86, 0x48,
        0xCE, 0x3D, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
    ]

    init(issuer: DistinguishedName, constantExtensions: [Certificate.Extension], signingKey: P256.Signing.PrivateKey)
        throws
    {
        var issuerSerializer = DER.Serializer()
        try issuerSerializer.serialize(issuer)
        issuerDER = issuerSerializer.serializedBytes
        var extensionSerializer = DER.Serializer()
        for constant in constantExtensions { try extensionSerializer.serialize(constant) }
        constantExtensionsDER = extensionSerializer.serializedBytes
        self.signingKey = signingKey
    }

    /// The DER certificate.
    /// - Parameters:
    ///   - serial: 16 bytes, first byte 0x01…0x7F (positive, minimal).
    ///   - notBefore, notAfter: whole seconds since 1970.
    ///   - publicKeyX963: the leaf's uncompressed P-256 point, 65 bytes.
    ///   - uri: the SPIFFE ID, the only SAN.
    func certificate(
        serial: [UInt8], notBefore: Int, notAfter: Int, publicKeyX963: [UInt8], uri: String
    ) throws -> [UInt8] {
        var extensions = constantExtensionsDER
        // subjectAltName, critical (the subject is empty): SEQUENCE { OID 2.5.29.17,
        // BOOLEAN TRUE, OCTET STRING { SEQUENCE { [6] uri } } }
        let uriBytes = Array(uri.utf8)
        let generalNames = Self.tlv(0x30, Self.tlv(0x86, uriBytes))
        extensions += Self.tlv(
            0x30, [0x06, 0x03, 0x55, 0x1D, 0x11, 0x01, 0x01, 0xFF] + Self.tlv(0x04, generalNames))
        // subjectKeyIdentifier: SHA-1 of the subjectPublicKey bits (RFC 5280 §4.2.1.2 (1)).
        let keyID = Array(Insecure.SHA1.hash(data: publicKeyX963))
        extensions += Self.tlv(0x30, [0x06, 0x03, 0x55, 0x1D, 0x0E] + Self.tlv(0x04, Self.tlv(0x04, keyID)))

        var tbs: [UInt8] = [0xA0, 0x03, 0x02, 0x01, 0x02]  // [0] EXPLICIT version v3
        tbs.reserveCapacity(512 + uriBytes.count)
        tbs += Self.tlv(0x02, serial)
        tbs += Self.ecdsaWithSHA256
        tbs += issuerDER
        tbs += Self.tlv(0x30, Self.time(notBefore) + Self.time(notAfter))
        tbs += [0x30, 0x00]  // empty subject
        tbs += Self.p256SPKIPrefix
        tbs += publicKeyX963
        tbs += Self.tlv(0xA3, Self.tlv(0x30, extensions))
        let tbsDER = Self.tlv(0x30, tbs)

        let signature = try signingKey.signature(for: tbsDER).derRepresentation
        var body = tbsDER
        body += Self.ecdsaWithSHA256
        body += Self.tlv(0x03, [0x00] + Array(signature))
        return Self.tlv(0x30, body)
    }

    /// Tag, DER length, value.
    static func tlv(_ tag: UInt8, _ value: [UInt8]) -> [UInt8] {
        var out: [UInt8] = [tag]
        let n = value.count
        if n < 0x80 {
            out.append(UInt8(n))
        } else if n < 0x100 {
            out += [0x81, UInt8(n)]
        } else if n < 0x10000 {
            out += [0x82, UInt8(n >> 8), UInt8(n & 0xFF)]
        } else {
            out += [0x83, UInt8(n >> 16), UInt8((n >> 8) & 0xFF), UInt8(n & 0xFF)]
        }
        out += value
        return out
    }

    /// RFC 5280 §4.1.2.5: UTCTime `YYMMDDHHMMSSZ` through 2049, GeneralizedTime
    /// `YYYYMMDDHHMMSSZ` from 2050.
    static func time(_ seconds: Int) -> [UInt8] {
        var t = time_t(seconds)
        var parts = tm()
        gmtime_r(&t, &parts)
        let year = Int(parts.tm_year) + 1900
        var digits: [UInt8] = []
        func two(_ v: Int) {
            digits.append(UInt8(ascii: "0") + UInt8(v / 10 % 10))
            digits.append(UInt8(ascii: "0") + UInt8(v % 10))
        }
        let isUTC = year < 2050
        if isUTC {
            two(year % 100)
        } else {
            two(year / 100)
            two(year % 100)
        }
        two(Int(parts.tm_mon) + 1)
        two(Int(parts.tm_mday))
        two(Int(parts.tm_hour))
        two(Int(parts.tm_min))
        two(Int(parts.tm_sec))
        digits.append(UInt8(ascii: "Z"))
        return tlv(isUTC ? 0x17 : 0x18, digits)
    }
}
