import Crypto
import SwiftASN1
import WeftCore
import X509

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

extension CertificateAuthority {
    /// Issues a leaf certificate for a PEM CSR, after checking it asks for `expected`.
    ///
    /// The caller has authenticated the workload (a ServiceAccount token, or the
    /// current certificate on renewal) and passes the identity that proved; the CSR
    /// is only trusted for its public key. See `issue(csrDER:for:lifetime:now:)`.
    /// - Parameters:
    ///   - csrPEM: a PKCS#10 request, `CERTIFICATE REQUEST` or `NEW CERTIFICATE REQUEST`.
    ///   - expected: the identity the caller authenticated.
    ///   - lifetime: how long the leaf is valid (clipped to the intermediate's notAfter).
    ///   - now: the issuance time.
    /// - Throws: `IssueError`; `.malformedCSR` when the text is not a CSR.
    public func issue(
        csrPEM: String, for expected: SPIFFEID, lifetime: Duration = .seconds(86_400), now: Date = Date()
    ) throws(IssueError) -> IssuedCertificate {
        guard let der = PEMCodec.decode(csrPEM, labels: ["CERTIFICATE REQUEST", "NEW CERTIFICATE REQUEST"]) else {
            throw IssueError(
                .malformedCSR, expected: expected.description,
                reason: "not a single PEM block labelled CERTIFICATE REQUEST with valid base64")
        }
        return try issue(csrDER: der, for: expected, lifetime: lifetime, now: now)
    }

    /// Issues a leaf certificate for a DER CSR, after checking it asks for `expected`.
    ///
    /// Checks, in order: the CSR decodes; its key is ECDSA P-256 and it is signed with
    /// ecdsa-with-SHA256; the signature verifies (the requester holds the key); its
    /// extensionRequest carries exactly one name, a URI SAN equal to `expected`; and
    /// `expected` is in the CA's trust domain.
    ///
    /// The leaf: a random positive 16-byte serial; notBefore `now` − 5 minutes (clock
    /// skew); notAfter `now + lifetime`, never past the intermediate's; an empty
    /// subject, so the URI SAN is critical (RFC 5280 §4.2.1.6); `CA:FALSE` and
    /// `digitalSignature`, both critical; EKU serverAuth and clientAuth; AKI and SKI.
    /// Signed by the intermediate with ecdsa-with-SHA256.
    /// - Throws: `IssueError`, naming `expected` and, on a mismatch, the requested ID.
    public func issue(
        csrDER: [UInt8], for expected: SPIFFEID, lifetime: Duration = .seconds(86_400), now: Date = Date()
    ) throws(IssueError) -> IssuedCertificate {
        let csr: CertificateSigningRequest
        do {
            csr = try CertificateSigningRequest(derEncoded: csrDER)
        } catch {
            throw IssueError(.malformedCSR, expected: expected.description, reason: "not a PKCS#10 CSR: \(error)")
        }
        guard P256.Signing.PublicKey(csr.publicKey) != nil else {
            throw IssueError(
                .unsupportedKey, expected: expected.description,
                reason: "the CSR's key is \(Self.keyKind(csr.publicKey)); only ECDSA P-256 is accepted")
        }
        guard csr.signatureAlgorithm == .ecdsaWithSHA256 else {
            throw IssueError(
                .unsupportedKey, expected: expected.description,
                reason: "the CSR is signed with \(csr.signatureAlgorithm); only ecdsa-with-SHA256 is accepted")
        }
        guard csr.publicKey.isValidSignature(csr.signature, for: csr) else {
            throw IssueError(
                .badSignature, expected: expected.description,
                reason: "the CSR's signature does not verify with its own key")
        }
        let expectedURI = expected.description
        let requestedURI = try Self.requestedURI(csr, expected: expectedURI)
        guard requestedURI == expectedURI else {
            throw IssueError(
                .identityMismatch, expected: expectedURI, requested: requestedURI,
                reason: "the CSR asks for another identity than the one authenticated")
        }
        if let trustDomain, expected.trustDomain != trustDomain {
            throw IssueError(
                .foreignTrustDomain, expected: expectedURI,
                reason: "this CA issues for trust domain \(trustDomain) only")
        }

        let (seconds, attoseconds) = lifetime.components
        let lifetimeSeconds = Double(seconds) + Double(attoseconds) / 1e18
        guard lifetimeSeconds > 0 else {
            throw IssueError(.invalidValidity, expected: expectedURI, reason: "lifetime \(lifetime) is not positive")
        }
        let notBefore = now.addingTimeInterval(-Self.clockSkew)
        let notAfter = min(now.addingTimeInterval(lifetimeSeconds), intermediateNotAfter)
        guard notAfter > now else {
            throw IssueError(
                .invalidValidity, expected: expectedURI,
                reason: "the intermediate CA expired at \(intermediateNotAfter)")
        }

        var serial = Self.randomSerial()
        serial[0] = (serial[0] & 0x7F) | 0x01  // positive and minimal: 16 bytes always
        let notBeforeSeconds = Int(notBefore.timeIntervalSince1970.rounded(.down))
        let notAfterSeconds = Int(notAfter.timeIntervalSince1970.rounded(.down))
        let leafPEM: String
        do {
            guard let key = P256.Signing.PublicKey(csr.publicKey) else {
                throw IssueError(.unsupportedKey, expected: expectedURI, reason: "not a P-256 key")
            }
            let der = try leafTemplate.certificate(
                serial: serial, notBefore: notBeforeSeconds, notAfter: notAfterSeconds,
                publicKeyX963: Array(key.x963Representation), uri: expectedURI)
            leafPEM = PEMCodec.encode(der, label: "CERTIFICATE")
        } catch {
            throw IssueError(.signingFailed, expected: expectedURI, reason: "cannot build the leaf: \(error)")
        }
        return IssuedCertificate(
            leafPEM: leafPEM,
            chainPEM: leafPEM + intermediatePEM,
            notBefore: Date(timeIntervalSince1970: TimeInterval(notBeforeSeconds)),
            notAfter: Date(timeIntervalSince1970: TimeInterval(notAfterSeconds)),
            serialHex: Self.hex(serial),
            identity: expected
        )
    }

