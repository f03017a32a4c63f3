/// libFuzzer entry point for the YAML manifests: `ManifestDecoder` (Yams, then
/// `DocumentReader`) to the mesh model, and `MeshState.build`'s validation across files.
///
/// Built by `fuzz/run.sh` with SwiftPM; see `ControlFuzz.swift`. `YAMLFuzzInvariants.swift`
/// beside this file is a symlink to `Tests/WeftCoreTests/Fuzz/`, where
/// `YAMLFuzzRegressionTests` replays fuzz/regressions/yaml/ through the same checks.
@_cdecl("LLVMFuzzerTestOneInput")
public func yamlFuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = size == 0 ? [] : Array(UnsafeBufferPointer(start: data, count: size))
    YAMLFuzzInvariants.check(bytes) { message in fatalError("yaml invariant: \(message)") }
    return 0
}

/// The process's entry point. SwiftPM links an executable target on Linux with
/// `--defsym main=YAMLFuzz_main` (so that tests can import executable modules), which takes
/// the place of libFuzzer's own `main`; this one runs libFuzzer's driver the same way.
/// Were `main` not aliased, libFuzzer's `main` would run and this would go unused.
@_cdecl("YAMLFuzz_main")
public func yAMLFuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    var argc = argc
    var argv = argv
    return LLVMFuzzerRunDriver(&argc, &argv, yamlFuzzOneInput)
}

/// libFuzzer's entry for programs with their own `main` (compiler-rt, FuzzerInterface.h).
@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<CInt>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt
) -> CInt
