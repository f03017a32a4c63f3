"""The mesh CA through `weftctl ca`, checked with the openssl CLI.

These tests need neither root nor network namespaces: they run weftctl and openssl
on files in a temp dir, and the TLS handshake runs over 127.0.0.1 on a free port.

Binary: WEFTCTL_BIN, else the weftctl next to WEFT_PROXY_BIN, else
<repo>/.build/debug/weftctl (what `swift build` makes).
"""

import os
import re
import shutil
import socket
import stat
import subprocess
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from weft_e2e import HERE, Deadline, run  # noqa: E402
from control_fixtures import free_port  # noqa: E402

REPO = os.path.abspath(os.path.join(HERE, "..", ".."))


def _weftctl_path():
    if os.environ.get("WEFTCTL_BIN"):
        return os.environ["WEFTCTL_BIN"]
    proxy = os.environ.get("WEFT_PROXY_BIN")
    if proxy:
        sibling = os.path.join(os.path.dirname(proxy), "weftctl")
        if os.path.exists(sibling):
            return sibling
    return os.path.join(REPO, ".build", "debug", "weftctl")


WEFTCTL = _weftctl_path()
OPENSSL = shutil.which("openssl")
TD = "cluster.local"


def spiffe(ns, sa, td=TD):
    return "spiffe://%s/ns/%s/sa/%s" % (td, ns, sa)


@pytest.fixture(scope="module", autouse=True)
def _tools():
    if not os.path.exists(WEFTCTL):
        pytest.fail("weftctl not found at %s (swift build, or set WEFTCTL_BIN)" % WEFTCTL, pytrace=False)
    if OPENSSL is None:
        pytest.fail("openssl not found (apt: openssl)", pytrace=False)


def weftctl(*args, check=True, timeout=30.0):
    return run([WEFTCTL] + list(args), check=check, timeout=timeout)


def openssl(*args, check=True, timeout=30.0, input=None):
    return run([OPENSSL] + list(args), check=check, timeout=timeout, input=input)


def text(p):
    return (p.stdout or b"").decode() + (p.stderr or b"").decode()


def ca_init(directory, *extra):
    weftctl("ca", "init", "--out", str(directory), *extra)
    return directory


def issue(ca, out, ns="demo", sa="web", *extra):
    weftctl("ca", "issue", "--ca", str(ca), "--namespace", ns, "--service-account", sa, "--out", str(out), *extra)
    return out


def openssl_csr(tmp, name, uri, curve="P-256"):
    key, csr = tmp / (name + ".key"), tmp / (name + ".csr")
    if curve == "rsa":
        newkey = ["-newkey", "rsa:2048"]
    else:
        newkey = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:" + curve]
    openssl("req", "-new", *newkey, "-nodes", "-keyout", str(key), "-subj", "/",
            "-addext", "subjectAltName=URI:" + uri, "-out", str(csr))
    return key, csr


def verify(bundle, intermediate, cert):
    p = openssl("verify", "-CAfile", str(bundle), "-untrusted", str(intermediate), str(cert), check=False)
    return p.returncode, text(p)


def count_certs(path):
    return open(path).read().count("-----BEGIN CERTIFICATE-----")


@pytest.fixture(scope="module")
def ca(tmp_path_factory):
    return ca_init(tmp_path_factory.mktemp("ca") / "ca")


# ------------------------------------------------------------------ init --

def test_init_writes_the_ca_files_keys_private(ca):
    for name, mode in [("root.crt", 0o644), ("root.key", 0o600), ("intermediate.crt", 0o644),
                       ("intermediate.key", 0o600), ("bundle.crt", 0o644)]:
        st = os.stat(ca / name)
        assert stat.S_IMODE(st.st_mode) == mode, name
    assert count_certs(ca / "bundle.crt") == 1
    root = text(openssl("x509", "-in", str(ca / "root.crt"), "-text", "-noout"))
    assert re.search(r"Basic Constraints: critical\s+CA:TRUE", root)
    assert re.search(r"Key Usage: critical\s+Certificate Sign, CRL Sign", root)
    inter = text(openssl("x509", "-in", str(ca / "intermediate.crt"), "-text", "-noout"))
    assert re.search(r"CA:TRUE, pathlen:0", inter)
    assert "URI:" + TD in inter  # name constraint: Permitted URI
    rc, out = verify(ca / "bundle.crt", ca / "intermediate.crt", ca / "intermediate.crt")
    assert rc == 0, out


def test_init_refuses_to_overwrite_without_force(tmp_path):
    d = ca_init(tmp_path / "ca")
    before = open(d / "root.crt").read()
    p = weftctl("ca", "init", "--out", str(d), check=False)
    assert p.returncode == 1
    assert "root.crt" in text(p) and "--force" in text(p)
    assert open(d / "root.crt").read() == before
    weftctl("ca", "init", "--out", str(d), "--force")
    assert open(d / "root.crt").read() != before