    /// The single URI SAN a CSR asks for.
    static func requestedURI(_ csr: CertificateSigningRequest, expected: String) throws(IssueError) -> String {
        let extensionRequest: ExtensionRequest?
        do {
            extensionRequest = try csr.attributes.extensionRequest
        } catch {
            throw IssueError(
                .malformedCSR, expected: expected, reason: "the CSR's extensionRequest does not decode: \(error)")
        }
        guard let extensionRequest else {
            throw IssueError(
                .missingIdentity, expected: expected,
                reason: "the CSR has no extensionRequest, so no URI SAN carrying a SPIFFE ID")
        }
        let names: SubjectAlternativeNames?
        do {
            names = try extensionRequest.extensions.subjectAlternativeNames
        } catch {
            throw IssueError(.malformedCSR, expected: expected, reason: "the CSR's SAN does not decode: \(error)")
        }
        guard let names, !names.isEmpty else {
            throw IssueError(
                .missingIdentity, expected: expected, reason: "the CSR has no subjectAltName with a SPIFFE URI")
        }
        guard names.count == 1, case .uniformResourceIdentifier(let uri) = names[names.startIndex] else {
            let listed = names.map { "\($0)" }.joined(separator: ", ")
            throw IssueError(
                .unexpectedNames, expected: expected, requested: listed,
                reason: "the CSR must ask for exactly one name, a SPIFFE URI")
        }
        return uri
    }

    static func keyKind(_ key: Certificate.PublicKey) -> String {
        if P384.Signing.PublicKey(key) != nil { return "ECDSA P-384" }
        if P521.Signing.PublicKey(key) != nil { return "ECDSA P-521" }
        if Curve25519.Signing.PublicKey(key) != nil { return "Ed25519" }
        return "not ECDSA (RSA or another algorithm)"
    }

    static func hex(_ bytes: [UInt8]) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out = [UInt8]()
        out.reserveCapacity(bytes.count * 2)
        for byte in bytes {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0x0F)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}
