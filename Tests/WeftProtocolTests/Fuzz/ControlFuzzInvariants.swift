import NIOCore
import WeftProtocol

/// Properties that the control protocol's frame decoder and message codecs keep for any bytes.
///
/// Shared by the libFuzzer harness `fuzz/Sources/ControlFuzz/` (where this file is a
/// symlink) and by `ControlFuzzRegressionTests`, which replays `fuzz/regressions/control/`
/// and `fuzz/corpus/control/`. Only public API is used: the harness links a release build.
///
/// The input is used two ways:
/// - as the bytes a peer sends: split into frames by `ControlFrameDecoder.nextFrame`,
///   checked against a plain reference and against the same bytes arriving in pieces
///   (how TCP segments a stream must not change the frames); every frame is then decoded
///   as a message;
/// - as one frame whatever its length prefix says: the bytes after the first four are
///   decoded as a message, so a mutation of a seed frame's JSON reaches the message
///   decoders without keeping the length right.
///
/// A payload is decoded both as a `ClientMessage` and as a `ServerMessage`. A decoded
/// message must re-encode to JSON that decodes to the same message (and encode to the same
/// bytes again); a refusal must be a `ProtocolError` with one of the codes the decoder
/// documents, which itself travels intact in an `error` frame.
enum ControlFuzzInvariants {
    static let frameCodes: Set<ProtocolError.Code> = [.oversizedFrame, .emptyFrame]
    static let clientCodes: Set<ProtocolError.Code> = [
        .invalidJSON, .unknownType, .invalidMessage, .unsupportedProtocol,
    ]
    static let serverCodes: Set<ProtocolError.Code> = [.invalidJSON, .unknownType, .invalidMessage]

    static func check(_ data: [UInt8], fail: (String) -> Void) {
        let seed = FuzzBuffers.fnv1a(data)
        let limit = frameLimit(count: data.count, seed: seed)

        let whole = split(data, cuts: [data.count], limit: limit, seed: 0, fail: fail)
        let expected = referenceSplit(data, limit: limit)
        if whole != expected { fail("nextFrame (limit \(limit)) gave \(whole), the reference \(expected)") }
        var feeds = [
            FuzzBuffers.cuts(count: data.count, seed: seed, pieces: 2),
            FuzzBuffers.cuts(count: data.count, seed: seed >> 7, pieces: 3),
        ]
        if data.count <= 256 { feeds.append(Array(0...data.count)) }
        for (index, cuts) in feeds.enumerated() {
            let pieces = split(data, cuts: cuts, limit: limit, seed: seed >> UInt64(index + 13), fail: fail)
            if pieces != whole {
                fail("nextFrame (limit \(limit)) in pieces \(cuts) gave \(pieces), on the whole \(whole)")
            }
        }

        for frame in whole.frames { checkPayload(frame, fail: fail) }
        if data.count > 4 { checkPayload(Array(data[4...]), fail: fail) }
    }

    // MARK: - Frames

    struct Split: Equatable, CustomStringConvertible {
        enum End: Equatable {
            /// No whole frame left; this many bytes stay buffered.
            case needMore(buffered: Int)
            case failed(ProtocolError.Code)
        }

        var frames: [[UInt8]]
        var end: End

        var description: String { "\(frames.count) frames of \(frames.map(\.count)) bytes, then \(end)" }
    }

    /// One of the limits the two ends use, or one close to the input's size.
    private static func frameLimit(count: Int, seed: UInt64) -> Int {
        switch seed % 4 {
        case 0: return ControlProtocol.maxFrameBytes
        case 1: return ControlProtocol.maxClientFrameBytes
        case 2: return ControlProtocol.maxHelloFrameBytes
        default: return 1 + Int((seed >> 8) % UInt64(count + 1))
        }
    }

