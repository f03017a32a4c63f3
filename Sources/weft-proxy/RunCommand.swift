import ArgumentParser
import Glibc
import Logging
import NIOPosix
import ServiceLifecycle
import WeftCore
import WeftProtocol
import WeftProxy

/// `weft-proxy run`: the sidecar itself.
struct RunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run the sidecar: capture listeners, protocol detection, forwarding and the admin server.",
        discussion: """
            Outbound connections (redirected to --outbound-port) go to their original destination; \
            inbound connections (redirected to --inbound-port) go to the address they were sent to \
            (the pod IP) at their original port, so a service bound only to 127.0.0.1 stays private. SIGTERM or POST /shutdown on the admin port drains gracefully. \
            Durations are written 500ms, 10s, 2m or 1h.
            """
    )

    @Option(help: "Port that captured outbound connections arrive on.")
    var outboundPort = MeshDefaults.outboundPort

    @Option(help: "Port that captured inbound connections arrive on.")
    var inboundPort = MeshDefaults.inboundPort

    @Option(help: "Port of the admin server (/live, /ready, /metrics, POST /shutdown).")
    var adminPort = MeshDefaults.adminPort

    @Option(help: "Address the admin server binds.")
    var adminHost = "0.0.0.0"

    @Option(
        help:
            "Host that inbound connections are delivered to, at their original port. Default: the pod IP they were sent to. 127.0.0.1 also exposes services bound only to loopback."
    )
    var inboundForwardHost: String?

    @Option(help: "Event-loop threads; 1 is a sidecar's usual budget.")
    var threads = 1

    @Option(
        help: ArgumentHelp(
            "Comma-separated ports that skip protocol detection and are forwarded as opaque TCP (server-speaks-first protocols).",
            valueName: "ports"))
    var opaquePorts = PortList(MeshDefaults.opaquePorts)

    @Option(help: "How long detection waits for a client's first bytes before treating the connection as opaque TCP.")
    var detectTimeout = DurationArgument(seconds: MeshDefaults.detectTimeoutSeconds)

    @Option(help: "Timeout for connecting to an upstream.")
    var connectTimeout = DurationArgument(seconds: 1)

    @Option(help: "How long an HTTP request waits for its response head once sent; then 504.")
    var responseTimeout = DurationArgument(seconds: 15)

    @Option(help: "How long a client may take to send a whole HTTP request head once it began; then 408.")
    var requestHeadTimeout = DurationArgument(seconds: 10)

    @Option(
        help:
            "How long a client's HTTP/1 keep-alive connection may go without a request before the proxy closes it (after one to two such periods); 0 keeps it open."
    )
    var clientIdleTimeout = DurationArgument(seconds: 3600)

    @Option(
        help:
            "How long an opaque TCP or TLS connection may move no byte before it is reset; 0 means never. A client that sent nothing before --detect-timeout must see a byte move within one more --detect-timeout."
    )
    var opaqueIdleTimeout = DurationArgument(seconds: 3600)

    @Option(
        help:
            "How long a request to a Service waits for its first routes and endpoints from the control plane before a 503 discovery-timeout."
    )
    var discoveryTimeout = DurationArgument(seconds: 3)

    @Option(
        help:
            "How long a subscribed Service may go without a request before the proxy unsubscribes (its routes and endpoints are dropped, and fetched again on the next request); 0 means never."
    )
    var subscriptionIdleTimeout = DurationArgument(seconds: 600)

    @Option(help: "How long pooled upstream HTTP/1 connections stay open while idle.")
    var upstreamIdleTimeout = DurationArgument(seconds: 60)

    @Option(help: "How long a graceful shutdown waits for open connections before closing them.")
    var drainTimeout = DurationArgument(seconds: 10)

    @Flag(inversion: .prefixedNo, help: "Also listen on IPv6 ([::]) when the host has IPv6.")
    var ipv6 = true

    @Flag(
        inversion: .prefixedNo,
        help:
            "Once ready, unmap the code pages only start-up ran, so the resident set holds what the proxy runs while serving. Uprobes attached before that are lost."
    )
    var releaseStartupPages = true

    @Option(help: "Log level: trace, debug, info, notice, warning, error or critical.")
    var logLevel = "info"

    @Option(
        help: ArgumentHelp(
            "The control plane's push address. Without it the proxy runs alone: no identity, no config, traffic to original destinations.",
            valueName: "host:port"))
    var controlPlane: String?

    @Option(
        help:
            "File holding the bootstrap token (the projected ServiceAccount token in Kubernetes); re-read at every connect."
    )
    var tokenFile: String?

    @Option(help: "PEM roots that the control plane's certificate must chain to.")
    var trustBundle: String?

    @Option(
        help:
            "Folder for the last good identity and config (files 0600), so a restart during an outage still comes up. In Kubernetes, a memory-backed emptyDir."
    )
    var cacheDir: String?

    @Option(help: "SPIFFE trust domain of the mesh.")
    var trustDomain = MeshDefaults.trustDomain

    @Option(
        help:
            "SPIFFE ID the control plane must present. Default: spiffe://<trust-domain>/ns/weft-system/sa/weft-control."
    )
    var controlPlaneIdentity: String?

    @Option(help: "This pod's name. Default: $POD_NAME (Downward API metadata.name).")
    var podName: String?

    @Option(help: "This pod's namespace. Default: $POD_NAMESPACE (metadata.namespace).")
    var podNamespace: String?

    @Option(help: "This pod's service account. Default: $POD_SERVICE_ACCOUNT (spec.serviceAccountName).")
    var serviceAccount: String?

    @Option(help: "This pod's IP. Default: $POD_IP (status.podIP).")
    var podIP: String?

    @Option(
        help: ArgumentHelp(
            "This pod's labels: a Downward API labels file (key=\"value\" per line). Default: $POD_LABELS_FILE, else $POD_LABELS as k=v,k=v.",
            valueName: "file"))
    var podLabelsFile: String?

    @Option(
        help: ArgumentHelp(
            "Where this proxy sends its spans: an OTLP/HTTP intake (POST /v1/traces, protobuf). Default: the control plane's host, port 4318. 'off' records none (trace context still passes through).",
            valueName: "host:port|off"))
    var traceIntake: String?

    func validate() throws {
        for (name, port) in [
            ("--outbound-port", outboundPort), ("--inbound-port", inboundPort), ("--admin-port", adminPort),
        ]
        where !(1...65535).contains(port) {
            throw ValidationError("\(name): \(port) is not a port number (1-65535)")
        }
        guard (1...64).contains(threads) else { throw ValidationError("--threads: \(threads) is not between 1 and 64") }
        guard Logger.Level(rawValue: logLevel) != nil else {
            throw ValidationError(
                "--log-level: \(logLevel) is not one of trace, debug, info, notice, warning, error, critical")
        }
        guard Set([outboundPort, inboundPort, adminPort]).count == 3 else {
            throw ValidationError("--outbound-port, --inbound-port and --admin-port must differ")
        }
        if let controlPlane {
            guard ControlAddress(controlPlane) != nil else {
                throw ValidationError("--control-plane: \(controlPlane) is not host:port")
            }
            guard tokenFile != nil else { throw ValidationError("--control-plane needs --token-file") }
            guard trustBundle != nil else { throw ValidationError("--control-plane needs --trust-bundle") }
            _ = try node()
        }
        if let traceIntake, traceIntake != "off", ControlAddress(traceIntake) == nil {
            throw ValidationError("--trace-intake: \(traceIntake) is not host:port or off")
        }
    }

    /// Where spans go and as whom: only with a control plane (its mesh config says what to
    /// sample), and not when `--trace-intake off`.
    func traceExport() throws -> TraceExportSettings? {
        guard let controlPlane, let control = ControlAddress(controlPlane), traceIntake != "off" else { return nil }
        let intake =
            traceIntake.flatMap(ControlAddress.init) ?? ControlAddress(host: control.host, port: MeshDefaults.otlpPort)
        let node = try node()
        return TraceExportSettings(
            host: intake.host, port: intake.port,
            serviceName: TraceExportSettings.serviceName(labels: node.labels, pod: node.pod), pod: node.pod,
            namespace: node.namespace,
            identity: "spiffe://\(trustDomain)/ns/\(node.namespace)/sa/\(node.serviceAccount)")
    }

    /// The pod this proxy serves, from flags, then the Downward API environment.
    func node() throws -> Node {
        let env = ProcessEnvironment()
        func required(_ flag: String, _ value: String?, _ variable: String) throws -> String {
            if let value = value ?? env[variable], !value.isEmpty { return value }
            throw ValidationError("--control-plane needs \(flag) or $\(variable)")
        }
        let labels: [String: String]
        if let file = podLabelsFile ?? env["POD_LABELS_FILE"] {
            do {
                labels = try DownwardAPILabels.parse(file: file)
            } catch {
                throw ValidationError("--pod-labels-file: \(error)")
            }
        } else {
            labels = DownwardAPILabels.parse(list: env["POD_LABELS"] ?? "")
        }
        return Node(
            pod: try required("--pod-name", podName, "POD_NAME"),
            namespace: try required("--pod-namespace", podNamespace, "POD_NAMESPACE"),
            serviceAccount: try required("--service-account", serviceAccount, "POD_SERVICE_ACCOUNT"),
            ip: try required("--pod-ip", podIP, "POD_IP"), labels: labels)
    }

    func run() async throws {
        let level = Logger.Level(rawValue: logLevel) ?? .info
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "weft-proxy")
        var config = ProxyConfig()
        config.outboundPort = outboundPort
        config.inboundPort = inboundPort
        config.adminPort = adminPort
        config.adminHost = adminHost
        config.inboundForwardHost = inboundForwardHost
        config.threads = threads
        config.opaquePorts = Set(opaquePorts.ports)
        config.detectTimeout = detectTimeout.amount
        config.connectTimeout = connectTimeout.amount
        config.responseTimeout = responseTimeout.amount
        config.requestHeadTimeout = requestHeadTimeout.amount
        config.upstreamIdleTimeout = upstreamIdleTimeout.amount
        config.clientIdleTimeout = clientIdleTimeout.amount == .zero ? nil : clientIdleTimeout.amount
        config.opaqueIdleTimeout = opaqueIdleTimeout.amount == .zero ? nil : opaqueIdleTimeout.amount
        config.drainTimeout = drainTimeout.amount
        config.discoveryTimeout = discoveryTimeout.amount
        config.subscriptionIdleTimeout = subscriptionIdleTimeout.amount == .zero ? nil : subscriptionIdleTimeout.amount
        config.enableIPv6 = ipv6
        config.releaseStartupPages = releaseStartupPages
        config.traceExport = try traceExport()
        let store = controlPlane == nil ? nil : MeshStore()
        // One set of loops for the proxy and its control client, shut down only after both
        // have stopped (ProxyServer.init explains why).
        let loops = MultiThreadedEventLoopGroup(numberOfThreads: config.threads)
        let server = ProxyServer(config: config, logger: logger, meshStore: store, eventLoopGroup: loops)
        // The server returns after a drain (SIGTERM or POST /shutdown): that is success.
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = [
            .init(service: server, successTerminationBehavior: .gracefullyShutdownGroup)
        ]
        if let controlPlane, let address = ControlAddress(controlPlane), let store, let tokenFile, let trustBundle {
            let settings = ControlClientSettings(
                host: address.host, port: address.port, tokenFile: tokenFile, trustBundleFile: trustBundle,
                cacheDirectory: cacheDir, node: try node(), trustDomain: trustDomain,
                controlPlaneIdentity: controlPlaneIdentity
                    ?? "spiffe://\(trustDomain)/ns/\(MeshDefaults.controlPlaneNamespace)/sa/\(MeshDefaults.controlPlaneServiceAccount)",
                proxyVersion: MeshDefaults.version)
            let client = ControlClient(
                settings: settings, store: store, keys: IdentityKeys(), group: loops,
                logger: Logger(label: "weft-proxy.control"))
            client.loadCache()
            services.append(.init(service: client))
        }
        let group = ServiceGroup(
            configuration: .init(services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        do {
            try await group.run()
        } catch {
            try? await loops.shutdownGracefully()
            throw error
        }
        try? await loops.shutdownGracefully()
    }
}

