import WeftCore
import WeftManifests

/// Properties that the YAML manifests keep for any input: `ManifestDecoder` (Yams, then
/// `DocumentReader`) to the mesh model, then `MeshState.build`'s checks across files.
///
/// Shared by the libFuzzer harness `fuzz/Sources/YAMLFuzz/` (where this file is a symlink)
/// and by `YAMLFuzzRegressionTests`, which replays `fuzz/regressions/yaml/` and
/// `fuzz/corpus/yaml/`. Only public API is used: the harness links a release build.
///
/// - Decoding is a function of the text: the same text twice gives the same resources,
///   errors and warnings, in the same order, and so does building the state (but for the
///   line and reason of a YAML syntax error; see `stable`).
/// - Every problem is a `ConfigError` naming the file, a document (1-based), a field and a
///   reason, with one of the codes the decoder documents (errors and warnings apart) and a
///   line inside the text.
/// - A decoded resource holds what validation promises (names, port ranges, fractions).
/// - `MeshState.build` accepts a file exactly when it decoded without errors and has no
///   duplicates; it refuses with the file's own errors first, then only duplicate errors;
///   the same file given twice refuses every resource of the second copy.
/// - The state's lookups find every Service, Pod and route it holds.
enum YAMLFuzzInvariants {
    static let file = "mesh/fuzz.yaml"
    static let copy = "copy/fuzz.yaml"
    static let errorCodes: Set<ConfigError.Code> = [.invalidYAML, .invalidType, .missingField, .invalidField]
    static let warningCodes: Set<ConfigError.Code> = [.unknownKind, .unsupportedField, .unresolvedReference]
    static let buildCodes: Set<ConfigError.Code> = [.duplicateResource, .duplicateMeshConfig]

    static func check(_ data: [UInt8], fail: (String) -> Void) {
        // The config source refuses a file that is not UTF-8 before decoding it (FolderListing).
        guard let text = String(validating: data, as: UTF8.self) else { return }
        let result = ManifestDecoder.decode(text, file: file)
        let again = ManifestDecoder.decode(text, file: file)
        if stable(again) != stable(result) {
            fail("decoding the same text twice differs: \(summary(result)), then \(summary(again))")
        }

        // YAML line breaks: LF, CR, CRLF, and (YAML 1.1) NEL, LS and PS.
        let lastLine =
            2
            + text.unicodeScalars.reduce(0) { count, scalar in
                switch scalar.value {
                case 0x0A, 0x0D, 0x85, 0x2028, 0x2029: return count + 1
                default: return count
                }
            }
        checkProblems(result.errors, codes: errorCodes, file: file, lastLine: lastLine, kind: "error", fail: fail)
        checkProblems(result.warnings, codes: warningCodes, file: file, lastLine: lastLine, kind: "warning", fail: fail)
        var previous = 1
        for entry in result.entries {
            if entry.document < previous { fail("entry of document \(entry.document) after document \(previous)") }
            previous = entry.document
            checkResource(entry.resource, fail: fail)
        }

        let built = build([(file, result)])
        let rebuilt = build([(file, again)])
        switch (built, rebuilt) {
        case (.success(let a), .success(let b)) where a != b:
            fail("building the state twice from the same text differs")
        case (.failure(let a), .failure(let b)) where stable(a) != stable(b):
            fail("refusing the same text twice differs: \(a.errors), then \(b.errors)")
        case (.success, .failure), (.failure, .success): fail("the same text was accepted once and refused once")
        default: break
        }
        switch built {
        case .success(let state):
            if !result.errors.isEmpty { fail("built a state from a file with \(result.errors.count) errors") }
            checkState(state, result: result, fail: fail)
        case .failure(let failure):
            if !failure.errors.starts(with: result.errors) {
                fail("the refusal does not start with the file's own errors: \(failure.errors)")
            }
            let added = failure.errors.dropFirst(result.errors.count)
            if result.errors.isEmpty && added.isEmpty { fail("refused without an error") }
            for error in added where !buildCodes.contains(error.code) || error.file != file || error.document < 1 {
                fail("build added \(error.code) \(error)")
            }
            if failure.warnings.prefix(result.warnings.count) != result.warnings[...] {
                fail("the refusal lost the file's warnings")
            }
        }

        // The same file twice: every resource of the copy repeats one of the first.
        if result.errors.isEmpty && !result.entries.isEmpty {
            switch build([(file, result), (copy, result)]) {
            case .success:
                fail("the same \(result.entries.count) resources in two files were accepted")
            case .failure(let failure):
                let fromCopy = failure.errors.filter { $0.file == copy }
                if fromCopy.count != result.entries.count || !fromCopy.allSatisfy({ buildCodes.contains($0.code) }) {
                    fail("the copy of \(result.entries.count) resources gave \(fromCopy.map(\.code))")
                }
            }
        }
    }

    /// The result: the same text gives the same resources, warnings and errors, where and
    /// why included. (Yams names duplicate keys in hash order when one is a list or a
    /// mapping; `ManifestDecoder` sorts them and drops the line then:
    /// fuzz/regressions/yaml/duplicate-list-key-error-names-a-random-key.)
    private static func stable(_ result: ManifestDecodeResult) -> ManifestDecodeResult {
        result
    }

    private static func build(_ files: [(file: String, result: ManifestDecodeResult)])
        -> Result<MeshState, ConfigValidationFailure>
    {
        Result { () throws(ConfigValidationFailure) in try MeshState.build(from: files) }
    }

