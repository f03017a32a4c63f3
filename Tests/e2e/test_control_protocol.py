"""weft-control's push port against a hand-written protocol client: bad input of every
kind is answered with its error code and closes only the offending connection, renewal
needs a proof by the current key, and the serving certificate is TLS 1.3 only.

Every case runs with a well-behaved weft-proxy connected at the same time, and asserts it
is still connected and acked afterwards.
"""

import json
import os
import socket
import ssl
import struct
import sys
import textwrap
import time

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from control_fixtures import (  # noqa: E402,F401 - fixtures are used by name
    CLIENT_ID, CONTROL_ID, TOKEN, ProtocolClient, ca_template, cenv, control, eventually, hello,
    openssl_csr, out, proxy, rss_kib, run, sign_with, split_pem,
)

WEB_ID = "spiffe://cluster.local/ns/demo/sa/web"


@pytest.fixture
def csr(cenv):
    """A valid (key path, CSR PEM) for demo/client."""
    return openssl_csr(cenv.dir, "client", CLIENT_ID)


def still_serving(control, proxy):
    """The well-behaved proxy kept its connection (same session) and is acked."""
    proxy.alive()
    s = control.wait_acked(timeout=5)
    assert s["session"] == proxy.session, "the good proxy reconnected: session %s -> %s" % (
        proxy.session, s["session"])
    assert proxy.ready()[0] == 200
    assert proxy.config()["connected"] is True


def connect(control, cenv):
    return ProtocolClient(control.push_port, cenv.bundle)


def expect_error(client, code, timeout=5.0):
    m = client.recv_type("error", timeout=timeout)
    assert m["code"] == code and m["fatal"] is True, m
    assert client.expect_closed(timeout=5), "connection not closed after %s" % code
    return m


def errors_counted(control, code):
    return control.metric("weft_control_protocol_errors_total", code=code) or 0


# -------------------------------------------------------------- framing ----

def test_oversized_frame_refused_before_body(cenv, control, proxy, csr):
    # The first frame (the hello) may be 64 KiB.
    c = connect(control, cenv)
    try:
        c.send_raw(struct.pack(">I", (64 << 10) + 1))  # the length only: no body ever sent
        m = expect_error(c, "oversized_frame")
        assert "65536" in m["message"], m
    finally:
        c.close()
    # Once the hello is accepted, frames up to 1 MiB.
    c = connect(control, cenv)
    try:
        c.send(hello(csr[1], pod="client-1"))
        c.recv_type("identity")
        c.recv_type("config")
        c.send_raw(struct.pack(">I", (1 << 20) + 1))
        m = expect_error(c, "oversized_frame")
        assert "1048576" in m["message"], m
    finally:
        c.close()
    still_serving(control, proxy)


def test_frame_at_the_limit_is_read(cenv, control, proxy, csr):
    """A hello of exactly 64 KiB is accepted (inclusive limit): the body is read and
    judged; then a frame of exactly 1 MiB is read too."""
    c = connect(control, cenv)
    try:
        body = json.dumps(hello(csr[1], proxyVersion="x" * 100)).encode()
        body = body[:-1] + b" " * ((64 << 10) - len(body)) + b"}"
        assert len(body) == 64 << 10
        c.send_raw(struct.pack(">I", len(body)) + body)
        m = c.recv_type("identity", timeout=10)
        assert m["spiffeId"] == CLIENT_ID
        c.recv_type("config", timeout=10)
        ping = json.dumps({"type": "ping", "id": 7}).encode()
        ping = ping[:-1] + b" " * ((1 << 20) - len(ping)) + b"}"
        c.send_raw(struct.pack(">I", len(ping)) + ping)
        assert c.recv_type("pong", timeout=10)["id"] == 7
    finally:
        c.close()
    still_serving(control, proxy)


