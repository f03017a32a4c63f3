import SwiftASN1
import XCTest

@testable import WeftIdentity

final class PEMCodecTests: XCTestCase {
    func testMatchesSwiftASN1ForEveryLengthRemainder() throws {
        for count in [1, 2, 3, 47, 48, 49, 50, 200, 301] {
            let der = (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ 11) }
            let ours = PEMCodec.encode(der, label: "CERTIFICATE")
            XCTAssertEqual(ours, PEMDocument(type: "CERTIFICATE", derBytes: der).pemString + "\n", "\(count)")
            XCTAssertEqual(try PEMDocument(pemString: ours).derBytes, der)
            XCTAssertEqual(PEMCodec.decode(ours, labels: ["CERTIFICATE"]), der)
            XCTAssertEqual(
                PEMCodec.decode("\r\n  " + ours.replacingOccurrences(of: "\n", with: "\r\n"), labels: ["CERTIFICATE"]),
                der)
        }
    }

    func testRefusesOtherLabelsBadBase64AndTrailingText() {
        let pem = PEMCodec.encode([1, 2, 3, 4], label: "CERTIFICATE REQUEST")
        XCTAssertNil(PEMCodec.decode(pem, labels: ["CERTIFICATE"]))
        XCTAssertNil(
            PEMCodec.decode(pem.replacingOccurrences(of: "AQIDBA", with: "AQ*DBA"), labels: ["CERTIFICATE REQUEST"]))
        XCTAssertNil(PEMCodec.decode(pem + pem, labels: ["CERTIFICATE REQUEST"]))
        XCTAssertNil(PEMCodec.decode("", labels: ["CERTIFICATE REQUEST"]))
        XCTAssertNil(
            PEMCodec.decode(
                pem.replacingOccurrences(of: "END CERTIFICATE REQUEST", with: "END CERTIFICATE"),
                labels: ["CERTIFICATE REQUEST"]))
    }
}