def test_help_describes_every_flag():
    for command, flags in [
        ("init", ("--out", "--trust-domain", "--trust-also", "--force")),
        ("issue", ("--ca", "--namespace", "--service-account", "--out", "--lifetime", "--trust-domain")),
        ("sign", ("--ca", "--csr", "--namespace", "--service-account", "--out", "--lifetime", "--trust-domain")),
        ("bundle", ("--out",)),
    ]:
        out = text(weftctl("ca", command, "--help"))
        lines = out[out.index("OPTIONS:"):].splitlines()
        for flag in flags:
            at = next(i for i, l in enumerate(lines) if l.strip().startswith(flag))
            words = lines[at].split()
            has_text = len(words) > (1 if flag == "--force" else 2) or (
                at + 1 < len(lines) and lines[at + 1].startswith("      ") and lines[at + 1].strip())
            assert has_text, "no help text for ca %s %s:\n%s" % (command, flag, out)
    assert weftctl("defaults").returncode == 0


# ----------------------------------------------------------------- issue --

def test_issued_leaf_verifies_and_has_the_mesh_fields(ca, tmp_path):
    out = issue(ca, tmp_path / "web")
    assert stat.S_IMODE(os.stat(out / "key.pem").st_mode) == 0o600
    assert count_certs(out / "cert.pem") == 2
    rc, msg = verify(out / "bundle.crt", ca / "intermediate.crt", out / "cert.pem")
    assert rc == 0 and "OK" in msg, msg

    t = text(openssl("x509", "-in", str(out / "cert.pem"), "-text", "-noout"))
    assert "URI:" + spiffe("demo", "web") in t
    assert re.search(r"Subject Alternative Name: critical", t)
    assert re.search(r"Key Usage: critical\s+Digital Signature\s", t)
    assert "TLS Web Server Authentication, TLS Web Client Authentication" in t
    assert re.search(r"Basic Constraints: critical\s+CA:FALSE", t)
    assert "Authority Key Identifier" in t and "Subject Key Identifier" in t
    assert "ASN1 OID: prime256v1" in t

    # The key on disk is the certificate's key.
    cert_pub = openssl("x509", "-in", str(out / "cert.pem"), "-pubkey", "-noout").stdout
    key_pub = openssl("pkey", "-in", str(out / "key.pem"), "-pubout").stdout
    assert cert_pub == key_pub

    # 24 h: valid in an hour, not in 25 hours.
    assert openssl("x509", "-in", str(out / "cert.pem"), "-checkend", "3600", "-noout", check=False).returncode == 0
    assert openssl("x509", "-in", str(out / "cert.pem"), "-checkend", str(25 * 3600), "-noout",
                   check=False).returncode == 1


def test_lifetime_flag(ca, tmp_path):
    out = issue(ca, tmp_path / "short", "demo", "web", "--lifetime", "1h")
    assert openssl("x509", "-in", str(out / "cert.pem"), "-checkend", "1800", "-noout", check=False).returncode == 0
    assert openssl("x509", "-in", str(out / "cert.pem"), "-checkend", "7200", "-noout", check=False).returncode == 1
    p = weftctl("ca", "issue", "--ca", str(ca), "--namespace", "a", "--service-account", "b", "--out",
                str(tmp_path / "x"), "--lifetime", "soon", check=False)
    assert p.returncode != 0


def test_missing_ca_file_is_named(tmp_path):
    d = ca_init(tmp_path / "ca")
    os.remove(d / "intermediate.key")
    p = weftctl("ca", "issue", "--ca", str(d), "--namespace", "a", "--service-account", "b", "--out",
                str(tmp_path / "o"), check=False)
    assert p.returncode == 1
    assert "intermediate.key" in text(p)


# ------------------------------------------------------------------ sign --

def test_openssl_csr_is_signed_and_verifies(ca, tmp_path):
    key, csr = openssl_csr(tmp_path, "api", spiffe("demo", "api"))
    chain = tmp_path / "api.pem"
    weftctl("ca", "sign", "--ca", str(ca), "--csr", str(csr), "--namespace", "demo", "--service-account", "api",
            "--out", str(chain))
    rc, msg = verify(ca / "bundle.crt", ca / "intermediate.crt", chain)
    assert rc == 0, msg
    t = text(openssl("x509", "-in", str(chain), "-text", "-noout"))
    assert "URI:" + spiffe("demo", "api") in t
    assert openssl("x509", "-in", str(chain), "-pubkey", "-noout").stdout == \
        openssl("pkey", "-in", str(key), "-pubout").stdout

    # Without --out the chain goes to standard output.
    p = weftctl("ca", "sign", "--ca", str(ca), "--csr", str(csr), "--namespace", "demo", "--service-account", "api")
    assert p.stdout.decode().count("-----BEGIN CERTIFICATE-----") == 2


def test_csr_for_another_identity_is_refused(ca, tmp_path):
    _, csr = openssl_csr(tmp_path, "evil", spiffe("kube-system", "admin"))
    out = tmp_path / "evil.pem"
    p = weftctl("ca", "sign", "--ca", str(ca), "--csr", str(csr), "--namespace", "demo", "--service-account", "web",
                "--out", str(out), check=False)
    assert p.returncode == 1
    msg = text(p)
    assert spiffe("demo", "web") in msg and spiffe("kube-system", "admin") in msg, msg
    assert not out.exists()


