import Glibc
import WeftProtocol

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// A blocking HTTP/1.1 GET against the control plane's API port; enough for a CLI and no
/// event loop to start.
struct ControlPlaneHTTP {
    let host: String
    let port: Int
    var timeoutSeconds = 5

    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    /// - Returns: the status code and body.
    /// - Throws: `Failure` naming the address when it cannot connect or the answer is not HTTP.
    func get(_ path: String) throws -> (status: Int, body: [UInt8]) {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var results: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, String(port), &hints, &results) == 0, let first = results else {
            throw Failure(description: "\(host):\(port): cannot resolve \(host)")
        }
        defer { freeaddrinfo(results) }
        let fd = socket(first.pointee.ai_family, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw Failure(description: "socket: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var timeout = timeval(tv_sec: timeoutSeconds, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        guard connect(fd, first.pointee.ai_addr, first.pointee.ai_addrlen) == 0 else {
            throw Failure(
                description: "control plane at \(host):\(port) is not reachable: \(String(cString: strerror(errno)))")
        }
        let request = Array("GET \(path) HTTP/1.1\r\nHost: \(host)\r\nConnection: close\r\n\r\n".utf8)
        guard write(fd, request, request.count) == request.count else {
            throw Failure(description: "\(host):\(port): write failed: \(String(cString: strerror(errno)))")
        }
        var response: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while response.count < 64 << 20 {
            let n = read(fd, &chunk, chunk.count)
            if n < 0 { throw Failure(description: "\(host):\(port): read failed: \(String(cString: strerror(errno)))") }
            if n == 0 { break }
            response.append(contentsOf: chunk[0..<n])
        }
        let separator: [UInt8] = [13, 10, 13, 10]
        guard let split = response.firstRange(of: separator) else {
            throw Failure(description: "\(host):\(port): the answer is not HTTP")
        }
        let head = String(decoding: response[..<split.lowerBound], as: UTF8.self)
        let statusLine = head.split(separator: "\r\n").first ?? ""
        let parts = statusLine.split(separator: " ")
        guard parts.count >= 2, let status = Int(parts[1]) else {
            throw Failure(description: "\(host):\(port): the answer is not HTTP")
        }
        return (status, Array(response[split.upperBound...]))
    }

    func getJSON<T: Decodable>(_ path: String, as _: T.Type) throws -> T {
        let (status, body) = try get(path)
        guard status == 200 else {
            throw Failure(description: "\(path): HTTP \(status): \(String(decoding: body, as: UTF8.self))")
        }
        do {
            return try JSONDecoder().decode(T.self, from: Data(body))
        } catch {
            throw Failure(description: "\(path): unexpected answer: \(error)")
        }
    }

    /// `GET /api/v1/proxies/<namespace>/<pod>`: one connected proxy's status and the config
    /// the control plane sends it. `proxy` is namespace/pod, or a pod name when only one
    /// connected pod has it.
    /// - Throws: `Failure` naming the connected proxies when none or several match.
    func proxyConfig(_ proxy: String) throws -> [UInt8] {
        var key = proxy
        if !proxy.contains("/") {
            let all = try getJSON("/api/v1/proxies", as: [ProxyStatus].self)
            let matches = all.filter { $0.pod == proxy }
            guard matches.count == 1 else {
                throw Failure(
                    description: matches.isEmpty
                        ? "no connected proxy named \(proxy); connected: \(all.map { "\($0.namespace)/\($0.pod)" }.joined(separator: ", "))"
                        : "\(proxy) is ambiguous: \(matches.map { "\($0.namespace)/\($0.pod)" }.joined(separator: ", "))"
                )
            }
            key = "\(matches[0].namespace)/\(matches[0].pod)"
        }
        let (code, body) = try get("/api/v1/proxies/\(key)")
        guard code == 200 else {
            throw Failure(
                description: String(decoding: body, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines))
        }
        return body
    }
}
