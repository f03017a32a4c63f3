import WeftCore
import WeftManifests
import XCTest

final class EndpointSliceDecodingTests: XCTestCase {
    func testKubectlListDecodes() throws {
        guard case .endpointSlice(let slice) = Fixtures.decodeClean(Fixtures.endpointSliceList).first else {
            return XCTFail("no slice")
        }
        XCTAssertEqual(slice.metadata.name, "web-7x2kq")
        XCTAssertEqual(slice.serviceName, "web")
        XCTAssertEqual(slice.addressType, .ipv4)
        XCTAssertEqual(slice.ports.map(\.port), [8080])
        XCTAssertEqual(slice.ports.map(\.name), ["http"])
        XCTAssertEqual(slice.endpoints.count, 3)
        let first = slice.endpoints[0]
        XCTAssertEqual(first.addresses, ["10.211.0.2"])
        XCTAssertEqual(first.conditions, .init(ready: true, serving: true, terminating: false))
        XCTAssertEqual(first.targetRef, .init(kind: "Pod", name: "web-0", namespace: "demo"))
        XCTAssertEqual(first.nodeName, "node-1")
        XCTAssertEqual(first.zone, "zone-a")
        XCTAssertEqual(slice.endpoints[1].conditions, .init(ready: false, serving: true, terminating: true))
        XCTAssertEqual(slice.endpoints[1].targetRef?.namespace, "demo", "defaults to the slice's namespace")
        XCTAssertEqual(
            slice.endpoints[2].conditions, .init(ready: true, serving: true, terminating: false),
            "absent conditions: ready and serving true, terminating false")
    }

    func testServingDefaultsToReady() throws {
        let yaml = """
            apiVersion: discovery.k8s.io/v1
            kind: EndpointSlice
            metadata:
              name: web-1
              labels: {kubernetes.io/service-name: web}
            addressType: IPv4
            endpoints:
            - addresses: [10.0.0.1]
              conditions: {ready: false}
            """
        guard case .endpointSlice(let slice) = Fixtures.decodeClean(yaml).first else { return XCTFail() }
        XCTAssertEqual(slice.endpoints[0].conditions, .init(ready: false, serving: false, terminating: false))
    }

    func testMissingServiceNameLabelIsAWarning() {
        let yaml = """
            apiVersion: discovery.k8s.io/v1
            kind: EndpointSlice
            metadata: {name: custom, namespace: demo}
            addressType: IPv6
            endpoints:
            - addresses: ["fd00::1"]
            """
        let result = ManifestDecoder.decode(yaml, file: "es.yaml")
        XCTAssertEqual(result.errors, [])
        guard case .endpointSlice(let slice) = result.resources.first else { return XCTFail() }
        XCTAssertNil(slice.serviceName)
        XCTAssertEqual(
            result.warnings.map(\.description),
            [
                "es.yaml: document 1: metadata.labels: has no kubernetes.io/service-name label; the slice belongs to no Service and is ignored"
            ])
    }

    func testValidationErrors() {
        let yaml = """
            apiVersion: discovery.k8s.io/v1
            kind: EndpointSlice
            metadata:
              name: web-1
              labels: {kubernetes.io/service-name: web}
            addressType: IPv4
            ports:
            - port: 0
            endpoints:
            - addresses: ["fd00::1", 10.0.0.1]
              conditions: {ready: maybe}
            - addresses: []
            ---
            apiVersion: discovery.k8s.io/v1
            kind: EndpointSlice
            metadata: {name: web-2}
            addressType: IPX
            ---
            apiVersion: discovery.k8s.io/v1
            kind: EndpointSlice
            metadata: {name: web-3}
            endpoints:
            - addresses: [db.example.com]
            """
        XCTAssertEqual(
            Fixtures.errors(yaml, file: "es.yaml"),
            [
                "es.yaml: document 1: ports[0].port: must be between 1 and 65535, got 0",
                "es.yaml: document 1: endpoints[0].addresses[0]: must be an IPv4 address, got \"fd00::1\"",
                "es.yaml: document 1: endpoints[0].conditions.ready: must be true or false, got \"maybe\"",
                "es.yaml: document 1: endpoints[1].addresses: must have at least one address",
                "es.yaml: document 2: addressType: must be one of IPv4, IPv6, FQDN, got \"IPX\"",
                "es.yaml: document 3: addressType: is required",
            ])
    }

    func testFQDNAddresses() {
        let yaml = """
            apiVersion: discovery.k8s.io/v1
            kind: EndpointSlice
            metadata:
              name: ext
              labels: {kubernetes.io/service-name: ext}
            addressType: FQDN
            endpoints:
            - addresses: [db.example.com]
            - addresses: ["not a name"]
            """
        XCTAssertEqual(
            Fixtures.errors(yaml, file: "f.yaml"),
            ["f.yaml: document 1: endpoints[1].addresses[0]: must be a DNS name, got \"not a name\""])
    }
}
