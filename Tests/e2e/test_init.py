"""Real checks of `weft-proxy init` (the pod's iptables redirect rules).

Each test runs the real binary inside throwaway network namespaces of its own
(`weft-init-<pid>-<random>`, deleted in a `finally` whatever happens), so the
host's own nat tables are never touched.  Checked: a second run replaces the
rules instead of duplicating them, in nft, legacy and auto mode, IPv4 and IPv6;
`--cleanup` removes them and keeps foreign rules; `--dry-run` changes nothing;
the errors for a missing NET_ADMIN capability, a missing iptables binary and
bad flag values; and that real TCP connections are redirected (or not) as the
rules promise.

Environment:
  WEFT_PROXY_BIN        proxy binary (default <repo>/.build/debug/weft-proxy)
  WEFT_E2E_NO_PROXY=1   harness-only mode of this folder: these tests skip

Needs root (ip netns, iptables).  Run:
  python3 -m pytest -v Tests/e2e/test_init.py
"""

import os
import shutil
import subprocess
import sys
import tempfile
import uuid

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
PROXY_BIN = os.environ.get("WEFT_PROXY_BIN") or os.path.join(REPO, ".build", "debug", "weft-proxy")
NO_PROXY = os.environ.get("WEFT_E2E_NO_PROXY", "") not in ("", "0", "false", "no")

PROXY_UID = 2102
NOBODY = 65534
SAVE = {
    "auto": ("iptables-save", "ip6tables-save"),
    "nft": ("iptables-nft-save", "ip6tables-nft-save"),
    "legacy": ("iptables-legacy-save", "ip6tables-legacy-save"),
}
NET_ADMIN_HINT = ("weft-proxy init needs the NET_ADMIN capability "
                  "(run the init container as root with NET_ADMIN / NET_RAW)")

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root for ip netns and iptables"),
    pytest.mark.skipif(NO_PROXY, reason="runs weft-proxy (WEFT_E2E_NO_PROXY=1)"),
]


def run(argv, check=True, input=None, timeout=60):
    p = subprocess.run(argv, input=input, capture_output=True, text=True, timeout=timeout)
    if check and p.returncode != 0:
        raise AssertionError("%s exited %d\nstdout: %s\nstderr: %s"
                             % (" ".join(argv), p.returncode, p.stdout, p.stderr))
    return p


def in_ns(ns, argv, **kwargs):
    return run(["ip", "netns", "exec", ns] + argv, **kwargs)


# ================================================================ fixtures ==

@pytest.fixture
def proxy_bin():
    if not (os.path.isfile(PROXY_BIN) and os.access(PROXY_BIN, os.X_OK)):
        pytest.fail("weft-proxy binary not found at %s: build it (swift build --product weft-proxy) "
                    "or point WEFT_PROXY_BIN at it" % PROXY_BIN)
    return PROXY_BIN


@pytest.fixture
def make_netns():
    """Creates uniquely named namespaces (loopback up) and always deletes them."""
    created = []

    def make():
        name = "weft-init-%d-%s" % (os.getpid(), uuid.uuid4().hex[:8])
        run(["ip", "netns", "add", name])
        created.append(name)
        run(["ip", "-n", name, "link", "set", "lo", "up"])
        return name

    try:
        yield make
    finally:
        for name in created:
            run(["ip", "netns", "del", name], check=False)


@pytest.fixture
def netns(make_netns):
    return make_netns()


def require_mode(ns, mode):
    """Skips unless both families' save and restore work in `mode` in this kernel."""
    for save in SAVE[mode]:
        restore = save.replace("-save", "-restore")
        for tool in (save, restore):
            if shutil.which(tool) is None:
                pytest.skip("%s is not installed (apt-get install iptables)" % tool)
        probe = in_ns(ns, [save, "-t", "nat"], check=False)
        if probe.returncode == 0:
            # --test parses and checks against the kernel but commits nothing.
            probe = in_ns(ns, [restore, "--test"], input="*nat\nCOMMIT\n", check=False)
        if probe.returncode != 0:
            pytest.skip("the kernel refuses %s mode here (%s): %s"
                        % (mode, save, (probe.stderr or probe.stdout).strip()))


