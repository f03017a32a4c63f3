import NIOCore
import WeftCore
import WeftTelemetry

/// One event loop's finished spans on their way to the control plane's OTLP/HTTP intake
/// (issue 12).
///
/// Spans are encoded as they finish (`OTLPSpanWriter`) into a batch, which is sent as one
/// `POST /v1/traces` (protobuf) when it holds `batchSpans` spans or `flushInterval` after
/// its first span, on a keep-alive connection of this loop's own. One export is in flight
/// at a time. The queue is bounded: while an export is in flight or the intake is away,
/// spans past `maxQueuedSpans` are dropped and counted, never waited for, so a slow or
/// absent intake costs requests nothing. A failed export drops its batch (counted too):
/// spans are diagnostics, not data worth holding memory for.
final class SpanQueue {
    static let batchSpans = 512
    static let maxQueuedSpans = 2048
    /// A batch is sent once it holds this much too; and the queue holds no more than
    /// `maxQueuedBytes`, so an export stays well under the intake's 4 MiB.
    static let batchBytes = 512 * 1024
    static let maxQueuedBytes = 2 * 1024 * 1024
    static let flushInterval = TimeAmount.seconds(1)
    /// A batch's first allocation: about `batchSpans` spans of sidecar size.
    static let batchCapacity = 256 * 1024
    /// The least room a span is first written into (all the batch's free space is offered;
    /// a sidecar span is about 600 bytes, one with a 1 KiB path and authority under 3 KiB).
    static let spanRoom = 4096

    let settings: TraceExportSettings
    /// This pod's identity as its spans carry it, encoded once: the source of an outbound
    /// request (`weft.source.identity`), the destination of an inbound one.
    let ownIdentity: (outbound: EncodedAttributes, inbound: EncodedAttributes)
    private let eventLoop: EventLoop
    private let metrics: SpanMetrics
    private var batch: ByteBuffer
    private var queued = 0
    private var flushTimer: Scheduled<Void>?
    private var exporting = false
    private let exporter: OTLPHTTPExporter

    init(eventLoop: EventLoop, settings: TraceExportSettings, metrics: SpanMetrics) {
        self.eventLoop = eventLoop
        self.settings = settings
        let identity = settings.identity
        ownIdentity = (
            EncodedAttributes { $0.add("weft.source.identity", identity) },
            EncodedAttributes { $0.add("weft.destination.identity", identity) }
        )
        self.metrics = metrics
        self.batch = ByteBufferAllocator().buffer(capacity: 0)
        self.exporter = OTLPHTTPExporter(eventLoop: eventLoop, host: settings.host, port: settings.port)
    }

    /// Spans waiting for an export.
    var count: Int { queued }

    /// Queues a finished span, encoded at once into the batch, or drops it (counted) when
    /// the queue is full.
    func add(_ span: SpanHeader, attributes: (inout SpanAttributes) -> Void) {
        guard queued < Self.maxQueuedSpans, batch.readableBytes < Self.maxQueuedBytes else {
            metrics.queueFull.increment()
            return
        }
        if batch.capacity == 0 { batch.reserveCapacity(Self.batchCapacity) }
        // One pass into room for any usual span; a larger one is measured, then written.
        let written = batch.writeWithUnsafeMutableBytes(minimumWritableBytes: Self.spanRoom) { buffer in
            OTLPSpanWriter.writeOnce(
                span, attributes: attributes, to: buffer.baseAddress!.assumingMemoryBound(to: UInt8.self),
                capacity: buffer.count) ?? 0
        }
        if written == 0 {
            let (total, content) = OTLPSpanWriter.measure(span, attributes: attributes)
            batch.writeWithUnsafeMutableBytes(minimumWritableBytes: total) { buffer in
                OTLPSpanWriter.write(
                    span, content: content, attributes: attributes,
                    to: buffer.baseAddress!.assumingMemoryBound(to: UInt8.self))
            }
        }
        queued += 1
        if queued >= Self.batchSpans || batch.readableBytes >= Self.batchBytes {
            flush()
        } else if flushTimer == nil {
            flushTimer = eventLoop.scheduleTask(in: Self.flushInterval) { [self] in
                flushTimer = nil
                flush()
            }
        }
    }

    /// Sends what is queued, unless an export is in flight (then its end sends it).
    func flush() {
        flushTimer?.cancel()
        flushTimer = nil
        guard queued > 0, !exporting else { return }
        // The request's envelope, then the spans as encoded: the batch is sent, not copied.
        let envelope = OTLPSpanWriter.exportEnvelope(
            resource: settings.resource, scopeName: "weft-proxy", scopeVersion: MeshDefaults.version,
            batchLength: batch.readableBytes)
        let body = [ByteBuffer(bytes: envelope), batch]
        let spans = queued
        batch = ByteBufferAllocator().buffer(capacity: 0)
        queued = 0
        exporting = true
        exporter.post(body) { [self] ok in
            exporting = false
            if ok {
                metrics.exported.increment(by: Int64(spans))
            } else {
                metrics.exportFailed.increment(by: Int64(spans))
            }
            if queued >= Self.batchSpans || batch.readableBytes >= Self.batchBytes {
                flush()
            } else if queued > 0 && flushTimer == nil {
                flushTimer = eventLoop.scheduleTask(in: Self.flushInterval) { [self] in
                    flushTimer = nil
                    flush()
                }
            }
        }
    }

    /// Stops the timer (graceful shutdown), after a last flush.
    func close() {
        flush()
        flushTimer?.cancel()
        flushTimer = nil
    }
}

extension SpanQueue: SpanSink {}

@available(*, unavailable)
extension SpanQueue: Sendable {}

/// The span export's counters, shared by the loops.
final class SpanMetrics: Sendable {
    let exported: Counter
    let queueFull: Counter
    let exportFailed: Counter

    init(registry: PrometheusCollectorRegistry) {
        exported = registry.makeCounter(
            descriptor: .init(
                metricName: "weft_spans_exported", unitName: "total",
                helpText: "Spans this proxy sent to the trace intake, and it took."))
        let dropped = MetricNameDescriptor(
            metricName: "weft_spans_dropped", unitName: "total",
            helpText:
                "Spans this proxy dropped: queue_full (the export queue was full), export_failed (the intake refused or was not reached)."
        )
        queueFull = registry.makeCounter(descriptor: dropped, labels: [("reason", "queue_full")])
        exportFailed = registry.makeCounter(descriptor: dropped, labels: [("reason", "export_failed")])
    }
}
