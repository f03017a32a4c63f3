// swift-tools-version:6.1
import PackageDescription

// The data plane is hot: exclusivity checks cost ~13% of the proxy's CPU in the
// prototype (see docs/ARCHITECTURE.md, "Performance decisions"). Only the proxy's own
// module drops them; everything else keeps Swift's defaults.
let hotPathSettings: [SwiftSetting] = [
    .unsafeFlags(["-enforce-exclusivity=unchecked"], .when(configuration: .release))
]

/// How the executables are linked (docs/ARCHITECTURE.md, "Linking"): with lld, relative
/// relocations packed (DT_RELR, glibc 2.36+) and no dynamic export of every symbol. Each
/// PIE start-up otherwise applies 85k relocations from a 2 MB table and dirties the
/// relocated data; weft-proxy's idle RSS goes from 21.2 MB to 16.4 MB, with ASLR kept.
let executableLinking: [LinkerSetting] = [
    .unsafeFlags(
        ["-use-ld=lld", "-Xlinker", "--no-export-dynamic", "-Xlinker", "-z", "-Xlinker", "pack-relative-relocs"],
        .when(platforms: [.linux]))
]

let package = Package(
    name: "weft",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "weft-proxy", targets: ["weft-proxy"]),
        .executable(name: "weft-control", targets: ["weft-control"]),
        .executable(name: "weftctl", targets: ["weftctl"]),
        // For bench/micro, which measures certificate issuance from outside the package.
        .library(name: "WeftIdentity", targets: ["WeftIdentity"]),
        // For fuzz/Package.swift, whose libFuzzer harnesses decode control frames, messages and
        // manifests from outside the package (fuzz/run.sh).
        .library(name: "WeftCore", targets: ["WeftCore"]),
        .library(name: "WeftProtocol", targets: ["WeftProtocol"]),
        .library(name: "WeftManifests", targets: ["WeftManifests"]),
        // For bench/micro's routing benchmarks (`RouteMatchBenchmark`, `BalancerPickBenchmark`).
        .library(name: "WeftProxy", targets: ["WeftProxy"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-http2.git", from: "1.46.0"),
        .package(url: "https://github.com/apple/swift-nio-extras.git", from: "1.35.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-certificates.git", from: "1.21.1"),
        .package(url: "https://github.com/apple/swift-crypto.git", "3.12.3"..<"5.0.0"),
        .package(url: "https://github.com/apple/swift-asn1.git", from: "1.7.4"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
        .package(url: "https://github.com/swift-otel/swift-w3c-trace-context.git", from: "1.0.0"),
        .package(url: "https://github.com/apple/swift-protobuf.git", from: "1.39.0"),
    ],
    targets: [
        // Mesh model (Kubernetes resource shapes, validation, MeshState), SPIFFE IDs and
        // shared defaults. No dependencies: the sidecar links it.
        .target(name: "WeftCore"),
        // YAML manifests to the mesh model (Yams). Only the control plane parses YAML; kept
        // apart so the sidecar links neither Yams nor the Foundation it needs.
        .target(
            name: "WeftManifests",
            dependencies: ["WeftCore", .product(name: "Yams", package: "Yams")]
        ),
        // The control protocol: frame codec and messages, used by both ends (docs/protocol.md).
        .target(
            name: "WeftProtocol",
            dependencies: ["WeftCore", .product(name: "NIOCore", package: "swift-nio")]
        ),
        // The mesh CA, CSRs, leaf issuance and SPIFFE peer checks.
        .target(
            name: "WeftIdentity",
            dependencies: [
                "WeftCore",
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
            ]
        ),
        // Metrics registry and Prometheus exposition shared by proxy and control plane.
        .target(
            name: "WeftTelemetry",
            dependencies: [
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "W3CTraceContext", package: "swift-w3c-trace-context"),
                // OTLP/HTTP export (`OTLPHTTPExporter`), shared by the sidecar and the control plane.
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ]
        ),
        // OTLP's trace messages (opentelemetry-proto v1.9.0), generated once by
        // scripts/generate-otlp.sh and committed: the span intake decodes them (issue 12).
        .target(
            name: "WeftOTLP",
            dependencies: [.product(name: "SwiftProtobuf", package: "swift-protobuf")]
        ),
        // Pod mutation and the iptables redirect rules. Pure Swift, no dependencies.
        .target(name: "WeftInject"),
        // The data plane.
        .target(
            name: "WeftProxy",
            dependencies: [
                "WeftCore", "WeftTelemetry", "WeftProtocol", "WeftIdentity",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOTLS", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOHTTP2", package: "swift-nio-http2"),
                .product(name: "NIOHPACK", package: "swift-nio-http2"),
                .product(name: "NIOExtras", package: "swift-nio-extras"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: hotPathSettings
        ),
        // The control plane: config sources, per-proxy state, push server, CA service.
        .target(
            name: "WeftControl",
            dependencies: [
                "WeftCore", "WeftManifests", "WeftProtocol", "WeftIdentity", "WeftTelemetry", "WeftOTLP",
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .executableTarget(
            name: "weft-proxy",
            dependencies: [
                "WeftProxy", "WeftInject", "WeftCore", "WeftProtocol",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            linkerSettings: executableLinking
        ),
        .executableTarget(
            name: "weft-control",
            dependencies: [
                "WeftControl", "WeftCore",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            linkerSettings: executableLinking
        ),
        .executableTarget(
            name: "weftctl",
            dependencies: [
                // WeftProxy for `config --explain`: the proxy's own route compiler and matcher.
                "WeftCore", "WeftIdentity", "WeftProtocol", "WeftProxy",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            linkerSettings: executableLinking
        ),
        // The control-plane benchmark's load generator (bench/control.sh, issue 4): N simulated
        // sidecars speaking the control protocol. Not a product; built on demand.
        .executableTarget(
            name: "weft-control-load",
            dependencies: [
                "WeftProtocol", "WeftIdentity", "WeftCore",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            path: "bench/control-load"
        ),
        .testTarget(name: "WeftCoreTests", dependencies: ["WeftCore", "WeftManifests"]),
        .testTarget(name: "WeftIdentityTests", dependencies: ["WeftIdentity", "WeftCore"]),
        .testTarget(
            name: "WeftProtocolTests",
            dependencies: [
                "WeftProtocol",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
            ]
        ),
        .testTarget(
            name: "WeftControlTests",
            dependencies: [
                // WeftProxy only so pushes can be checked against the proxy's own applier.
                "WeftControl", "WeftCore", "WeftProtocol", "WeftIdentity", "WeftProxy", "WeftOTLP",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
            ]
        ),
        .testTarget(name: "WeftInjectTests", dependencies: ["WeftInject"]),
        .testTarget(name: "WeftTelemetryTests", dependencies: ["WeftTelemetry", "WeftOTLP"]),
        .testTarget(
            name: "WeftProxyTests",
            dependencies: [
                // WeftIdentity to issue certificates for the mesh TLS tests.
                "WeftProxy", "WeftIdentity", "WeftCore",
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOTLS", package: "swift-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
    ],
    swiftLanguageModes: [.v5]
)
