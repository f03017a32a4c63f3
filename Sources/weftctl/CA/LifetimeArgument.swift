import ArgumentParser

/// A certificate lifetime on the command line: `90s`, `30m`, `24h`, `7d`.
struct LifetimeArgument: ExpressibleByArgument {
    let seconds: Int64

    init(seconds: Int64) {
        self.seconds = seconds
    }

    init?(argument: String) {
        guard let unit = argument.last, let number = Int64(argument.dropLast()), number > 0 else { return nil }
        switch unit {
        case "s": seconds = number
        case "m": seconds = number * 60
        case "h": seconds = number * 3600
        case "d": seconds = number * 86_400
        default: return nil
        }
    }

    var duration: Duration { .seconds(seconds) }

    var defaultValueDescription: String {
        seconds % 3600 == 0 ? "\(seconds / 3600)h" : "\(seconds)s"
    }
}
