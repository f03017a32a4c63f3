import WeftCore
import WeftManifests
import XCTest

final class ManifestDecoderTests: XCTestCase {
    func testDecodesEveryKindFromOneMultiDocumentFile() {
        let text = [
            Fixtures.service, Fixtures.pod, Fixtures.route, Fixtures.policy, Fixtures.meshConfig,
            Fixtures.endpointSliceList,
        ].joined(separator: "\n---\n")
        let result = ManifestDecoder.decode(text, file: "all.yaml")
        XCTAssertEqual(result.errors, [])
        XCTAssertEqual(
            result.resources.map(\.kind),
            ["Service", "Pod", "HTTPRoute", "AuthorizationPolicy", "MeshConfig", "EndpointSlice"])
        XCTAssertEqual(result.entries.map(\.document), [1, 2, 3, 4, 5, 6])
        XCTAssertEqual(result.resources[0].id, ResourceID(kind: "Service", namespace: "demo", name: "web"))
    }

    func testListItemsAreExpanded() {
        let text = """
            apiVersion: v1
            kind: List
            items:
            - apiVersion: v1
              kind: Service
              metadata: {name: a, namespace: demo}
              spec: {ports: [{port: 80}]}
            - apiVersion: v1
              kind: Service
              metadata: {name: b, namespace: demo}
              spec: {ports: [{port: 81}]}
            - apiVersion: apps/v1
              kind: Deployment
              metadata: {name: c}
            """
        let result = ManifestDecoder.decode(text, file: "list.yaml")
        XCTAssertEqual(result.errors, [])
        XCTAssertEqual(result.resources.map(\.metadata.name), ["a", "b"])
        XCTAssertEqual(result.entries.map(\.document), [1, 1])
        XCTAssertEqual(
            result.warnings.map(\.description),
            ["list.yaml: document 1: items[2].kind: apps/v1 Deployment c is not a kind Weft reads; skipped"])
    }

    func testErrorsInListItemsNameTheItem() {
        let text = """
            apiVersion: v1
            kind: List
            items:
            - apiVersion: v1
              kind: Service
              metadata: {name: a}
              spec: {ports: [{port: 0}]}
            """
        XCTAssertEqual(
            Fixtures.errors(text, file: "list.yaml"),
            ["list.yaml: document 1: items[0].spec.ports[0].port: must be between 1 and 65535, got 0"])
    }

    /// Found by the fuzzing work: Lists of YAML aliases of Lists multiplied the decoder's
    /// work per level (833 bytes ran for minutes). Lists do not nest.
    func testListsDoNotNest() {
        let text = """
            apiVersion: v1
            kind: List
            items:
            - &a {apiVersion: v1, kind: Service, metadata: {name: a, namespace: demo}, spec: {ports: [{port: 80}]}}
            - &b {apiVersion: v1, kind: List, items: [*a, *a, *a]}
            - {apiVersion: v1, kind: List, items: [*b, *b, *b]}
            """
        let result = ManifestDecoder.decode(text, file: "list.yaml")
        XCTAssertEqual(result.resources.map(\.metadata.name), ["a"])
        XCTAssertEqual(
            result.errors.map(\.description),
            [
                "list.yaml: document 1: items[1].kind: a List inside a List is not read",
                "list.yaml: document 1: items[2].kind: a List inside a List is not read",
            ])
    }

    /// Found by the `yaml` fuzz target: Yams named duplicate keys in hash order when one of
    /// them is a list, so the same file gave a different error from one load to the next.
    func testDuplicateKeysErrorIsTheSameEveryTime() {
        let text = "{[a]: 1, [a]: 2, b: 1, b: 2}"
        let first = ManifestDecoder.decode(text, file: "dup.yaml").errors.map(\.description)
        XCTAssertEqual(first.count, 1)
        XCTAssertTrue(first[0].contains("duplicate key"), first[0])
        for _ in 0..<50 {
            XCTAssertEqual(ManifestDecoder.decode(text, file: "dup.yaml").errors.map(\.description), first)
        }
    }

