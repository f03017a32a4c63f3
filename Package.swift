// swift-tools-version:6.1
import PackageDescription

// The data plane is hot: exclusivity checks cost ~13% of the proxy's CPU in the
// prototype (see docs/ARCHITECTURE.md, "Performance decisions"). Only the proxy's own
// module drops them; everything else keeps Swift's defaults.
let hotPathSettings: [SwiftSetting] = [
    .unsafeFlags(["-enforce-exclusivity=unchecked"], .when(configuration: .release))
]

let package = Package(
    name: "weft",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "weft-proxy", targets: ["weft-proxy"]),
        .executable(name: "weft-control", targets: ["weft-control"]),
        .executable(name: "weftctl", targets: ["weftctl"]),
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
    ],
    targets: [
        // Mesh model and shared defaults. No I/O.
        .target(name: "WeftCore"),
        // Control protocol (frame codec and messages); filled in by the control-plane work.
        .target(name: "WeftProtocol", dependencies: ["WeftCore"]),
        // CA and SPIFFE identities; filled in by the control-plane work.
        .target(name: "WeftIdentity", dependencies: ["WeftCore"]),
        // Metrics registry and Prometheus exposition shared by proxy and control plane.
        .target(
            name: "WeftTelemetry",
            dependencies: [
                .product(name: "Prometheus", package: "swift-prometheus")
            ]
        ),
        // Pod mutation and the iptables redirect rules. Pure Swift, no dependencies.
        .target(name: "WeftInject"),
        // The data plane.
        .target(
            name: "WeftProxy",
            dependencies: [
                "WeftCore", "WeftTelemetry",
                .product(name: "NIOCore", package: "swift-nio"),
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
        // The control plane; filled in by the control-plane work.
        .target(name: "WeftControl", dependencies: ["WeftCore", "WeftProtocol", "WeftIdentity"]),
        .executableTarget(
            name: "weft-proxy",
            dependencies: [
                "WeftProxy", "WeftInject", "WeftCore",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .executableTarget(
            name: "weft-control",
            dependencies: [
                "WeftControl",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .executableTarget(
            name: "weftctl",
            dependencies: [
                "WeftCore",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .testTarget(name: "WeftCoreTests", dependencies: ["WeftCore"]),
        .testTarget(name: "WeftInjectTests", dependencies: ["WeftInject"]),
        .testTarget(name: "WeftTelemetryTests", dependencies: ["WeftTelemetry"]),
        .testTarget(
            name: "WeftProxyTests",
            dependencies: [
                "WeftProxy",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
    ],
    swiftLanguageModes: [.v5]
)
