// fsdialer operator page: one EventSource (/api/v2/live) for the live figures, the REST API for actions.
// The API key lives in an HttpOnly cookie set by /page/login; writes send X-Fsdialer-Page (the CSRF check).
"use strict";
const $ = (s) => document.querySelector(s);
const API = "/api/v2/dialer";
let source = null;
let campaignIds = [];

function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "text") e.textContent = v; else if (v !== null && v !== undefined) e.setAttribute(k, v);
  }
  for (const k of kids) if (k) e.append(k);
  return e;
}

async function api(method, path, body, type) {
  const opts = { method, credentials: "same-origin", headers: { "X-Fsdialer-Page": "1" } };
  if (body !== undefined) {
    opts.headers["Content-Type"] = type || "application/json";
    opts.body = type ? body : JSON.stringify(body);
  }
  const r = await fetch(path, opts);
  let json = null;
  try { json = await r.json(); } catch (_) { /* not JSON */ }
  return { status: r.status, json };
}

function showLogin(message) {
  if (source) { source.close(); source = null; }
  $("#app-view").hidden = true; $("#logout").hidden = true; $("#login-view").hidden = false;
  $("#login-error").textContent = message || "";
  $("#live").textContent = "offline"; $("#live").className = "live";
}

async function start() {
  const r = await api("GET", API);
  if (r.status === 401 || r.status === 403) return showLogin("");
  $("#login-view").hidden = true; $("#app-view").hidden = false; $("#logout").hidden = false;
  connect();
}

function connect() {
  if (source) source.close();
  source = new EventSource("/api/v2/live");
  source.addEventListener("snapshot", (e) => render(JSON.parse(e.data)));
  source.onopen = () => { $("#live").textContent = "live"; $("#live").className = "live on"; };
  source.onerror = async () => {
    $("#live").textContent = "reconnecting"; $("#live").className = "live";
    const r = await api("GET", API);
    if (r.status === 401) showLogin("Your session ended: log in again.");
  };
}

const fmt = (n) => (n === null || n === undefined) ? "—" : String(n);
const pct = (x) => (x === null || x === undefined) ? "—" : (100 * x).toFixed(1) + " %";
function eta(s) {
  if (s === null || s === undefined) return "—";
  if (s < 60) return Math.round(s) + " s";
  if (s < 3600) return Math.round(s / 60) + " min";
  return (s / 3600).toFixed(1) + " h";
}

function fig(id, label, value, cls) {
  return el("div", { class: "fig " + (cls || "") }, el("b", { id, text: value }), label);
}

// A gateway's state: disabled, or its circuit breaker on this node (closed = calls go, open = paused, half_open
// = one probe call decides), "unknown" while the engine has not loaded the campaign.
function gatewayState(g) {
  if (!g.enabled) return "disabled";
  return g.breaker ? g.breaker.state : "unknown";
}
function gatewayText(g) {
  const b = g.breaker;
  const st = gatewayState(g);
  if (st === "open") return `paused until ${new Date(b.paused_until).toLocaleTimeString()} (${b.consecutive_failures} failures in a row)`;
  if (st === "half_open") return b.probe_in_flight ? "probing (one test call)" : "ready to probe";
  if (st === "closed") return b.consecutive_failures > 0 ? `in use (${b.consecutive_failures} failures in a row)` : "in use";
  return st;
}