/// `host:port`, with `[v6]:port` for IPv6 literals.
struct ControlAddress {
    let host: String
    let port: Int

    init?(_ text: String) {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]),
            (1...65535).contains(port)
        else { return nil }
        var host = String(text[..<colon])
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        guard !host.isEmpty else { return nil }
        self.host = host
        self.port = port
    }

    init(host: String, port: Int) {
        self.host = host
        self.port = port
    }
}

/// The process environment, read once.
struct ProcessEnvironment {
    private let values: [String: String]

    init() {
        var values: [String: String] = [:]
        var pointer = environ
        while let entry = pointer.pointee {
            let text = String(cString: entry)
            if let eq = text.firstIndex(of: "=") {
                values[String(text[..<eq])] = String(text[text.index(after: eq)...])
            }
            pointer += 1
        }
        self.values = values
    }

    subscript(_ name: String) -> String? { values[name] }
}

/// Pod labels as the Downward API writes them: one `key="value"` per line.
enum DownwardAPILabels {
    static func parse(file: String) throws -> [String: String] {
        guard let handle = fopen(file, "r") else {
            throw LabelFileError(description: "\(file): \(String(cString: strerror(errno)))")
        }
        defer { fclose(handle) }
        var text = ""
        var buffer = [CChar](repeating: 0, count: 4096)
        while fgets(&buffer, Int32(buffer.count), handle) != nil {
            text += String(cString: buffer)
        }
        var labels: [String: String] = [:]
        for (number, line) in text.split(separator: "\n").enumerated() where !line.isEmpty {
            guard let eq = line.firstIndex(of: "=") else {
                throw LabelFileError(description: "\(file): line \(number + 1): expected key=\"value\"")
            }
            var value = line[line.index(after: eq)...]
            if value.hasPrefix("\""), value.hasSuffix("\""), value.count >= 2 { value = value.dropFirst().dropLast() }
            labels[String(line[..<eq])] = String(value)
        }
        return labels
    }

    static func parse(list: String) -> [String: String] {
        var labels: [String: String] = [:]
        for pair in list.split(separator: ",") {
            let parts = pair.split(separator: "=", maxSplits: 1)
            if parts.count == 2 { labels[String(parts[0])] = String(parts[1]) }
        }
        return labels
    }
}

struct LabelFileError: Error, CustomStringConvertible {
    let description: String
}
