/// Strict parsers for the values of `weft-proxy init` flags.
///
/// Every failure is a `RedirectError` with code `.invalidFlag` that names the flag and quotes
/// the bad value, because the operator reads it in an init container's log, far from the YAML
/// that set it.
public enum FlagValueParser {
    /// Parses a plain decimal number: ASCII digits only, no sign, no leading zero, at most `max`.
    ///
    /// - Returns: the value, or `nil` when the text is not such a number.
    public static func decimal(_ text: Substring, max: Int) -> Int? {
        guard !text.isEmpty, text.utf8.count <= 10, text.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }),
            text == "0" || !text.hasPrefix("0"), let value = Int(text), value <= max
        else { return nil }
        return value
    }

    /// Parses a TCP port, 1-65535.
    ///
    /// - Throws: `RedirectError.invalidFlag` naming `flag` and the value.
    public static func port(_ text: String, flag: String) throws(RedirectError) -> UInt16 {
        try port(Substring(text), flag: flag, in: nil)
    }

    /// Parses a comma-separated list of TCP ports, such as `8080, 9090`.
    ///
    /// Blanks around entries are ignored and an empty (or blank) text is an empty list; an empty
    /// entry (`80,,90`) is an error. Duplicates are dropped, order is kept.
    /// - Throws: `RedirectError.invalidFlag` naming `flag`, the bad entry and the whole list.
    public static func portList(_ text: String, flag: String) throws(RedirectError) -> [UInt16] {
        var ports: [UInt16] = []
        for entry in try entries(text, flag: flag) {
            let port = try port(entry, flag: flag, in: text)
            if !ports.contains(port) { ports.append(port) }
        }
        return ports
    }

    /// Parses a comma-separated list of CIDRs of either family, such as `10.0.0.0/8,fd00::/8`.
    ///
    /// Same list rules as `portList(_:flag:)`; see `CIDR` for what an entry may be.
    /// - Throws: `RedirectError.invalidFlag` naming `flag`, the bad entry and why.
    public static func cidrList(_ text: String, flag: String) throws(RedirectError) -> [CIDR] {
        var cidrs: [CIDR] = []
        for entry in try entries(text, flag: flag) {
            do {
                let cidr = try CIDR(parsing: String(entry))
                if !cidrs.contains(cidr) { cidrs.append(cidr) }
            } catch {
                throw .invalidFlag(flag, value: String(entry), in: text, problem: error.reason)
            }
        }
        return cidrs
    }

    /// Parses a numeric user or group ID, 0-4294967294 (4294967295 is the "no ID" value `-1`).
    ///
    /// - Throws: `RedirectError.invalidFlag` naming `flag` and the value.
    public static func id(_ text: String, flag: String) throws(RedirectError) -> UInt32 {
        let trimmed = trimmed(Substring(text))
        guard let value = decimal(trimmed, max: Int(UInt32.max) - 1) else {
            throw .invalidFlag(flag, value: text, in: nil, problem: "must be a numeric ID from 0 to 4294967294")
        }
        return UInt32(value)
    }

    private static func port(_ text: Substring, flag: String, in list: String?) throws(RedirectError) -> UInt16 {
        guard let value = decimal(trimmed(text), max: 65535), value > 0 else {
            throw .invalidFlag(flag, value: String(text), in: list, problem: "must be a port number from 1 to 65535")
        }
        return UInt16(value)
    }

    private static func entries(_ text: String, flag: String) throws(RedirectError) -> [Substring] {
        if trimmed(Substring(text)).isEmpty { return [] }
        let entries = text.split(separator: ",", omittingEmptySubsequences: false).map(trimmed)
        if entries.contains(where: \.isEmpty) {
            throw .invalidFlag(flag, value: text, in: nil, problem: "has an empty entry in the comma-separated list")
        }
        return entries
    }

    private static func trimmed(_ text: Substring) -> Substring {
        let isBlank: (Character) -> Bool = { $0 == " " || $0 == "\t" }
        guard let first = text.firstIndex(where: { !isBlank($0) }) else { return "" }
        let last = text.lastIndex(where: { !isBlank($0) })!
        return text[first...last]
    }
}
