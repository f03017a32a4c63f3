/// The trace page at `GET /traces` (issue 12): recent and slowest traces, and a waterfall
/// per trace with each hop's time split drawn in its bar. Plain HTML, CSS and JavaScript
/// in one document, no build step and nothing loaded from elsewhere. It reads
/// `/api/v1/traces?order=recent|slowest&limit=50` (with `service=` and `status=error` from
/// its filters) and `/api/v1/traces/<id>` for the trace picked or named in the address
/// (`/traces#<trace id>`), again every 5 s while auto-refresh is on.
///
/// - The waterfall mirrors `weftctl trace`: spans depth-first by parent, children by start
///   time, spans whose parent is missing at the root; each row shows the service (and pod),
///   span name, kind, `http.response.status_code` and duration, and a bar on the trace's
///   time line. A span with Weft's split (`weft.duration.proxy`, `.connect`, `.tls`,
///   `.upstream`, in µs) gets one segment per part inside its bar (upstream is "app" for a
///   SERVER span), each titled with its µs and share of the trace; clicking a row shows its
///   attributes (error spans start open).
/// - Stable hooks for tests: `#recent` and `#slowest` lists of `li[data-trace-id]`,
///   `#waterfall` with one `.span-row[data-span-id]` per span, segments
///   `.seg.proxy|.connect|.tls|.upstream` (`data-part="app"` on a SERVER span's upstream),
///   and `#status`, which shows a failed read's answer (e.g. 403, 404).
/// - Every text from the API is set as text (never parsed as HTML).
///
/// The page is part of `/api/`'s access rule only through those reads: with
/// `--api-access loopback` it loads anywhere but lists traces only from loopback.
enum TracesPage {
    static let html = #"""
        <!doctype html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <title>weft traces</title>
        <style>
          :root { --fg: #1d232a; --muted: #5f6b76; --line: #d9dee3; --soft: #f4f6f8; --err: #c0262d;
            --proxy: #7b61ff; --connect: #f0a020; --tls: #e0559a; --upstream: #2b8cd6; --app: #2f9e5a;
            --plain: #93a4b4; }
          * { box-sizing: border-box; }
          body { margin: 0; font: 13px/1.4 system-ui, "DejaVu Sans", sans-serif; color: var(--fg); background: #fff; }
          header { display: flex; flex-wrap: wrap; align-items: center; gap: 10px 14px; padding: 10px 16px;
            border-bottom: 1px solid var(--line); background: var(--soft); }
          h1 { margin: 0 8px 0 0; font-size: 17px; }
          h2 { margin: 0 0 6px; font-size: 13px; text-transform: uppercase; letter-spacing: .04em;
            color: var(--muted); }
          form { display: flex; align-items: center; gap: 10px; margin: 0; }
          input[type=text] { width: 150px; padding: 3px 6px; font: inherit; border: 1px solid var(--line);
            border-radius: 3px; }
          button { padding: 3px 10px; font: inherit; border: 1px solid #b8c2cc; border-radius: 3px; background: #fff;
            cursor: pointer; }
          #status { margin: 0; color: var(--muted); white-space: pre-wrap; }
          #status.error { color: var(--err); font-weight: 600; }
          main { display: grid; grid-template-columns: 320px minmax(0, 1fr); min-height: calc(100vh - 50px); }
          aside { padding: 12px; border-right: 1px solid var(--line); overflow-y: auto; }
          aside section + section { margin-top: 16px; }
          ul.traces { list-style: none; margin: 0; padding: 0; }
          ul.traces li { border-bottom: 1px solid var(--line); }
          ul.traces li.empty { padding: 4px 6px; color: var(--muted); }
          ul.traces a { display: block; padding: 4px 6px; color: inherit; text-decoration: none; }
          ul.traces a:hover { background: var(--soft); }
          ul.traces li.selected a { background: #e3edf7; }
          .tname { display: block; font-weight: 600; white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
          .meta { color: var(--muted); font-size: 12px; }
          .error .mark, .mark.error { color: var(--err); font-weight: 700; }
          #trace { padding: 12px 16px; min-width: 0; }
          #trace-title { margin: 0 0 8px; font-size: 14px; font-weight: 600; word-break: break-all; }
          #legend { display: flex; flex-wrap: wrap; gap: 4px 14px; margin-bottom: 8px; color: var(--muted);
            font-size: 12px; }
          .swatch { display: inline-block; width: 10px; height: 10px; margin-right: 4px; border-radius: 2px;
            vertical-align: -1px; }
          .span-row, .axis { display: grid; grid-template-columns: minmax(0, 40%) 76px minmax(0, 1fr); gap: 8px;
            align-items: center; padding: 3px 4px; }
          .span-row { border-bottom: 1px solid #edf0f3; cursor: pointer; }
          .span-row:hover { background: var(--soft); }
          .span-row.error { background: #fdf1f1; }
          .span-row.error .label .name { color: var(--err); }
          .axis { color: var(--muted); font-size: 11px; border-bottom: 1px solid var(--line); }
          .ticks { position: relative; height: 14px; }
          .ticks span { position: absolute; transform: translateX(-50%); white-space: nowrap; }
          .ticks span:first-child { transform: none; }
          .ticks span:last-child { transform: translateX(-100%); }
          .label { white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
          .service { color: var(--muted); }
          .name { font-weight: 600; }
          .kind, .code { display: inline-block; margin-left: 5px; padding: 0 4px; border-radius: 3px; font-size: 10px;
            border: 1px solid var(--line); color: var(--muted); }
          .code.bad { border-color: var(--err); color: var(--err); }
          .dur { text-align: right; font-variant-numeric: tabular-nums; }
          .track { position: relative; height: 16px;
            background: repeating-linear-gradient(to right, transparent 0 calc(25% - 1px),
              #e6eaee calc(25% - 1px) 25%); }
          .bar { position: absolute; top: 2px; bottom: 2px; min-width: 2px; display: flex; overflow: hidden;
            border-radius: 2px; background: var(--plain); }
          .bar.split { background: #d5dde4; }
          .span-row.error .bar { box-shadow: 0 0 0 2px var(--err); }
          .seg { height: 100%; min-width: 1px; }
          .proxy { background: var(--proxy); }
          .connect { background: var(--connect); }
          .tls { background: var(--tls); }
          .upstream { background: var(--upstream); }
          .app, .upstream.app { background: var(--app); }
          .plain { background: var(--plain); }
          .details { margin: 0 4px 4px; padding: 6px 8px; background: var(--soft); border: 1px solid var(--line);
            border-top: 0; font-size: 12px; display: grid; grid-template-columns: max-content minmax(0, 1fr);
            gap: 1px 12px; }
          .details[hidden] { display: none; }
          .details dt { color: var(--muted); }
          .details dd { margin: 0; word-break: break-all; }
          .details dd.error { color: var(--err); font-weight: 600; }
          .placeholder { color: var(--muted); }
        </style>
        </head>
        <body>
        <header>
          <h1>weft traces</h1>
          <form id="filters">
            <label>service <input type="text" id="service" list="services" placeholder="any" autocomplete="off"></label>
            <datalist id="services"></datalist>
            <label><input type="checkbox" id="errors"> errors only</label>
            <label><input type="checkbox" id="auto" checked> auto-refresh</label>
            <button type="submit" id="refresh">Refresh</button>
          </form>
          <p id="status" role="status">loading…</p>
        </header>
        <main>
          <aside>
            <section><h2>Recent</h2><ul id="recent" class="traces"></ul></section>
            <section><h2>Slowest</h2><ul id="slowest" class="traces"></ul></section>
          </aside>
          <section id="trace">
            <p id="trace-title" class="placeholder">Pick a trace on the left, or open /traces#&lt;trace id&gt;.</p>
            <div id="legend">
              <span><i class="swatch proxy"></i>proxy (the sidecar's own time)</span>
              <span><i class="swatch connect"></i>connect</span>
              <span><i class="swatch tls"></i>tls</span>
              <span><i class="swatch upstream"></i>upstream (CLIENT: waiting for the answer)</span>
              <span><i class="swatch app"></i>app (SERVER: the app's own time)</span>
              <span><i class="swatch plain"></i>span without Weft's split</span>
            </div>
            <div id="waterfall"></div>
          </section>
        </main>
        <script>
        "use strict";
        // Reads GET /api/v1/traces (summaries) and /api/v1/traces/<id> (OTLP JSON). Every text is
        // set through text nodes or attributes, never parsed as HTML.
        const $ = (id) => document.getElementById(id);
        const KINDS = { 1: "INTERNAL", 2: "SERVER", 3: "CLIENT", 4: "PRODUCER", 5: "CONSUMER" };
        const PARTS = ["proxy", "connect", "tls", "upstream"];
        const SHOWN_FIRST = ["weft.source.identity", "weft.destination.identity", "weft.route", "weft.endpoint",
          "url.path", "http.request.method", "http.response.status_code", "error.type", "weft.retry.reason"];
        const errors = { lists: "", trace: "" }; // shown in #status while set
        let info = "";
        let current = null;   // the trace id shown
        let running = false, again = false;
        const toggled = new Map(); // span id -> details open, once clicked (errors start open)

        function el(tag, attrs, ...children) {
          const e = document.createElement(tag);
          for (const [k, v] of Object.entries(attrs || {})) {
            if (v === undefined || v === null || v === false) continue;
            if (k === "class") e.className = v; else e.setAttribute(k, v);
          }
          for (const c of children) if (c !== undefined && c !== null && c !== "") e.append(c);
          return e;
        }

        function showStatus() {
          const problems = [errors.lists, errors.trace].filter(Boolean);
          $("status").textContent = problems.length ? problems.join("\n") : info;
          $("status").className = problems.length ? "error" : "";
        }

        async function getJSON(url) {
          let response;
          try {
            response = await fetch(url, { cache: "no-store" });
          } catch (e) {
            throw new Error(`${url}: ${e.message}`);
          }
          const text = await response.text();
          if (!response.ok) throw new Error(`${response.status} ${text.trim() || response.statusText} (${url})`);
          try { return JSON.parse(text); } catch (e) { throw new Error(`${url}: not JSON: ${e.message}`); }
        }

        const plural = (n, word) => `${n} ${word}${n === 1 ? "" : "s"}`;
        const clock = (date) => date.toLocaleTimeString([], { hour12: false });
        // Weft's time split: upstream is, for a SERVER span, the app's own time.
        const partLabel = (r, part) => (part === "upstream" && r.kind === "SERVER" ? "app" : part);

        function ms(nanos) {
          const m = nanos / 1e6;
          return m >= 100 ? `${m.toFixed(0)} ms` : `${m.toFixed(2)} ms`;
        }

        // ---- lists ----

        function listURL(order) {
          let q = `order=${order}&limit=50`;
          const service = $("service").value.trim();
          if (service) q += `&service=${encodeURIComponent(service)}`;
          if ($("errors").checked) q += "&status=error";
          return `/api/v1/traces?${q}`;
        }

        function renderList(ul, summaries) {
          ul.replaceChildren();
          if (!summaries.length) ul.append(el("li", { class: "empty" }, "no traces"));
          for (const s of summaries) {
            const when = clock(new Date(Number(s.startTimeUnixNano) / 1e6));
            const name = `${s.rootService || "?"} · ${s.rootName || "(root not received)"}`;
            const meta = `${ms(s.durationNanos)} · ${plural(s.spanCount, "span")} · ` +
              `${(s.services || []).join(", ")} · ${when}`;
            const cls = [s.error && "error", s.traceId === current && "selected"].filter(Boolean).join(" ");
            ul.append(el("li", { "data-trace-id": s.traceId, class: cls },
              el("a", { href: `#${s.traceId}`, title: s.traceId },
                el("span", { class: "tname" }, s.error ? el("span", { class: "mark" }, "✘ ") : "", name),
                el("span", { class: "meta" }, meta))));
          }
        }

        async function loadLists() {
          try {
            const [recent, slowest] = await Promise.all([getJSON(listURL("recent")), getJSON(listURL("slowest"))]);
            renderList($("recent"), recent);
            renderList($("slowest"), slowest);
            const services = new Set([...recent, ...slowest].flatMap((s) => s.services || []));
            $("services").replaceChildren(...[...services].sort().map((s) => el("option", { value: s })));
            errors.lists = "";
            info = `${plural(recent.length, "recent trace")} · updated ${clock(new Date())}`;
          } catch (e) {
            errors.lists = `trace list: ${e.message}`;
          }
          showStatus();
        }

        // ---- one trace ----

        function attrValue(v) {
          if (!v) return "";
          if ("stringValue" in v) return v.stringValue;
          if ("intValue" in v) return String(v.intValue); // a string in OTLP JSON
          if ("doubleValue" in v) return String(v.doubleValue);
          if ("boolValue" in v) return String(v.boolValue);
          if ("arrayValue" in v) return `[${(v.arrayValue.values || []).map(attrValue).join(", ")}]`;
          if ("kvlistValue" in v) {
            return `{${(v.kvlistValue.values || []).map((a) => `${a.key}: ${attrValue(a.value)}`).join(", ")}}`;
          }
          return JSON.stringify(v);
        }

        function attrMap(list) {
          const m = new Map();
          for (const a of list || []) m.set(a.key, attrValue(a.value));
          return m;
        }

        function nanos(text) {
          try { return BigInt(text || 0); } catch (e) { return 0n; }
        }

        function kindName(kind) {
          if (typeof kind === "string") return kind.replace(/^SPAN_KIND_/, "");
          return KINDS[kind] || "";
        }

        // Flattens OTLP JSON into rows in depth-first order (children by start time); spans whose
        // parent is not in the trace are roots, as in `weftctl trace`.
        function rowsOf(data) {
          const flat = [];
          for (const rs of data.resourceSpans || []) {
            const resource = attrMap(rs.resource && rs.resource.attributes);
            for (const ss of rs.scopeSpans || []) {
              for (const span of ss.spans || []) {
                const start = nanos(span.startTimeUnixNano);
                let end = nanos(span.endTimeUnixNano);
                if (end < start) end = start;
                const code = span.status && span.status.code;
                flat.push({ span, resource, start, end, attrs: attrMap(span.attributes), kind: kindName(span.kind),
                  error: code === 2 || code === "STATUS_CODE_ERROR", depth: 0 });
              }
            }
          }
          const ids = new Set(flat.map((r) => r.span.spanId));
          const children = new Map();
          for (const r of flat) {
            const p = r.span.parentSpanId || "";
            if (!children.has(p)) children.set(p, []);
            children.get(p).push(r);
          }
          const byStart = (a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0);
          const ordered = [];
          const seen = new Set();
          const visit = (r, depth) => {
            if (seen.has(r)) return;
            seen.add(r);
            r.depth = depth;
            ordered.push(r);
            for (const c of (children.get(r.span.spanId) || []).slice().sort(byStart)) visit(c, depth + 1);
          };
          for (const r of flat.filter((r) => !ids.has(r.span.parentSpanId || "")).sort(byStart)) visit(r, 0);
          for (const r of flat) visit(r, 0);
          return ordered;
        }

        function splitBar(r, total, left, width) {
          const bar = el("div", { class: "bar", style: `left:${left}%;width:${width}%` });
          const micros = PARTS.map((p) => Number(r.attrs.get(`weft.duration.${p}`)));
          if (!micros.some((m) => Number.isFinite(m))) {
            bar.classList.add("plain");
            bar.title = `${r.span.name}: ${ms(Number(r.end - r.start))}`;
            return bar;
          }
          bar.classList.add("split");
          const sum = micros.reduce((a, m) => a + (Number.isFinite(m) && m > 0 ? m : 0), 0);
          PARTS.forEach((part, i) => {
            const m = micros[i];
            if (!Number.isFinite(m) || m <= 0) return;
            const label = partLabel(r, part);
            const share = total > 0 ? ((m * 1000) / total) * 100 : 0;
            bar.append(el("div", { class: `seg ${part}${label === "app" ? " app" : ""}`, "data-part": label,
              style: `width:${(m / sum) * 100}%`, title: `${label}: ${m} µs · ${share.toFixed(1)}% of the trace` }));
          });
          return bar;
        }

        function details(r) {
          const d = el("dl", { class: "details", "data-span-id": r.span.spanId });
          const add = (k, v, cls) => {
            if (v !== undefined && v !== "") d.append(el("dt", {}, k), el("dd", { class: cls }, v));
          };
          if (r.error) add("error", (r.span.status && r.span.status.message) || "status ERROR", "error");
          add("span", `${r.span.spanId}${r.span.parentSpanId ? ` (parent ${r.span.parentSpanId})` : ""}`);
          add("pod", [r.resource.get("k8s.namespace.name"), r.resource.get("k8s.pod.name")].filter(Boolean).join("/"));
          const split = PARTS.filter((p) => r.attrs.has(`weft.duration.${p}`))
            .map((p) => `${partLabel(r, p)} ${r.attrs.get(`weft.duration.${p}`)} µs`);
          add("time split", split.join(" · "));
          const keys = [...r.attrs.keys()].filter((k) => !k.startsWith("weft.duration."));
          keys.sort((a, b) => {
            const ia = SHOWN_FIRST.indexOf(a), ib = SHOWN_FIRST.indexOf(b);
            return (ia < 0 ? 99 : ia) - (ib < 0 ? 99 : ib) || a.localeCompare(b);
          });
          const bad = ["error.type", "weft.retry.reason"];
          for (const k of keys) add(k, r.attrs.get(k), bad.includes(k) ? "error" : undefined);
          return d;
        }

        function renderTrace(id, data) {
          const rows = rowsOf(data);
          const wf = $("waterfall");
          wf.replaceChildren();
          if (!rows.length) {
            $("trace-title").textContent = `trace ${id}: no spans`;
            return;
          }
          const t0 = rows.reduce((m, r) => (r.start < m ? r.start : m), rows[0].start);
          const t1 = rows.reduce((m, r) => (r.end > m ? r.end : m), rows[0].end);
          const total = Number(t1 - t0) || 1;
          const services = new Set(rows.map((r) => r.resource.get("service.name") || "?"));
          const anyError = rows.some((r) => r.error);
          $("trace-title").className = anyError ? "error" : "";
          $("trace-title").replaceChildren(
            `trace ${id} · ${plural(rows.length, "span")} · ${plural(services.size, "service")} · ${ms(total)}`,
            anyError ? el("span", { class: "mark" }, " · ✘ error") : "");
          const ticks = [0, 25, 50, 75, 100].map((p) => el("span", { style: `left:${p}%` }, ms((total * p) / 100)));
          wf.append(el("div", { class: "axis" }, el("span", {}, "service (pod)  span"),
            el("span", { class: "dur" }, "duration"), el("div", { class: "ticks" }, ...ticks)));
          for (const r of rows) {
            const dur = Number(r.end - r.start);
            const left = (Number(r.start - t0) / total) * 100;
            const width = Math.min((dur / total) * 100, 100 - left);
            const pod = r.resource.get("k8s.pod.name");
            const code = r.attrs.get("http.response.status_code");
            const label = el("div", { class: "label", style: `padding-left:${r.depth * 16}px` },
              r.error ? el("span", { class: "mark" }, "✘ ") : "",
              el("span", { class: "service" }, `${r.resource.get("service.name") || "?"}${pod ? ` (${pod})` : ""} `),
              el("span", { class: "name" }, r.span.name || "(unnamed)"),
              r.kind ? el("span", { class: "kind" }, r.kind) : "",
              code ? el("span", { class: Number(code) >= 500 ? "code bad" : "code" }, code) : "");
            label.title = label.textContent;
            const row = el("div", { class: `span-row${r.error ? " error" : ""}`, "data-span-id": r.span.spanId,
              "data-kind": r.kind, "data-depth": String(r.depth) },
              label, el("span", { class: "dur" }, ms(dur)),
              el("div", { class: "track" }, splitBar(r, total, left, width)));
            const more = details(r);
            more.hidden = !(toggled.has(r.span.spanId) ? toggled.get(r.span.spanId) : r.error);
            row.addEventListener("click", () => {
              more.hidden = !more.hidden;
              toggled.set(r.span.spanId, !more.hidden);
            });
            wf.append(row, more);
          }
        }

        async function loadTrace() {
          const id = location.hash.slice(1).toLowerCase();
          if (id !== current) toggled.clear();
          current = id || null;
          for (const li of document.querySelectorAll("li[data-trace-id]")) {
            li.classList.toggle("selected", li.dataset.traceId === id);
          }
          if (!id) {
            errors.trace = "";
            $("trace-title").textContent = "Pick a trace on the left, or open /traces#<trace id>.";
            $("trace-title").className = "placeholder";
            $("waterfall").replaceChildren();
          } else {
            try {
              if (!/^[0-9a-f]{32}$/.test(id)) throw new Error("not a trace id (32 hex digits)");
              const data = await getJSON(`/api/v1/traces/${id}`);
              if (current !== id) return;
              renderTrace(id, data);
              errors.trace = "";
            } catch (e) {
              if (current !== id) return;
              errors.trace = `trace ${id}: ${e.message}`;
              $("trace-title").textContent = `trace ${id}`;
              $("trace-title").className = "error";
              $("waterfall").replaceChildren();
            }
          }
          showStatus();
        }

        // One refresh at a time; one asked for meanwhile (a new filter) runs right after.
        async function refresh() {
          if (running) { again = true; return; }
          running = true;
          try {
            do { again = false; await Promise.all([loadLists(), loadTrace()]); } while (again);
          } finally { running = false; }
        }

        $("filters").addEventListener("submit", (e) => { e.preventDefault(); refresh(); });
        $("errors").addEventListener("change", refresh);
        $("service").addEventListener("change", refresh);
        window.addEventListener("hashchange", loadTrace);
        setInterval(() => { if ($("auto").checked && !document.hidden) refresh(); }, 5000);
        refresh();
        </script>
        </body>
        </html>
        """#
}
