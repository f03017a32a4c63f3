import ArgumentParser
import Logging
import ServiceLifecycle
import WeftCore
import WeftProxy

/// `weft-proxy run`: the sidecar itself.
struct RunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run the sidecar: capture listeners, protocol detection, forwarding and the admin server.",
        discussion: """
            Outbound connections (redirected to --outbound-port) go to their original destination; \
            inbound connections (redirected to --inbound-port) go to --inbound-forward-host at their \
            original port. SIGTERM or POST /shutdown on the admin port drains gracefully. \
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

    @Option(help: "Host that inbound connections are delivered to, at their original port (the app in this Pod).")
    var inboundForwardHost = "127.0.0.1"

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

    @Option(help: "How long pooled upstream HTTP/1 connections stay open while idle.")
    var upstreamIdleTimeout = DurationArgument(seconds: 60)

    @Option(help: "How long a graceful shutdown waits for open connections before closing them.")
    var drainTimeout = DurationArgument(seconds: 10)

    @Flag(inversion: .prefixedNo, help: "Also listen on IPv6 ([::]) when the host has IPv6.")
    var ipv6 = true

    @Option(help: "Log level: trace, debug, info, notice, warning, error or critical.")
    var logLevel = "info"

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
        config.drainTimeout = drainTimeout.amount
        config.enableIPv6 = ipv6
        let server = ProxyServer(config: config, logger: logger)
        // The server returns after a drain (SIGTERM or POST /shutdown): that is success.
        let group = ServiceGroup(
            configuration: .init(
                services: [.init(service: server, successTerminationBehavior: .gracefullyShutdownGroup)],
                gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
    }
}