@pytest.mark.parametrize("payload,code", [
    (b"{not json", "invalid_json"),
    (b'{"type":"frobnicate"}', "unknown_type"),
    (b"[1,2]", "unknown_type"),
    (b'{"type":"identity","spiffeId":"x"}', "unknown_type"),  # a server-only type
    (b'{"type":"ack","version":1,"nonce":"x"}', "unexpected_message"),
    (b'{"type":"hello","protocol":1}', "invalid_message"),
])
def test_bad_first_frame(cenv, control, proxy, payload, code):
    before = errors_counted(control, code)
    c = connect(control, cenv)
    try:
        c.send_raw(struct.pack(">I", len(payload)) + payload)
        expect_error(c, code)
    finally:
        c.close()
    assert errors_counted(control, code) == before + 1
    still_serving(control, proxy)


def test_empty_frame(cenv, control, proxy):
    c = connect(control, cenv)
    try:
        c.send_raw(struct.pack(">I", 0))
        expect_error(c, "empty_frame")
    finally:
        c.close()
    still_serving(control, proxy)


# ---------------------------------------------------------------- hello ----

def test_unsupported_protocol(cenv, control, proxy, csr):
    c = connect(control, cenv)
    try:
        c.send(hello(csr[1], protocol=2))
        m = expect_error(c, "unsupported_protocol")
        assert "2" in m["message"] and "1" in m["message"], m
    finally:
        c.close()
    still_serving(control, proxy)


def test_wrong_token(cenv, control, proxy, csr):
    c = connect(control, cenv)
    try:
        c.send(hello(csr[1], token="wrong"))
        expect_error(c, "unauthenticated")
    finally:
        c.close()
    still_serving(control, proxy)


def test_csr_for_another_identity(cenv, control, proxy):
    _, web_csr = openssl_csr(cenv.dir, "web", WEB_ID)
    issued = control.metric("weft_control_certificates_issued_total")
    c = connect(control, cenv)
    try:
        c.send(hello(web_csr))  # claims demo/client, asks for demo/web
        m = c.recv(timeout=5)
        assert m["type"] == "error", "expected forbidden_identity, got %r" % m  # no identity frame first
        assert m["code"] == "forbidden_identity" and m["fatal"] is True, m
        assert c.expect_closed(timeout=5)
    finally:
        c.close()
    assert control.metric("weft_control_certificates_issued_total") == issued
    still_serving(control, proxy)


def test_pod_with_another_service_account(cenv, control, proxy, csr):
    """web-0 runs as `web` in the config: a hello for pod web-0 as `client` is refused."""
    c = connect(control, cenv)
    try:
        c.send(hello(csr[1], pod="web-0", sa="client"))
        m = expect_error(c, "forbidden_identity")
        assert "web" in m["message"], m
    finally:
        c.close()
    still_serving(control, proxy)


def test_invalid_csr(cenv, control, proxy):
    c = connect(control, cenv)
    try:
        c.send(hello("-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n"))
        expect_error(c, "invalid_csr")
    finally:
        c.close()
    still_serving(control, proxy)


def hello_as(csr_pem, pod, namespace, sa):
    m = hello(csr_pem, pod=pod, sa=sa)
    m["node"]["namespace"] = namespace
    return m


def refused_without_issuing(cenv, control, message, code):
    """Sends one hello; asserts the refusal `code`, no certificate issued; returns it."""
    issued = control.metric("weft_control_certificates_issued_total")
    c = connect(control, cenv)
    try:
        c.send(message)
        m = expect_error(c, code)
    finally:
        c.close()
    assert control.metric("weft_control_certificates_issued_total") == issued
    return m


def test_control_plane_identity_is_never_issued(cenv, control, proxy):
    """The red-team case: the shared token got spiffe://.../ns/weft-system/sa/weft-control
    for a pod called `rogue`. Nothing in weft-system is issued through a hello."""
    _, cp_csr = openssl_csr(cenv.dir, "cp", CONTROL_ID)
    m = refused_without_issuing(
        cenv, control, hello_as(cp_csr, pod="rogue", namespace="weft-system", sa="weft-control"),
        "forbidden_identity")
    assert "weft-system" in m["message"], m
    still_serving(control, proxy)


