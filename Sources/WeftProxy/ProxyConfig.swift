import NIOCore
import WeftCore

/// Everything `weft-proxy run` was told, validated; immutable and shared by all loops.
public struct ProxyConfig: Sendable {
    public var outboundPort = MeshDefaults.outboundPort
    public var inboundPort = MeshDefaults.inboundPort
    public var adminPort = MeshDefaults.adminPort
    /// Where the admin server listens; the capture listeners always bind all addresses.
    public var adminHost = "0.0.0.0"
    /// The host inbound connections are delivered to, at their original port; nil (the
    /// default): the address they were sent to, the pod's own IP, so that only what the
    /// app exposes on the pod IP is reachable through the sidecar, never a service bound
    /// to 127.0.0.1 (docs/ARCHITECTURE.md, "Inbound delivery").
    public var inboundForwardHost: String? = nil
    public var threads = 1
    public var opaquePorts: Set<Int> = Set(MeshDefaults.opaquePorts)
    /// How long detection waits for a client's first bytes before calling it opaque.
    public var detectTimeout = TimeAmount.seconds(Int64(MeshDefaults.detectTimeoutSeconds))
    public var connectTimeout = TimeAmount.seconds(1)
    /// How long a request to a Service waits for its first routes and endpoints after the
    /// proxy subscribed to it, before a 503 `discovery-timeout`.
    public var discoveryTimeout = TimeAmount.seconds(3)
    /// How long a subscribed Service may go without a request before the proxy unsubscribes
    /// (checked every tenth of it, at least every second); nil: never.
    public var subscriptionIdleTimeout: TimeAmount? = .seconds(600)
    /// How long an HTTP request waits for its response head once it has been sent.
    public var responseTimeout = TimeAmount.seconds(15)
    /// How long a client may take to send a whole request head once it started one.
    public var requestHeadTimeout = TimeAmount.seconds(10)
    /// How long a client's HTTP/1 connection may go without a request before the proxy
    /// closes it (closed after between one and two periods without a request; nil: never).
    public var clientIdleTimeout: TimeAmount? = .seconds(3600)
    /// How long an opaque TCP or TLS splice may move no byte before both sides are reset
    /// (reset after between one and two periods; nil: never).
    public var opaqueIdleTimeout: TimeAmount? = .seconds(3600)
    /// How long pooled upstream HTTP/1 connections stay idle before they are closed.
    public var upstreamIdleTimeout = TimeAmount.seconds(60)
    /// The most idle upstream HTTP/1 connections kept per destination and event loop.
    public var maxIdlePerDestination = 128
    /// How long a graceful shutdown waits for open connections before closing them.
    public var drainTimeout = TimeAmount.seconds(10)
    /// Bind the capture listeners on IPv6 too (`[::]`), when the host has IPv6.
    public var enableIPv6 = true
    /// Unmap the code pages that only start-up ran, once the proxy is first ready
    /// (`StartupPages`).
    public var releaseStartupPages = true
    /// Where spans go (the control plane's OTLP intake) and the pod's resource attributes;
    /// nil: no spans are recorded (trace context still passes through untouched).
    public var traceExport: TraceExportSettings? = nil

    public init() {}

    /// The capture ports; a connection whose original destination is one of them, on
    /// this host, would loop back into the proxy and is refused.
    var capturePorts: Set<Int> { [outboundPort, inboundPort] }
}
