import NIOCore
import XCTest

@testable import WeftProxy

final class LoopBalancerTests: XCTestCase {
    private func endpoints(_ count: Int, now: UInt64 = 0) -> [LoopEndpoint] {
        (0..<count).map { i in
            let address = try! SocketAddress(ipAddress: "10.0.0.\(i + 1)", port: 8080)
            return LoopEndpoint(
                target: EndpointTarget(address: address, key: AddressKey(address)!, identity: nil), now: now)
        }
    }

    func testTheFasterEndpointGetsMostRequests() {
        let list = endpoints(2)
        let balancer = LoopBalancer(endpoints: list)
        var random = LoopRandom(seed: 1)
        var now: UInt64 = 1_000_000_000
        var counts = [0, 0]
        for _ in 0..<1000 {
            let picked = balancer.pick(now: now, random: &random)!
            let index = picked === list[0] ? 0 : 1
            counts[index] += 1
            picked.requestStarted()
            now += 1_000_000
            // Endpoint 0 answers in 1 ms, endpoint 1 in 50 ms.
            picked.requestFinished(rttNanoseconds: index == 0 ? 1_000_000 : 50_000_000, now: now, failed: false)
        }
        XCTAssertGreaterThan(counts[0], 900, "\(counts)")
    }

    func testEjectedEndpointsAreSkippedAndAllEjectedIsPanicMode() {
        let list = endpoints(3)
        let balancer = LoopBalancer(endpoints: list)
        var random = LoopRandom(seed: 2)
        for _ in 0..<EndpointHealth.threshold {
            list[0].requestStarted()
            list[0].requestFinished(rttNanoseconds: 1000, now: 10, failed: true)
        }
        for _ in 0..<200 { XCTAssertFalse(balancer.pick(now: 20, random: &random)! === list[0]) }
        for endpoint in list[1...] {
            for _ in 0..<EndpointHealth.threshold {
                endpoint.requestStarted()
                endpoint.requestFinished(rttNanoseconds: 1000, now: 10, failed: true)
            }
        }
        // Every endpoint ejected: still picks (all of them, not one).
        var seen = Set<ObjectIdentifier>()
        for _ in 0..<200 { seen.insert(ObjectIdentifier(balancer.pick(now: 20, random: &random)!)) }
        XCTAssertEqual(seen.count, 3)
        // After the backoff an ejected endpoint is picked again (its probe).
        var probed = false
        for _ in 0..<200
        where balancer.pick(now: 20 + EndpointHealth.baseBackoffNanoseconds, random: &random) === list[0] {
            probed = true
        }
        XCTAssertTrue(probed)
    }

    func testAvoidedEndpointIsPickedOnlyWhenAlone() {
        let list = endpoints(2)
        var random = LoopRandom(seed: 3)
        let balancer = LoopBalancer(endpoints: list)
        for _ in 0..<100 { XCTAssertTrue(balancer.pick(now: 0, random: &random, avoiding: list[0]) === list[1]) }
        let single = LoopBalancer(endpoints: [list[0]])
        XCTAssertTrue(single.pick(now: 0, random: &random, avoiding: list[0]) === list[0])
        XCTAssertNil(LoopBalancer(endpoints: []).pick(now: 0, random: &random))
    }
}