    func testUnknownKindsAreWarningsAndSkipped() {
        let text = """
            apiVersion: apps/v1
            kind: Deployment
            metadata:
              name: web
            spec:
              replicas: 2
            ---
            apiVersion: v1
            kind: ConfigMap
            metadata:
              name: settings
            data:
              a: b
            ---
            apiVersion: security.istio.io/v1
            kind: AuthorizationPolicy
            metadata:
              name: istio
            """
        let result = ManifestDecoder.decode(text, file: "other.yaml")
        XCTAssertEqual(result.errors, [])
        XCTAssertEqual(result.resources, [])
        XCTAssertEqual(result.warnings.map(\.code), [.unknownKind, .unknownKind, .unknownKind])
        XCTAssertEqual(
            result.warnings.map(\.description),
            [
                "other.yaml: document 1: kind: apps/v1 Deployment web is not a kind Weft reads; skipped",
                "other.yaml: document 2: kind: v1 ConfigMap settings is not a kind Weft reads; skipped",
                "other.yaml: document 3: kind: security.istio.io/v1 AuthorizationPolicy istio is not a kind Weft reads (Weft reads weft.dev/v1alpha1 AuthorizationPolicy); skipped",
            ])
    }

    func testAKnownKindUnderAnotherAPIVersionGetsAHint() {
        let text = "apiVersion: weft.dev/v1\nkind: MeshConfig\nmetadata: {name: mesh}\n"
        XCTAssertEqual(
            ManifestDecoder.decode(text, file: "m.yaml").warnings.map(\.description),
            [
                "m.yaml: document 1: kind: weft.dev/v1 MeshConfig mesh is not a kind Weft reads (Weft reads weft.dev/v1alpha1 MeshConfig); skipped"
            ])
    }

    func testEmptyDocumentsAreSkippedButCounted() {
        let text = """
            ---
            # only a comment
            ---
            apiVersion: v1
            kind: Service
            metadata: {name: web}
            spec: {ports: [{port: 80}]}
            ---
            """
        let result = ManifestDecoder.decode(text, file: "e.yaml")
        XCTAssertEqual(result.errors, [])
        XCTAssertEqual(result.entries.map(\.document), [2])
        XCTAssertEqual(ManifestDecoder.decode("", file: "empty.yaml").entries, [])
    }

    func testYAMLSyntaxErrorSaysTheLine() {
        let text = """
            apiVersion: v1
            kind: Service
            metadata: {name: web}
            spec: {ports: [{port: 80}]}
            ---
            apiVersion: v1
            kind: Service
              name: broken
            """
        let result = ManifestDecoder.decode(text, file: "bad.yaml")
        XCTAssertEqual(result.resources.count, 1, "documents before the error still decode")
        XCTAssertEqual(result.errors.count, 1)
        XCTAssertEqual(result.errors[0].code, .invalidYAML)
        XCTAssertEqual(result.errors[0].line, 8)
        XCTAssertEqual(
            result.errors[0].description,
            "bad.yaml: document 2: line 8, column 7: invalid YAML: mapping values are not allowed in this context")
    }

    func testDuplicateKeyIsAYAMLError() {
        let text = """
            apiVersion: v1
            kind: Service
            kind: Pod
            """
        let errors = ManifestDecoder.decode(text, file: "dup.yaml").errors
        XCTAssertEqual(errors.map(\.code), [.invalidYAML])
        XCTAssertEqual(
            errors.map(\.description),
            ["dup.yaml: document 1: line 2, column 1: invalid YAML: duplicate key \"kind\" in a mapping"])
    }

    func testDocumentMustBeAnObjectWithAPIVersionAndKind() {
        let text = """
            - a
            - b
            ---
            kind: Service
            ---
            apiVersion: v1
            kind: [Service]
            """
        XCTAssertEqual(
            Fixtures.errors(text, file: "x.yaml"),
            [
                "x.yaml: document 1: (root): a document must be an object, got a list",
                "x.yaml: document 2: apiVersion: is required",
                "x.yaml: document 3: kind: must be a string, got a list",
            ])
    }

