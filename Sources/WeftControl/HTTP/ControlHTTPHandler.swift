import NIOCore
import NIOHTTP1
import WeftProtocol

/// Serves `ControlAPI` over HTTP/1.1 on :15014.
final class ControlHTTPHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let api: ControlAPI
    private var head: HTTPRequestHead?

    init(api: ControlAPI) {
        self.api = api
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head): self.head = head
        case .body: break
        case .end:
            guard let head else { return }
            self.head = nil
            let split = head.uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)
            let path = split.first.map(String.init) ?? head.uri
            let query = split.count > 1 ? String(split[1]) : ""
            let api = self.api
            let method = head.method.rawValue
            let fromLoopback = context.channel.remoteAddress?.isLoopback ?? false
            let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
            context.eventLoop.makeFutureWithTask {
                await api.respond(method: method, path: path, query: query, fromLoopback: fromLoopback)
            }
            .whenSuccess { response in
                let (handler, context) = bound.value
                handler.send(context, head, response)
            }
        }
    }

    private func send(_ context: ChannelHandlerContext, _ request: HTTPRequestHead, _ response: ControlAPI.Response) {
        var headers = HTTPHeaders()
        headers.add(name: "content-type", value: response.contentType)
        headers.add(name: "content-length", value: "\(response.body.count)")
        let keepAlive = request.isKeepAlive
        if !keepAlive { headers.add(name: "connection", value: "close") }
        let head = HTTPResponseHead(
            version: request.version, status: HTTPResponseStatus(statusCode: response.status), headers: headers)
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        if request.method != .HEAD {
            context.write(
                wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(bytes: response.body)))),
                promise: nil)
        }
        let done = context.writeAndFlush(wrapOutboundOut(.end(nil)))
        if !keepAlive { done.whenComplete { _ in context.close(promise: nil) } }
    }
}

@available(*, unavailable) extension ControlHTTPHandler: Sendable {}
