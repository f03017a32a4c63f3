import Logging
import NIOCore
import NIOSSL
import WeftCore
import WeftTelemetry

/// `--otlp-forward URL`: every export the intake takes is also sent on, as OTLP/HTTP
/// protobuf, to an external collector (Jaeger, Tempo, an OpenTelemetry Collector), so
/// Weft's spans and the apps' join the traces a team already keeps elsewhere.
///
/// Forwarding never holds the intake back: exports wait in a bounded queue (`maxQueued`,
/// `maxQueuedBytes`)
/// and go one at a time on one event loop; past the bound, or when the collector fails
/// or does not answer within `OTLPHTTPExporter.timeout`, an export is dropped and its
/// spans counted (`weft_control_otlp_forward_dropped_spans_total`), and the first failure
/// after a success is logged with its reason (a refused connection, a status, a
/// certificate the collector's name does not match).
///
/// An `https://` collector is reached over TLS, its certificate verified against the
/// system's trust roots or `--otlp-forward-ca`, and its name (or IP address) checked.
final class OTLPForwarder: Sendable {
    static let maxQueued = 64
    /// And at most this many bytes wait (exports may be 4 MiB each).
    static let maxQueuedBytes = 16 << 20

    let target: Target
    private let state: NIOLoopBoundBox<State>
    private let eventLoop: EventLoop

    /// Where exports go: `http[s]://host[:port][/path]`; the port is 4318 (OTLP/HTTP's)
    /// for http and 443 for https (a hosted collector) unless given; the path `/v1/traces`.
    struct Target: Sendable, Equatable, CustomStringConvertible {
        let host: String
        let port: Int
        let path: String
        let tls: Bool

        /// Nil for anything but such a URL.
        init?(url: String) {
            let scheme = ["http://", "https://"].first { url.lowercased().hasPrefix($0) }
            guard let scheme else { return nil }
            tls = scheme == "https://"
            let rest = url.dropFirst(scheme.count)
            let authority = rest.prefix { $0 != "/" }
            let path = rest.dropFirst(authority.count)
            var host = Substring(authority)
            var port = tls ? 443 : MeshDefaults.otlpPort
            if host.hasPrefix("[") {
                guard let close = host.firstIndex(of: "]") else { return nil }
                let after = host[host.index(after: close)...]
                if after.hasPrefix(":") {
                    guard let number = Int(after.dropFirst()), (1...65535).contains(number) else { return nil }
                    port = number
                } else if !after.isEmpty {
                    return nil
                }
                host = host[host.index(after: host.startIndex)..<close]
            } else if let colon = host.lastIndex(of: ":") {
                guard let number = Int(host[host.index(after: colon)...]), (1...65535).contains(number) else {
                    return nil
                }
                port = number
                host = host[..<colon]
            }
            guard !host.isEmpty else { return nil }
            self.host = String(host)
            self.port = port
            self.path = path.isEmpty ? "/v1/traces" : String(path)
        }

        var description: String {
            "\(tls ? "https" : "http")://\(host.contains(":") ? "[\(host)]" : host):\(port)\(path)"
        }
    }

    private final class State {
        let exporter: OTLPHTTPExporter
        var queue: [(body: [UInt8], spans: Int)] = []
        var queuedBytes = 0
        var sending = false
        /// The last export failed: the next failure is not logged again.
        var failing = false

        init(exporter: OTLPHTTPExporter) { self.exporter = exporter }
    }

    private let forwarded: @Sendable (Int) -> Void
    private let dropped: @Sendable (Int) -> Void
    private let logger: Logger

    /// - Parameters:
    ///   - tls: for an `https://` target, the client context (trust roots) its connections
    ///     use (`clientTLS(trusting:)`).
    ///   - forwarded, dropped: count spans the collector took, or that were dropped.
    init(
        target: Target, tls: NIOSSLContext? = nil, eventLoop: EventLoop, logger: Logger = Logger(label: "weft-control"),
        forwarded: @escaping @Sendable (Int) -> Void, dropped: @escaping @Sendable (Int) -> Void
    ) {
        self.target = target
        self.eventLoop = eventLoop
        self.forwarded = forwarded
        self.dropped = dropped
        self.logger = logger
        let host = target.host
        // SNI and the name check take a DNS name; an IP address is checked against the
        // certificate's IP addresses.
        let serverName = (try? SocketAddress(ipAddress: host, port: 0)) == nil ? host : nil
        let secure: (@Sendable (Channel) throws -> Void)? = tls.map { context in
            { channel in
                try channel.pipeline.syncOperations.addHandler(
                    NIOSSLClientHandler(context: context, serverHostname: serverName))
            }
        }
        state = .makeBoxSendingValue(
            State(
                exporter: OTLPHTTPExporter(
                    eventLoop: eventLoop, host: target.host, port: target.port, path: target.path, secure: secure)),
            eventLoop: eventLoop)
    }

    /// The TLS client context for an `https://` collector: the system's trust roots, or
    /// only the certificates of the PEM file `caFile` (`--otlp-forward-ca`). Throws a
    /// message naming the file when it cannot be read or holds no certificate.
    static func clientTLS(trusting caFile: String?) throws -> NIOSSLContext {
        var configuration = TLSConfiguration.makeClientConfiguration()
        if let caFile {
            let certificates: [NIOSSLCertificate]
            do {
                certificates = try NIOSSLCertificate.fromPEMFile(caFile)
            } catch {
                throw ForwardError(description: "--otlp-forward-ca \(caFile): cannot read PEM certificates: \(error)")
            }
            guard !certificates.isEmpty else {
                throw ForwardError(description: "--otlp-forward-ca \(caFile): no PEM certificate in the file")
            }
            configuration.trustRoots = .certificates(certificates)
        }
        configuration.applicationProtocols = ["http/1.1"]
        do {
            return try NIOSSLContext(configuration: configuration)
        } catch {
            throw ForwardError(description: "--otlp-forward: cannot make a TLS client context: \(error)")
        }
    }

    struct ForwardError: Error, CustomStringConvertible {
        let description: String
    }

    /// Queues an export (protobuf) of `spans` spans; from any thread.
    func forward(_ body: [UInt8], spans: Int) {
        eventLoop.execute { [self] in
            let state = self.state.value
            guard state.queue.count < Self.maxQueued, state.queuedBytes + body.count <= Self.maxQueuedBytes else {
                dropped(spans)
                return
            }
            state.queue.append((body, spans))
            state.queuedBytes += body.count
            sendNext()
        }
    }

    private func sendNext() {
        let state = self.state.value
        guard !state.sending, !state.queue.isEmpty else { return }
        let (body, spans) = state.queue.removeFirst()
        state.queuedBytes -= body.count
        state.sending = true
        state.exporter.post([ByteBuffer(bytes: body)]) { [self] ok in
            let state = self.state.value
            state.sending = false
            if ok {
                forwarded(spans)
                if state.failing { logger.info("--otlp-forward: \(target) takes exports again") }
            } else {
                dropped(spans)
                if !state.failing {
                    logger.warning(
                        "--otlp-forward: an export to \(target) failed, its spans dropped (and counted); later failures are only counted until one succeeds",
                        metadata: ["reason": "\(state.exporter.lastFailure ?? "unknown")"])
                }
            }
            state.failing = !ok
            sendNext()
        }
    }
}

/// `--otlp-forward`'s URL check, for the command line.
public enum OTLPForwarderURL {
    public static func isValid(_ url: String) -> Bool { OTLPForwarder.Target(url: url) != nil }
}
