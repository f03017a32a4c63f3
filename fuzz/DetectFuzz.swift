/// libFuzzer entry point for `ProtocolDetector`.
///
/// Built by `fuzz/run.sh` with swiftc (not SwiftPM); see `HTTP1Fuzz.swift`.
@_cdecl("LLVMFuzzerTestOneInput")
public func detectFuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = size == 0 ? [] : Array(UnsafeBufferPointer(start: data, count: size))
    DetectFuzzInvariants.check(bytes) { message in fatalError("detect invariant: \(message)") }
    return 0
}
