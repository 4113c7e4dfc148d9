// The cutover dashboard: reads /api/v1 with the token kept in
// sessionStorage and redraws every two seconds. No framework, no build step.
"use strict";

const state = { token: sessionStorage.getItem("cutover-token") || "", scope: null, matrix: null, releaseAt: null, selectedZone: null };

// Settings may come in the URL fragment (#token=…&zone=…&names=…): the token
// moves to sessionStorage and leaves the address bar.
(function readFragment() {
  const params = new URLSearchParams(location.hash.slice(1));
  if (params.get("token")) {
    state.token = params.get("token");
    sessionStorage.setItem("cutover-token", state.token);
  }
  if (location.hash) history.replaceState(null, "", location.pathname);
})();

const $ = (id) => document.getElementById(id);

// An element with attributes and children (strings become text, never HTML).
function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (value !== undefined && value !== null && value !== false) node.setAttribute(key, value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    node.append(typeof child === "string" || typeof child === "number" ? String(child) : child);
  }
  return node;
}

// A call to the API; throws Error(message) with the API's error message.
async function api(method, path, body) {
  const headers = { "Accept": "application/json" };
  if (state.token) headers["Authorization"] = "Bearer " + state.token;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch("/api/v1" + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const data = await response.json().catch(() => ({}));
  if (!response.ok) {
    const error = new Error((data.error && data.error.message) || response.statusText);
    error.status = response.status;
    error.code = data.error && data.error.code;
    throw error;
  }
  return data;
}

function replace(id, ...children) {
  const node = $(id);
  node.replaceChildren(...children.flat());
  node.classList.remove("muted");
}

function message(id, text, kind) {
  const node = $(id);
  node.replaceChildren(el("p", { class: kind || "muted" }, text));
}

function seconds(total) {
  if (total === null || total === undefined) return "–";
  total = Math.max(0, Math.round(total));
  const h = Math.floor(total / 3600), m = Math.floor((total % 3600) / 60), s = total % 60;
  return (h ? h + "h " : "") + (h || m ? m + "m " : "") + s + "s";
}

async function whoami() {
  if (!state.token) { $("who").textContent = "no token: enter one"; return false; }
  try {
    const me = await api("GET", "/whoami");
    $("who").textContent = me.name + " (" + me.scope + ")";
    $("who").className = me.scope === "admin" ? "badge admin" : "badge";
    state.scope = me.scope;
    return true;
  } catch (error) {
    $("who").textContent = "token refused: " + error.message;
    $("who").className = "bad";
    return false;
  }
}

async function drawZones() {
  const list = await api("GET", "/zones");
  if (!list.zones.length) { message("zones", "No zones in the store."); return list; }
  const rows = list.zones.map((zone) => el("tr", { "data-zone": zone.origin, class: zone.origin === state.selectedZone ? "selected" : null, onclick: () => { state.selectedZone = zone.origin; refresh(); } },
    el("td", {}, zone.origin), el("td", { class: "num" }, zone.serial), el("td", { class: "num" }, zone.records), el("td", {}, zone.updated_at)));
  replace("zones", el("table", {}, el("thead", {}, el("tr", {}, el("th", {}, "zone"), el("th", {}, "serial"), el("th", {}, "records"), el("th", {}, "changed"))), el("tbody", {}, rows)));
  return list;
}

async function drawTimelineAndAudit(list, migrations) {
  const audit = [];
  for (const detail of migrations) {
    const log = await api("GET", "/migrations/" + detail.summary.id + "/audit");
    for (const entry of log.entries) {
      const side = (rrset) => rrset ? rrset.values.join(" ") + " (TTL " + rrset.ttl + ")" : "nothing";
      audit.push({ at: entry.applied_at || entry.intended_at, zone: "migration #" + detail.summary.id, text: entry.step + ": " + entry.name + " " + entry.rtype + " " + side(entry.old) + " → " + side(entry.new) + " [" + entry.status + "]" });
    }
  }
  for (const zone of list.zones) {
    const versions = await api("GET", "/zones/" + encodeURIComponent(zone.origin) + "/versions");
    for (const version of versions.versions) audit.push({ at: version.at, zone: zone.origin, text: "serial " + version.serial + ": " + (version.comment || "(no comment)") });
    if (zone.origin === state.selectedZone) {
      $("timeline-title").hidden = false;
      $("timeline-title").textContent = "Versions of " + zone.origin;
      $("timeline").replaceChildren(...versions.versions.map((version, index) => el("li", { class: index === versions.versions.length - 1 ? "step current" : "step done" },
        el("span", { class: "when" }, version.at), el("strong", {}, "serial " + version.serial), " ", el("span", {}, version.comment || ""),
        el("span", { class: "muted" }, "  +" + version.added + " −" + version.removed))));
    }
  }
  audit.sort((a, b) => (a.at < b.at ? 1 : a.at > b.at ? -1 : 0));
  $("audit").replaceChildren(...audit.slice(0, 50).map((entry) => el("li", {},
    el("span", { class: "when" }, entry.at), el("strong", {}, entry.zone), " " + entry.text)));
}

function split(text) {
  return (text || "").split(/[\s,]+/).filter(Boolean);
}

const FINAL = ["done", "aborted", "rolled_back", "failed"];

async function drawMigrations() {
  let list;
  try {
    list = await api("GET", "/migrations");
  } catch (error) {
    message("migrations", error.message, "bad");
    return [];
  }
  if (!list.migrations.length) { message("migrations", "No migrations."); return []; }
  const details = await Promise.all(list.migrations.slice(0, 5).map((m) => api("GET", "/migrations/" + m.id)));
  replace("migrations", details.map(migrationCard));
  return details;
}

function when(text) {
  return text ? new Date(text).toLocaleTimeString() : "";
}

// What a timeline step's status says beyond its name: why it was skipped
// or failed, or how its last attempt ended (waiting, retrying, failed).
function stepNote(status) {
  if (status.last) return status.last.outcome + (status.last.reason ? ": " + status.last.reason : "");
  return status.reason || null;
}

// Approves the gate a migration awaits approval at, once confirmed; the
// approval is recorded with this token's name.
async function approve(summary) {
  if (!confirm("Approve migration #" + summary.id + " (" + summary.zone + ")? It goes on at once, recorded as approved by this token.")) return;
  try { await api("POST", "/migrations/" + summary.id + "/approve", {}); await refresh(); } catch (error) { alert(error.message); }
}

// What a migration awaiting approval shows: since when, and the button
// (an admin token's; others are told who can approve).
function approvalBar(summary) {
  if (summary.state !== "awaiting_approval") return null;
  const since = summary.awaiting_approval_since ? " since " + when(summary.awaiting_approval_since) : "";
  return el("p", { class: "warn approval", "data-awaiting-since": summary.awaiting_approval_since },
    "Awaiting approval" + since + ". ",
    state.scope === "admin"
      ? el("button", { "data-action": "approve", onclick: () => approve(summary) }, "Approve")
      : el("span", { class: "muted" }, "An admin token can approve it."));
}

function migrationCard(detail) {
  const summary = detail.summary;
  const steps = detail.timeline.map((entry) => {
    const status = entry.status.status;
    const at = entry.status.at || entry.status.due;
    const due = status === "next" && entry.status.due ? Date.parse(entry.status.due) / 1000 : null;
    const outcome = entry.status.last ? entry.status.last.outcome : status;
    const note = stepNote(entry.status);
    return el("li", { class: "step " + status, "data-step": entry.kind, "data-state": status, "data-outcome": outcome, title: entry.why },
      el("span", { class: "when" }, status === "next" && !entry.status.due ? (summary.state === "awaiting_approval" ? "when approved" : "when resumed") : when(at)), el("strong", {}, entry.kind.replace(/_/g, " ")), " ", el("span", { class: "state" }, status.replace(/_/g, " ")),
      due !== null && !summary.attention ? el("span", { class: "countdown", "data-due": due }, " in " + seconds(due - Date.now() / 1000)) : null,
      el("div", { class: "what muted" }, entry.what),
      entry.mail ? el("div", { class: "mail muted", "data-mail": entry.kind }, entry.mail) : null,
      note ? el("div", { class: "why " + outcome }, note) : null);
  });
  const events = (detail.events || []).map((event) => el("li", { "data-event": event.kind, "data-cause": event.cause, "data-outcome": event.outcome || null, class: "event " + (event.outcome || event.kind) },
    el("span", { class: "when" }, when(event.at)), el("span", { class: "cause" }, event.cause), " ", event.kind === "approval" ? "approved by " + (event.by || "an operator") + " at " + when(event.at) + (event.reason ? ": " + event.reason : "") : event.text));
  return el("div", { class: "card", "data-migration": summary.id, "data-state": summary.state, "data-carried-by": summary.carried_by },
    el("h3", {}, "#" + summary.id + " · " + summary.zone + " · " + summary.file_name + " · ", el("span", { class: "state badge" }, summary.state.replace(/_/g, " ")),
      summary.reason ? el("span", { class: "warn" }, " " + summary.reason) : null),
    summary.attention ? el("p", { class: "bad attention", "data-attention": "" }, summary.attention) : null,
    approvalBar(summary),
    el("ol", { class: "timeline" }, steps),
    el("details", { class: "events", open: "" }, el("summary", {}, "What happened (" + events.length + " events)"), el("ol", { class: "events" }, events)));
}

// The propagation matrix of a running migration: a row per authoritative
// address and resolver, a column per moving record; old / new / other.
function drawMatrix(matrix) {
  $("matrix-title").textContent = "Propagation of migration #" + matrix.migration + " (" + matrix.zone + ")";
  const head = el("tr", {}, el("th", {}, ""), matrix.questions.map((q) => el("th", {}, q)));
  const rows = matrix.rows.map((row) => el("tr", { "data-row": row.label, "data-kind": row.kind },
    el("th", { class: "rowhead" }, el("span", { class: "kind" }, row.kind), " ", row.label),
    row.cells.map((cell) => el("td", { class: "cell " + cell.state, "data-state": cell.state },
      el("div", { class: "data" }, cell.records.join(" | ") || "–"),
      el("div", { class: "ttl" }, cell.state + (cell.ttl !== null ? (row.kind === "resolver" ? " · TTL left " : " · TTL ") + cell.ttl + "s" : ""))))));
  replace("matrix", el("table", { class: "matrix" }, el("thead", {}, head), el("tbody", {}, rows)));
  const all = matrix.rows.length > 0 && matrix.rows.every((row) => row.cells.every((cell) => cell.state === "new"));
  state.releaseAt = matrix.all_released_in_seconds !== null ? Date.now() / 1000 + matrix.all_released_in_seconds : null;
  // A read token sees the last answers known; it never makes the server ask.
  const by = matrix.source === "scheduler" ? " by the scheduler" : "";
  $("matrix-summary").dataset.source = matrix.source;
  $("matrix-summary").textContent = matrix.source === "none"
    ? "Not asked yet: the scheduler's next step or a probe token's visit asks."
    : (all ? "Every server and cache gives the new values." : "Not everywhere yet.") + " Asked" + by + " at " + when(matrix.checked_at) + " (" + seconds(matrix.age_seconds) + " ago).";
  $("matrix-summary").className = all ? "good" : "warn";
}

async function drawMatrixNow() {
  if (!state.token) return;
  try {
    const list = await api("GET", "/migrations");
    const running = list.migrations.find((m) => !FINAL.includes(m.state));
    if (!running) { message("matrix", ""); $("matrix-summary").textContent = "No running migration."; return; }
    drawMatrix(await api("GET", "/migrations/" + running.id + "/propagation"));
  } catch (error) { message("matrix", error.message, "bad"); }
}

async function mailAction(path, body) {
  try { await api("POST", "/mail/" + path, body); await drawMail(); } catch (error) { alert(error.message); }
}

async function drawMail() {
  try {
    const queue = await api("GET", "/mail/queue");
    if (!queue.messages.length) { message("mail", "The queue is empty."); return; }
    const rows = queue.messages.map((m) => {
      const domains = [...new Set(m.recipients.map((r) => r.address.split("@").pop()))];
      return el("tr", { "data-message": m.id, class: m.held ? "held" : null },
        el("td", {}, m.id), el("td", {}, m.sender || "<>"), el("td", {}, m.recipients.map((r) => el("div", {}, r.address + " · " + r.state + " · " + r.attempts + " tries" + (r.destination ? " → " + r.destination : "") + (r.last_error ? " · " + r.last_error : "")))),
        el("td", { class: "num" }, seconds(m.age_seconds)), el("td", {}, m.held ? "held" : ""),
        el("td", { class: "actions" },
          m.held ? el("button", { onclick: () => mailAction("release", { message: m.id }) }, "Release") : el("button", { onclick: () => mailAction("hold", { message: m.id }) }, "Hold"),
          domains.map((d) => m.held
            ? el("button", { onclick: () => mailAction("release", { domain: d }) }, "Release " + d)
            : el("button", { onclick: () => mailAction("hold", { domain: d }) }, "Hold " + d)),
          domains.map((d) => el("button", { onclick: () => { $("r-domain").value = d; $("r-destination").focus(); } }, "Retarget " + d))));
    });
    replace("mail", el("table", {}, el("thead", {}, el("tr", {}, ["id", "from", "recipients", "age", "", ""].map((h) => el("th", {}, h)))), el("tbody", {}, rows)));
  } catch (error) {
    message("mail", error.status === 503 ? "Mail is not configured." : error.message, error.status === 503 ? "muted" : "bad");
  }
}

async function refresh() {
  if (!(await whoami())) return;
  try {
    const list = await drawZones();
    const migrations = await drawMigrations();
    await Promise.all([drawTimelineAndAudit(list, migrations), drawMail()]);
    $("live").textContent = "updated " + new Date().toLocaleTimeString();
  } catch (error) {
    $("live").textContent = "update failed: " + error.message;
  }
}

function tick() {
  const now = Date.now() / 1000;
  for (const node of document.querySelectorAll(".countdown")) node.textContent = " in " + seconds(Number(node.dataset.due) - now);
  if (state.releaseAt !== null) {
    const left = state.releaseAt - now;
    const summary = $("matrix-summary");
    summary.dataset.releaseIn = String(Math.max(0, Math.round(left)));
    summary.title = "every cache lets go in " + seconds(left);
  }
}

document.addEventListener("DOMContentLoaded", () => {
  $("token-form").addEventListener("submit", (event) => {
    event.preventDefault();
    state.token = $("token").value.trim();
    sessionStorage.setItem("cutover-token", state.token);
    $("token").value = "";
    refresh();
  });
  $("verify-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    message("checks", "checking…");
    try {
      const result = await api("POST", "/checks/verify", { kind: $("v-kind").value, args: split($("v-args").value) });
      replace("checks", el("p", { class: result.ok ? "good" : "bad" }, result.ok ? "passed" : "failed"), el("pre", {}, JSON.stringify(result.report, null, 2)));
    } catch (error) { message("checks", error.message, "bad"); }
  });
  $("retarget-form").addEventListener("submit", (event) => {
    event.preventDefault();
    mailAction("retarget", { domain: $("r-domain").value.trim(), destination: $("r-destination").value.trim() });
  });
  refresh();
  drawMatrixNow();
  setInterval(refresh, 2000);
  setInterval(drawMatrixNow, 3000);
  setInterval(tick, 1000);
});