def weft_lines(ns, save):
    out = in_ns(ns, [save, "-t", "nat"]).stdout
    return [line for line in out.splitlines() if "WEFT_" in line]


def init(ns, bin_, *args, check=True):
    return in_ns(ns, [bin_, "init"] + list(args), check=check)


def bin_for(uid, bin_):
    """The binary, or a world-readable copy if `uid` cannot reach it."""
    probe = run(["setpriv", "--reuid=%d" % uid, "--regid=%d" % uid, "--clear-groups", "test", "-x", bin_],
                check=False)
    if probe.returncode == 0:
        return bin_
    folder = tempfile.mkdtemp(prefix="weft-init-bin-")
    os.chmod(folder, 0o755)
    copy = os.path.join(folder, "weft-proxy")
    shutil.copy2(bin_, copy)
    os.chmod(copy, 0o755)
    return copy


# =================================================================== tests ==

EXCLUSIONS = ["--exclude-inbound-ports", "2222", "--exclude-outbound-ports", "5432",
              "--exclude-outbound-cidrs", "10.96.0.0/12,fd00:96::/108"]


@pytest.mark.parametrize("mode", ["auto", "nft", "legacy"])
def test_second_run_replaces_rules_instead_of_duplicating(netns, proxy_bin, mode):
    require_mode(netns, mode)
    save4, save6 = SAVE[mode]
    args = ["--iptables-mode", mode, "--ipv6", "on"] + EXCLUSIONS
    first = init(netns, proxy_bin, *args)
    assert "installed the redirect rules in the IPv4 nat table" in first.stdout
    assert "installed the redirect rules in the IPv6 nat table" in first.stdout
    after_first = (weft_lines(netns, save4), weft_lines(netns, save6))
    init(netns, proxy_bin, *args)
    v4, v6 = weft_lines(netns, save4), weft_lines(netns, save6)
    assert (v4, v6) == after_first
    for lines in (v4, v6):
        assert len(lines) == len(set(lines)), "duplicated rules:\n" + "\n".join(lines)
        assert lines.count("-A PREROUTING -p tcp -j WEFT_INBOUND") == 1
        assert lines.count("-A OUTPUT -p tcp -j WEFT_OUTBOUND") == 1
        for chain in ("WEFT_INBOUND", "WEFT_IN_REDIRECT", "WEFT_OUTBOUND", "WEFT_OUT_REDIRECT"):
            assert ":%s - [0:0]" % chain in lines
        assert "-A WEFT_IN_REDIRECT -p tcp -j REDIRECT --to-ports 15006" in lines
        assert "-A WEFT_OUT_REDIRECT -p tcp -j REDIRECT --to-ports 15001" in lines
        assert lines.index("-A WEFT_OUTBOUND -m owner --uid-owner 2102 -j RETURN") < \
            lines.index("-A WEFT_OUTBOUND -p tcp -j WEFT_OUT_REDIRECT")
        assert "-A WEFT_OUTBOUND -m owner --gid-owner 2102 -j RETURN" in lines
        assert any("--dport 15000 -j RETURN" in line for line in lines)
        assert any("--dport 2222 -j RETURN" in line for line in lines)
        assert any("--dport 5432 -j RETURN" in line for line in lines)
    assert "-A WEFT_OUTBOUND -d 127.0.0.0/8 -j RETURN" in v4
    assert "-A WEFT_OUTBOUND -d 10.96.0.0/12 -j RETURN" in v4
    assert not any("fd00:96::" in line for line in v4)
    assert "-A WEFT_OUTBOUND -d ::1/128 -j RETURN" in v6
    assert "-A WEFT_OUTBOUND -d fd00:96::/108 -j RETURN" in v6
    assert not any("10.96.0.0" in line for line in v6)


def test_rerun_with_other_ports_replaces_the_old_rules(netns, proxy_bin):
    require_mode(netns, "auto")
    init(netns, proxy_bin, "--inbound-port", "16006", "--outbound-port", "16001")
    init(netns, proxy_bin)
    for save in SAVE["auto"]:
        lines = weft_lines(netns, save)
        assert not any("1600" in line for line in lines), lines
        assert lines.count("-A WEFT_IN_REDIRECT -p tcp -j REDIRECT --to-ports 15006") == 1


