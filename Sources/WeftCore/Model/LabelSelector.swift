/// A Kubernetes label selector: `matchLabels` and `matchExpressions`, all of which must
/// hold. An empty selector selects everything.
public struct LabelSelector: Hashable, Sendable {
    public struct Requirement: Hashable, Sendable {
        public enum Operator: String, Hashable, Sendable {
            case `in` = "In"
            case notIn = "NotIn"
            case exists = "Exists"
            case doesNotExist = "DoesNotExist"
        }
        public let key: String
        public let `operator`: Operator
        public let values: [String]

        public init(key: String, `operator`: Operator, values: [String]) {
            self.key = key
            self.`operator` = `operator`
            self.values = values
        }
    }

    public let matchLabels: [String: String]
    public let matchExpressions: [Requirement]

    public static let everything = LabelSelector(matchLabels: [:], matchExpressions: [])

    public var isEmpty: Bool { matchLabels.isEmpty && matchExpressions.isEmpty }

    /// True when every label and expression holds for `labels`.
    public func matches(_ labels: [String: String]) -> Bool {
        for (key, value) in matchLabels where labels[key] != value { return false }
        for requirement in matchExpressions {
            let value = labels[requirement.key]
            switch requirement.operator {
            case .in: if value == nil || !requirement.values.contains(value!) { return false }
            case .notIn: if let value, requirement.values.contains(value) { return false }
            case .exists: if value == nil { return false }
            case .doesNotExist: if value != nil { return false }
            }
        }
        return true
    }

    public init(matchLabels: [String: String], matchExpressions: [Requirement]) {
        self.matchLabels = matchLabels
        self.matchExpressions = matchExpressions
    }
}