    func testCollectsAllErrorsOfAFileNotOnlyTheFirst() {
        let text = """
            apiVersion: v1
            kind: Service
            metadata:
              name: Web_1
              namespace: Demo
            spec:
              ports:
              - name: http
                port: 70000
              - port: 80
                protocol: QUIC
            ---
            apiVersion: v1
            kind: Pod
            metadata:
              name: p
            status:
              podIP: 10.0.0.300
            """
        XCTAssertEqual(
            Fixtures.errors(text, file: "many.yaml"),
            [
                "many.yaml: document 1: metadata.name: must be a lowercase RFC 1035 label (a-z, 0-9 and '-', starting with a letter, at most 63 characters), got \"Web_1\"",
                "many.yaml: document 1: metadata.namespace: must be a lowercase RFC 1123 label (a-z, 0-9 and '-', at most 63 characters), got \"Demo\"",
                "many.yaml: document 1: spec.ports[0].port: must be between 1 and 65535, got 70000",
                "many.yaml: document 1: spec.ports[1].name: is required when the Service has more than one port",
                "many.yaml: document 1: spec.ports[1].protocol: must be one of TCP, UDP, SCTP, got \"QUIC\"",
                "many.yaml: document 2: status.podIP: must be an IP address, got \"10.0.0.300\"",
            ])
    }

    func testErrorCarriesCodeFieldAndLine() {
        let text = """
            apiVersion: v1
            kind: Service
            metadata: {name: web}
            spec:
              ports:
              - port: "80"
            """
        let error = ManifestDecoder.decode(text, file: "s.yaml").errors.first
        XCTAssertEqual(error?.code, .invalidType)
        XCTAssertEqual(error?.file, "s.yaml")
        XCTAssertEqual(error?.document, 1)
        XCTAssertEqual(error?.field, "spec.ports[0].port")
        XCTAssertEqual(error?.reason, "must be an integer, got \"80\"")
        XCTAssertEqual(error?.line, 6)
    }

    func testStringFieldRejectsNumbersAsKubernetesDoes() {
        let text = """
            apiVersion: v1
            kind: Pod
            metadata:
              name: p
              labels:
                version: 1
            """
        XCTAssertEqual(
            Fixtures.errors(text, file: "p.yaml"),
            ["p.yaml: document 1: metadata.labels[version]: must be a string, got a number 1 (quote it)"])
    }

    func testMetadataRules() {
        let text = """
            apiVersion: v1
            kind: Pod
            spec: {}
            ---
            apiVersion: v1
            kind: Pod
            metadata:
              namespace: demo
            ---
            apiVersion: v1
            kind: Pod
            metadata:
              name: p
              labels:
                "bad key!": x
                ok: "-bad-value"
            ---
            apiVersion: v1
            kind: Pod
            metadata:
              name: \(String(repeating: "a", count: 254))
            """
        XCTAssertEqual(
            Fixtures.errors(text, file: "m.yaml"),
            [
                "m.yaml: document 1: metadata: is required",
                "m.yaml: document 2: metadata.name: is required",
                "m.yaml: document 3: metadata.labels[bad key!]: label key must be an optional DNS prefix and '/' then at most 63 of a-z, A-Z, 0-9, '-', '_', '.'",
                "m.yaml: document 3: metadata.labels[ok]: label value must be at most 63 of a-z, A-Z, 0-9, '-', '_', '.', alphanumeric at both ends, got \"-bad-value\"",
                "m.yaml: document 4: metadata.name: must be a lowercase RFC 1123 subdomain (a-z, 0-9, '-' and '.', at most 253 characters), got \"\(String(repeating: "a", count: 254))\"",
            ])
    }

    func testAnchorsAndAliasesResolve() {
        let text = """
            apiVersion: v1
            kind: Service
            metadata:
              name: web
              labels: &labels
                app: web
            spec:
              selector: *labels
              ports: [{port: 80}]
            """
        guard case .service(let service) = Fixtures.decodeClean(text).first else { return XCTFail() }
        XCTAssertEqual(service.selector, ["app": "web"])
    }
}