@pytest.mark.parametrize("mode", ["auto", "nft", "legacy"])
def test_cleanup_removes_ours_keeps_foreign_rules_and_is_repeatable(netns, proxy_bin, mode):
    require_mode(netns, mode)
    save4, save6 = SAVE[mode]
    iptables = save4.replace("-save", "")
    foreign = "-A OUTPUT -d 192.0.2.1/32 -j RETURN"
    in_ns(netns, [iptables, "-t", "nat"] + foreign.split())
    init(netns, proxy_bin, "--iptables-mode", mode, "--ipv6", "on")
    assert weft_lines(netns, save4) and weft_lines(netns, save6)

    out = init(netns, proxy_bin, "--iptables-mode", mode, "--ipv6", "on", "--cleanup").stdout
    assert "removed the redirect rules from the IPv4 nat table" in out
    assert "removed the redirect rules from the IPv6 nat table" in out
    assert weft_lines(netns, save4) == [] and weft_lines(netns, save6) == []
    assert foreign in in_ns(netns, [save4, "-t", "nat"]).stdout

    again = init(netns, proxy_bin, "--iptables-mode", mode, "--ipv6", "on", "--cleanup")
    assert "no redirect rules in the IPv4 nat table" in again.stdout
    assert "no redirect rules in the IPv6 nat table" in again.stdout


def test_ipv6_off_leaves_ipv6_alone(netns, proxy_bin):
    require_mode(netns, "auto")
    init(netns, proxy_bin, "--ipv6", "off")
    assert weft_lines(netns, "iptables-save")
    assert weft_lines(netns, "ip6tables-save") == []


def test_dry_run_prints_both_families_and_changes_nothing(netns, proxy_bin):
    require_mode(netns, "auto")
    out = init(netns, proxy_bin, "--dry-run", "--exclude-outbound-cidrs", "10.0.0.0/8,fd00::/8").stdout
    v4, v6 = out.split("# ip6tables-restore")
    assert v4.startswith("# iptables-restore (IPv4)")
    assert "*nat\n" in v4 and v4.endswith("COMMIT\n") and "-d 10.0.0.0/8" in v4 and "fd00" not in v4
    assert "*nat\n" in v6 and v6.endswith("COMMIT\n") and "-d fd00::/8" in v6 and "10.0.0.0" not in v6
    assert weft_lines(netns, "iptables-save") == [] and weft_lines(netns, "ip6tables-save") == []


@pytest.mark.parametrize("mode", ["nft", "legacy"])
def test_non_root_gets_the_net_admin_hint(netns, proxy_bin, mode):
    require_mode(netns, mode)
    bin_ = bin_for(NOBODY, proxy_bin)
    p = in_ns(netns, ["setpriv", "--reuid=%d" % NOBODY, "--regid=%d" % NOBODY, "--clear-groups",
                      "--inh-caps=-all", bin_, "init", "--iptables-mode", mode], check=False)
    assert p.returncode == 1, p.stderr
    assert NET_ADMIN_HINT in p.stderr
    assert "Permission denied" in p.stderr, "the tool's own message is kept"
    assert p.stderr.count("\n") == 1, "the message is printed once:\n" + p.stderr
    assert weft_lines(netns, SAVE[mode][0]) == []


def test_root_without_net_admin_gets_the_hint(netns, proxy_bin):
    require_mode(netns, "legacy")
    # Legacy iptables only says "unable to initialize table 'nat'" here; the hint comes
    # from the capability check.
    p = in_ns(netns, ["setpriv", "--bounding-set=-all", "--inh-caps=-all", proxy_bin, "init",
                      "--iptables-mode", "legacy"], check=False)
    assert p.returncode == 1, p.stderr
    assert NET_ADMIN_HINT in p.stderr


def test_missing_iptables_binary_says_what_to_install(netns, proxy_bin):
    p = in_ns(netns, ["/usr/bin/env", "PATH=/nonexistent", proxy_bin, "init"], check=False)
    assert p.returncode == 1
    assert p.stderr.strip() == (
        "weft-proxy init: error: iptables-restore not found in PATH: install the iptables package "
        "(Debian: apt-get install iptables) or pass --iptables-mode")


