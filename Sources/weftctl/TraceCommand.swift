import ArgumentParser

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// `weftctl trace ID | --last | --slowest [--service S]`: a kept trace as a waterfall, one
/// line per span, and under each span that carries Weft's time split one line per part
/// with its share of the trace (issue 12).
struct TraceCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "trace",
        abstract: "Show a trace the control plane keeps as a waterfall: where the time went, hop by hop.",
        discussion: """
            The trace comes from the control plane's store (spans from the sidecars and from apps \
            that send OTLP to :4318). Each span is a line: its service, name and kind, its duration \
            and a bar placed on the trace's time line. A span with Weft's time split \
            (weft.duration.proxy, .connect, .tls, .upstream, in microseconds) gets a line per part \
            with its share of the whole trace; for a SERVER span the upstream part is the app's own \
            time. -o json prints the trace as OTLP JSON. Exits 1 when no such trace is kept.
            """
    )

    @Argument(help: "The trace id (32 hex digits).")
    var traceID: String?

    @Flag(help: "The most recent trace.")
    var last = false

    @Flag(help: "The slowest trace kept.")
    var slowest = false

    @Option(help: "With --last or --slowest: only traces that passed through this service.")
    var service: String?

    @Option(help: "Width of the bars, in columns.")
    var width = 40

    @OptionGroup var options: ControlPlaneOptions

    func validate() throws {
        let modes = [traceID != nil, last, slowest].filter { $0 }.count
        guard modes == 1 else { throw ValidationError("give a trace id, --last or --slowest (one of them)") }
        guard service == nil || traceID == nil else { throw ValidationError("--service goes with --last or --slowest") }
        guard (10...200).contains(width) else { throw ValidationError("--width must be between 10 and 200") }
        if let traceID, traceID.count != 32 || !traceID.allSatisfy(\.isHexDigit) {
            throw ValidationError("\(traceID) is not a trace id (32 hex digits)")
        }
    }

    func run() throws {
        let http = try options.client()
        var id = traceID?.lowercased()
        if id == nil {
            var query = "order=\(slowest ? "slowest" : "recent")&limit=1"
            if let service {
                query += "&service=\(service.addingPercentEncoding(withAllowedCharacters: .urlQueryAllowed) ?? service)"
            }
            let summaries = try http.getJSON("/api/v1/traces?\(query)", as: [TraceSummary].self)
            guard let first = summaries.first else {
                throw ControlPlaneHTTP.Failure(
                    description: "no trace is kept\(service.map { " for service \($0)" } ?? "")")
            }
            id = first.traceId
        }
        let (status, body) = try http.get("/api/v1/traces/\(id!)")
        guard status == 200 else {
            throw ControlPlaneHTTP.Failure(
                description: String(decoding: body, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines))
        }
        if options.output == .json {
            print(String(decoding: body, as: UTF8.self), terminator: "")
            return
        }
        let data = try JSONDecoder().decode(OTLPTrace.self, from: Data(body))
        print(Waterfall(trace: data, id: id!, width: width).render(), terminator: "")
    }
}

struct TraceSummary: Decodable {
    var traceId: String
}

/// The parts of OTLP JSON the waterfall reads.
struct OTLPTrace: Decodable {
    struct Value: Decodable {
        var stringValue: String?
        var intValue: String?
        var doubleValue: Double?

        var int: Int64? { intValue.flatMap { Int64($0) } ?? doubleValue.map { Int64($0) } }
    }
    struct Attribute: Decodable {
        var key: String
        var value: Value
    }
    struct Resource: Decodable {
        var attributes: [Attribute]?
    }
    struct Status: Decodable {
        var code: Int?
    }
    struct Span: Decodable {
        var spanId: String
        var parentSpanId: String?
        var name: String
        var kind: Int?
        var startTimeUnixNano: String
        var endTimeUnixNano: String
        var attributes: [Attribute]?
        var status: Status?
    }
    struct ScopeSpans: Decodable {
        var spans: [Span]?
    }
    struct ResourceSpans: Decodable {
        var resource: Resource?
        var scopeSpans: [ScopeSpans]?
    }
    var resourceSpans: [ResourceSpans]
}

/// The text waterfall of one trace.
struct Waterfall {
    struct Row {
        var span: OTLPTrace.Span
        var service: String
        var start: UInt64
        var end: UInt64
        var depth = 0
    }

    let rows: [Row]
    let id: String
    let width: Int
    let start: UInt64
    let end: UInt64

