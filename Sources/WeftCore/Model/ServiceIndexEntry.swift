/// What a proxy needs to recognise a Service in a destination: its virtual IPs, ports and
/// DNS names. The compact index every proxy gets (DESIGN.md, "Per-proxy state").
public struct ServiceIndexEntry: Hashable, Sendable {
    public let service: ServiceName
    public let clusterIPs: [String]
    public let isHeadless: Bool
    public let ports: [Service.Port]
    /// `name.ns.svc.<cluster domain>`, `name.ns.svc`, `name.ns`.
    public let dnsNames: [String]

    init(_ service: Service, clusterDomain: String) {
        let name = service.metadata.name
        let ns = service.metadata.namespace
        self.service = service.name
        self.clusterIPs = service.clusterIPs
        self.isHeadless = service.isHeadless
        self.ports = service.ports
        self.dnsNames = ["\(name).\(ns).svc.\(clusterDomain)", "\(name).\(ns).svc", "\(name).\(ns)"]
    }
}
