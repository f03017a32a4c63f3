import NIOCore
import NIOHPACK

/// An HTTPRoute rule's filters (and a backendRef's header modifiers), compiled once per
/// snapshot: header names lowercased, paths as bytes. Each driver applies them to what it
/// holds: HTTP/1 writes an edited head (only for a request or response a filter changes;
/// others are still forwarded as slices of the bytes received), HTTP/2 edits the HPACK
/// block.
struct RouteFilters: Sendable {
    /// RequestHeaderModifier.
    var requestHeaders: HeaderEdits?
    /// URLRewrite.
    var rewriteHost: String?
    var rewritePath: PathEdit?
    /// ResponseHeaderModifier.
    var responseHeaders: HeaderEdits?
    /// RequestRedirect: the request is answered, never forwarded.
    var redirect: RedirectPlan?
    /// RequestMirror: copies sent to other backends, fire and forget (`MirrorSender`).
    var mirrors: [MirrorPlan] = []

    var editsRequest: Bool { requestHeaders != nil || rewriteHost != nil || rewritePath != nil }
}

/// A header modifier: `set` replaces (or adds), `add` appends, `remove` drops.
struct HeaderEdits: Sendable {
    let set: [(name: String, value: String)]
    let add: [(name: String, value: String)]
    /// Lowercased names whose lines are dropped: those set and those removed.
    let dropped: [[UInt8]]

    init(set: [(String, String)], add: [(String, String)], remove: [String]) {
        self.set = set.map { (name: $0.0, value: $0.1) }
        self.add = add.map { (name: $0.0, value: $0.1) }
        self.dropped = (set.map(\.0) + remove).map { Array($0.lowercased().utf8) }
    }

    /// Whether a field line with this name (any case) is dropped.
    func drops(_ name: UnsafeRawBufferPointer) -> Bool {
        dropped.contains { lowered in
            lowered.count == name.count
                && zip(lowered, name).allSatisfy { $0 == ($1 >= 0x41 && $1 <= 0x5A ? $1 | 0x20 : $1) }
        }
    }

    /// The lines the modifier adds (`set` and `add`), each ending in CRLF.
    func lines() -> String {
        (set + add).map { "\($0.name): \($0.value)\r\n" }.joined()
    }

    func apply(to headers: inout HPACKHeaders) {
        for name in dropped { headers.remove(name: String(decoding: name, as: UTF8.self)) }
        for (name, value) in set { headers.add(name: name.lowercased(), value: value) }
        for (name, value) in add { headers.add(name: name.lowercased(), value: value) }
    }
}

/// ReplaceFullPath or ReplacePrefixMatch.
enum PathEdit: Sendable, Equatable {
    case full(String)
    case prefix(String)

    /// The new path for `path` (without its query), where the rule's PathPrefix match
    /// matched its first `matchedPrefix` bytes.
    func apply(to path: UnsafeRawBufferPointer, matchedPrefix: Int) -> String {
        switch self {
        case .full(let value):
            return value
        case .prefix(let value):
            let rest = String(decoding: path[min(matchedPrefix, path.count)...], as: UTF8.self)
            var result = value
            if result.hasSuffix("/") && rest.hasPrefix("/") { result.removeLast() }
            if !rest.isEmpty && !rest.hasPrefix("/") && !result.hasSuffix("/") { result += "/" }
            result += rest
            return result.isEmpty ? "/" : result
        }
    }
}

/// RequestRedirect, ready to answer with. A class, so a plan outcome carrying it stays one
/// pointer wide.
final class RedirectPlan: Sendable {
    let scheme: String?
    let hostname: String?
    let port: Int?
    let path: PathEdit?
    let status: Int

    init(scheme: String?, hostname: String?, port: Int?, path: PathEdit?, status: Int) {
        self.scheme = scheme
        self.hostname = hostname
        self.port = port
        self.path = path
        self.status = status
    }

    /// The `Location` for a request: unset parts come from the request (its Host, path and
    /// query; its port, or the scheme's well-known port when the scheme changes), and the
    /// port is left out where it is the scheme's default (Gateway API, HTTPRequestRedirectFilter).
    /// - Parameters:
    ///   - authority: the request's Host (or `:authority`).
    ///   - requestPort: the port the request was sent to (the Service port).
    func location<View: RequestHeadView>(for view: View, authority: String, requestPort: Int, matchedPrefix: Int)
        -> String
    {
        let scheme = self.scheme ?? "http"
        var host = authority
        var authorityPort: Int?
        if let colon = host.lastIndex(of: ":"), !host.hasSuffix("]"), let port = Int(host[host.index(after: colon)...])
        {
            authorityPort = port
            host = String(host[..<colon])
        }
        if let hostname { host = hostname }
        let port: Int?
        if let explicit = self.port {
            port = explicit
        } else if self.scheme != nil {
            port = nil
        } else {
            port = authorityPort ?? requestPort
        }
        let path = view.withPath { path in
            self.path.map { $0.apply(to: path, matchedPrefix: matchedPrefix) } ?? String(decoding: path, as: UTF8.self)
        }
        let query = view.withQuery { $0.isEmpty ? "" : "?" + String(decoding: $0, as: UTF8.self) }
        let isDefault = port == nil || (scheme == "http" && port == 80) || (scheme == "https" && port == 443)
        return "\(scheme)://\(host)\(isDefault ? "" : ":\(port!)")\(path)\(query)"
    }
}
