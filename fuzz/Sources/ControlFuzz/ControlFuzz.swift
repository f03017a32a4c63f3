/// libFuzzer entry point for the control protocol: `ControlFrameDecoder.nextFrame` and
/// `ClientMessage` / `ServerMessage` decoding and encoding.
///
/// Built by `fuzz/run.sh` with SwiftPM (fuzz/Package.swift) and `-sanitize=fuzzer,address
/// -parse-as-library`. `ControlFuzzInvariants.swift` beside this file is a symlink to
/// `Tests/WeftProtocolTests/Fuzz/`, where `ControlFuzzRegressionTests` replays
/// fuzz/regressions/control/ through the same checks.
@_cdecl("LLVMFuzzerTestOneInput")
public func controlFuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = size == 0 ? [] : Array(UnsafeBufferPointer(start: data, count: size))
    ControlFuzzInvariants.check(bytes) { message in fatalError("control invariant: \(message)") }
    return 0
}

/// The process's entry point. SwiftPM links an executable target on Linux with
/// `--defsym main=ControlFuzz_main` (so that tests can import executable modules), which takes
/// the place of libFuzzer's own `main`; this one runs libFuzzer's driver the same way.
/// Were `main` not aliased, libFuzzer's `main` would run and this would go unused.
@_cdecl("ControlFuzz_main")
public func controlFuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    var argc = argc
    var argv = argv
    return LLVMFuzzerRunDriver(&argc, &argv, controlFuzzOneInput)
}

/// libFuzzer's entry for programs with their own `main` (compiler-rt, FuzzerInterface.h).
@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<CInt>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt
) -> CInt