@pytest.mark.parametrize("flag,value", [
    ("--exclude-outbound-cidrs", "10.0.0.0/33"),
    ("--exclude-outbound-cidrs", "1.2.3"),
    ("--inbound-port", "0"),
    ("--outbound-port", "70000"),
    ("--admin-port", "admin"),
    ("--proxy-uid", "abc"),
    ("--exclude-inbound-ports", "80,x"),
])
def test_bad_flag_values_name_the_flag_and_the_value(netns, proxy_bin, flag, value):
    p = init(netns, proxy_bin, flag, value, check=False)
    assert p.returncode == 64, p.stderr
    assert "%s: invalid value '%s'" % (flag, value.split(",")[-1]) in p.stderr, p.stderr
    assert weft_lines(netns, "iptables-save") == []


# A listener that answers each connection with "<local port> <original destination>".
LISTENER = r"""
import select, socket, struct, sys
SO_ORIGINAL_DST = 80
socks = []
for port in map(int, sys.argv[1:]):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", port))
    s.listen(16)
    socks.append(s)
print("ready", flush=True)
while True:
    for s in select.select(socks, [], [])[0]:
        c, _ = s.accept()
        port, ip = struct.unpack("!2xH4s8x", c.getsockopt(socket.SOL_IP, SO_ORIGINAL_DST, 16))
        c.sendall(("%d %s:%d\n" % (c.getsockname()[1], socket.inet_ntoa(ip), port)).encode())
        c.close()
"""


def connect(ns, host, port, uid=None):
    """Connects with bash's /dev/tcp (any UID can run it) and returns the listener's answer."""
    user = ["setpriv", "--reuid=%d" % uid, "--regid=%d" % uid, "--clear-groups"] if uid is not None else []
    script = 'exec 3<>"/dev/tcp/$0/$1" && IFS= read -r line <&3 && echo "$line"'
    p = in_ns(ns, user + ["timeout", "5", "bash", "-c", script, host, str(port)], check=False)
    return p.stdout.strip() if p.returncode == 0 else "failed: " + p.stderr.strip()


def test_connections_are_redirected_as_the_rules_say(make_netns, proxy_bin):
    pod, peer = make_netns(), make_netns()
    require_mode(pod, "auto")
    run(["ip", "-n", pod, "link", "add", "eth0", "type", "veth", "peer", "name", "eth0", "netns", peer])
    for ns, addrs in ((pod, ["10.251.0.2/24"]), (peer, ["10.251.0.1/24", "10.251.0.3/24"])):
        for addr in addrs:
            run(["ip", "-n", ns, "addr", "add", addr, "dev", "eth0"])
        run(["ip", "-n", ns, "link", "set", "eth0", "up"])
    init(pod, proxy_bin, "--exclude-inbound-ports", "2222", "--exclude-outbound-ports", "5432",
         "--exclude-outbound-cidrs", "10.251.0.3/32")
    listener = subprocess.Popen(
        ["ip", "netns", "exec", pod, sys.executable, "-c", LISTENER, "15000", "15001", "15006"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert listener.stdout.readline().strip() == "ready", listener.stderr.read()
        # Outbound: the app's connection lands on 15001 with its original destination.
        assert connect(pod, "10.251.0.1", 80) == "15001 10.251.0.1:80"
        # The proxy's own UID, excluded ports and CIDRs, and loopback are not redirected
        # (nothing listens on the peer, so a connection that really leaves is refused).
        assert connect(pod, "10.251.0.1", 80, uid=PROXY_UID).endswith("Connection refused")
        assert connect(pod, "10.251.0.1", 5432).endswith("Connection refused")
        assert connect(pod, "10.251.0.3", 80).endswith("Connection refused")
        assert connect(pod, "127.0.0.1", 15000) == "15000 127.0.0.1:15000"
        # Inbound: a peer's connection lands on 15006; the admin port and excluded ports don't
        # (nothing listens on 2222).
        assert connect(peer, "10.251.0.2", 8080) == "15006 10.251.0.2:8080"
        assert connect(peer, "10.251.0.2", 15000) == "15000 10.251.0.2:15000"
        assert connect(peer, "10.251.0.2", 2222).endswith("Connection refused")
    finally:
        listener.kill()
        listener.wait()
