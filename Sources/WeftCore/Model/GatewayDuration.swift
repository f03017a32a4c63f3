/// Gateway API durations (GEP-2257): `10s`, `1h30m`, `500ms`.
///
/// The grammar is `^([0-9]{1,5}(h|m|s|ms)){1,4}$`: one to four parts, each up to five
/// digits and a unit. No sign, no fractions, no spaces. `0s` is valid and, for route
/// timeouts, means "no timeout".
public enum GatewayDuration {
    /// Parses a duration; nil when the text does not follow GEP-2257.
    public static func parse(_ text: String) -> Duration? {
        let bytes = Array(text.utf8)
        var index = 0
        var parts = 0
        var total = Duration.zero
        while index < bytes.count {
            var digits = 0
            var value: Int64 = 0
            while index < bytes.count, bytes[index] >= UInt8(ascii: "0"), bytes[index] <= UInt8(ascii: "9") {
                value = value * 10 + Int64(bytes[index] - UInt8(ascii: "0"))
                digits += 1
                index += 1
            }
            guard (1...5).contains(digits), index < bytes.count else { return nil }
            switch bytes[index] {
            case UInt8(ascii: "h"):
                total += .seconds(value * 3600)
                index += 1
            case UInt8(ascii: "s"):
                total += .seconds(value)
                index += 1
            case UInt8(ascii: "m"):
                if index + 1 < bytes.count, bytes[index + 1] == UInt8(ascii: "s") {
                    total += .milliseconds(value)
                    index += 2
                } else {
                    total += .seconds(value * 60)
                    index += 1
                }
            default:
                return nil
            }
            parts += 1
            guard parts <= 4 else { return nil }
        }
        return parts == 0 ? nil : total
    }

    /// Formats a duration the way Gateway API writes it (`1h30m`, `500ms`, `0s`).
    public static func format(_ duration: Duration) -> String {
        var ms = duration.components.seconds * 1000 + duration.components.attoseconds / 1_000_000_000_000_000
        if ms == 0 { return "0s" }
        var out = ""
        let units: [(Int64, String)] = [(3_600_000, "h"), (60_000, "m"), (1000, "s"), (1, "ms")]
        for (size, unit) in units where ms >= size {
            out += "\(ms / size)\(unit)"
            ms %= size
        }
        return out
    }
}