function card(c) {
  const id = c.id;
  const running = c.state === "running" || c.state === "sleeping";
  const run = el("button", { type: "button", id: `run-${id}` , text: "Run" });
  run.disabled = running;
  run.addEventListener("click", () => setState(id, 1));
  const stop = el("button", { type: "button", class: "secondary", id: `stop-${id}`, text: "Stop" });
  stop.disabled = !running;
  stop.addEventListener("click", () => setState(id, 3));
  const causes = Object.entries(c.causes).sort((a, b) => b[1] - a[1]);
  const max = Math.max(1, ...causes.map((x) => x[1]));
  const hist = el("div", { class: "hist", id: `hist-${id}` }, el("h4", { text: "Hangup causes" }));
  for (const [cause, n] of causes.slice(0, 12)) {
    hist.append(el("div", { class: "bar", "data-cause": cause },
      el("span", { text: cause, title: cause }),
      el("i", { style: `width:${(100 * n / max).toFixed(1)}%`, "aria-hidden": "true" }),
      el("output", { text: String(n) })));
  }
  if (!causes.length) hist.append(el("p", { class: "fig", text: "no call ended yet" }));
  const gws = el("div", { class: "gws" }, el("h4", { text: "Gateways" }));
  const t = el("table", {}, el("thead", {}, el("tr", {}, el("th", { text: "gateway" }), el("th", { text: "calls / limit" }), el("th", { text: "state" }))));
  const tb = el("tbody");
  for (const g of c.gateways) {
    tb.append(el("tr", { "data-gateway": g.name }, el("td", { text: g.name }),
      el("td", { text: `${g.in_use} / ${g.limit === null ? "∞" : g.limit}` }),
      el("td", { class: "gw-state", "data-state": gatewayState(g), text: gatewayText(g) })));
  }
  t.append(tb); gws.append(t);
  const activeMeter = el("meter", { min: "0", max: String(c.limit), value: String(c.active), "aria-label": "active calls against the limit" });
  const links = el("p", { class: "links" },
    el("a", { href: `${API}/${encodeURIComponent(id)}/members/export.csv`, text: "Members CSV" }),
    el("a", { href: `${API}/${encodeURIComponent(id)}/attempts/export.csv`, text: "Attempts CSV" }));
  const wh = c.webhooks ? fig(`wh-${id}`, "webhooks queued / dead", `${c.webhooks.queued} / ${c.webhooks.dead}`) : null;
  return el("article", { class: "card", id: `card-${id}`, "aria-labelledby": `title-${id}` },
    el("h3", { id: `title-${id}` }, el("span", { text: c.name }), el("span", { class: `state ${c.state}`, id: `state-${id}`, text: c.state })),
    el("div", { class: "actions" }, run, stop),
    el("div", { class: "grid" },
      fig(`active-${id}`, "active calls / limit", `${c.active} / ${c.limit}`),
      fig(`cps-${id}`, "calls per second / cap", `${c.cps.toFixed(1)} / ${c.cps_cap === null ? "∞" : c.cps_cap}`),
      fig(`answer-${id}`, "answer rate", pct(c.answer_rate)),
      fig(`eta-${id}`, "ETA", eta(c.eta_secs))),
    activeMeter,
    el("div", { class: "grid" },
      fig(`ok-${id}`, "success (ok)", fmt(c.counters.ok), "ok"),
      fig(`retry-${id}`, "retry", fmt(c.counters.retry), "retry"),
      fig(`error-${id}`, "error", fmt(c.counters.error), "err"),
      fig(`minus-${id}`, "minus", fmt(c.counters.minus), "minus"),
      fig(`calls-${id}`, "calls", fmt(c.counters.calls))),
    el("div", { class: "grid" },
      fig(`waiting-${id}`, "waiting (not called yet)", fmt(c.members.waiting - c.members.in_retry)),
      fig(`inretry-${id}`, "in retry (due again)", fmt(c.members.in_retry), "retry"),
      fig(`inflight-${id}`, "in a call", fmt(c.members.active)),
      fig(`ended-${id}`, "ended", fmt(c.members.ended)),
      wh),
    hist, gws, links);
}

function render(s) {
  const box = $("#campaigns");
  const focused = document.activeElement && document.activeElement.id;
  box.replaceChildren(...s.campaigns.map(card));
  if (focused && document.getElementById(focused)) document.getElementById(focused).focus();
  $("#no-campaigns").hidden = s.campaigns.length > 0;
  const ids = s.campaigns.map((c) => c.id);
  if (ids.join() !== campaignIds.join()) {
    campaignIds = ids;
    for (const sel of document.querySelectorAll(".campaign-select")) {
      const keep = sel.value;
      sel.replaceChildren(...ids.map((i) => el("option", { value: i, text: i })));
      if (ids.includes(keep)) sel.value = keep;
    }
  }
  const a = s.agents;
  $("#agents-section").hidden = !a || a.total === 0;
  if (a && a.total > 0) {
    const rows = Object.entries(a.by_state).map(([k, v]) => el("tr", {}, el("td", { text: k }), el("td", { text: String(v) })));
    $("#agents").replaceChildren(el("table", {}, el("tbody", {}, ...rows,
      el("tr", {}, el("td", { text: "abandoned calls" }), el("td", { id: "abandoned", text: String(a.abandoned) })),
      el("tr", {}, el("td", { text: "abandonment rate" }), el("td", { text: pct(a.abandon_rate) })))));
  }
  $("#live").dataset.at = s.at;
}

async function setState(id, code) {
  const r = await api("PUT", `${API}/${encodeURIComponent(id)}/state/${code}`);
  if (r.status !== 200) alert(`Could not change ${id}: ${r.json && r.json.info}`);
}

$("#login-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const r = await api("POST", "/page/login", { key: $("#login-key").value, token: $("#login-token").value });
  if (r.status === 200) { $("#login-token").value = ""; start(); }
  else showLogin((r.json && r.json.info) || "Login refused");
});

$("#logout").addEventListener("click", async () => { await api("POST", "/page/logout"); showLogin(""); });

