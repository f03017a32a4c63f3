import ArgumentParser
import Glibc
import Logging
import ServiceLifecycle
import WeftControl
import WeftCore

@main
struct WeftControlCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "weft-control",
        abstract: "The Weft control plane: certificate authority and config server for the sidecars.",
        discussion: """
            Standalone mode: reads a folder of Kubernetes-shaped YAML (--config) and watches it; a change \
            that fails validation is rejected and the last good config stays in force. Issues each sidecar's \
            certificate from its CSR with the CA in --ca (made by `weftctl ca init`), authenticates sidecars \
            with the shared token in --token-file, and pushes config over JSON-over-TLS on --push-port \
            (docs/protocol.md). Metrics and the API that `weftctl check` reads are on --http-port. \
            SIGTERM stops it.
            """
    )

    @Option(
        help:
            "Folder of multi-document YAML: Services, EndpointSlices, Pods, HTTPRoutes, AuthorizationPolicies, a MeshConfig."
    )
    var config: String

    @Option(help: "CA folder from `weftctl ca init`: intermediate.crt, intermediate.key, bundle.crt.")
    var ca: String

    @Option(help: "File holding the shared bootstrap token that sidecars present in their hello.")
    var tokenFile: String

    @Option(help: "Address the push and HTTP ports bind.")
    var host = "0.0.0.0"

    @Option(help: "Address the HTTP port binds (default: --host); 127.0.0.1 keeps metrics and the API to the pod.")
    var httpHost: String?

    @Option(
        help:
            "Who may read /api/ on the HTTP port: loopback (weftctl in this pod or through kubectl port-forward) or any. /live, /ready and /metrics answer everyone."
    )
    var apiAccess = "loopback"

    @Option(help: "Push port (JSON over TLS 1.3).")
    var pushPort = MeshDefaults.controlPushPort

    @Option(help: "HTTP port: /metrics, /live, /ready, /api/v1/status, /api/v1/proxies.")
    var httpPort = MeshDefaults.controlHTTPPort

    @Option(help: "OTLP/HTTP span intake port (POST /v1/traces, protobuf or JSON), on --host; 0 turns it off.")
    var otlpPort = MeshDefaults.otlpPort

    @Option(help: "Memory the kept traces may use, e.g. 64MB, 512MiB; the oldest traces are evicted first.")
    var traceMemory = "64MB"

    @Option(
        help:
            "Exports a second each client address may send the span intake (twice that at once); more are answered 429. 0: no limit."
    )
    var otlpRateLimit = 100

    @Option(
        help: ArgumentHelp(
            "Also send every export the span intake takes to this OTLP/HTTP collector (protobuf), e.g. http://otel-collector:4318/v1/traces; https:// is verified against the system's trust roots or --otlp-forward-ca.",
            valueName: "url"))
    var otlpForward: String?

    @Option(
        help: ArgumentHelp(
            "For an https:// --otlp-forward: a PEM file of the CA certificates that sign the collector's, trusted instead of the system's.",
            valueName: "file"))
    var otlpForwardCA: String?

    @Option(help: "Event-loop threads.")
    var threads = 2

    @Option(
        help:
            "Lifetime of workload certificates, e.g. 24h, 90m; at least 1m (minutes-long lifetimes are for exercising rotation). Sidecars renew at 70%."
    )
    var certificateLifetime = "24h"

    @Option(help: "How long a config change waits for more changes before one push carries them all, e.g. 100ms.")
    var debounce = "100ms"

    @Option(
        help:
            "How long a sidecar may leave more than 4 MiB of pushes unread before it is disconnected as a slow consumer, e.g. 10s."
    )
    var slowConsumerGrace = "10s"

    @Option(help: "Log level: trace, debug, info, notice, warning, error or critical.")
    var logLevel = "info"

    func validate() throws {
        for (name, port) in [("--push-port", pushPort), ("--http-port", httpPort)] where !(1...65535).contains(port) {
            throw ValidationError("\(name): \(port) is not a port number (1-65535)")
        }
        guard APIAccess(rawValue: apiAccess) != nil else {
            throw ValidationError("--api-access must be loopback or any, not \(apiAccess)")
        }
        guard pushPort != httpPort else { throw ValidationError("--push-port and --http-port must differ") }
        guard (0...65535).contains(otlpPort) else {
            throw ValidationError("--otlp-port: \(otlpPort) is not a port number (1-65535, or 0 for off)")
        }
        guard otlpPort == 0 || (otlpPort != pushPort && otlpPort != httpPort) else {
            throw ValidationError("--otlp-port must differ from --push-port and --http-port")
        }
        if let otlpForward, OTLPForwarderURL.isValid(otlpForward) == false {
            throw ValidationError(
                "--otlp-forward: \(otlpForward) is not http://host[:port][/path] or https://host[:port][/path]")
        }
        if otlpForwardCA != nil, otlpForward.map({ $0.lowercased().hasPrefix("https://") }) != true {
            throw ValidationError("--otlp-forward-ca is for an https:// --otlp-forward; there is none")
        }
        guard otlpRateLimit >= 0 else {
            throw ValidationError(
                "--otlp-rate-limit: \(otlpRateLimit) is not a number of exports a second (0 for no limit)")
        }
        guard let memory = Self.bytes(traceMemory), memory >= 1 << 20 else {
            throw ValidationError("--trace-memory: \(traceMemory) is not a size of at least 1MB (e.g. 64MB)")
        }
        guard (1...64).contains(threads) else { throw ValidationError("--threads: \(threads) is not between 1 and 64") }
        guard let lifetime = Self.duration(certificateLifetime), lifetime >= .seconds(60) else {
            throw ValidationError("--certificate-lifetime: \(certificateLifetime) is not a duration of at least 1m")
        }
        guard Self.duration(debounce) != nil else { throw ValidationError("--debounce: \(debounce) is not a duration") }
        guard let grace = Self.duration(slowConsumerGrace), grace > .zero else {
            throw ValidationError("--slow-consumer-grace: \(slowConsumerGrace) is not a positive duration")
        }
        guard Logger.Level(rawValue: logLevel) != nil else {
            throw ValidationError(
                "--log-level: \(logLevel) is not one of trace, debug, info, notice, warning, error, critical")
        }
    }

    /// `64MB`, `64MiB`, `512KB`, `1GB` (decimal and binary units alike), or a number of bytes.
    static func bytes(_ text: String) -> Int? {
        let units: [(String, Int)] = [
            ("KiB", 1 << 10), ("MiB", 1 << 20), ("GiB", 1 << 30), ("KB", 1000), ("MB", 1_000_000),
            ("GB", 1_000_000_000), ("B", 1),
        ]
        for (suffix, scale) in units where text.hasSuffix(suffix) {
            guard let value = Int(text.dropLast(suffix.count)), value >= 0, value <= Int.max / scale else { return nil }
            return value * scale
        }
        return Int(text).flatMap { $0 >= 0 ? $0 : nil }
    }

    /// `500ms`, `10s`, `90m`, `24h`.
    static func duration(_ text: String) -> Duration? {
        for (suffix, scale) in [("ms", 1), ("s", 1000), ("m", 60_000), ("h", 3_600_000)] where text.hasSuffix(suffix) {
            guard let value = Int(text.dropLast(suffix.count)), value >= 0, value < Int.max / scale else { return nil }
            return .milliseconds(value * scale)
        }
        return nil
    }

    func run() async throws {
        // Idle proxy connections dominate this process's memory. With glibc's default mmap
        // threshold each connection's TLS buffers come from the heap and stay resident;
        // at 16 KiB they are mapped and their untouched pages cost nothing
        // (docs/ARCHITECTURE.md, "Control plane memory").
        _ = glibcMallopt(glibcMmapThreshold, 16 * 1024)
        let level = Logger.Level(rawValue: logLevel) ?? .info
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "weft-control")
        var settings = ControlPlaneSettings(configDirectory: config, caDirectory: ca, tokenFile: tokenFile)
        settings.pushHost = host
        settings.httpHost = httpHost ?? host
        settings.apiAccess = APIAccess(rawValue: apiAccess) ?? .loopback
        settings.pushPort = pushPort
        settings.httpPort = httpPort
        settings.threads = threads
        settings.otlpPort = otlpPort
        settings.traceMemory = Self.bytes(traceMemory) ?? 64_000_000
        settings.otlpRateLimit = otlpRateLimit
        settings.otlpForward = otlpForward
        settings.otlpForwardCA = otlpForwardCA
        settings.certificateLifetime = Self.duration(certificateLifetime) ?? .seconds(86_400)
        settings.debounce = Self.duration(debounce) ?? .milliseconds(100)
        settings.slowConsumerGrace = Self.duration(slowConsumerGrace) ?? .seconds(10)
        let controlPlane = ControlPlane(settings: settings, logger: logger)
        let group = ServiceGroup(
            configuration: .init(
                services: [.init(service: controlPlane, successTerminationBehavior: .gracefullyShutdownGroup)],
                gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        do {
            try await group.run()
        } catch let error as ControlPlane.StartupError {
            FileHandleStderr.write("weft-control: \(error.description)\n")
            throw ExitCode(1)
        }
    }
}

enum FileHandleStderr {
    static func write(_ text: String) {
        _ = text.withCString { fputs($0, stderr) }
    }
}

/// glibc's `mallopt`, which the Glibc module does not export (malloc.h is not in its
/// umbrella); `M_MMAP_THRESHOLD` is -3 in malloc.h.
@_silgen_name("mallopt")
func glibcMallopt(_ parameter: Int32, _ value: Int32) -> Int32
let glibcMmapThreshold: Int32 = -3