    init(trace: OTLPTrace, id: String, width: Int) {
        var flat: [Row] = []
        for resource in trace.resourceSpans {
            let service =
                resource.resource?.attributes?.first { $0.key == "service.name" }?.value.stringValue ?? "?"
            for scope in resource.scopeSpans ?? [] {
                for span in scope.spans ?? [] {
                    let s = UInt64(span.startTimeUnixNano) ?? 0
                    let e = max(UInt64(span.endTimeUnixNano) ?? s, s)
                    flat.append(Row(span: span, service: service, start: s, end: e))
                }
            }
        }
        // Depth-first from the roots (spans whose parent is not in the trace), children by start.
        let ids = Set(flat.map(\.span.spanId))
        let children = Dictionary(grouping: flat.indices) { flat[$0].span.parentSpanId ?? "" }
        var ordered: [Row] = []
        var seen = Set<Int>()
        func visit(_ index: Int, depth: Int) {
            guard seen.insert(index).inserted else { return }
            var row = flat[index]
            row.depth = depth
            ordered.append(row)
            for child in (children[row.span.spanId] ?? []).sorted(by: { flat[$0].start < flat[$1].start }) {
                visit(child, depth: depth + 1)
            }
        }
        let roots = flat.indices.filter { !ids.contains(flat[$0].span.parentSpanId ?? "") }
            .sorted { flat[$0].start < flat[$1].start }
        for root in roots { visit(root, depth: 0) }
        for index in flat.indices where !seen.contains(index) { visit(index, depth: 0) }
        rows = ordered
        self.id = id
        self.width = width
        start = flat.map(\.start).min() ?? 0
        end = flat.map(\.end).max() ?? 0
    }

    static let kinds = [1: "INTERNAL", 2: "SERVER", 3: "CLIENT", 4: "PRODUCER", 5: "CONSUMER"]

    func render() -> String {
        let total = max(end - start, 1)
        let services = Set(rows.map(\.service))
        let error = rows.contains { $0.span.status?.code == 2 }
        var out =
            "trace \(id) · \(rows.count) span\(rows.count == 1 ? "" : "s") · \(services.count) service\(services.count == 1 ? "" : "s") · \(Self.ms(total))\(error ? " · error" : "")\n"
        let labels = rows.map { row -> String in
            let kind = row.span.kind.flatMap { Self.kinds[$0] }.map { " (\($0))" } ?? ""
            return String(repeating: "  ", count: row.depth) + "\(row.service)  \(row.span.name)\(kind)"
        }
        let labelWidth = min(max(labels.map(\.count).max() ?? 0, 20), 60)
        for (row, label) in zip(rows, labels) {
            let offset = Int((Double(row.start - start) / Double(total) * Double(width)).rounded(.down))
            let length = max(1, Int((Double(row.end - row.start) / Double(total) * Double(width)).rounded()))
            let bar =
                String(repeating: " ", count: min(offset, width - 1))
                + String(repeating: "█", count: min(length, width - min(offset, width - 1)))
            let mark = row.span.status?.code == 2 ? " ✘" : ""
            out +=
                Self.pad(String(label.prefix(labelWidth)), labelWidth) + "  "
                + Self.pad(Self.ms(row.end - row.start), 10, right: true) + "  " + Self.pad(bar, width) + mark + "\n"
            // Weft's time split, in microseconds, as shares of the whole trace.
            let parts: [(String, String)] = [
                ("weft.duration.proxy", "proxy"), ("weft.duration.connect", "connect"), ("weft.duration.tls", "tls"),
                ("weft.duration.upstream", row.span.kind == 2 ? "app" : "upstream"),
            ]
            for (key, name) in parts {
                guard let micros = row.span.attributes?.first(where: { $0.key == key })?.value.int else { continue }
                let nanos = UInt64(max(micros, 0)) * 1000
                let share = Double(nanos) / Double(total) * 100
                out +=
                    Self.pad(String(repeating: "  ", count: row.depth + 1) + "· " + name, labelWidth) + "  "
                    + Self.pad(Self.ms(nanos), 10, right: true) + "  " + String(format: "%5.1f%%", share) + "\n"
            }
        }
        return out
    }

    static func ms(_ nanos: UInt64) -> String {
        let millis = Double(nanos) / 1_000_000
        return millis >= 100 ? String(format: "%.0f ms", millis) : String(format: "%.2f ms", millis)
    }

    static func pad(_ text: String, _ width: Int, right: Bool = false) -> String {
        let gap = String(repeating: " ", count: max(0, width - text.count))
        return right ? gap + text : text + gap
    }
}
