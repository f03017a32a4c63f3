// swift-tools-version:6.1
import PackageDescription

// libFuzzer harnesses for the code that needs packages, which plain swiftc cannot build
// (fuzz/run.sh builds http1 and detect that way): the control protocol's frame decoder and
// messages (NIOCore) and the YAML manifests (Yams). fuzz/run.sh builds them with
//
//   swift build --package-path fuzz --scratch-path .build-fuzz/spm -c release \
//       -Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library ...
//
// The sanitizers are command-line flags of that build only (every module of it, NIO and
// Yams included), so nothing here changes what the root package builds. Each harness's
// invariants file is a symlink into Tests/, where the unit tests replay
// fuzz/regressions/<target>/ through the same checks.
let package = Package(
    name: "weft-fuzz",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "weft", path: ".."),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
    ],
    targets: [
        .executableTarget(
            name: "ControlFuzz",
            dependencies: [
                .product(name: "WeftProtocol", package: "weft"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            path: "Sources/ControlFuzz"
        ),
        .executableTarget(
            name: "YAMLFuzz",
            dependencies: [
                .product(name: "WeftCore", package: "weft"),
                .product(name: "WeftManifests", package: "weft"),
            ],
            path: "Sources/YAMLFuzz"
        ),
    ],
    swiftLanguageModes: [.v5]
)