@pytest.mark.parametrize("curve", ["rsa", "P-384"])
def test_non_p256_csr_is_refused(ca, tmp_path, curve):
    _, csr = openssl_csr(tmp_path, "k", spiffe("demo", "web"), curve=curve)
    p = weftctl("ca", "sign", "--ca", str(ca), "--csr", str(csr), "--namespace", "demo", "--service-account", "web",
                check=False)
    assert p.returncode == 1
    assert "P-256" in text(p)


# ------------------------------------------------------------------- TLS --

def wait_listening(port, proc, seconds=10.0):
    deadline = Deadline(seconds)
    while not deadline.expired:
        if proc.poll() is not None:
            raise AssertionError("openssl s_server exited early: %s" % proc.stdout.read().decode())
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                pass
            return
        except OSError:
            pass
    raise AssertionError("s_server did not listen on %d" % port)


def handshake(server_dir, client_dir, bundle, intermediate):
    """A mutual TLS 1.3 handshake: s_server requires and verifies a client certificate."""
    port = free_port()
    server = subprocess.Popen(
        [OPENSSL, "s_server", "-accept", "127.0.0.1:%d" % port, "-naccept", "2", "-tls1_3",
         "-cert", str(server_dir / "cert.pem"), "-key", str(server_dir / "key.pem"),
         "-cert_chain", str(intermediate), "-CAfile", str(bundle), "-Verify", "1", "-verify_return_error"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        wait_listening(port, server)  # the probe connection uses the first accept
        client = run([OPENSSL, "s_client", "-connect", "127.0.0.1:%d" % port, "-tls1_3",
                      "-CAfile", str(bundle), "-verify_return_error",
                      "-cert", str(client_dir / "cert.pem"), "-key", str(client_dir / "key.pem"),
                      "-cert_chain", str(intermediate)],
                     check=False, timeout=20.0, input=b"Q\n")
    finally:
        server.kill()
        server_out = server.communicate(timeout=10)[0].decode()
    return client, server_out


def test_mutual_tls_handshake_with_issued_leaves(ca, tmp_path):
    srv = issue(ca, tmp_path / "srv", "demo", "api")
    cli = issue(ca, tmp_path / "cli", "demo", "web")
    client, server_out = handshake(srv, cli, ca / "bundle.crt", ca / "intermediate.crt")
    out = text(client)
    assert client.returncode == 0, out + server_out
    assert "Verify return code: 0 (ok)" in out, out
    assert "TLSv1.3" in out
    # The server saw and verified the client's certificate.
    assert "CLIENT CERTIFICATE" in server_out.upper() or "verify return:1" in server_out, server_out


def test_handshake_with_a_foreign_ca_leaf_fails(ca, tmp_path):
    other = ca_init(tmp_path / "other")
    srv = issue(other, tmp_path / "srv", "demo", "api")
    cli = issue(ca, tmp_path / "cli", "demo", "web")
    client, server_out = handshake(srv, cli, ca / "bundle.crt", other / "intermediate.crt")
    assert client.returncode != 0, text(client)
    assert "verify error" in text(client), text(client)


# -------------------------------------------------------------- rotation --

def test_root_rotation_bundle_trusts_both_roots(tmp_path):
    old = ca_init(tmp_path / "old")
    new = ca_init(tmp_path / "new", "--trust-also", str(old / "bundle.crt"))
    assert count_certs(new / "bundle.crt") == 2

    # Step 1 of docs/operations.md: the old CA serves a bundle with both roots.
    merged = tmp_path / "merged.crt"
    p = weftctl("ca", "bundle", "--out", str(merged), str(old / "bundle.crt"), str(new / "root.crt"),
                str(new / "bundle.crt"))
    assert "2 root(s)" in text(p)
    shutil.copy(merged, old / "bundle.crt")
    old_leaf = issue(old, tmp_path / "old-leaf")
    assert count_certs(old_leaf / "bundle.crt") == 2

    new_leaf = issue(new, tmp_path / "new-leaf")
    for leaf, inter in [(old_leaf, old / "intermediate.crt"), (new_leaf, new / "intermediate.crt")]:
        rc, msg = verify(new / "bundle.crt", inter, leaf / "cert.pem")
        assert rc == 0, msg
        rc, msg = verify(merged, inter, leaf / "cert.pem")
        assert rc == 0, msg
    # A peer still holding only the old root does not trust the new root's leaves.
    rc, _ = verify(old / "root.crt", new / "intermediate.crt", new_leaf / "cert.pem")
    assert rc != 0

    # Last step: drop the old root.
    weftctl("ca", "bundle", "--out", str(new / "bundle.crt"), str(new / "root.crt"))
    assert count_certs(new / "bundle.crt") == 1
    rc, _ = verify(new / "bundle.crt", old / "intermediate.crt", old_leaf / "cert.pem")
    assert rc != 0