def test_pod_not_in_the_config_is_not_issued(cenv, control, proxy):
    """`--pod evil --sa web` got sa/web: with the shared token, only pods the config lists
    are issued, with their recorded service account."""
    _, web_csr = openssl_csr(cenv.dir, "web", WEB_ID)
    m = refused_without_issuing(cenv, control, hello(web_csr, pod="evil", sa="web"), "forbidden_identity")
    assert "demo/evil is not in the config" in m["message"], m
    still_serving(control, proxy)


def test_issuance_is_rate_limited_per_pod(cenv, control, proxy, csr):
    """One client was issued 1,000 certificates in 46 s. Now a pod gets 10 at once (a
    reconnect gets its identity again), then one every 6 s; the 11th is refused with a
    retry time, and the well-behaved proxy (another pod) is not affected."""
    issued = 0
    refusal = None
    for _ in range(12):
        c = connect(control, cenv)
        try:
            c.send(hello(csr[1], pod="client-1"))
            m = c.recv(timeout=5)
            if m["type"] == "identity":
                issued += 1
            else:
                refusal = m
                break
        finally:
            c.close()
    assert issued == 10, "issued %d before the limit" % issued
    assert refusal is not None and refusal["type"] == "error" and refusal["code"] == "rate_limited", refusal
    assert "pod demo/client-1" in refusal["message"] and "retry in" in refusal["message"], refusal
    assert errors_counted(control, "rate_limited") >= 1
    still_serving(control, proxy)


def test_connections_that_never_say_hello_are_bounded(cenv, control, proxy):
    """300 connections each sending a 1 MiB frame less one byte took weft-control from
    36 MB to 374 MB. The hello frame is limited to 64 KiB, and at most 256 connections may
    wait for their hello: RSS stays bounded and the good proxy stays connected."""
    before = rss_kib(control.proc.pid)
    clients = []
    try:
        # The red team's frames: 1 MiB less one byte announced, all but one byte sent.
        # Refused at the length now; buffered whole (300 MB) before.
        big = b"x" * ((1 << 20) - 2)
        for _ in range(300):
            try:
                c = connect(control, cenv)
            except OSError:
                continue  # refused at once: over the unauthenticated limit
            clients.append(c)
            try:
                c.send_raw(struct.pack(">I", (1 << 20) - 1) + big)
            except OSError:
                pass  # the server refused the frame and closed
        # Stalled hellos under the 64 KiB limit: at most 256 are kept, the rest closed.
        for _ in range(300):
            try:
                c = connect(control, cenv)
            except OSError:
                continue
            clients.append(c)
            try:
                c.send_raw(struct.pack(">I", 60 * 1024) + b"x" * (60 * 1024 - 1))
            except OSError:
                pass
        time.sleep(1.0)
        after = rss_kib(control.proc.pid)
        assert after - before < 64 * 1024, "RSS grew %d KiB under stalled hellos" % (after - before)
    finally:
        for c in clients:
            c.close()
    # Over 64 KiB, a first frame is refused before it is buffered (once the stalled
    # connections have gone and the limit lets a new one in).
    def oversized_refused():
        c = connect(control, cenv)
        try:
            c.send_raw(struct.pack(">I", (1 << 20) - 1))
            expect_error(c, "oversized_frame")
        finally:
            c.close()
    eventually(oversized_refused, timeout=10, what="an oversized hello refused")
    refused = control.metric("weft_control_connections_refused_total") or 0
    assert refused >= 1, "no connection was refused over the limit of 256"
    still_serving(control, proxy)


def test_second_hello_is_unexpected(cenv, control, proxy, csr):
    c = connect(control, cenv)
    try:
        c.send(hello(csr[1], pod="client-1"))
        c.recv_type("identity")
        c.recv_type("config")
        c.send(hello(csr[1], pod="client-1"))
        expect_error(c, "unexpected_message")
    finally:
        c.close()
    still_serving(control, proxy)