    /// Feeds `data` as a decoder sees a stream: one buffer that grows to each cut, every whole
    /// frame taken off its front after each read. The buffer starts with a few bytes already
    /// read and is compacted at times, as `ByteToMessageDecoder` does.
    private static func split(_ data: [UInt8], cuts: [Int], limit: Int, seed: UInt64, fail: (String) -> Void) -> Split {
        var buffer = ByteBufferAllocator().buffer(capacity: 0)
        let skip = Int(seed % 5)
        buffer.writeRepeatingByte(0xEE, count: skip)
        buffer.moveReaderIndex(forwardBy: skip)
        var frames: [[UInt8]] = []
        var start = 0
        var state = seed
        for cut in cuts where cut >= start {
            buffer.writeBytes(data[start..<cut])
            start = cut
            while true {
                let before = buffer.readableBytes
                let frame: ByteBuffer?
                do {
                    frame = try ControlFrameDecoder.nextFrame(from: &buffer, maxFrameBytes: limit)
                } catch let error as ProtocolError {
                    if !frameCodes.contains(error.code) { fail("nextFrame threw \(error), not a frame error") }
                    if buffer.readableBytes != before { fail("nextFrame threw \(error) after consuming bytes") }
                    return Split(frames: frames, end: .failed(error.code))
                } catch {
                    fail("nextFrame threw \(error), which is not a ProtocolError")
                    return Split(frames: frames, end: .failed(.internalError))
                }
                guard let frame else {
                    if buffer.readableBytes != before { fail("nextFrame returned nil after consuming bytes") }
                    break
                }
                if frame.readableBytes == 0 || frame.readableBytes > limit {
                    fail("nextFrame returned a frame of \(frame.readableBytes) bytes (limit \(limit))")
                }
                if before - buffer.readableBytes != 4 + frame.readableBytes {
                    fail(
                        "nextFrame consumed \(before - buffer.readableBytes) bytes for a \(frame.readableBytes)-byte frame"
                    )
                }
                frames.append(Array(frame.readableBytesView))
            }
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            if state >> 62 == 0 { buffer.discardReadBytes() }
        }
        return Split(frames: frames, end: .needMore(buffered: buffer.readableBytes))
    }

    /// The framing written the obvious way over the whole input.
    static func referenceSplit(_ data: [UInt8], limit: Int) -> Split {
        var frames: [[UInt8]] = []
        var index = 0
        while data.count - index >= 4 {
            let length = data[index..<(index + 4)].reduce(0) { $0 << 8 | Int($1) }
            if length == 0 { return Split(frames: frames, end: .failed(.emptyFrame)) }
            if length > limit { return Split(frames: frames, end: .failed(.oversizedFrame)) }
            if data.count - index - 4 < length { break }
            frames.append(Array(data[(index + 4)..<(index + 4 + length)]))
            index += 4 + length
        }
        return Split(frames: frames, end: .needMore(buffered: data.count - index))
    }

    // MARK: - Messages

    private static func checkPayload(_ payload: [UInt8], fail: (String) -> Void) {
        // A frame is a slice of the read buffer: decode from one whose reader index is not 0.
        var shifted = ByteBufferAllocator().buffer(capacity: payload.count + 3)
        shifted.writeBytes([0x7B, 0x22, 0x20])  // `{" ` before the payload, already read
        shifted.writeBytes(payload)
        shifted.moveReaderIndex(forwardBy: 3)
        let buffer = ByteBuffer(bytes: payload)

        let client = Result { () throws(ProtocolError) in try ClientMessage.decode(buffer) }
        let clientShifted = Result { () throws(ProtocolError) in try ClientMessage.decode(shifted) }
        if !sameOutcome(client, clientShifted) {
            fail(
                "ClientMessage.decode of the same payload gave \(client), then (another reader index) \(clientShifted)")
        }
        switch client {
        case .success(let message):
            roundTrip(message, kind: "client", fail: fail) { (buffer) throws(ProtocolError) in
                try ClientMessage.decode(buffer)
            } encode: {
                $0.encode()
            }
        case .failure(let error):
            checkRefusal(error, allowed: clientCodes, kind: "ClientMessage", fail: fail)
        }

        let server = Result { () throws(ProtocolError) in try ServerMessage.decode(buffer) }
        let serverShifted = Result { () throws(ProtocolError) in try ServerMessage.decode(shifted) }
        if !sameOutcome(server, serverShifted) {
            fail(
                "ServerMessage.decode of the same payload gave \(server), then (another reader index) \(serverShifted)")
        }
        switch server {
        case .success(let message):
            roundTrip(message, kind: "server", fail: fail) { (buffer) throws(ProtocolError) in
                try ServerMessage.decode(buffer)
            } encode: {
                $0.encode()
            }
        case .failure(let error):
            checkRefusal(error, allowed: serverCodes, kind: "ServerMessage", fail: fail)
        }

        // The two sides agree on what they share: ping, pong and error.
        if case .success(let c) = client, case .success(let s) = server {
            switch (c, s) {
            case (.ping(let a), .ping(let b)), (.pong(let a), .pong(let b)):
                if a != b { fail("client and server decode \(c.type) differently: \(a), \(b)") }
            case (.error(let a), .error(let b)):
                if a != b { fail("client and server decode error differently: \(a), \(b)") }
            default:
                fail("a payload decodes as client \(c.type) and as server \(s.type)")
            }
        }
    }

