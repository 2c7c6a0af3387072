/**
 * GET /ui: the dashboard, one self-contained page (no external assets: a
 * node may have no internet). It polls the node API and renders state,
 * models, serve targets, peers and the agent preset. With --api-key, the
 * key comes from the URL fragment (`/ui#key=…`, never sent to the server
 * in the URL) or a prompt, and is kept in sessionStorage.
 */

const STYLE = `
body{font:14px/1.4 system-ui,sans-serif;margin:0;background:#f6f7f4;color:#1d2b1f}
header{background:#2f5d3a;color:#fff;padding:12px 20px;display:flex;gap:16px;align-items:center}
header h1{font-size:18px;margin:0}
main{padding:16px 20px;display:grid;gap:16px;grid-template-columns:repeat(auto-fit,minmax(340px,1fr))}
section{background:#fff;border:1px solid #d8ddd5;border-radius:6px;padding:12px 16px}
h2{font-size:15px;margin:0 0 8px}
table{border-collapse:collapse;width:100%}td,th{text-align:left;padding:3px 6px;border-bottom:1px solid #eee}
.pill{padding:2px 8px;border-radius:10px;background:#ddd;font-weight:600}
.ok{background:#c9ebc9}.warn{background:#f7e2a8}.bad{background:#f4c2c2}
pre{background:#f0f2ee;padding:8px;overflow:auto;margin:0}
#err{color:#a00;padding:0 20px}
`;

const SCRIPT = `
const $ = (id) => document.getElementById(id);
const m = location.hash.match(/key=([^&]+)/);
if (m) { sessionStorage.setItem("groveKey", decodeURIComponent(m[1])); history.replaceState(null, "", "/ui"); }
function esc(v) { return String(v ?? "").replace(/[&<>"]/g, (c) => ({"&":"&amp;","<":"&lt;",">":"&gt;",'"':"&quot;"})[c]); }
async function get(path, text) {
  const key = sessionStorage.getItem("groveKey");
  const res = await fetch(path, { headers: key ? { authorization: "Bearer " + key } : {} });
  if (res.status === 401) {
    const k = prompt("This node needs its API key:");
    if (k) sessionStorage.setItem("groveKey", k);
    throw new Error("unauthorized");
  }
  if (!res.ok) throw new Error(path + ": " + res.status + " " + (await res.text()));
  return text ? res.text() : res.json();
}
function pill(v, good, warn) {
  const cls = good.includes(v) ? "ok" : warn.includes(v) ? "warn" : "bad";
  return '<span class="pill ' + cls + '">' + esc(v) + "</span>";
}
function rows(list, cols) {
  if (!list || list.length === 0) return "<tr><td>none</td></tr>";
  const head = "<tr>" + cols.map((c) => "<th>" + esc(c[0]) + "</th>").join("") + "</tr>";
  return head + list.map((x) => "<tr>" + cols.map((c) => "<td>" + esc(c[1](x)) + "</td>").join("") + "</tr>").join("");
}
async function refresh() {
  try {
    const [s, a] = await Promise.all([get("/api/status"), get("/api/availability")]);
    $("state").innerHTML = pill(s.state, ["running"], ["starting", "stopping"]);
    $("mode").textContent = s.mode;
    $("health").innerHTML = pill(s.health?.status, ["ok"], ["degraded"]) + " " + esc(s.health?.reason ?? "");
    $("model").textContent = s.modelName ? s.modelName + " (" + s.modelId + ")" : "none";
    $("base").textContent = s.apiBaseUrl;
    $("avail").innerHTML = ["capable", "admitted", "available"].map((k) => k + " " + pill(a[k] ? "yes" : "no", ["yes"], [])).join(" ") +
      (a.reason ? "<br>" + esc(a.reason) : "");
    $("models").innerHTML = rows(a.models, [["id", (x) => x.id], ["name", (x) => x.name]]);
    $("targets").innerHTML = rows(a.serveTargets, [["model", (x) => x.modelName ?? x.modelId], ["node", (x) => x.nodeName ?? x.peerId],
      ["stages", (x) => x.stages ? JSON.stringify(x.stages) : "whole"], ["load", (x) => x.load ? x.load.active + " active, " + x.load.queued + " queued" : ""]]);
    $("peers").innerHTML = rows(s.peers, [["peer", (x) => x.nodeName ?? x.peerId ?? JSON.stringify(x)], ["id", (x) => x.peerId ?? ""]]);
    if (a.models && a.models.length > 0) {
      $("preset").textContent = await get("/api/agent-preset?format=shell&model=" + encodeURIComponent(a.models[0].id), true);
    } else $("preset").textContent = "no model offered yet";
    $("err").textContent = "";
    $("updated").textContent = "updated " + new Date().toLocaleTimeString();
  } catch (e) { $("err").textContent = String(e.message ?? e); }
}
refresh();
setInterval(refresh, 2000);
`;

const UI_HTML = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>Grove node</title><style>${STYLE}</style></head>
<body>
<header><h1>Grove</h1><span id="state" class="pill">…</span><span id="updated"></span></header>
<p id="err"></p>
<main>
<section><h2>Node</h2><table>
<tr><th>mode</th><td id="mode"></td></tr>
<tr><th>health</th><td id="health"></td></tr>
<tr><th>model</th><td id="model"></td></tr>
<tr><th>API</th><td id="base"></td></tr>
<tr><th>mesh</th><td id="avail"></td></tr>
</table></section>
<section><h2>Models offered</h2><table id="models"></table></section>
<section><h2>Serve targets</h2><table id="targets"></table></section>
<section><h2>Peers</h2><table id="peers"></table></section>
<section><h2>Agent preset</h2><pre id="preset"></pre></section>
</main>
<script>${SCRIPT}</script>
</body></html>
`;

export function uiRoute() {
  return function ui(): Response {
    return new Response(UI_HTML, {
      headers: {
        "content-type": "text/html; charset=utf-8",
        // Inline script only; nothing from elsewhere.
        "content-security-policy":
          "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'",
      },
    });
  };
}
