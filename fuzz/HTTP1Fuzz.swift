/// libFuzzer entry point for the HTTP/1 head scanner and body tracker.
///
/// Built by `fuzz/run.sh` with swiftc (not SwiftPM) together with the pure parser
/// sources and `Tests/WeftProxyTests/Fuzz/`, where the invariants live so that
/// `FuzzRegressionTests` replays crash inputs through the same checks.
@_cdecl("LLVMFuzzerTestOneInput")
public func http1FuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = size == 0 ? [] : Array(UnsafeBufferPointer(start: data, count: size))
    HTTP1FuzzInvariants.check(bytes) { message in fatalError("HTTP1 invariant: \(message)") }
    return 0
}
