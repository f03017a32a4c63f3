import Benchmark
import Foundation
import WeftCore
import WeftIdentity

/// Certificate issuance as the control plane does it per proxy start or renewal:
/// parse and verify a PEM CSR, build and sign a 24 h leaf, serialize it as PEM.
/// The CA and the CSR are made once, outside the measured loop.
let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.throughput, .wallClock, .cpuTotal, .mallocCountTotal],
        warmupIterations: 100,
        maxDuration: .seconds(5),
        maxIterations: 1_000_000
    )

    let identity = SPIFFEID(namespace: "default", serviceAccount: "web")

    Benchmark("issue(csrPEM:) 24h leaf") { (benchmark: Benchmark, setup: (CertificateAuthority, String)) in
        let (authority, csrPEM) = setup
        for _ in benchmark.scaledIterations {
            blackHole(try authority.issue(csrPEM: csrPEM, for: identity))
        }
    } setup: {
        let files = try CertificateAuthority.create()
        return (try CertificateAuthority(files: files), try WorkloadKey(identity: identity).csrPEM)
    }

    // The same, with only the clock measured and 1,000 issuances per sample: no malloc
    // interposer or /proc sampling in the loop, so this is the rate the control plane
    // sees. (The metrics above cost ~10% of an issuance.)
    Benchmark(
        "issue(csrPEM:) 24h leaf, time only",
        configuration: .init(metrics: [.throughput, .wallClock], scalingFactor: .kilo)
    ) { (benchmark: Benchmark, setup: (CertificateAuthority, String)) in
        let (authority, csrPEM) = setup
        for _ in benchmark.scaledIterations {
            blackHole(try authority.issue(csrPEM: csrPEM, for: identity))
        }
    } setup: {
        let files = try CertificateAuthority.create()
        return (try CertificateAuthority(files: files), try WorkloadKey(identity: identity).csrPEM)
    }

    Benchmark("WorkloadKey (P-256 key + CSR)") { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(try WorkloadKey(identity: identity))
        }
    }
}
