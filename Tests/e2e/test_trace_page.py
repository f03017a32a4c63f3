"""The trace page at `GET /traces` on weft-control's HTTP port (issue 12), in a real browser.

weft-control keeps a two-hop trace posted to its OTLP intake as OTLP JSON, as the sidecars
and an app would record it: the client sidecar's CLIENT span with Weft's time split
(`weft.duration.proxy`, `.connect`, `.tls`, `.upstream`, in µs), the server sidecar's SERVER
span under it (its upstream part, 30 ms, is the app's time) and the app's INTERNAL span
under that, without a split; and an error trace. Headless Chromium (Debian's `chromium`)
loads the page, runs its script against the trace API, and the DOM it leaves (and a
screenshot) is checked: the lists, one waterfall row per span with the split drawn as
segments, text from the API shown as text, and a failed read (an unknown trace) shown in
`#status`. A missing chromium fails the tests: CI installs it (scripts/install-deps.sh).
"""

import html.parser
import json
import os
import re
import shutil
import signal
import struct
import subprocess
import sys
import time
import urllib.error
import urllib.request
import zlib

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from control_fixtures import ca_template, cenv, control, http_get  # noqa: E402,F401

TRACE_ID = "5eb1a7c0ffee4d2b9a1c3d5e7f901234"
CLIENT_SPAN, SERVER_SPAN, APP_SPAN = "a1a1a1a1a1a1a1a1", "b2b2b2b2b2b2b2b2", "c3c3c3c3c3c3c3c3"
APP_NAME = "render <b>cart</b> & \"totals\""  # must show as text, not as markup
ERROR_TRACE_ID = "0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e"
WIDTH, HEIGHT = 1280, 900
# The segment colors of the page's stylesheet (proxy, connect, tls, upstream, app).
SEGMENT_RGB = {"proxy": (0x7b, 0x61, 0xff), "connect": (0xf0, 0xa0, 0x20), "tls": (0xe0, 0x55, 0x9a),
               "upstream": (0x2b, 0x8c, 0xd6), "app": (0x2f, 0x9e, 0x5a)}


# ------------------------------------------------------------------ trace --

def _attrs(**values):
    out = []
    for key, value in values.items():
        key = key.replace("__", ".")
        typed = {"intValue": str(value)} if isinstance(value, int) else {"stringValue": value}
        out.append({"key": key, "value": typed})
    return out


def _split(proxy, connect, tls, upstream):
    return _attrs(weft__duration__proxy=proxy, weft__duration__connect=connect, weft__duration__tls=tls,
                  weft__duration__upstream=upstream)


def _resource(service, pod):
    return {"attributes": _attrs(service__name=service, k8s__pod__name=pod, k8s__namespace__name="demo")}


def _span(trace, span, name, kind, start, millis, attributes=(), parent=None, status=None):
    s = {"traceId": trace, "spanId": span, "name": name, "kind": kind, "startTimeUnixNano": str(start),
         "endTimeUnixNano": str(start + int(millis * 1_000_000)), "attributes": list(attributes)}
    if parent:
        s["parentSpanId"] = parent
    if status:
        s["status"] = status
    return s


def post_traces(control):
    """The two-hop trace (40 ms at the client, 32 ms at the server, 26 ms in the app) and
    an error trace, posted to the intake as OTLP JSON."""
    t0 = time.time_ns() - 2_000_000_000
    client = _span(TRACE_ID, CLIENT_SPAN, "GET web-route", 3, t0, 40,
                   _attrs(url__path="/cart", http__response__status_code=200, weft__route="web-route",
                          weft__source__identity="spiffe://cluster.local/ns/demo/sa/client",
                          weft__destination__identity="spiffe://cluster.local/ns/demo/sa/web",
                          weft__endpoint="10.211.0.2:8080") + _split(1500, 2000, 3500, 33000))
    server = _span(TRACE_ID, SERVER_SPAN, "GET", 2, t0 + 6_500_000, 32,
                   _attrs(url__path="/cart", http__response__status_code=200,
                          weft__source__identity="spiffe://cluster.local/ns/demo/sa/client")
                   + _split(2000, 0, 0, 30000), parent=CLIENT_SPAN)
    app = _span(TRACE_ID, APP_SPAN, APP_NAME, 1, t0 + 9_000_000, 26, parent=SERVER_SPAN)
    failed = _span(ERROR_TRACE_ID, "d4d4d4d4d4d4d4d4", "POST orders", 3, t0 + 100_000_000, 3,
                   _attrs(http__response__status_code=503) + _split(300, 2700, 0, 0),
                   status={"code": 2, "message": "no healthy endpoint"})
    doc = {"resourceSpans": [
        {"resource": _resource("client", "client-0"), "scopeSpans": [{"scope": {"name": "weft"}, "spans": [client]}]},
        {"resource": _resource("web", "web-0"), "scopeSpans": [{"scope": {"name": "weft"}, "spans": [server]},
                                                               {"scope": {"name": "shop"}, "spans": [app]}]},
        {"resource": _resource("client", "client-1"), "scopeSpans": [{"spans": [failed]}]}]}
    request = urllib.request.Request("http://127.0.0.1:%d/v1/traces" % control.otlp_port,
                                     data=json.dumps(doc).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=5) as r:
            status, body = r.status, r.read()
    except urllib.error.HTTPError as e:
        status, body = e.code, e.read()
    assert status == 200, (status, body)
    status, body = control.get("/api/v1/traces/%s" % TRACE_ID)
    assert status == 200, body