def test_hello_timeout(cenv, control, proxy):
    c = connect(control, cenv)
    started = time.monotonic()
    try:
        m = c.recv_type("error", timeout=20)
        took = time.monotonic() - started
        assert m["code"] == "hello_timeout", m
        assert 9.0 <= took <= 13.0, "hello_timeout after %.1fs, want ~10s" % took
        assert c.expect_closed(timeout=5)
    finally:
        c.close()
    still_serving(control, proxy)


# ------------------------------------------------------- a second client ---

def test_python_client_session_and_subscribe(cenv, control, proxy, csr):
    """A second, hand-written proxy gets identity and config, acks, subscribes, and is
    counted by the control plane beside the real one."""
    c = connect(control, cenv)
    try:
        c.send(hello(csr[1], pod="client-1"))
        ident = c.recv_type("identity")
        assert ident["spiffeId"] == CLIENT_ID and ident["session"], ident
        conf = c.recv_type("config")
        assert conf["version"] == 1 and any(s["key"] == "demo/web" for s in conf["snapshot"]["services"]), conf
        c.send({"type": "ack", "version": 1, "nonce": conf["nonce"]})
        c.send({"type": "subscribe", "services": ["demo/web", "demo/nope"]})
        d = c.recv_type("delta")
        assert (d["base"], d["version"]) == (1, 2), d
        eps = {e["service"]: e for e in d["upserts"]["endpoints"]}
        assert [e["address"] for e in eps["demo/web"]["endpoints"]] == ["10.211.0.2"], eps
        assert eps["demo/nope"]["endpoints"] == [], eps
        assert eps["demo/web"]["endpoints"][0]["identity"] == WEB_ID
        warn = c.recv_type("error")
        assert warn["code"] == "unknown_service" and warn["fatal"] is False and "demo/nope" in warn["message"], warn
        c.send({"type": "ack", "version": 2, "nonce": d["nonce"]})
        c.send({"type": "ping", "id": 42})
        assert c.recv_type("pong")["id"] == 42

        def counted():
            mine = {p["pod"]: p for p in control.proxies()}
            assert set(mine) == {"client-0", "client-1"}, mine
            assert mine["client-1"]["ackedVersion"] == 2, mine["client-1"]
            assert mine["client-1"]["subscriptions"] == ["demo/nope", "demo/web"], mine["client-1"]
        eventually(counted, timeout=5, what="second proxy listed")
        assert control.metric("weft_control_proxies_connected") == 2
    finally:
        c.close()
    eventually(lambda: _eq(control.metric("weft_control_proxies_connected"), 1), timeout=5,
               what="the closed client unregistered")
    still_serving(control, proxy)


def _eq(a, b):
    assert a == b, (a, b)


# -------------------------------------------------------------- renewal ----

def test_renew_with_proof_of_current_key(cenv, control, proxy, csr):
    key, first_csr = csr
    c = connect(control, cenv)
    try:
        c.send(hello(first_csr, pod="client-1"))
        ident = c.recv_type("identity")
        conf = c.recv_type("config")
        c.send({"type": "ack", "version": conf["version"], "nonce": conf["nonce"]})
        renewed0 = control.metric("weft_control_certificates_renewed_total") or 0

        new_key, new_csr = openssl_csr(cenv.dir, "client-renew", CLIENT_ID)
        proof = ("weft-renew-v1\n" + ident["session"] + "\n" + new_csr).encode()
        time.sleep(1.1)  # so the new leaf's notBefore/notAfter are later by at least a second
        c.send({"type": "renew", "csr": new_csr, "certificate": ident["chain"], "signature": sign_with(key, proof)})
        again = c.recv_type("identity")
        assert again["session"] == ident["session"] and again["spiffeId"] == CLIENT_ID, again
        assert again["chain"] != ident["chain"] and again["notAfter"] > ident["notAfter"], (again, ident)
        # The new leaf carries the new key.
        leaf = os.path.join(cenv.dir, "renewed.pem")
        with open(leaf, "w") as f:
            f.write(split_pem(again["chain"])[0])
        assert run(["openssl", "x509", "-in", leaf, "-noout", "-pubkey"]).stdout == \
            run(["openssl", "pkey", "-in", new_key, "-pubout"]).stdout
        assert (control.metric("weft_control_certificates_renewed_total") or 0) == renewed0 + 1

        # A proof signed by a key that is not the certificate's.
        other_key, _ = openssl_csr(cenv.dir, "intruder", CLIENT_ID)
        _, csr3 = openssl_csr(cenv.dir, "client-renew3", CLIENT_ID)
        proof = ("weft-renew-v1\n" + ident["session"] + "\n" + csr3).encode()
        c.send({"type": "renew", "csr": csr3, "certificate": again["chain"], "signature": sign_with(other_key, proof)})
        expect_error(c, "unauthenticated")
    finally:
        c.close()
    still_serving(control, proxy)


