import WeftCore

/// The JSON-over-TLS control protocol shared by `weft-control` and the sidecars.
///
/// docs/protocol.md is the specification; this module is its one implementation of the
/// framing and the message schemas, used by both ends so they cannot drift apart.
public enum ControlProtocol {
    /// The protocol version a hello carries. A server answers any other with
    /// `error{code: "unsupported_protocol"}` and closes.
    public static let version = 1

    /// The largest frame either side may send: 16 MiB of JSON.
    public static let maxFrameBytes = 16 << 20

    /// The largest frame the control plane accepts from a proxy. No proxy message needs
    /// more than a few KB (a hello with its CSR is ~1 KB), so the server refuses anything
    /// bigger before buffering it.
    public static let maxClientFrameBytes = 1 << 20

    /// The largest first frame (the hello) the control plane accepts. It arrives before
    /// the proxy is authenticated, so it is kept small: a hello with its CSR is ~1 KB, and
    /// a proxy puts at most `helloSubscriptionBytes` of subscriptions in it and sends the
    /// rest as `subscribe` right after.
    public static let maxHelloFrameBytes = 64 << 10

    /// The bytes of service keys a proxy puts in its hello's `subscriptions`.
    public static let helloSubscriptionBytes = 32 << 10

    /// Seconds a server waits for a connection's hello before `error{code: "hello_timeout"}`.
    public static let helloTimeoutSeconds = 10

    /// Seconds a proxy waits for the TLS handshake with the control plane (and its
    /// identity check) before it gives up on the connection and reconnects.
    public static let handshakeTimeoutSeconds = 10

    /// Seconds between pings when a side has nothing else to send.
    public static let pingIntervalSeconds = 15

    /// Seconds without any frame from the peer after which a side closes the connection.
    public static let idleTimeoutSeconds = 45
}