# --------------------------------------------------------------- chromium --

def chromium_binary():
    for candidate in (os.environ.get("WEFT_CHROMIUM"), "chromium", "chromium-browser", "google-chrome"):
        path = candidate and shutil.which(candidate)
        if path:
            return path
    pytest.fail("headless Chromium is missing (apt: chromium; scripts/install-deps.sh installs it, or set "
                "WEFT_CHROMIUM); see Tests/e2e/REQUIREMENTS.md", pytrace=False)


def page_url(control, fragment=""):
    return "http://127.0.0.1:%d/traces%s" % (control.http_port, fragment)


def chromium(tmp_path, url, *args, timeout=60.0):
    """Runs headless Chromium on `url` with a fresh profile under `tmp_path` and returns its
    stdout; the page gets 5 s of virtual time (its fetches complete within it). Bounded by
    `timeout`; the browser's whole process group is killed in any case."""
    binary = chromium_binary()
    profile = tmp_path / ("chromium-profile-%d" % time.monotonic_ns())
    argv = [binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
            "--no-default-browser-check", "--disable-extensions", "--user-data-dir=%s" % profile,
            "--force-color-profile=srgb", "--hide-scrollbars", "--virtual-time-budget=5000"] + list(args) + [url]
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         start_new_session=True)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        p.communicate(timeout=10)
        raise AssertionError("chromium did not finish %s in %.0fs" % (url, timeout))
    finally:
        try:
            os.killpg(p.pid, signal.SIGKILL)  # helpers it may have left behind
        except ProcessLookupError:
            pass
        shutil.rmtree(profile, ignore_errors=True)
    assert p.returncode == 0, "chromium exited %d on %s:\n%s" % (
        p.returncode, url, err.decode(errors="replace")[-3000:])
    return out.decode(errors="replace")


# ------------------------------------------------------------ DOM reading --

class Node:
    def __init__(self, tag, attrs, parent=None):
        self.tag, self.attrs, self.parent, self.children = tag, dict(attrs), parent, []

    @property
    def classes(self):
        return set((self.attrs.get("class") or "").split())

    def iter(self):
        yield self
        for c in self.children:
            if isinstance(c, Node):
                yield from c.iter()

    def all(self, tag=None, cls=None, **attrs):
        return [n for n in self.iter() if (tag is None or n.tag == tag) and (cls is None or cls in n.classes)
                and all(n.attrs.get(k.replace("_", "-")) == v for k, v in attrs.items())]

    def one(self, tag=None, cls=None, **attrs):
        found = self.all(tag, cls, **attrs)
        assert len(found) == 1, "expected one <%s class=%s %s>, found %d" % (tag, cls, attrs, len(found))
        return found[0]

    def by_id(self, id):
        return self.one(id=id)

    def text(self):
        return "".join(c if isinstance(c, str) else c.text() for c in self.children)


class _DOMParser(html.parser.HTMLParser):
    VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.root = self.current = Node("#document", {})

    def handle_starttag(self, tag, attrs):
        node = Node(tag, attrs, self.current)
        self.current.children.append(node)
        if tag not in self.VOID:
            self.current = node

    def handle_startendtag(self, tag, attrs):
        self.current.children.append(Node(tag, attrs, self.current))

    def handle_endtag(self, tag):
        node = self.current
        while node is not None and node.tag != tag:
            node = node.parent
        if node is not None and node.parent is not None:
            self.current = node.parent

    def handle_data(self, data):
        self.current.children.append(data)


