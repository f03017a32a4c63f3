import ArgumentParser
import Glibc
import WeftInject

/// `weft-proxy init`: installs the iptables rules that send the pod's TCP through the proxy.
///
/// Runs once per pod in the init container, before the app starts, and needs NET_ADMIN. The
/// flags are taken as text and validated by `RedirectConfig(flags:)`, so a bad value is
/// reported with its flag's name before anything runs; the work itself is `RedirectInstaller`.
struct InitCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "init",
        abstract: "Install the iptables rules that redirect the pod's TCP through the proxy.",
        discussion: """
            Adds the nat chains WEFT_INBOUND, WEFT_IN_REDIRECT, WEFT_OUTBOUND and WEFT_OUT_REDIRECT \
            to the current network namespace, for IPv4 and (see --ipv6) IPv6. The nat table is \
            read, our old lines are replaced and the table is restored in one atomic step, so \
            running init again never duplicates rules and leaves other rules alone. Needs root \
            with NET_ADMIN.
            """)

    @Option(
        help: ArgumentHelp("Numeric UID the proxy runs as; its connections are never redirected.", valueName: "uid"))
    var proxyUid = String(RedirectConfig.defaultProxyID)

    @Option(
        help: ArgumentHelp("Numeric GID the proxy runs as; its connections are never redirected.", valueName: "gid"))
    var proxyGid = String(RedirectConfig.defaultProxyID)

    @Option(help: ArgumentHelp("Port the proxy captures inbound TCP on.", valueName: "port"))
    var inboundPort = String(RedirectConfig.defaultInboundPort)

    @Option(help: ArgumentHelp("Port the proxy captures outbound TCP on.", valueName: "port"))
    var outboundPort = String(RedirectConfig.defaultOutboundPort)

    @Option(
        help: ArgumentHelp(
            "The proxy's admin port; always excluded from inbound redirection so kubelet probes reach it.",
            valueName: "port"))
    var adminPort = String(RedirectConfig.defaultAdminPort)

    @Option(
        help: ArgumentHelp(
            "Comma-separated destination ports whose inbound TCP goes straight to the app (default: none).",
            valueName: "ports"))
    var excludeInboundPorts = ""

    @Option(
        help: ArgumentHelp(
            "Comma-separated destination ports whose outbound TCP bypasses the proxy (default: none).",
            valueName: "ports"))
    var excludeOutboundPorts = ""

    @Option(
        help: ArgumentHelp(
            "Comma-separated IPv4/IPv6 CIDRs (e.g. 10.0.0.0/8,fd00::/8) whose outbound TCP bypasses the proxy (default: none).",
            valueName: "cidrs"))
    var excludeOutboundCidrs = ""

    @Option(
        help: ArgumentHelp(
            "IPv6 rules: auto (installed if ip6tables-restore exists and the IPv6 nat table is usable, skipped with a note otherwise), on (failure is an error) or off.",
            valueName: "mode"))
    var ipv6: IPv6Mode = .auto

    @Option(
        help: ArgumentHelp(
            "iptables variant: auto (plain iptables-save/-restore, as the system's alternatives choose), nft (iptables-nft-*) or legacy (iptables-legacy-*).",
            valueName: "mode"))
    var iptablesMode: IptablesMode = .auto

    @Flag(help: "Print the rules in iptables-restore format and change nothing (default: off).")
    var dryRun = false

    @Flag(help: "Remove the redirect chains and jumps of both families instead of installing them (default: off).")
    var cleanup = false

    private var flags: RedirectFlags {
        RedirectFlags(
            proxyUID: proxyUid, proxyGID: proxyGid, inboundPort: inboundPort, outboundPort: outboundPort,
            adminPort: adminPort, excludeInboundPorts: excludeInboundPorts,
            excludeOutboundPorts: excludeOutboundPorts, excludeOutboundCIDRs: excludeOutboundCidrs)
    }

    func validate() throws {
        if dryRun && cleanup { throw ValidationError("--dry-run and --cleanup cannot be combined") }
        do { _ = try RedirectConfig(flags: flags) } catch { throw ValidationError(error.description) }
    }

    func run() throws {
        let config = try RedirectConfig(flags: flags)
        let installer = RedirectInstaller(
            runner: SpawnCommandRunner(), mode: iptablesMode, ipv6: ipv6,
            hasNetAdmin: CapabilitySet.current()?.hasNetAdmin ?? true)
        if dryRun {
            print(installer.dryRun(config), terminator: "")
            return
        }
        do {
            let notes = try cleanup ? installer.cleanup() : installer.apply(config)
            for note in notes { print("weft-proxy init: \(note)") }
        } catch {
            let message = "weft-proxy init: error: \(error)\n"
            _ = message.withCString { write(STDERR_FILENO, $0, strlen($0)) }
            throw ExitCode.failure
        }
    }
}

extension IPv6Mode: ExpressibleByArgument {}
extension IptablesMode: ExpressibleByArgument {}
