// swift-tools-version:6.1
import PackageDescription

// Micro-benchmarks of Weft's libraries with ordo-one/benchmark.
// Run: cd bench/micro && swift package --allow-writing-to-package-directory benchmark
let package = Package(
    name: "weft-micro-benchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "weft", path: "../.."),
        .package(url: "https://github.com/ordo-one/benchmark", from: "1.38.1", traits: ["MallocInterposer"]),
    ],
    targets: [
        .executableTarget(
            name: "IdentityBenchmarks",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "WeftIdentity", package: "weft"),
            ],
            path: "Benchmarks/IdentityBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
        .executableTarget(
            name: "RoutingBenchmarks",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "WeftProxy", package: "weft"),
            ],
            path: "Benchmarks/RoutingBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
    ]
)
