import W3CTraceContext
import XCTest

@testable import WeftTelemetry

final class IncomingTraceTests: XCTestCase {
    private func extract(_ fields: [String: String]) -> IncomingTrace? {
        IncomingTrace.extract { fields[$0] }
    }

    func testW3CTraceparentAndTracestate() throws {
        let trace = try XCTUnwrap(
            extract([
                "traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                "tracestate": " congo=t61rcWkgMzE, rojo=00f067aa0ba902b7 ",
            ]))
        XCTAssertEqual(trace.format, .w3c)
        XCTAssertEqual(trace.traceID.description, "4bf92f3577b34da6a3ce929d0e0e4736")
        XCTAssertEqual(trace.parentSpanID.description, "00f067aa0ba902b7")
        XCTAssertEqual(trace.sampled, true)
        XCTAssertEqual(trace.traceState, "congo=t61rcWkgMzE, rojo=00f067aa0ba902b7", "passed on as received, trimmed")
        let unsampled = try XCTUnwrap(
            extract(["traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"]))
        XCTAssertEqual(unsampled.sampled, false)
        XCTAssertNil(unsampled.traceState)
    }

    func testMalformedTraceparentIsIgnoredNotFatal() {
        for bad in [
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",  // all-zero trace id
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",  // all-zero span id
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",  // short
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",  // 00 with more
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",  // forbidden version
            "00_4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7_01",
            "00-4bf92f3577b34da6a3ce929d0e0e47zz-00f067aa0ba902b7-01",
            "",
        ] {
            XCTAssertNil(extract(["traceparent": bad]), bad)
        }
    }

    func testAFutureVersionIsReadByItsFirst55Characters() throws {
        let trace = try XCTUnwrap(
            extract(["traceparent": "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what-the-future-holds"]))
        XCTAssertEqual(trace.traceID.description, "4bf92f3577b34da6a3ce929d0e0e4736")
        XCTAssertNil(extract(["traceparent": "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x"]))
    }

    func testB3SingleHeader() throws {
        let full = try XCTUnwrap(
            extract(["b3": "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1-05e3ac9a4f6e3b90"]))
        XCTAssertEqual(full.format, .b3Single)
        XCTAssertEqual(full.traceID.description, "80f198ee56343ba864fe8b2a57d3eff7")
        XCTAssertEqual(full.parentSpanID.description, "e457b5a2e4d86bd1")
        XCTAssertEqual(full.sampled, true)
        let deferred = try XCTUnwrap(extract(["b3": "a3ce929d0e0e4736-00f067aa0ba902b7"]))
        XCTAssertEqual(deferred.traceID.description, "0000000000000000a3ce929d0e0e4736", "64-bit ids are left-padded")
        XCTAssertNil(deferred.sampled, "no sampling state: the sampler decides")
        XCTAssertEqual(try XCTUnwrap(extract(["b3": "a3ce929d0e0e4736-00f067aa0ba902b7-d"])).sampled, true)
        XCTAssertEqual(try XCTUnwrap(extract(["b3": "a3ce929d0e0e4736-00f067aa0ba902b7-0"])).sampled, false)
        for bad in ["0", "1", "d", "a3ce929d0e0e4736", "a3ce929d0e0e4736-00f067aa0ba902b7-x", "a3ce-00f067aa0ba902b7"] {
            XCTAssertNil(extract(["b3": bad]), bad)
        }
    }

    func testB3MultiHeader() throws {
        let trace = try XCTUnwrap(
            extract([
                "x-b3-traceid": "463ac35c9f6413ad48485a3953bb6124", "x-b3-spanid": "a2fb4a1d1a96d312",
                "x-b3-sampled": "1",
            ]))
        XCTAssertEqual(trace.format, .b3Multi)
        XCTAssertEqual(trace.traceID.description, "463ac35c9f6413ad48485a3953bb6124")
        XCTAssertEqual(trace.sampled, true)
        XCTAssertEqual(
            try XCTUnwrap(
                extract([
                    "x-b3-traceid": "463ac35c9f6413ad", "x-b3-spanid": "a2fb4a1d1a96d312", "x-b3-sampled": "false",
                ])
            ).sampled, false)
        XCTAssertEqual(
            try XCTUnwrap(
                extract([
                    "x-b3-traceid": "463ac35c9f6413ad", "x-b3-spanid": "a2fb4a1d1a96d312", "x-b3-sampled": "0",
                    "x-b3-flags": "1",
                ])
            ).sampled, true, "debug means sampled")
        XCTAssertNil(extract(["x-b3-traceid": "463ac35c9f6413ad"]), "no span id")
        XCTAssertNil(
            extract(["x-b3-traceid": "463ac35c9f6413ad", "x-b3-spanid": "a2fb4a1d1a96d312", "x-b3-sampled": "yes"]))
    }

    func testW3CWinsThenB3SingleThenMulti() throws {
        let all = [
            "traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "b3": "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1",
            "x-b3-traceid": "463ac35c9f6413ad48485a3953bb6124", "x-b3-spanid": "a2fb4a1d1a96d312",
        ]
        XCTAssertEqual(extract(all)?.format, .w3c)
        var rest = all
        rest["traceparent"] = "garbage"
        XCTAssertEqual(extract(rest)?.format, .b3Single, "a malformed traceparent falls through")
        rest["b3"] = nil
        XCTAssertEqual(extract(rest)?.format, .b3Multi)
        XCTAssertNil(extract([:]))
    }

    func testSamplerFollowsTheParentAndOtherwiseTheTraceID() {
        let id = { (low: UInt64) -> TraceID in
            let b = withUnsafeBytes(of: low.bigEndian) { Array($0) }
            return TraceID(bytes: (1, 2, 3, 4, 5, 6, 7, 8, b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]))
        }
        let half = TraceSampler(ratio: 0.5)
        XCTAssertTrue(half.isSampled(id(1), parent: nil))
        XCTAssertFalse(half.isSampled(id(UInt64.max - 1), parent: nil))
        XCTAssertTrue(half.isSampled(id(UInt64.max - 1), parent: true), "the caller's decision is followed")
        XCTAssertFalse(half.isSampled(id(1), parent: false))
        XCTAssertTrue(TraceSampler(ratio: 1).isSampled(id(UInt64.max), parent: nil))
        XCTAssertFalse(TraceSampler(ratio: 0).isSampled(id(0), parent: nil))
        // About the ratio over many ids.
        var generator = SystemRandomNumberGenerator()
        let sampled = (0..<20_000).filter { _ in
            TraceSampler(ratio: 0.25).isSampled(TraceID.random(using: &generator), parent: nil)
        }.count
        XCTAssertEqual(Double(sampled) / 20_000, 0.25, accuracy: 0.02)
    }
}