    /// Two decodes of the same payload: the same message, or the same refusal.
    ///
    /// JSONDecoder checks a string only when it reads it, and reads a `[String: String]`
    /// (a hello's `node.labels`) in hash order; `MessageCoder.type()` therefore checks the
    /// whole payload's syntax first (`JSONSyntax`), so that a label of the wrong type beside
    /// one that is not valid JSON is always `invalid_json`:
    /// fuzz/regressions/control/refusal-code-depends-on-label-order.
    private static func sameOutcome<Message: Equatable>(
        _ a: Result<Message, ProtocolError>, _ b: Result<Message, ProtocolError>
    ) -> Bool {
        switch (a, b) {
        case (.success(let x), .success(let y)): return x == y
        case (.failure(let x), .failure(let y)): return x.code == y.code
        default: return false
        }
    }

    private static func checkRefusal(
        _ error: ProtocolError, allowed: Set<ProtocolError.Code>, kind: String, fail: (String) -> Void
    ) {
        if !allowed.contains(error.code) { fail("\(kind).decode refused with \(error.code), not one it documents") }
        if error.reason.isEmpty { fail("\(kind).decode refused with \(error.code) and no reason") }
        // The refusal is what the receiver sends back: it must survive an error frame.
        let frame = ServerMessage.error(ErrorMessage(error, fatal: true))
        do throws(ProtocolError) {
            let back = try ServerMessage.decode(frame.encode())
            if back != frame { fail("the error frame for \(error) decodes as \(back)") }
        } catch {
            fail("the error frame for \(kind)'s refusal \(error.code) does not decode: \(error)")
        }
    }

    /// `message` encodes to a payload that decodes to it, and re-encodes to the same bytes;
    /// framed, the payload splits back out whole.
    private static func roundTrip<Message: Equatable>(
        _ message: Message, kind: String, fail: (String) -> Void,
        decode: (ByteBuffer) throws(ProtocolError) -> Message, encode: (Message) -> ByteBuffer
    ) {
        let encoded = encode(message)
        let bytes = Array(encoded.readableBytesView)
        if Array(encode(message).readableBytesView) != bytes { fail("encoding a \(kind) message twice differs") }
        let again: Message
        do throws(ProtocolError) {
            again = try decode(encoded)
        } catch {
            return fail(
                "\(message) re-encodes as \(String(decoding: bytes.prefix(300), as: UTF8.self)), which does not decode: \(error)"
            )
        }
        if again != message { fail("\(kind) message \(message) re-encodes and decodes as \(again)") }
        if Array(encode(again).readableBytesView) != bytes {
            fail("\(kind) message \(message) does not re-encode to the same bytes")
        }

        var framed = [UInt8]()
        framed.reserveCapacity(bytes.count + 4)
        for shift in [24, 16, 8, 0] { framed.append(UInt8(truncatingIfNeeded: bytes.count >> shift)) }
        framed += bytes
        let split = referenceSplit(framed, limit: ControlProtocol.maxFrameBytes)
        if split != Split(frames: [bytes], end: .needMore(buffered: 0)) {
            fail("the framed \(kind) message splits as \(split)")
        }
    }
}
