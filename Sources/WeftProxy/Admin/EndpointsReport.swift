import NIOCore

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// `GET /debug/endpoints` on the admin port: every balancer of every event loop, with each
/// endpoint's latency estimate, requests in flight and health (ejected until when), so an
/// operator sees why the balancer prefers or avoids an endpoint.
struct EndpointsReport: Codable {
    struct Loop: Codable {
        var version: Int
        var generation: Int
        var backends: [Backend]
    }

    struct Backend: Codable {
        /// `namespace/name:port`.
        var backend: String
        var endpoints: [Endpoint]
    }

    struct Endpoint: Codable {
        var address: String
        var identity: String?
        /// The peak-EWMA latency estimate, decayed to now; nil before its first response.
        var ewmaMs: Double?
        var inFlight: Int
        /// `healthy`, `ejected` or `probing`.
        var state: String
        var consecutiveFailures: Int?
        var ejectedForMs: Int?
    }

    var loops: [Loop]

    /// Collects the report from every loop's `LoopContext`.
    static func collect(pools: UpstreamPools, group: EventLoopGroup, on loop: EventLoop) -> EventLoopFuture<[UInt8]> {
        let parts = group.makeIterator().map { member in
            let context = pools.pools(for: member).mesh
            return member.submit { context.describe() }
        }
        return EventLoopFuture.whenAllSucceed(parts, on: loop).map { loops in
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            return Array((try? encoder.encode(EndpointsReport(loops: loops))) ?? Data("{}".utf8)) + [0x0A]
        }
    }
}

extension LoopContext {
    /// This loop's balancers, for `/debug/endpoints`.
    func describe() -> EndpointsReport.Loop {
        let now = Self.now()
        var backends: [EndpointsReport.Backend] = []
        for (index, plan) in snapshot.backends.enumerated() where index < balancers.count {
            guard case .endpoints = plan.resolution else { continue }
            let endpoints = balancers[index].endpoints.map { endpoint -> EndpointsReport.Endpoint in
                var entry = EndpointsReport.Endpoint(
                    address: WeftProxy.describe(endpoint.target.address), identity: endpoint.target.identity,
                    ewmaMs: endpoint.load.isSampled
                        ? (endpoint.load.cost(now: now) / Double(endpoint.load.pending + 1)) / 1e6 : nil,
                    inFlight: endpoint.load.pending, state: "healthy")
                switch endpoint.health.state {
                case .healthy(let failures): entry.consecutiveFailures = failures
                case .ejected(let until, _):
                    entry.state = "ejected"
                    entry.ejectedForMs = until > now ? Int((until - now) / 1_000_000) : 0
                case .probing: entry.state = "probing"
                }
                return entry
            }
            backends.append(EndpointsReport.Backend(backend: "\(plan.service):\(plan.port)", endpoints: endpoints))
        }
        return EndpointsReport.Loop(version: snapshot.version, generation: snapshot.generation, backends: backends)
    }
}