def dom(tmp_path, url):
    """The page's DOM once its script ran (chromium --dump-dom)."""
    parser = _DOMParser()
    parser.feed(chromium(tmp_path, url, "--dump-dom"))
    parser.close()
    return parser.root


# ------------------------------------------------------------- PNG reading --

def png_pixels(data):
    """(width, height, bytes per pixel, rows of pixel bytes) of an 8-bit RGB or RGBA PNG,
    not interlaced (what Chromium writes), decoded with zlib and the five PNG filters."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG: %r" % data[:16]
    pos, idat, header = 8, [], None
    while pos < len(data):
        (length,), kind = struct.unpack(">I", data[pos:pos + 4]), data[pos + 4:pos + 8]
        chunk = data[pos + 8:pos + 8 + length]
        assert zlib.crc32(kind + chunk) == struct.unpack(">I", data[pos + 8 + length:pos + 12 + length])[0], kind
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", chunk)
        elif kind == b"IDAT":
            idat.append(chunk)
        elif kind == b"IEND":
            break
        pos += 12 + length
    assert header, "no IHDR"
    width, height, depth, color, _, _, interlace = header
    assert depth == 8 and color in (2, 6) and interlace == 0, "unexpected PNG format %r" % (header,)
    bpp = 3 if color == 2 else 4
    raw = zlib.decompress(b"".join(idat))
    stride = width * bpp
    assert len(raw) == height * (stride + 1), "pixel data is %d bytes, not %d" % (len(raw), height * (stride + 1))
    rows, previous = [], bytearray(stride)
    for y in range(height):
        kind, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        if kind == 1:
            for i in range(bpp, stride):
                line[i] = (line[i] + line[i - bpp]) & 0xFF
        elif kind == 2:
            line = bytearray((a + b) & 0xFF for a, b in zip(line, previous))
        elif kind == 3:
            for i in range(stride):
                line[i] = (line[i] + ((line[i - bpp] if i >= bpp else 0) + previous[i]) // 2) & 0xFF
        elif kind == 4:
            for i in range(stride):
                a = line[i - bpp] if i >= bpp else 0
                b, c = previous[i], previous[i - bpp] if i >= bpp else 0
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 0xFF
        else:
            assert kind == 0, "bad PNG filter %d" % kind
        rows.append(bytes(line))
        previous = line
    return width, height, bpp, rows


# ------------------------------------------------------------------ tests --

def test_the_page_lists_recent_and_slowest_traces(control, tmp_path):
    post_traces(control)
    status, body = http_get(page_url(control))
    assert status == 200 and body.lstrip().lower().startswith("<!doctype html>"), (status, body[:200])
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", body), "the page loads nothing from elsewhere"

    root = dom(tmp_path, page_url(control))
    for list_id in ("recent", "slowest"):
        items = root.by_id(list_id).all("li")
        ids = [li.attrs.get("data-trace-id") for li in items]
        assert TRACE_ID in ids and ERROR_TRACE_ID in ids, (list_id, ids)
        mine = next(li for li in items if li.attrs.get("data-trace-id") == TRACE_ID)
        assert "client · GET web-route" in mine.text() and "40.00 ms" in mine.text(), mine.text()
        assert mine.one("a").attrs["href"] == "#" + TRACE_ID
        failed = next(li for li in items if li.attrs.get("data-trace-id") == ERROR_TRACE_ID)
        assert "error" in failed.classes and "✘" in failed.text(), failed.attrs
    slowest = [li.attrs["data-trace-id"] for li in root.by_id("slowest").all("li")]
    assert slowest == [TRACE_ID, ERROR_TRACE_ID], "slowest first: %s" % slowest
    status_line = root.by_id("status")
    assert "error" not in status_line.classes and "2 recent traces" in status_line.text(), status_line.text()


def test_a_trace_in_the_address_draws_its_waterfall_with_the_time_split(control, tmp_path):
    post_traces(control)
    root = dom(tmp_path, page_url(control, "#" + TRACE_ID))
    assert "error" not in root.by_id("status").classes, root.by_id("status").text()
    assert root.by_id("trace-title").text().startswith("trace %s · 3 spans · 2 services · 40.00 ms" % TRACE_ID)
    rows = root.by_id("waterfall").all(cls="span-row")
    # Depth first: the client sidecar's span, the server sidecar's under it, the app's under that.
    assert [(r.attrs["data-span-id"], r.attrs["data-kind"], r.attrs["data-depth"]) for r in rows] == [
        (CLIENT_SPAN, "CLIENT", "0"), (SERVER_SPAN, "SERVER", "1"), (APP_SPAN, "INTERNAL", "2")], \
        [r.attrs for r in rows]
    client, server, app = rows

    assert "client (client-0)" in client.text() and "GET web-route" in client.text() and "200" in client.text()
    assert "40.00 ms" in client.text(), client.text()
    segments = client.all(cls="seg")
    assert [s.attrs["data-part"] for s in segments] == ["proxy", "connect", "tls", "upstream"], segments
    assert all(s.classes >= {"seg", s.attrs["data-part"]} for s in segments)
    assert segments[3].attrs["title"] == "upstream: 33000 µs · 82.5% of the trace", segments[3].attrs
    assert segments[0].attrs["title"] == "proxy: 1500 µs · 3.8% of the trace", segments[0].attrs

    # The SERVER span's upstream part is the app's time: labeled app, 30 ms of 40.
    assert "web (web-0)" in server.text() and "32.00 ms" in server.text(), server.text()
    segments = {s.attrs["data-part"]: s for s in server.all(cls="seg")}
    assert set(segments) == {"proxy", "app"}, "connect and tls are 0 µs: no segment; %s" % list(segments)
    assert {"seg", "upstream"} <= segments["app"].classes, segments["app"].attrs
    assert segments["app"].attrs["title"] == "app: 30000 µs · 75.0% of the trace", segments["app"].attrs
    assert segments["proxy"].attrs["title"] == "proxy: 2000 µs · 5.0% of the trace", segments["proxy"].attrs
    bar = server.one(cls="bar")
    assert re.search(r"left:\s*16\.25%", bar.attrs["style"]) and re.search(r"width:\s*80%", bar.attrs["style"]), \
        "6.5 ms into the 40 ms trace, 32 ms long: %s" % bar.attrs["style"]

    # The app's span has no split: a plain bar. Its name is text, not markup.
    assert not app.all(cls="seg") and "plain" in app.one(cls="bar").classes
    assert app.one(cls="name").text() == APP_NAME
    assert not root.by_id("waterfall").all("b"), "a span name was parsed as HTML"
    # Details (hidden until clicked) carry the span's identities and route.
    details = root.by_id("waterfall").one("dl", data_span_id=CLIENT_SPAN)
    text = details.text()
    for want in ("spiffe://cluster.local/ns/demo/sa/web", "web-route", "10.211.0.2:8080", "/cart", "demo/client-0"):
        assert want in text, (want, text)


def test_a_screenshot_of_the_waterfall_shows_the_split_segments(control, tmp_path):
    post_traces(control)
    shot = tmp_path / "traces-waterfall.png"
    chromium(tmp_path, page_url(control, "#" + TRACE_ID), "--screenshot=%s" % shot,
             "--window-size=%d,%d" % (WIDTH, HEIGHT))
    print("screenshot: %s" % shot)
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR", data[:32]
    assert struct.unpack(">II", data[16:24]) == (WIDTH, HEIGHT), struct.unpack(">II", data[16:24])
    width, height, bpp, rows = png_pixels(data)
    counts = {}
    for row in rows:
        for x in range(0, width * bpp, bpp):
            pixel = row[x:x + 3]
            counts[pixel] = counts.get(pixel, 0) + 1
    assert len(counts) > 50, "the screenshot looks blank: %d distinct colors (%s)" % (len(counts), shot)
    # Each part's color fills a segment of a bar (the smallest, connect: 5% of a ~460 px bar,
    # 12 px high), beyond the legend's 10x10 swatch of it.
    for part, rgb in SEGMENT_RGB.items():
        seen = counts.get(bytes(rgb), 0)
        assert seen >= 200, "no %s segment in %s (%d px of its color)" % (part, shot, seen)


def test_an_unknown_trace_shows_the_error_in_status(control, tmp_path):
    post_traces(control)
    unknown = "f" * 32
    root = dom(tmp_path, page_url(control, "#" + unknown))
    status = root.by_id("status")
    assert "error" in status.classes, status.attrs
    assert "404" in status.text() and "no trace %s is kept" % unknown in status.text(), status.text()
    assert not root.by_id("waterfall").all(cls="span-row")
    assert TRACE_ID in [li.attrs.get("data-trace-id") for li in root.by_id("recent").all("li")], \
        "the lists still load"
