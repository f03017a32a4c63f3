/// weft.dev/v1alpha1 AuthorizationPolicy: who may call the selected pods, and how.
///
/// Shaped like Istio's AuthorizationPolicy with Linkerd's identity-first vocabulary:
/// `selector` picks pods in the policy's namespace, `action` is ALLOW or DENY, and each
/// rule matches when one of its `from` entries and one of its `to` entries match (an
/// absent list matches anything). Within an entry every given field must match, and each
/// field lists alternatives. Evaluation is `InboundAuthorizer`'s (WeftProtocol), on the
/// wire form the proxy receives: any matching DENY rule denies; otherwise, if ALLOW
/// policies select the pod, one of their rules must match; otherwise the call is allowed.
public struct AuthorizationPolicy: Hashable, Sendable {
    public enum Action: String, Hashable, Sendable {
        case allow = "ALLOW"
        case deny = "DENY"
    }

    /// A source: every non-empty field must match.
    public struct Source: Hashable, Sendable {
        /// SPIFFE IDs; an entry may end in `*` (prefix match), and `*` alone matches any
        /// authenticated peer.
        public let identities: [String]
        public let namespaces: [String]
        /// Service accounts as `name` (in the policy's namespace) or `namespace/name`,
        /// stored resolved as `namespace/name`.
        public let serviceAccounts: [String]

        /// Source networks (CIDRs; a bare address is a /32 or /128), matched against the
        /// caller's IP address: the only field a caller without mesh TLS can match.
        public let ipBlocks: [CIDR]

        public init(identities: [String], namespaces: [String], serviceAccounts: [String], ipBlocks: [CIDR] = []) {
            self.identities = identities
            self.namespaces = namespaces
            self.serviceAccounts = serviceAccounts
            self.ipBlocks = ipBlocks
        }
    }

    /// An operation: every non-empty field must match.
    public struct Operation: Hashable, Sendable {
        /// The pod's own (target) ports.
        public let ports: [Int]
        /// HTTP methods, upper case.
        public let methods: [String]
        /// Exact paths, or a prefix ending in `*` (`/api/*`).
        public let paths: [String]

        public init(ports: [Int], methods: [String], paths: [String]) {
            self.ports = ports
            self.methods = methods
            self.paths = paths
        }
    }

    public struct Rule: Hashable, Sendable {
        /// Empty matches any source.
        public let from: [Source]
        /// Empty matches any operation.
        public let to: [Operation]

        public init(from: [Source], to: [Operation]) {
            self.from = from
            self.to = to
        }
    }

    public let metadata: ObjectMeta
    /// Pods of the policy's namespace it applies to; empty selects them all.
    public let selector: LabelSelector
    /// ALLOW when the manifest does not say.
    public let action: Action
    /// An ALLOW policy without rules allows nothing; a DENY policy without rules denies
    /// nothing (Istio's semantics).
    public let rules: [Rule]

    public init(metadata: ObjectMeta, selector: LabelSelector, action: Action, rules: [Rule]) {
        self.metadata = metadata
        self.selector = selector
        self.action = action
        self.rules = rules
    }
}
