import WeftCore
import XCTest

final class MeshDefaultsTests: XCTestCase {
    func testCapturePortsAreDistinct() {
        let ports = [MeshDefaults.outboundPort, MeshDefaults.inboundPort, MeshDefaults.adminPort]
        XCTAssertEqual(Set(ports).count, ports.count)
    }

    func testOpaquePortsMatchLinkerdsDefaults() {
        XCTAssertEqual(MeshDefaults.opaquePorts, [25, 587, 3306, 4444, 5432, 6379, 9300, 11211])
    }
}