$("#create-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const f = e.target;
  const accept = [1, 2, 3, 4, 5, 6, 7].map((d) => ({ weekday: d, start_min: 0, end_min: 1440 }));
  const body = {
    id: f.id.value, name: f.name.value, limit: Number(f.limit.value), max_tries: Number(f.max_tries.value),
    wait_between_retries_sec: Number(f.wait.value),
    calendar: { timezone: f.tz.value, accept },
    gateways: [{ name: "main", pattern: "^(.*)$", dial_string: f.dial.value }],
  };
  if (f.cps.value) body.cps = Number(f.cps.value);
  const r = await api("POST", API, body);
  $("#create-result").textContent = r.status === 200 ? `Campaign ${body.id} created.` : `Refused: ${r.json && r.json.info}`;
});

$("#upload-form").addEventListener("submit", (e) => {
  e.preventDefault();
  const id = $("#u-campaign").value;
  const file = $("#u-file").files[0];
  if (!id || !file) return;
  const xhr = new XMLHttpRequest();
  const run = $("#u-run").checked ? "?autoRun=true" : "";
  xhr.open("POST", `${API}/${encodeURIComponent(id)}/members/import${run}`);
  xhr.setRequestHeader("Content-Type", "text/csv");
  xhr.setRequestHeader("X-Fsdialer-Page", "1");
  xhr.upload.onprogress = (p) => { if (p.lengthComputable) $("#u-progress").value = Math.round(100 * p.loaded / p.total); };
  xhr.onload = () => {
    $("#u-progress").value = 100;
    let j = null; try { j = JSON.parse(xhr.responseText); } catch (_) { /* not JSON */ }
    const d = j && j.data;
    $("#upload-result").textContent = xhr.status === 200 && d
      ? `Imported: ${d.added} added, ${d.updated} updated, ${d.rejected} refused.` +
        (d.errors || []).slice(0, 5).map((x) => ` Line ${x.line}: ${x.error}.`).join("")
      : `Refused: ${(j && j.info) || xhr.status}`;
  };
  xhr.onerror = () => { $("#upload-result").textContent = "Upload failed (connection)."; };
  $("#u-progress").value = 0;
  xhr.send(file);
});

$("#search-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const id = encodeURIComponent($("#s-campaign").value);
  const mid = $("#s-member").value;
  const out = $("#search-result");
  delete out.dataset.more;
  $("#attempts").replaceChildren();
  let members = [];
  if (mid) {
    const r = await api("GET", `${API}/${id}/members/${mid}`);
    if (r.status !== 200) { out.textContent = (r.json && r.json.info) || "not found"; return; }
    members = [r.json.data];
  } else {
    const st = $("#s-state").value;
    const name = $("#s-name").value.trim();
    const q = new URLSearchParams({ limit: "50" });
    if (st) q.set("state", st);
    if (name) q.set("name", name);
    const r = await api("GET", `${API}/${id}/members?${q}`);
    if (r.status !== 200) { out.textContent = (r.json && r.json.info) || "search refused"; return; }
    members = (r.json && r.json.data) || [];
    if (name && r.json.next !== null && members.length < 50) out.dataset.more = "1";
  }
  const rows = members.map((m) => {
    const b = el("button", { type: "button", class: "secondary", text: "Attempts" });
    b.addEventListener("click", () => attempts(id, m.id || m._id));
    return el("tr", {}, el("td", { text: String(m.id || m._id) }), el("td", { text: m.name }),
      el("td", { text: m.state || "" }), el("td", { text: m.end_cause || "" }), el("td", {}, b));
  });
  const note = out.dataset.more ? el("p", { text: "The search stopped after 100,000 members: narrow the name, or go on through the API (after = its next)." }) : null;
  out.replaceChildren(...[el("p", { id: "search-count", text: `${members.length} found` }), note].filter(Boolean), el("table", {}, el("thead", {}, el("tr", {}, ...["id", "name", "state", "end cause", ""].map((h) => el("th", { text: h })))),
    el("tbody", {}, ...rows)));
});

async function attempts(id, mid) {
  const r = await api("GET", `${API}/${id}/members/${mid}/attempts`);
  const list = (r.json && r.json.data) || [];
  $("#attempts").replaceChildren(el("h3", { text: `Member ${mid}: attempts` }),
    el("table", {}, el("thead", {}, el("tr", {}, ...["#", "number", "cause", "class", "talk s", "at"].map((h) => el("th", { text: h })))),
      el("tbody", {}, ...list.map((a) => el("tr", {}, el("td", { text: String(a.attempt_no) }), el("td", { text: a.number }),
        el("td", { text: a.cause }), el("td", { text: a.class }), el("td", { text: String(a.talk_secs) }),
        el("td", { text: a.originate_at || "" }))))));
}

start();
