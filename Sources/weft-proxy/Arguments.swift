import ArgumentParser
import NIOCore
import WeftInject

/// A duration flag: `10s`, `500ms`, `2m`, or a plain number of seconds.
struct DurationArgument: ExpressibleByArgument, CustomStringConvertible {
    let milliseconds: Int64

    init(seconds: Int) { milliseconds = Int64(seconds) * 1000 }

    init?(argument: String) {
        let units: [(String, Int64)] = [("ms", 1), ("s", 1000), ("m", 60_000), ("h", 3_600_000)]
        var number = Substring(argument)
        var scale: Int64 = 1000
        for (suffix, multiplier) in units where argument.hasSuffix(suffix) {
            number = argument.dropLast(suffix.count)
            scale = multiplier
            break
        }
        guard let value = Double(number), value >= 0, value * Double(scale) < 1e12 else { return nil }
        milliseconds = Int64(value * Double(scale))
    }

    var amount: TimeAmount { .milliseconds(milliseconds) }

    var description: String {
        milliseconds % 1000 == 0 ? "\(milliseconds / 1000)s" : "\(milliseconds)ms"
    }

    static var defaultCompletionKind: CompletionKind { .default }
}

/// A comma-separated list of ports, e.g. `25,587,3306`; empty means none. Parsed by
/// the same strict parser as `init`'s port lists.
struct PortList: ExpressibleByArgument, CustomStringConvertible {
    let ports: [Int]

    init(_ ports: [Int]) { self.ports = ports }

    init?(argument: String) {
        guard let ports = try? FlagValueParser.portList(argument, flag: "--opaque-ports") else { return nil }
        self.ports = ports.map(Int.init)
    }

    var description: String { ports.map(String.init).joined(separator: ",") }
}
