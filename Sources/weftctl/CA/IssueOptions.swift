import ArgumentParser
import WeftCore
import WeftIdentity

/// What `weftctl ca issue` and `weftctl ca sign` share: the CA, the identity, the lifetime.
struct IssueOptions: ParsableArguments {
    @Option(name: .long, help: "The CA directory (intermediate.crt, intermediate.key, bundle.crt).")
    var ca: String

    @Option(name: .long, help: "The workload's Kubernetes namespace.")
    var namespace: String

    @Option(name: .long, help: "The workload's Kubernetes service account.")
    var serviceAccount: String

    @Option(name: .long, help: "How long the leaf is valid: a number with s, m, h or d (e.g. 24h).")
    var lifetime: LifetimeArgument = LifetimeArgument(seconds: 86_400)

    @Option(name: .long, help: "The SPIFFE trust domain of the identity.")
    var trustDomain: String = MeshDefaults.trustDomain

    var identity: SPIFFEID {
        SPIFFEID(trustDomain: trustDomain, namespace: namespace, serviceAccount: serviceAccount)
    }

    func authority() throws -> CertificateAuthority {
        try CertificateAuthority(loadingFrom: ca)
    }
}
