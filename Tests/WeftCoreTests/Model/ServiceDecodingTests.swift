import WeftCore
import XCTest

final class ServiceDecodingTests: XCTestCase {
    private func service(_ yaml: String) -> Service? {
        guard case .service(let s) = Fixtures.decodeClean(yaml).first else { return nil }
        return s
    }

    private func serviceYAML(_ spec: String, name: String = "web") -> String {
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: \(name)\n  namespace: demo\nspec:\n" + spec
    }

    func testKubectlOutputDecodes() throws {
        let s = try XCTUnwrap(service(Fixtures.service))
        XCTAssertEqual(s.metadata.name, "web")
        XCTAssertEqual(s.metadata.namespace, "demo")
        XCTAssertEqual(s.metadata.labels, ["app": "web", "app.kubernetes.io/part-of": "demo"])
        XCTAssertEqual(s.metadata.creationTimestamp, "2024-05-02T10:11:12Z")
        XCTAssertEqual(s.type, .clusterIP)
        XCTAssertEqual(s.clusterIPs, ["10.96.0.10"])
        XCTAssertFalse(s.isHeadless)
        XCTAssertEqual(s.selector, ["app": "web"])
        XCTAssertEqual(s.ports.count, 2)
        XCTAssertEqual(s.ports[0].name, "http")
        XCTAssertEqual(s.ports[0].port, 80)
        XCTAssertEqual(s.ports[0].targetPort, .number(8080))
        XCTAssertEqual(s.ports[0].protocol, .tcp)
        XCTAssertNil(s.ports[0].appProtocol)
        XCTAssertEqual(s.ports[1].targetPort, .name("grpc-port"))
        XCTAssertEqual(s.ports[1].appProtocol, "kubernetes.io/h2c")
    }

    func testDefaults() throws {
        let s = try XCTUnwrap(
            service("apiVersion: v1\nkind: Service\nmetadata:\n  name: web\nspec:\n  ports:\n  - port: 80\n"))
        XCTAssertEqual(s.metadata.namespace, "default")
        XCTAssertEqual(s.type, .clusterIP)
        XCTAssertEqual(s.clusterIPs, [])
        XCTAssertEqual(s.ports[0].name, "")
        XCTAssertEqual(s.ports[0].targetPort, .number(80))
        XCTAssertEqual(s.ports[0].protocol, .tcp)
    }

    func testHeadless() throws {
        let s = try XCTUnwrap(service(serviceYAML("  clusterIP: None\n  selector: {app: db}\n")))
        XCTAssertTrue(s.isHeadless)
        XCTAssertEqual(s.clusterIPs, [])
        XCTAssertEqual(s.ports, [])
    }

    func testExternalNameNeedsNoPorts() throws {
        let s = try XCTUnwrap(service(serviceYAML("  type: ExternalName\n  externalName: db.example.com\n")))
        XCTAssertEqual(s.type, .externalName)
        XCTAssertEqual(s.ports, [])
    }

    func testDualStackClusterIPs() throws {
        let s = try XCTUnwrap(
            service(
                serviceYAML("  clusterIP: 10.96.0.10\n  clusterIPs: [10.96.0.10, fd00::10]\n  ports: [{port: 80}]\n")))
        XCTAssertEqual(s.clusterIPs, ["10.96.0.10", "fd00::10"])
    }

    func testValidationErrors() {
        let yaml = serviceYAML(
            """
              type: Magic
              clusterIP: 10.96.0.999
              ports:
              - name: http
                port: 80
                targetPort: 0
              - name: http
                port: 81
                targetPort: "8080"
              - name: Bad_Name
                port: 80
              - name: x
                targetPort: web-port-too-long-name

            """)
        XCTAssertEqual(
            Fixtures.errors(yaml, file: "svc.yaml"),
            [
                "svc.yaml: document 1: spec.type: must be one of ClusterIP, NodePort, LoadBalancer, ExternalName, got \"Magic\"",
                "svc.yaml: document 1: spec.clusterIP: must be an IP address or None, got \"10.96.0.999\"",
                "svc.yaml: document 1: spec.ports[0].targetPort: must be between 1 and 65535, got 0",
                "svc.yaml: document 1: spec.ports[1].name: duplicate port name \"http\"",
                "svc.yaml: document 1: spec.ports[1].targetPort: must be a port number (1-65535) or a port name (at most 15 of a-z, 0-9 and '-', with a letter), got \"8080\"",
                "svc.yaml: document 1: spec.ports[2].name: must be a lowercase RFC 1123 label (a-z, 0-9 and '-', at most 63 characters), got \"Bad_Name\"",
                "svc.yaml: document 1: spec.ports[2].port: duplicate port 80/TCP",
                "svc.yaml: document 1: spec.ports[3].port: is required",
                "svc.yaml: document 1: spec.ports[3].targetPort: must be a port number (1-65535) or a port name (at most 15 of a-z, 0-9 and '-', with a letter), got \"web-port-too-long-name\"",
            ])
    }

    func testClusterIPsMustAgreeWithClusterIP() {
        let yaml = serviceYAML("  clusterIP: 10.96.0.10\n  clusterIPs: [10.96.0.11]\n  ports: [{port: 80}]\n")
        XCTAssertEqual(
            Fixtures.errors(yaml, file: "s.yaml"),
            ["s.yaml: document 1: spec.clusterIPs[0]: must equal spec.clusterIP (\"10.96.0.10\"), got \"10.96.0.11\""])
    }

    func testPortsRequiredUnlessHeadless() {
        XCTAssertEqual(
            Fixtures.errors(serviceYAML("  selector: {app: web}\n"), file: "s.yaml"),
            ["s.yaml: document 1: spec.ports: is required (at least one port) unless the Service is headless"])
        XCTAssertEqual(
            Fixtures.errors("apiVersion: v1\nkind: Service\nmetadata: {name: web}\n", file: "s.yaml"),
            ["s.yaml: document 1: spec: is required"])
    }

    func testServiceNameMustBeRFC1035() {
        XCTAssertEqual(
            Fixtures.errors(serviceYAML("  ports: [{port: 80}]\n", name: "1web"), file: "s.yaml"),
            [
                "s.yaml: document 1: metadata.name: must be a lowercase RFC 1035 label (a-z, 0-9 and '-', starting with a letter, at most 63 characters), got \"1web\""
            ])
    }
}
