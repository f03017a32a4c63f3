import NIOCore

/// One RequestMirror copy of an HTTP/1 request: sent on a connection from the loop's pool
/// (or a new one) to the mirror endpoint, its response read and dropped. The connection
/// goes back to the pool when the response ends cleanly, and is closed otherwise.
///
/// Nothing waits on it: the request it copies has its own exchange, which finished reading
/// the request before this started. It ends at its response, a failure, or its timeout.
final class HTTP1MirrorExchange: HTTP1UpstreamOwner {
    private let pool: HTTP1UpstreamPool
    private let mesh: LoopContext
    private let endpoint: LoopEndpoint
    private let method: HTTP1Method
    /// HTTP/1.1 (a 1.0 request's connection is never reused).
    private let isHTTP11: Bool
    /// The whole copy went out (its last write completed): only then may the connection be
    /// reused after the response (a server may answer early, before reading a body).
    private var isWritten = false
    private let startedAt = LoopContext.now()
    private var connection: HTTP1UpstreamConnection?
    private var isPooled = false
    private var response = HTTP1Head()
    private var responseBody = HTTP1BodyTracker(framing: .none)
    private var buffer: ByteBuffer?
    private var scanned = 0
    private var isInBody = false
    private var timer: Scheduled<Void>?
    private var isDone = false

    private init(
        pool: HTTP1UpstreamPool, mesh: LoopContext, endpoint: LoopEndpoint, method: HTTP1Method, isHTTP11: Bool
    ) {
        self.pool = pool
        self.mesh = mesh
        self.endpoint = endpoint
        self.method = method
        self.isHTTP11 = isHTTP11
    }

    /// Sends the copies `copy` owes: `head` (the request head as the rule made it) and the
    /// body kept, to an endpoint of each mirror backend.
    static func send(
        _ copy: MirrorCopy, head: ByteBuffer, method: HTTP1Method, isHTTP11: Bool = true, pool: HTTP1UpstreamPool,
        mesh: LoopContext
    ) {
        for plan in copy.plans {
            if copy.isTooLarge {
                mesh.mirrorEnded(.tooLarge)
                continue
            }
            mesh.beginMirror(plan, serial: copy.serial) { endpoint in
                HTTP1MirrorExchange(pool: pool, mesh: mesh, endpoint: endpoint, method: method, isHTTP11: isHTTP11)
                    .start(head: head, body: copy.body, timeout: copy.timeout)
            }
        }
    }

    private func start(head: ByteBuffer, body: [ByteBuffer], timeout: TimeAmount) {
        timer = mesh.eventLoop.scheduleTask(in: timeout) { [self] in
            timer = nil
            finish(.timeout, failed: true)
        }
        let bucket: HTTP1UpstreamPool.Bucket
        if let known = endpoint.http1Bucket {
            bucket = known
        } else {
            bucket = pool.bucket(for: endpoint.target.address, meshIdentity: endpoint.target.meshIdentity)
            endpoint.http1Bucket = bucket
        }
        if let pooled = pool.checkout(bucket) {
            isPooled = true
            send(head, body, on: pooled)
            return
        }
        pool.connect(bucket, tls: bucket.meshIdentity == nil ? nil : mesh.meshTLS).whenComplete { [self] result in
            switch result {
            case .success(let connection):
                if isDone {
                    connection.close()
                } else {
                    send(head, body, on: connection)
                }
            case .failure:
                finish(.failed, failed: true)
            }
        }
    }

    private func send(_ head: ByteBuffer, _ body: [ByteBuffer], on connection: HTTP1UpstreamConnection) {
        self.connection = connection
        connection.owner = self
        connection.hasBeenUsed = true
        connection.isReadPaused = false
        let written = mesh.eventLoop.makePromise(of: Void.self)
        written.futureResult.whenSuccess { [self] in isWritten = true }
        let parts = [head] + body
        for (index, part) in parts.enumerated() {
            connection.write(part, promise: index == parts.count - 1 ? written : nil)
        }
        connection.flushIfNeeded()
    }

    func upstreamRead(_ bytes: ByteBuffer) {
        guard !isDone else { return }
        var bytes = bytes
        if !isInBody {
            if buffer == nil { buffer = bytes } else { buffer!.writeBuffer(&bytes) }
            guard let head = parseHead() else { return }
            bytes = head
        }
        do {
            let consumed = try bytes.withUnsafeReadableBytes { try responseBody.consume($0) }
            if responseBody.isComplete {
                finish(
                    .completed, failed: response.status >= 500,
                    reusable: consumed == bytes.readableBytes && !response.wantsClose)
            }
        } catch {
            finish(.failed, failed: true)
        }
    }

    /// Parses the final response head from `buffer` (interim 1xx heads are skipped) and
    /// returns the bytes after it, or nil while it is incomplete (or the exchange ended).
    private func parseHead() -> ByteBuffer? {
        guard var pending = buffer else { return nil }
        while true {
            do {
                let end = try pending.withUnsafeReadableBytes { try HTTP1HeadParser.findEnd($0, resumeAt: scanned) }
                guard let end else {
                    scanned = pending.readableBytes
                    buffer = pending
                    return nil
                }
                try pending.withUnsafeReadableBytes { bytes in
                    try HTTP1HeadParser.parse(
                        UnsafeRawBufferPointer(rebasing: bytes[0..<end]), kind: .response(requestMethod: method),
                        into: &response)
                }
                pending.moveReaderIndex(forwardBy: end)
                scanned = 0
            } catch {
                finish(.failed, failed: true)
                return nil
            }
            if response.status == 101 {
                // A mirror never upgrades: the copy ends here.
                finish(.completed, failed: false)
                return nil
            }
            if response.status >= 200 { break }
        }
        buffer = nil
        isInBody = true
        responseBody = HTTP1BodyTracker(framing: response.framing)
        return pending
    }

    func upstreamReadComplete() {}

    func upstreamWritabilityChanged(isWritable: Bool) {}

    func upstreamClosed(error: Error?) {
        connection = nil
        if isInBody && responseBody.isUntilClose {
            finish(.completed, failed: response.status >= 500)
        } else {
            // A pooled connection the server had closed while idle is not the endpoint's fault.
            finish(.failed, failed: true, abandoned: isPooled && !isInBody && buffer == nil)
        }
    }

    private func finish(_ result: MirrorResult, failed: Bool, reusable: Bool = false, abandoned: Bool = false) {
        guard !isDone else { return }
        isDone = true
        timer?.cancel()
        timer = nil
        if let connection {
            self.connection = nil
            if reusable && isWritten && isHTTP11 && response.framing != .untilClose {
                pool.release(connection)
            } else {
                connection.close()
            }
        }
        mesh.endMirror(endpoint, startedAt: startedAt, result: result, failed: failed, abandoned: abandoned)
    }
}

@available(*, unavailable)
extension HTTP1MirrorExchange: Sendable {}