def test_renew_proof_bound_to_session(cenv, control, proxy, csr):
    """A renew whose proof names another session is refused."""
    key, first_csr = csr
    c = connect(control, cenv)
    try:
        c.send(hello(first_csr, pod="client-1"))
        ident = c.recv_type("identity")
        c.recv_type("config")
        _, new_csr = openssl_csr(cenv.dir, "client-renew", CLIENT_ID)
        proof = ("weft-renew-v1\n" + "another-session" + "\n" + new_csr).encode()
        c.send({"type": "renew", "csr": new_csr, "certificate": ident["chain"], "signature": sign_with(key, proof)})
        expect_error(c, "unauthenticated")
    finally:
        c.close()
    still_serving(control, proxy)


# --------------------------------------------------------- slow consumer ---

@pytest.mark.control_args("--slow-consumer-grace", "2s")
def test_client_that_never_reads(cenv, control, proxy, csr):
    """A client that stops reading while pushes pile up does not grow the server without
    bound, is closed as a slow consumer once its unsent bytes stay above the 4 MiB mark
    for the grace (2 s here), and the other proxy keeps getting its pushes."""
    c = connect(control, cenv)
    try:
        c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        c.send(hello(csr[1], pod="client-1"))
        c.recv_type("identity")
        c.recv_type("config")
        # From here on the client never reads again.
        rss0 = rss_kib(control.proc.pid)
        services = cenv.read("services.yaml")
        filler = "".join(
            "---\napiVersion: v1\nkind: Service\nmetadata:\n  name: filler-%d\n  namespace: demo\n"
            "  annotations:\n    pad: \"%s\"\nspec:\n  clusterIP: 10.96.%d.%d\n  ports:\n  - port: 80\n"
            % (i, "p" * 200, 1 + i // 250, 1 + i % 250) for i in range(300))

        def slow_consumers():
            return control.metric("weft_control_protocol_errors_total", code="slow_consumer") or 0

        # Rewrite until the server gives up on the client (bounded: 40 s).
        end = time.monotonic() + 40
        rounds = 0
        while time.monotonic() < end and slow_consumers() < 1:
            rounds += 1
            cenv.write("services.yaml", services + "\n" + filler.replace("filler-", "filler%d-" % rounds))
            time.sleep(0.25)
        assert slow_consumers() == 1, "the non-reading client was not closed after %d rewrites" % rounds
        gen = control.generation()
        assert gen > rounds // 2, "only %d generations from %d rewrites" % (gen, rounds)
        rss1 = rss_kib(control.proc.pid)
        assert rss1 - rss0 < 64 * 1024, "weft-control grew from %d KiB to %d KiB" % (rss0, rss1)

        def dropped():
            mine = {p["pod"]: p for p in control.proxies()}
            assert "client-1" not in mine, mine.get("client-1")
            s = mine["client-0"]
            assert s["ackedGeneration"] == control.generation() and s["ackedVersion"] == s["version"], s
            assert s["session"] == proxy.session, s
        eventually(dropped, timeout=10, what="slow consumer gone, the reading proxy on the latest generation")
        # The server aborted the TCP connection (a reset, so no megabytes linger in its
        # kernel send queue): the client's next reads end in a reset or the end of stream.
        c.sock.settimeout(5)
        while True:
            try:
                if not c.sock.recv(1 << 16):
                    break
            except (ConnectionResetError, ssl.SSLError):
                break
    finally:
        c.close()
    eventually(lambda: still_serving(control, proxy), timeout=10, what="good proxy acked")


# ---------------------------------------------------------------- nack -----

def test_nacked_delta_is_counted_shown_and_replaced_by_a_whole_config(cenv, control, proxy, csr):
    """The real control plane's side of a nack: counted, shown by `weftctl check` with the
    proxy's reason, and answered (after the debounce) by a whole config, which the proxy
    can ack to be current again. The proxy's own side (staying on its last good config) is
    in test_control_fake.py: the real control plane validates everything a proxy would
    refuse, so it never sends such a push."""
    c = connect(control, cenv)
    try:
        c.send(hello(csr[1], pod="client-1"))
        c.recv_type("identity")
        first = c.recv_type("config")
        c.send({"type": "ack", "version": first["version"], "nonce": first["nonce"]})
        nacks0 = control.metric("weft_control_nacks_total") or 0
        cenv.write("services.yaml", cenv.read("services.yaml") + textwrap.dedent("""
            ---
            apiVersion: v1
            kind: Service
            metadata:
              name: extra
              namespace: demo
            spec:
              clusterIP: 10.96.0.77
              ports:
              - port: 80
            """))
        delta = c.recv_type("delta")
        assert delta["base"] == first["version"] and delta["version"] == first["version"] + 1, delta
        c.send({"type": "nack", "version": delta["version"], "nonce": delta["nonce"],
                "error": "services[demo/extra]: refused by this test"})
        again = c.recv_type("config", timeout=5)
        assert again["version"] > delta["version"], again
        assert any(sv["key"] == "demo/extra" for sv in again["snapshot"]["services"]), again["snapshot"]
        assert control.metric("weft_control_nacks_total") == nacks0 + 1

        # Until it acks the whole config, check names it and its reason.
        chk = control.check()
        text = out(chk)
        assert chk.returncode == 1 and "nacked: demo/client-1: services[demo/extra]: refused by this test" in text, text
        report = json.loads(control.check("-o", "json").stdout)
        assert report["healthy"] is False and report["status"]["proxies"]["nacked"] == [
            "demo/client-1: services[demo/extra]: refused by this test"], report
        c.send({"type": "ack", "version": again["version"], "nonce": again["nonce"]})
        control.wait_acked(pod="client-1")
    finally:
        c.close()
    still_serving(control, proxy)


# ------------------------------------------------------- serving TLS -------

def test_serving_certificate_is_tls13_with_control_identity(cenv, control):
    ok = run(["openssl", "s_client", "-connect", "127.0.0.1:%d" % control.push_port, "-tls1_3",
              "-CAfile", cenv.bundle, "-verify_return_error", "-showcerts"], input=b"", check=False, timeout=15)
    text = out(ok)
    assert ok.returncode == 0 and "Verify return code: 0 (ok)" in text, text
    assert "TLSv1.3" in text, text
    leaf = os.path.join(cenv.dir, "serving.pem")
    with open(leaf, "w") as f:
        f.write(split_pem(ok.stdout.decode())[0])
    san = run(["openssl", "x509", "-in", leaf, "-noout", "-ext", "subjectAltName"])
    assert "URI:" + CONTROL_ID in out(san), out(san)

    old = run(["openssl", "s_client", "-connect", "127.0.0.1:%d" % control.push_port, "-tls1_2",
               "-CAfile", cenv.bundle, "-verify_return_error"], input=b"", check=False, timeout=15)
    assert old.returncode != 0, "TLS 1.2 handshake succeeded:\n%s" % out(old)
