import NIOCore
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
/// spans counted (`weft_control_otlp_forward_dropped_spans_total`).
final class OTLPForwarder: Sendable {
    static let maxQueued = 64
    /// And at most this many bytes wait (exports may be 4 MiB each).
    static let maxQueuedBytes = 16 << 20

    let target: Target
    private let state: NIOLoopBoundBox<State>
    private let eventLoop: EventLoop

    /// Where exports go: `http://host[:port][/path]` (port 4318 and `/v1/traces` by default).
    struct Target: Sendable, Equatable, CustomStringConvertible {
        let host: String
        let port: Int
        let path: String

        /// Nil for anything but such a URL (https is not built: a collector beside the
        /// control plane, or a local OpenTelemetry Collector, takes plain OTLP/HTTP).
        init?(url: String) {
            guard url.hasPrefix("http://") else { return nil }
            let rest = url.dropFirst("http://".count)
            let authority = rest.prefix { $0 != "/" }
            let path = rest.dropFirst(authority.count)
            var host = Substring(authority)
            var port = MeshDefaults.otlpPort
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
            "http://\(host.contains(":") ? "[\(host)]" : host):\(port)\(path)"
        }
    }

    private final class State {
        let exporter: OTLPHTTPExporter
        var queue: [(body: [UInt8], spans: Int)] = []
        var queuedBytes = 0
        var sending = false

        init(exporter: OTLPHTTPExporter) { self.exporter = exporter }
    }

    private let forwarded: @Sendable (Int) -> Void
    private let dropped: @Sendable (Int) -> Void

    /// - Parameters:
    ///   - forwarded, dropped: count spans the collector took, or that were dropped.
    init(
        target: Target, eventLoop: EventLoop, forwarded: @escaping @Sendable (Int) -> Void,
        dropped: @escaping @Sendable (Int) -> Void
    ) {
        self.target = target
        self.eventLoop = eventLoop
        self.forwarded = forwarded
        self.dropped = dropped
        state = .makeBoxSendingValue(
            State(
                exporter: OTLPHTTPExporter(
                    eventLoop: eventLoop, host: target.host, port: target.port, path: target.path)),
            eventLoop: eventLoop)
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
            self.state.value.sending = false
            if ok { forwarded(spans) } else { dropped(spans) }
            sendNext()
        }
    }
}

/// `--otlp-forward`'s URL check, for the command line.
public enum OTLPForwarderURL {
    public static func isValid(_ url: String) -> Bool { OTLPForwarder.Target(url: url) != nil }
}
