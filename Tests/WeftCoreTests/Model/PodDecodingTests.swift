import WeftCore
import XCTest

final class PodDecodingTests: XCTestCase {
    func testKubectlOutputDecodes() throws {
        guard case .pod(let pod) = Fixtures.decodeClean(Fixtures.pod).first else { return XCTFail() }
        XCTAssertEqual(pod.metadata.name, "web-0")
        XCTAssertEqual(pod.metadata.namespace, "demo")
        XCTAssertEqual(pod.metadata.labels["app"], "web")
        XCTAssertEqual(pod.serviceAccountName, "web")
        XCTAssertEqual(pod.podIPs, ["10.211.0.2"])
        XCTAssertEqual(pod.phase, "Running")
        XCTAssertTrue(pod.isReady)
        XCTAssertEqual(
            pod.identity(trustDomain: "cluster.local").description, "spiffe://cluster.local/ns/demo/sa/web")
    }

    func testSidecarAndProbesAreRead() throws {
        let yaml = """
            apiVersion: v1
            kind: Pod
            metadata: {name: web-0, namespace: demo}
            spec:
              containers:
              - name: app
                ports: [{name: http, containerPort: 8080}, {containerPort: 9000}]
                livenessProbe: {httpGet: {path: /live, port: 8080}}
                readinessProbe: {httpGet: {port: http}}
                startupProbe: {grpc: {port: 9000}}
              - name: metrics
                readinessProbe: {tcpSocket: {port: 9100}}
                livenessProbe: {httpGet: {path: /x, port: nosuchport}}
                startupProbe: {httpGet: {path: /secure, port: 9443, scheme: HTTPS}}
              - name: other
                readinessProbe: {httpGet: {path: healthz, port: 9090}}
              - name: weft-proxy
                readinessProbe: {httpGet: {path: /ready, port: 15000}}
            """
        guard case .pod(let pod) = Fixtures.decodeClean(yaml).first else { return XCTFail() }
        XCTAssertTrue(pod.isMeshed)
        XCTAssertEqual(
            pod.probes,
            [
                Pod.Probe(port: 8080, path: "/live", method: "GET"),
                Pod.Probe(port: 8080, path: "/", method: "GET"),
                Pod.Probe(port: 9000, path: "/grpc.health.v1.Health/Check", method: "POST"),
                Pod.Probe(port: 9090, path: "/healthz", method: "GET"),
            ],
            "named ports resolved, a path without its slash gets one (as the kubelet does); TCP and HTTPS probes, unresolvable ports and the sidecar's own probes left out"
        )
    }

    func testDefaultsForAPendingPod() throws {
        let yaml = """
            apiVersion: v1
            kind: Pod
            metadata: {name: p}
            spec:
              containers: [{name: c, image: busybox}]
            status:
              phase: Pending
              conditions:
              - type: Ready
                status: "False"
            """
        guard case .pod(let pod) = Fixtures.decodeClean(yaml).first else { return XCTFail() }
        XCTAssertEqual(pod.serviceAccountName, "default")
        XCTAssertEqual(pod.podIPs, [])
        XCTAssertFalse(pod.isReady)
    }

    func testDualStackPodIPs() throws {
        let yaml = """
            apiVersion: v1
            kind: Pod
            metadata: {name: p}
            status:
              podIP: 10.0.0.1
              podIPs: [{ip: 10.0.0.1}, {ip: "fd00::1"}]
            """
        guard case .pod(let pod) = Fixtures.decodeClean(yaml).first else { return XCTFail() }
        XCTAssertEqual(pod.podIPs, ["10.0.0.1", "fd00::1"])
    }

    func testValidationErrors() {
        let yaml = """
            apiVersion: v1
            kind: Pod
            metadata: {name: p}
            spec:
              serviceAccountName: Web
            status:
              podIPs: [{ip: nope}]
            """
        XCTAssertEqual(
            Fixtures.errors(yaml, file: "p.yaml"),
            [
                "p.yaml: document 1: spec.serviceAccountName: must be a lowercase RFC 1123 subdomain (a-z, 0-9, '-' and '.', at most 253 characters), got \"Web\"",
                "p.yaml: document 1: status.podIPs[0].ip: must be an IP address, got \"nope\"",
            ])
    }
}
