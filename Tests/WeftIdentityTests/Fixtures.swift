import Foundation
import WeftCore
import XCTest

@testable import WeftIdentity

/// Shared fixtures: a fixed clock, identities, temp directories and CSRs made by openssl.
enum Fixtures {
    /// 2026-01-01T00:00:00Z: tests never depend on the wall clock.
    static let now = Date(timeIntervalSince1970: 1_767_225_600)
    static let web = SPIFFEID(namespace: "default", serviceAccount: "web")
    static let db = SPIFFEID(namespace: "default", serviceAccount: "db")

    /// A fresh CA for `cluster.local`, made at `now`.
    static func authority(trustDomain: String = "cluster.local") throws -> (CAFiles, CertificateAuthority) {
        let files = try CertificateAuthority.create(trustDomain: trustDomain, now: now)
        return (files, try CertificateAuthority(files: files, now: now))
    }

    /// A new empty directory under the system temp directory, removed at the end of the test.
    static func temporaryDirectory(_ test: XCTestCase) throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("weft-identity-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        test.addTeardownBlock { try? FileManager.default.removeItem(at: url) }
        return url
    }

    /// `openssl req -new -newkey rsa:2048 -subj / -addext subjectAltName=URI:spiffe://cluster.local/ns/default/sa/web`
    static let rsaCSR = """
        -----BEGIN CERTIFICATE REQUEST-----
        MIICizCCAXMCAQAwADCCASIwDQYJKoZIhvcNAQEBBQADggEPADCCAQoCggEBAKui
        MkUT0/mwnXSGaQ/OrH9vTr32exO2mcEWoKZX0CvnAZP1AUnuDBr2Hef+gRm9ERIu
        kgrygGdxLCJErurTnxSjGbVUNFo6yKvqqNXSlM6aherQQOBngtw+Tz2yIH/cQs1W
        f/HrJ3hYr/rPqF6CmV2QRI2UnhYY6v1ESTFo9BNjF0kZL3Pi15Px/6ILG1MpbiJV
        iPyfw2sy56mxe8OuY6HNRgMVpkKse6Fcdv5Nio4xTIWqya36MdnnfaeP2DkF1+UZ
        kpLb9IoSrCp9ChnTzORxBWJXiFniqtatv1hyiTxSmV8xgjdsipc7RI3Ab1gllCXL
        RTs8IbojsQY9VxsKDTECAwEAAaBGMEQGCSqGSIb3DQEJDjE3MDUwMwYDVR0RBCww
        KoYoc3BpZmZlOi8vY2x1c3Rlci5sb2NhbC9ucy9kZWZhdWx0L3NhL3dlYjANBgkq
        hkiG9w0BAQsFAAOCAQEAmezgVbH5U2Vt0qVjBBSJgcLGwuGo2/NkyCcocpMTxo02
        BgM7rFLX2r+8cQ6aa+u+6zQEc5DSLC+zWdQnKlECG4mZb1YRb4VCE0OxAGSUGZYR
        ZLQ2qI6bJUi+5GFcCitwISbXgHr3fwsYM5MGVDJnS/wKCrfwdW+o4yf+OhEvWYwK
        MaxiQmdLEdjKVZYoIlKiLMofMjO+2BqFNYl97ZVt282Gq4vTD/Ep4YcASiEBsoK3
        Vw8GqLtAHPl7FSMcjbxSmr0TKamvl5JDh2foVRKFABgos7uPuLGlV+Wjo7TjZELL
        o8bEX1rdEHj6IhJeG6ZJDvGD9x0K4iNMZd1DO6ww5Q==
        -----END CERTIFICATE REQUEST-----
        """

    /// The same with `-newkey ec -pkeyopt ec_paramgen_curve:P-384`.
    static let p384CSR = """
        -----BEGIN CERTIFICATE REQUEST-----
        MIIBPjCBxQIBADAAMHYwEAYHKoZIzj0CAQYFK4EEACIDYgAEKDT4xZqFqSG88XW/
        nn/jU8IxN2EfwhdHQLEsjgD9nfdbCDn/6CXFT1tmpCuxPqQgTwNgv+RTcglpO+6l
        IEO23QyBZGl8XNenM2qOfjbO4LfaPEzMYeprfrDo2XIr7zt8oEYwRAYJKoZIhvcN
        AQkOMTcwNTAzBgNVHREELDAqhihzcGlmZmU6Ly9jbHVzdGVyLmxvY2FsL25zL2Rl
        ZmF1bHQvc2Evd2ViMAoGCCqGSM49BAMCA2gAMGUCMEnu0Gl/gIkQZXKZ6dVkN4Dg
        X43RXp3E6tb7A3eaXnBp2DEGm4G5SBT6QG++/3dlKQIxAOYjhlhHT2fn8zk5vSEo
        4siTSW2EMoZ8YW/Vtkp3QhLfiETclffWWy0xnaVkzDey0Q==
        -----END CERTIFICATE REQUEST-----
        """
}
