import NIOCore

/// Hands plaintext to the TLS handler in flushes of at most `maxFlushBytes`, so that
/// NIOSSL's per-connection outbound buffer stays at its first allocation and only its
/// first page is ever touched.
///
/// Why: swift-nio-ssl encrypts everything written between two flushes into one
/// outbound buffer, grows it to fit (16 KiB → 32 KiB for a ~25 KB config with its
/// identity), and keeps it at that size for the life of the connection
/// (`maximumPreservedOutboundBufferCapacity` is not honoured in 2.37). With glibc's mmap
/// threshold at 16 KiB, every touched page of that buffer stays resident: a connection
/// that once received a whole config held 32 KiB for nothing (bench/control.sh, issue 4).
/// Each flush here starts again at the buffer's front, so one page serves every write.
///
/// It sits between `NIOSSLServerHandler` and the frame encoder. Writes are only split,
/// never reordered; a write's promise completes with its last piece. The cost is one
/// TLS record and one `write(2)` per `maxFlushBytes` of a large push (a whole config),
/// nothing for small ones (deltas, pings).
final class SmallFlushWriter: ChannelOutboundHandler, RemovableChannelHandler {
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// Plaintext per flush. Each write becomes its own TLS 1.3 record (22 bytes more) and
    /// the mapping starts with a 16-byte malloc header, so 3,584 bytes leave room for 22
    /// records (an identity, a config piece and their frame headers take 4) in one 4 KiB page.
    static let defaultMaxFlushBytes = 3584

    private let maxFlushBytes: Int
    /// Bytes written since the last flush.
    private var pendingBytes = 0

    init(maxFlushBytes: Int = SmallFlushWriter.defaultMaxFlushBytes) {
        precondition(maxFlushBytes > 0)
        self.maxFlushBytes = maxFlushBytes
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        var buffer = unwrapOutboundIn(data)
        // Top up the current flush first, so a frame's 4-byte header does not become a
        // record of its own.
        while pendingBytes + buffer.readableBytes > maxFlushBytes {
            let piece = buffer.readSlice(length: maxFlushBytes - pendingBytes)!
            context.write(wrapOutboundOut(piece), promise: nil)
            flush(context: context)
        }
        pendingBytes += buffer.readableBytes
        context.write(wrapOutboundOut(buffer), promise: promise)
    }

    func flush(context: ChannelHandlerContext) {
        pendingBytes = 0
        context.flush()
    }
}

@available(*, unavailable) extension SmallFlushWriter: Sendable {}
