import Benchmark
import WeftProxy

/// The per-request decisions of the outbound sidecar (issue 10): a P2C pick over 1,000
/// endpoints, and route matching over 100 rules for a request only the last rule takes
/// (the worst case: every rule is tried), on an HTTP/1 head's bytes and an HTTP/2 HPACK block.
let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.throughput, .wallClock, .instructions, .mallocCountTotal],
        warmupIterations: 1000,
        scalingFactor: .kilo,
        maxDuration: .seconds(3),
        maxIterations: 100_000
    )

    Benchmark("P2C pick over 1,000 endpoints") { (benchmark: Benchmark, balancer: BalancerPickBenchmark) in
        for _ in benchmark.scaledIterations { blackHole(balancer.pick()) }
    } setup: {
        BalancerPickBenchmark(endpoints: 1000)
    }

    Benchmark("route match, 100 rules, HTTP/1 head") { (benchmark: Benchmark, table: RouteMatchBenchmark) in
        for _ in benchmark.scaledIterations { blackHole(table.matchHTTP1()) }
    } setup: {
        RouteMatchBenchmark(rules: 100)
    }

    Benchmark("route match, 100 rules, HTTP/2 HPACK") { (benchmark: Benchmark, table: RouteMatchBenchmark) in
        for _ in benchmark.scaledIterations { blackHole(table.matchHTTP2()) }
    } setup: {
        RouteMatchBenchmark(rules: 100)
    }
}