    private static func stable(_ failure: ConfigValidationFailure) -> ManifestDecodeResult {
        stable(ManifestDecodeResult(entries: [], errors: failure.errors, warnings: failure.warnings))
    }

    private static func summary(_ result: ManifestDecodeResult) -> String {
        "\(result.resources.map(\.id)), errors \(result.errors.map(\.description)), warnings \(result.warnings.map(\.description))"
    }

    private static func checkProblems(
        _ problems: [ConfigError], codes: Set<ConfigError.Code>, file: String, lastLine: Int, kind: String,
        fail: (String) -> Void
    ) {
        for problem in problems {
            if !codes.contains(problem.code) { fail("\(kind) with code \(problem.code): \(problem)") }
            if problem.file != file || problem.document < 1 || problem.field.isEmpty || problem.reason.isEmpty {
                fail("\(kind) does not name a file, document, field and reason: \(problem)")
            }
            if problem.description != "\(file): document \(problem.document): \(problem.field): \(problem.reason)" {
                fail("\(kind) description \(problem.description.debugDescription)")
            }
            if let line = problem.line, line < 1 || line > lastLine {
                fail("\(kind) at line \(line) of a text of \(lastLine - 1) lines: \(problem)")
            }
        }
    }

    // MARK: - Resources

    private static func checkResource(_ resource: MeshResource, fail: (String) -> Void) {
        let meta = resource.metadata
        if meta.name.isEmpty || meta.namespace.isEmpty { fail("\(resource.kind) without a name or namespace: \(meta)") }
        let ports = 1...65535
        switch resource {
        case .service(let service):
            for port in service.ports {
                if !ports.contains(port.port) { fail("Service \(service.name) port \(port.port)") }
                if case .number(let target) = port.targetPort, !ports.contains(target) {
                    fail("Service \(service.name) targetPort \(target)")
                }
            }
            let named = service.ports.map(\.name).filter { !$0.isEmpty }
            if Set(named).count != named.count { fail("Service \(service.name) repeats a port name: \(named)") }
            if service.isHeadless && !service.clusterIPs.isEmpty { fail("headless Service \(service.name) has IPs") }
            if service.clusterIPs.count > 2 { fail("Service \(service.name) has \(service.clusterIPs.count) IPs") }
        case .endpointSlice(let slice):
            for port in slice.ports { if let p = port.port, !ports.contains(p) { fail("EndpointSlice port \(p)") } }
        case .meshConfig(let config):
            if config.metadata == nil { fail("a decoded MeshConfig without metadata") }
            if !(0...1).contains(config.retryBudget.ratio) { fail("retryBudget.ratio \(config.retryBudget.ratio)") }
            if !(0...1).contains(config.tracing.sampling) { fail("tracing.sampling \(config.tracing.sampling)") }
            if config.retryBudget.window <= .zero { fail("retryBudget.window \(config.retryBudget.window)") }
            if config.retryBudget.minRetriesPerSecond < 0 {
                fail("minRetriesPerSecond \(config.retryBudget.minRetriesPerSecond)")
            }
        case .httpRoute(let route):
            for rule in route.rules {
                for backend in rule.backendRefs {
                    if let p = backend.port, !ports.contains(p) { fail("HTTPRoute \(meta.name) backend port \(p)") }
                }
            }
        case .pod, .authorizationPolicy:
            break
        }
    }

    // MARK: - State

    private static func checkState(_ state: MeshState, result: ManifestDecodeResult, fail: (String) -> Void) {
        func count(_ kind: String) -> Int { result.resources.filter { $0.kind == kind }.count }
        if state.services.count != count("Service") || state.pods.count != count("Pod")
            || state.endpointSlices.count != count("EndpointSlice") || state.httpRoutes.count != count("HTTPRoute")
            || state.authorizationPolicies.count != count("AuthorizationPolicy")
        {
            fail("the state does not hold every resource of the file once")
        }
        for case .meshConfig(let config) in result.resources where state.meshConfig != config {
            fail("the state's MeshConfig is not the file's")
        }
        if state.serviceIndex.map(\.service) != state.services.map(\.name) { fail("the service index is out of order") }
        for (service, entry) in zip(state.services, state.serviceIndex) {
            if state.service(namespace: service.metadata.namespace, name: service.metadata.name) != service {
                fail("Service \(service.name) is not found by name")
            }
            for host in entry.dnsNames where state.service(host: host) != service {
                fail("\(host) does not resolve to Service \(service.name)")
            }
            let routes = state.routes(for: service.name)
            for candidate in state.routeMatches(for: service.name) where !routes.contains(candidate.route) {
                fail("a route match of \(service.name) from a route not attached to it")
            }
            let endpoints = state.endpoints(for: service.name)
            if !zip(endpoints, endpoints.dropFirst()).allSatisfy({
                ($0.address, $0.sliceName) <= ($1.address, $1.sliceName)
            }) {
                fail("endpoints of \(service.name) are not sorted")
            }
        }
        for pod in state.pods {
            if state.pod(namespace: pod.metadata.namespace, name: pod.metadata.name) != pod {
                fail("Pod \(pod.metadata.namespace)/\(pod.metadata.name) is not found by name")
            }
            for policy in state.policies(selecting: pod) where policy.metadata.namespace != pod.metadata.namespace {
                fail("policy \(policy.metadata.name) of another namespace selects pod \(pod.metadata.name)")
            }
        }
    }
}
