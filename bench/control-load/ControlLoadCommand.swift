import ArgumentParser
import Foundation
import NIOCore
import NIOPosix
import NIOSSL
import WeftCore
import WeftIdentity
import WeftProtocol

/// `weft-control-load`: many simulated sidecars against one `weft-control` (issue 4).
///
/// Phases, each bounded in time: make a key and CSR per connection (not timed with the
/// rest); open N TLS 1.3 connections with at most `--concurrency` handshakes in flight,
/// each doing hello → identity → config → ack; then `--rounds` times rewrite
/// `--change-file` with a new endpoint set for `--change-service` (which every connection
/// subscribes to) and time, per connection, when the delta carrying it arrived and when
/// its ack was flushed, counting from just before the write.
@main
struct ControlLoadCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "weft-control-load",
        abstract: "Open N simulated sidecars against weft-control and time config propagation (bench/control.sh)."
    )

    @Option(help: "The push port's address.") var host = "127.0.0.1"
    @Option(help: "The push port.") var port = MeshDefaults.controlPushPort
    @Option(help: "Simulated sidecars (connections).") var connections = 1000
    @Option(help: "Handshakes (hello to acked config) in flight at once.") var concurrency = 200
    @Option(help: "Event-loop threads.") var threads = 2
    @Option(help: "PEM trust bundle the server's chain must verify against (`weftctl ca init`'s bundle.crt).")
    var trustBundle: String
    @Option(help: "File holding the shared bootstrap token.") var tokenFile: String
    @Option(help: "Trust domain of the CSRs.") var trustDomain = MeshDefaults.trustDomain
    @Option(help: "Namespace of the simulated pods (pods are load-<i>).") var namespace = "load"
    @Option(help: "Service account of the simulated pods.") var serviceAccount = "load"
    @Option(help: "Services each sidecar subscribes to in its hello: <namespace>/<prefix>0 …")
    var subscriptions = 10
    @Option(help: "Name prefix of those Services.") var servicePrefix = "svc-"
    @Option(help: "Seconds a connection may take from connect to acked config.") var connectTimeout = 60
    @Option(help: "The YAML file to rewrite each round (an EndpointSlice of --change-service).")
    var changeFile: String?
    @Option(help: "The Service whose endpoints change, namespace/name; every sidecar subscribes to it.")
    var changeService = "load/svc-0"
    @Option(help: "Endpoints in each round's set.") var changeEndpoints = 3
    @Option(help: "Change rounds.") var rounds = 5
    @Option(help: "Seconds a round may take before it reports who is missing.") var roundTimeout = 30
    @Option(help: "Milliseconds to wait between rounds.") var pauseMs = 1000
    @Option(help: "weft-control's pid, to read its VmRSS before, after connecting and after the rounds.")
    var controlPid: Int?
    @Option(help: "Shell command to run while all connections are still open, after the rounds.")
    var runAfter: String?
    @Option(help: "Write the results as JSON here.") var jsonOut: String?

    func validate() throws {
        guard connections > 0, concurrency > 0, (1...8).contains(threads), subscriptions > 0 else {
            throw ValidationError("--connections, --concurrency, --subscriptions must be > 0; --threads 1-8")
        }
        let parts = changeService.split(separator: "/")
        guard parts.count == 2 else {
            throw ValidationError("--change-service: \(changeService) is not namespace/name")
        }
    }

    func run() async throws {
        // As in weft-control: large buffers are mmapped, so their untouched pages are free.
        _ = loadMallopt(-3, 16 * 1024)
        var results = LoadResults(connections: connections)
        let token = try String(contentsOfFile: tokenFile, encoding: .utf8)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        let services = (0..<subscriptions).map { "\(namespace)/\(servicePrefix)\($0)" }
        guard services.contains(changeService) else {
            throw ValidationError("--change-service \(changeService) is not among the subscriptions \(services)")
        }

        // 1. Keys and CSRs, before anything is timed against the server.
        let keygenStart = ContinuousClock.now
        let csrs = try await Self.makeCSRs(
            count: connections,
            identity: SPIFFEID(
                trustDomain: trustDomain, namespace: namespace, serviceAccount: serviceAccount), threads: threads)
        results.keygenSeconds = Self.seconds(ContinuousClock.now - keygenStart)
        progress("made \(connections) P-256 keys and CSRs in \(Self.fixed(results.keygenSeconds, 2)) s")
        let hellos = (0..<connections).map { i in
            Hello(
                proxyVersion: "weft-control-load",
                node: Node(
                    pod: "load-\(i)", namespace: namespace, serviceAccount: serviceAccount,
                    ip: "10.250.\(i / 250).\(i % 250 + 1)", labels: ["app": "load"]),
                token: token, csr: csrs[i], subscriptions: services)
        }

        let group = MultiThreadedEventLoopGroup(numberOfThreads: threads)
        let run = LoadRun(changeService: changeService, connections: connections)
        results.rssBeforeKB = controlPid.flatMap { Self.status(pid: $0, field: "VmRSS") }

        // 2. Connect phase.
        let tls = try Self.tlsContext(bundlePath: trustBundle)
        let connectStart = ContinuousClock.now
        var channels: [any Channel] = []
        var connectLatencies: [UInt64] = []
        var failures: [String] = []
        try await withThrowingTaskGroup(of: ConnectOutcome.self) { tasks in
            var next = 0
            for _ in 0..<min(concurrency, connections) {
                let i = next
                next += 1
                tasks.addTask { await self.connect(i, hello: hellos[i], tls: tls, group: group, run: run) }
            }
            while let outcome = try await tasks.next() {
                switch outcome {
                case .connected(let channel, let nanos):
                    channels.append(channel)
                    connectLatencies.append(nanos)
                case .failed(let reason):
                    failures.append(reason)
                }
                if (channels.count + failures.count) % 1000 == 0 {
                    progress("\(channels.count) connected, \(failures.count) failed")
                }
                if next < connections {
                    let i = next
                    next += 1
                    tasks.addTask { await self.connect(i, hello: hellos[i], tls: tls, group: group, run: run) }
                }
            }
        }
        results.connectSeconds = Self.seconds(ContinuousClock.now - connectStart)
        results.connected = channels.count
        results.connectFailures = failures.count
        results.firstConnectFailures = Array(failures.prefix(5))
        connectLatencies.sort()
        results.connectP50Ms = Self.percentile(connectLatencies, 0.50).map(Self.ms)
        results.connectP99Ms = Self.percentile(connectLatencies, 0.99).map(Self.ms)
        progress(
            "connect phase: \(channels.count)/\(connections) in \(Self.fixed(results.connectSeconds, 2)) s; "
                + "per connection p50 \(Self.fixed(results.connectP50Ms ?? 0, 1)) ms, p99 \(Self.fixed(results.connectP99Ms ?? 0, 1)) ms"
                + (failures.isEmpty ? "" : "; first failure: \(failures[0])"))
        // Let the last acks land and the allocator settle before reading memory.
        try await Task.sleep(for: .seconds(2))
        results.rssConnectedKB = controlPid.flatMap { Self.status(pid: $0, field: "VmRSS") }
        print("READY connected=\(channels.count)")
        fflush(stdout)

        // 3. Change rounds.
        if let changeFile {
            let name = String(changeService.split(separator: "/")[1])
            let namespace = String(changeService.split(separator: "/")[0])
            for number in 1...max(1, rounds) {
                let addresses = (1...changeEndpoints).map { "10.213.\(number % 2 == 1 ? 1 : 2).\($0)" }
                run.begin(round: number, addresses: addresses)
                let yaml = Self.endpointSliceYAML(service: name, namespace: namespace, addresses: addresses)
                let t0 = NIODeadline.now().uptimeNanoseconds
                try Self.replace(changeFile, with: yaml)
                let deadline = ContinuousClock.now + .seconds(roundTimeout)
                while run.completed < channels.count, ContinuousClock.now < deadline {
                    try await Task.sleep(for: .milliseconds(2))
                }
                let (received, acked) = run.times()
                let round = RoundResult(
                    number: number, expected: channels.count, t0: t0, received: received, acked: acked)
                results.rounds.append(round)
                progress(round.summary)
                try await Task.sleep(for: .milliseconds(pauseMs))
            }
            results.summarizeRounds()
        }
        results.rssAfterRoundsKB = controlPid.flatMap { Self.status(pid: $0, field: "VmRSS") }
        if let runAfter { results.runAfterOutput = Self.shell(runAfter) }
        let counters = run.snapshot
        results.nacks = counters.nacks
        results.dropped = counters.dropped
        results.errors = counters.errors
        results.firstErrors = counters.firstErrors
        results.loadToolMaxRSSKB = Self.status(pid: Int(getpid()), field: "VmHWM")
        results.printReport()
        if let jsonOut {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            try encoder.encode(results).write(to: URL(fileURLWithPath: jsonOut))
        }
        // Closing 10k channels one by one is slow and measures nothing; the kernel closes them.
        Foundation.exit(results.isComplete ? 0 : 1)
    }

    private enum ConnectOutcome: Sendable {
        case connected(any Channel, UInt64)
        case failed(String)
    }

    private func connect(
        _ index: Int, hello: Hello, tls: NIOSSLContext, group: MultiThreadedEventLoopGroup, run: LoadRun
    ) async -> ConnectOutcome {
        let loop = group.next()
        let established = loop.makePromise(of: Void.self)
        let start = NIODeadline.now()
        let limit = connectTimeout
        let timer = loop.scheduleTask(in: .seconds(Int64(limit))) {
            established.fail(LoadFailure("connection \(index): no acked config within \(limit) s"))
        }
        defer { timer.cancel() }
        let channel: any Channel
        do {
            channel = try await ClientBootstrap(group: loop)
                .connectTimeout(.seconds(10))
                .channelOption(.socketOption(.tcp_nodelay), value: 1)
                .channelOption(
                    .recvAllocator, value: AdaptiveRecvByteBufferAllocator(minimum: 64, initial: 1024, maximum: 65536)
                )
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandlers([
                            // Chain checked against the bundle; no hostname (the server is named
                            // by its SPIFFE ID, which this tool does not check).
                            NIOSSLClientHandler(context: tls, serverHostname: nil),
                            ByteToMessageHandler(ControlFrameDecoder()),
                            ControlFrameEncoder(),
                            SimulatedSidecar(index: index, hello: hello, run: run, established: established),
                        ])
                    }
                }
                .connect(host: host, port: port)
                .get()
        } catch {
            established.fail(error)
            return .failed("connection \(index): connect: \(error)")
        }
        do {
            try await established.futureResult.get()
        } catch {
            channel.close(promise: nil)
            return .failed("\(error)")
        }
        return .connected(channel, NIODeadline.now().uptimeNanoseconds - start.uptimeNanoseconds)
    }

    // MARK: - Helpers

    static func makeCSRs(count: Int, identity: SPIFFEID, threads: Int) async throws -> [String] {
        let chunks = max(1, threads)
        return try await withThrowingTaskGroup(of: (Int, [String]).self) { tasks in
            for chunk in 0..<chunks {
                tasks.addTask {
                    var out: [String] = []
                    for _ in stride(from: chunk, to: count, by: chunks) {
                        out.append(try WorkloadKey(identity: identity).csrPEM)
                    }
                    return (chunk, out)
                }
            }
            var byChunk = [[String]](repeating: [], count: chunks)
            for try await (chunk, out) in tasks { byChunk[chunk] = out }
            return (0..<count).map { byChunk[$0 % chunks][$0 / chunks] }
        }
    }

    static func tlsContext(bundlePath: String) throws -> NIOSSLContext {
        let roots = try NIOSSLCertificate.fromPEMFile(bundlePath)
        guard !roots.isEmpty else { throw LoadFailure("\(bundlePath): no PEM certificates") }
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.minimumTLSVersion = .tlsv13
        configuration.maximumTLSVersion = .tlsv13
        configuration.trustRoots = .certificates(roots)
        configuration.certificateVerification = .noHostnameVerification
        return try NIOSSLContext(configuration: configuration)
    }

    static func endpointSliceYAML(service: String, namespace: String, addresses: [String]) -> String {
        var yaml = """
            # Rewritten by weft-control-load each round.
            apiVersion: discovery.k8s.io/v1
            kind: EndpointSlice
            metadata:
              name: \(service)-bench
              namespace: \(namespace)
              labels:
                kubernetes.io/service-name: \(service)
            addressType: IPv4
            ports:
            - name: http
              port: 8080
              protocol: TCP
            endpoints:

            """
        for address in addresses {
            yaml += "- addresses: [\(address)]\n  conditions: {ready: true, serving: true, terminating: false}\n"
        }
        return yaml
    }

    /// Writes `text` to a hidden temporary file beside `path` (the config folder ignores
    /// dot files), then renames it into place, so the watcher never sees half a file.
    static func replace(_ path: String, with text: String) throws {
        let url = URL(fileURLWithPath: path)
        let temporary = url.deletingLastPathComponent().appendingPathComponent(".\(url.lastPathComponent).tmp")
        try Data(text.utf8).write(to: temporary)
        guard rename(temporary.path, path) == 0 else {
            throw LoadFailure("cannot rename \(temporary.path) to \(path): errno \(errno)")
        }
    }

    /// A field of /proc/PID/status in kB (VmRSS, VmHWM).
    static func status(pid: Int, field: String) -> Int? {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix(field + ":") {
            return Int(line.dropFirst(field.count + 1).split(whereSeparator: { $0 == " " || $0 == "\t" }).first ?? "")
        }
        return nil
    }

    static func shell(_ command: String) -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", command]
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        do { try process.run() } catch { return "cannot run: \(error)" }
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return String(decoding: data, as: UTF8.self)
    }

    static func percentile(_ sorted: [UInt64], _ p: Double) -> UInt64? {
        guard !sorted.isEmpty else { return nil }
        let rank = Int((p * Double(sorted.count)).rounded(.up))
        return sorted[min(sorted.count, max(1, rank)) - 1]
    }

    static func ms(_ nanos: UInt64) -> Double { Double(nanos) / 1e6 }
    static func seconds(_ d: Duration) -> Double {
        Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
    }
    static func fixed(_ value: Double, _ digits: Int) -> String { String(format: "%.\(digits)f", value) }
}

func progress(_ text: String) {
    FileHandle.standardError.write(Data("weft-control-load: \(text)\n".utf8))
}

/// glibc's `mallopt` (malloc.h is not in the Glibc module); -3 is M_MMAP_THRESHOLD.
@_silgen_name("mallopt")
func loadMallopt(_ parameter: Int32, _ value: Int32) -> Int32
