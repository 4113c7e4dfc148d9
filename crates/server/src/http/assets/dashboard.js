// The cutover dashboard: reads /api/v1 with the token kept in
// sessionStorage and redraws every two seconds. No framework, no build step.
"use strict";

// results: the last answer to a control per migration (answers counts
// them); open: a person's own opening or closing of a migration's card.
const state = { token: sessionStorage.getItem("cutover-token") || "", scope: null, matrix: null, releaseAt: null, selectedZone: null, results: {}, answers: 0, open: {} };

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

// Finished: nothing more runs by itself (a migration rolled back with its
// TTL still low may be resumed, and says so with its Resume button).
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
  // The chart's data; a migration whose observations cannot be read shows why.
  const observed = await Promise.all(details.map((d) => api("GET", "/migrations/" + d.summary.id + "/observations").catch((error) => ({ error: error.message }))));
  replace("migrations", details.map((detail, i) => migrationCard(detail, observed[i])));
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

// The operator's controls, as the API names them. `applies` says when the
// engine takes the action in a migration's state (the API refuses the rest).
const ACTIONS = {
  approve: {
    label: "Approve", busy: "Approving…",
    applies: (s) => s.state === "awaiting_approval",
    confirm: (s) => "Approve migration #" + s.id + " (" + zoneLabel(s) + ")? It goes on at once, recorded as approved by this token.",
  },
  pause: {
    label: "Pause", busy: "Pausing…",
    applies: (s) => !["done", "aborted", "failed", "paused", "rolled_back", "rolling_back"].includes(s.state),
    confirm: (s) => "Pause migration #" + s.id + " (" + zoneLabel(s) + ")? Nothing more runs until it is resumed; the records stay as they are.",
  },
  resume: {
    label: "Resume", busy: "Resuming…",
    applies: (s) => s.state === "paused" || (s.state === "rolled_back" && s.phase === "lowered"),
    confirm: (s) => s.state === "rolled_back"
      ? "Resume migration #" + s.id + " (" + zoneLabel(s) + ")? It tries the switch again, from the checks of the new servers."
      : "Resume migration #" + s.id + " (" + zoneLabel(s) + ")? It goes on from where it stopped; no wait is shortened.",
  },
  rollback: {
    label: "Roll back", busy: "Rolling back…",
    applies: (s) => !["done", "aborted", "failed", "rolling_back"].includes(s.state) && !(s.state === "rolled_back" && s.phase === "original"),
    confirm: (s) => "Roll back migration #" + s.id + " (" + zoneLabel(s) + ")? The old values are put back (the low TTL kept), then the original TTLs.",
  },
};

// Asks the API for `action` once confirmed, and keeps what it answered (the
// state it reports, or its error message) to show on the migration's card.
async function steer(summary, action, button) {
  const what = ACTIONS[action];
  if (!confirm(what.confirm(summary))) return;
  button.disabled = true;
  button.textContent = what.busy;
  try {
    const after = await api("POST", "/migrations/" + summary.id + "/" + action, {});
    state.results[summary.id] = { action, ok: true, state: after.state, seq: ++state.answers,
      text: what.label + ": the server says migration #" + summary.id + " is now " + after.state.replace(/_/g, " ") + " (" + new Date().toLocaleTimeString() + ")." };
  } catch (error) {
    state.results[summary.id] = { action, ok: false, state: null, seq: ++state.answers,
      text: what.label + " refused" + (error.status ? " (" + error.status + ")" : "") + ": " + error.message };
  }
  await refresh();
}

// The buttons of an admin token for what applies now, and the last answer.
function controls(summary) {
  const result = state.results[summary.id];
  const said = result ? el("p", { class: "result " + (result.ok ? "good" : "bad"), "data-result": result.action, "data-ok": String(result.ok), "data-state": result.state, "data-seq": result.seq }, result.text) : null;
  if (state.scope !== "admin") return said;
  const buttons = Object.keys(ACTIONS).filter((action) => ACTIONS[action].applies(summary)).map((action) =>
    el("button", { "data-action": action, class: action === "rollback" ? "danger" : null, onclick: (event) => steer(summary, action, event.currentTarget) }, ACTIONS[action].label));
  return [buttons.length ? el("div", { class: "controls" }, buttons) : null, said];
}

// What a migration awaiting approval shows: since when (the Approve button
// is among the controls, for an admin token; others are told who can).
function approvalBar(summary) {
  if (summary.state !== "awaiting_approval") return null;
  const since = summary.awaiting_approval_since ? " since " + when(summary.awaiting_approval_since) : "";
  return el("p", { class: "warn approval", "data-awaiting-since": summary.awaiting_approval_since },
    "Awaiting approval" + since + ". ",
    state.scope === "admin" ? null : el("span", { class: "muted" }, "An admin token can approve it."));
}

// The evidence of a step's last attempt, in the lines `migrate show` prints.
function evidence(rows, kind) {
  const last = rows[rows.length - 1];
  if (!last || !last.evidence_lines || !last.evidence_lines.length) return null;
  const head = "evidence" + (rows.length > 1 ? " of attempt " + last.attempt + " (" + rows.length + " recorded)" : "") + (last.done_at ? ", " + when(last.done_at) : "");
  return el("div", { class: "evidence", "data-evidence": kind },
    el("div", { class: "muted" }, head),
    el("ul", {}, last.evidence_lines.map((line) => el("li", {}, line))));
}

// The rollback's own steps (revert, restore_original), with their evidence.
function rollbackSteps(detail) {
  const rows = (detail.steps || []).filter((row) => row.position === null || row.position === undefined).filter((row) => ["revert", "restore_original"].includes(row.kind));
  if (!rows.length) return null;
  return [el("h4", {}, "Rollback"), el("ol", { class: "timeline" }, rows.map((row) => el("li", { class: "step " + (row.outcome || "running"), "data-step": row.kind, "data-state": row.outcome || "running" },
    el("span", { class: "when" }, when(row.done_at || row.started_at)), el("strong", {}, row.kind.replace(/_/g, " ")), " ", el("span", { class: "state" }, row.outcome || "running"),
    row.reason ? el("div", { class: "why " + row.outcome }, row.reason) : null,
    evidence([row], row.kind))))];
}

function migrationCard(detail, observed) {
  const summary = detail.summary;
  const steps = detail.timeline.map((entry, index) => {
    const status = entry.status.status;
    const at = entry.status.at || entry.status.due;
    const due = status === "next" && entry.status.due ? Date.parse(entry.status.due) / 1000 : null;
    const outcome = entry.status.last ? entry.status.last.outcome : status;
    const note = stepNote(entry.status);
    // Its recorded attempts (rows from before positions were stored match by kind).
    const rows = (detail.steps || []).filter((row) => row.position === index || ((row.position === null || row.position === undefined) && row.kind === entry.kind));
    return el("li", { class: "step " + status, "data-step": entry.kind, "data-state": status, "data-outcome": outcome, title: entry.why },
      el("span", { class: "when" }, status === "next" && !entry.status.due ? (summary.state === "awaiting_approval" ? "when approved" : "when resumed") : when(at)), el("strong", {}, entry.kind.replace(/_/g, " ")), " ", el("span", { class: "state" }, status.replace(/_/g, " ")),
      due !== null && !summary.attention ? el("span", { class: "countdown", "data-due": due }, " in " + seconds(due - Date.now() / 1000)) : null,
      el("div", { class: "what muted" }, entry.what),
      entry.mail ? el("div", { class: "mail muted", "data-mail": entry.kind }, entry.mail) : null,
      note ? el("div", { class: "why " + outcome }, note) : null,
      evidence(rows, entry.kind));
  });
  const events = (detail.events || []).map((event) => el("li", { "data-event": event.kind, "data-cause": event.cause, "data-outcome": event.outcome || null, class: "event " + (event.outcome || event.kind) },
    el("span", { class: "when" }, when(event.at)), el("span", { class: "cause" }, event.cause), " ", event.kind === "approval" ? "approved by " + (event.by || "an operator") + " at " + when(event.at) + (event.reason ? ": " + event.reason : "") : event.text));
  // Finished migrations start folded, running ones open; a person's own
  // opening or closing is kept across redraws.
  const finished = FINAL.includes(summary.state);
  const open = state.open[summary.id] !== undefined ? state.open[summary.id] : !finished;
  return el("details", { class: "card" + (finished ? " finished" : ""), "data-migration": summary.id, "data-state": summary.state, "data-carried-by": summary.carried_by, open: open ? "" : null },
    el("summary", { onclick: (event) => { state.open[summary.id] = !event.currentTarget.parentElement.open; } },
      el("h3", {}, "#" + summary.id + " · " + zoneLabel(summary) + " · " + summary.file_name + " · ", el("span", { class: "state badge" }, summary.state.replace(/_/g, " ")),
        summary.reason ? el("span", { class: "warn" }, " " + summary.reason) : null)),
    (summary.zones || []).length > 1 ? el("p", { class: "muted zones", "data-zones": summary.zones.length }, "Zones: " + summary.zones.join(", ")) : null,
    summary.attention ? el("p", { class: "bad attention", "data-attention": "" }, summary.attention) : null,
    approvalBar(summary),
    controls(summary),
    chart(detail, observed),
    el("ol", { class: "timeline" }, steps),
    rollbackSteps(detail),
    el("details", { class: "events", open: "" }, el("summary", {}, "What happened (" + events.length + " events)"), el("ol", { class: "events" }, events)));
}

// An SVG element with attributes and children.
function svg(tag, attrs, ...children) {
  const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value !== undefined && value !== null) node.setAttribute(key, value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    node.append(typeof child === "string" ? document.createTextNode(child) : child);
  }
  return node;
}

// The chart's series: authorities and resolvers on the old and new values.
const SERIES = [
  { key: "authorities-old", side: "authorities", field: "old", label: "authorities, old values" },
  { key: "authorities-new", side: "authorities", field: "new", label: "authorities, new values" },
  { key: "resolvers-old", side: "resolvers", field: "old", label: "resolvers, old values" },
  { key: "resolvers-new", side: "resolvers", field: "new", label: "resolvers, new values" },
];

// The switch and the rollback, from the migration's events: when the step
// that changed the records was done.
function markers(events) {
  const found = [];
  const switched = (events || []).find((e) => e.kind === "step" && e.step === "switch" && e.outcome === "done");
  if (switched) found.push({ kind: "switch", label: "switch", at: switched.at });
  const back = (events || []).find((e) => e.kind === "step" && (e.step === "revert" || e.step === "restore_original") && e.outcome === "done");
  if (back) found.push({ kind: "rollback", label: "rolled back", at: back.at });
  return found;
}

// How many authorities and resolvers served the old and the new values
// over time, from the observations stored for the migration (each run of
// surveys that counted alike: a point where it began and one where it
// ended), with the switch and the rollback as vertical lines.
function chart(detail, observed) {
  if (!observed || observed.error) return el("p", { class: "bad chart-empty" }, "No chart: " + ((observed && observed.error) || "no answer"));
  const rows = observed.observations;
  if (!rows.length) return el("p", { class: "muted chart-empty", "data-chart-empty": summaryId(detail) }, observed.watching
    ? "No observations yet: serve asks the servers between steps, every " + observed.every_seconds + " s."
    : "No observations: none were recorded while this migration ran.");
  const marks = markers(detail.events);
  const times = rows.flatMap((r) => [Date.parse(r.at), Date.parse(r.last_at)]).concat(marks.map((m) => Date.parse(m.at)));
  const t0 = Math.min(...times);
  const t1 = Math.max(t0 + 1000, ...times);
  const yMax = Math.max(1, ...rows.map((r) => Math.max(r.authorities.total, r.resolvers.total)));
  const W = 720, H = 230, left = 44, right = 16, top = 14, bottom = 58;
  const plotW = W - left - right, plotH = H - top - bottom;
  const x = (t) => (left + (t - t0) / (t1 - t0) * plotW).toFixed(2);
  const y = (v) => (top + (1 - v / yMax) * plotH).toFixed(2);
  const grid = [];
  for (let v = 0; v <= yMax; v += Math.max(1, Math.ceil(yMax / 5))) {
    grid.push(svg("line", { class: "grid", x1: left, x2: left + plotW, y1: y(v), y2: y(v) }));
    grid.push(svg("text", { class: "tick", x: left - 6, y: Number(y(v)) + 4, "text-anchor": "end" }, String(v)));
  }
  const series = SERIES.map((s) => {
    const points = [];
    for (const r of rows) {
      points.push({ at: r.at, value: r[s.side][s.field] });
      if (r.last_at !== r.at) points.push({ at: r.last_at, value: r[s.side][s.field] });
    }
    return svg("g", { class: "series " + s.key, "data-series": s.key },
      svg("polyline", { points: points.map((p) => x(Date.parse(p.at)) + "," + y(p.value)).join(" ") }),
      points.map((p) => svg("circle", { r: 3, cx: x(Date.parse(p.at)), cy: y(p.value), "data-series": s.key, "data-at": p.at, "data-value": p.value },
        svg("title", {}, s.label + ": " + p.value + " at " + when(p.at)))));
  });
  const lines = marks.map((m) => svg("g", { class: "marker " + m.kind, "data-marker": m.kind, "data-at": m.at },
    svg("line", { x1: x(Date.parse(m.at)), x2: x(Date.parse(m.at)), y1: top, y2: top + plotH }),
    // The label on the side with room for it.
    Number(x(Date.parse(m.at))) > left + plotW * 0.75
      ? svg("text", { x: Number(x(Date.parse(m.at))) - 4, y: top + 10, "text-anchor": "end" }, m.label + " " + when(m.at))
      : svg("text", { x: Number(x(Date.parse(m.at))) + 4, y: top + 10 }, m.label + " " + when(m.at))));
  const legend = SERIES.map((s, i) => svg("g", { class: "legend series " + s.key, transform: "translate(" + (left + i * 170) + "," + (H - 14) + ")" },
    svg("line", { x1: 0, x2: 22, y1: -4, y2: -4 }), svg("text", { x: 27, y: 0 }, s.label)));
  const axis = [
    svg("line", { class: "axis", x1: left, x2: left + plotW, y1: top + plotH, y2: top + plotH }),
    svg("text", { class: "tick", x: left, y: top + plotH + 16 }, when(new Date(t0).toISOString())),
    svg("text", { class: "tick", x: left + plotW, y: top + plotH + 16, "text-anchor": "end" }, when(new Date(t1).toISOString())),
  ];
  const surveys = rows.reduce((n, r) => n + r.surveys, 0);
  return el("figure", { class: "chart" },
    svg("svg", { class: "chart", role: "img", "aria-label": "servers on the old and new values over time", viewBox: "0 0 " + W + " " + H, width: W, height: H,
      "data-chart": summaryId(detail), "data-t0": t0, "data-t1": t1, "data-y-max": yMax, "data-left": left, "data-top": top, "data-plot-width": plotW, "data-plot-height": plotH },
    grid, axis, lines, series, legend),
    el("figcaption", { class: "muted" }, rows.length + " observations (" + surveys + " surveys) of what the " + rows[rows.length - 1].authorities.total + " authorities and " + rows[rows.length - 1].resolvers.total + " resolvers serve; " + (observed.watching ? "serve asks every " + observed.every_seconds + " s between steps." : "serve no longer asks (the migration stopped, or the caches have let go since the rollback).")));
}

// A migration's zones in a few words: its zone, or the first and how many more.
function zoneLabel(summary) {
  const count = (summary.zones || []).length;
  if (count <= 1) return summary.zone;
  return summary.zone + " and " + (count - 1) + (count === 2 ? " more zone" : " more zones");
}

function summaryId(detail) {
  return String(detail.summary.id);
}

// The locations of a matrix, in order: its own list, or those of its rows
// (an older serve's answer names none: local).
function matrixLocations(matrix) {
  if (matrix.locations && matrix.locations.length) return matrix.locations;
  const names = [...new Set(matrix.rows.map((row) => row.location || "local"))];
  return (names.length ? names : ["local"]).map((location) => ({ location, problems: [] }));
}

// The propagation matrix of a running migration, location by location (a
// heading per location): a row per authoritative address and resolver seen
// from it, a column per moving record; old / new / other with the TTL
// (left). A location that gave no answer says so, and why, in a row of its
// own: never an empty block that could pass for agreement.
function drawMatrix(matrix) {
  $("matrix-title").textContent = "Propagation of migration #" + matrix.migration + " (" + matrix.zone + ")";
  const width = matrix.questions.length + 1;
  const head = el("tr", {}, el("th", {}, ""), matrix.questions.map((q) => el("th", {}, q)));
  const locations = matrixLocations(matrix);
  const asked = matrix.source !== "none";
  const silent = [];
  const groups = locations.map((place) => {
    const rows = matrix.rows.filter((row) => (row.location || "local") === place.location);
    const answered = rows.length > 0;
    if (asked && (!answered || place.problems.length)) silent.push(place.location);
    const heading = el("tr", { class: "location", "data-location-head": place.location, "data-answered": answered ? "yes" : "no" },
      el("th", { colspan: width }, place.location === "local" ? "local (this serve)" : place.location,
        el("span", { class: "muted" }, answered ? " · " + rows.length + (rows.length === 1 ? " server or cache" : " servers and caches") : "")));
    const problems = place.problems.map((problem) => el("tr", { class: "problem", "data-location": place.location, "data-kind": "problem" },
      el("th", { class: "rowhead" }, el("span", { class: "kind" }, "problem")),
      el("td", { class: "cell error", colspan: width - 1 }, problem)));
    const empty = answered ? [] : [el("tr", { class: "unanswered", "data-location": place.location, "data-kind": "unanswered" },
      el("th", { class: "rowhead" }, el("span", { class: "kind" }, asked ? "no answer" : "not asked")),
      el("td", { class: asked ? "cell error" : "cell", colspan: width - 1 },
        asked ? (place.problems.length ? "no answer from " + place.location + " (see above)" : "no answer from " + place.location) : "not asked yet"))];
    const lines = rows.map((row) => el("tr", { "data-row": row.label, "data-kind": row.kind, "data-location": place.location },
      el("th", { class: "rowhead" }, el("span", { class: "kind" }, row.kind), " ", row.label),
      row.cells.map((cell) => el("td", { class: "cell " + cell.state, "data-state": cell.state },
        el("div", { class: "data" }, cell.records.join(" | ") || "–"),
        el("div", { class: "ttl" }, cell.state + (cell.ttl !== null ? (row.kind === "resolver" ? " · TTL left " : " · TTL ") + cell.ttl + "s" : ""))))));
    return el("tbody", { "data-location": place.location }, heading, problems, lines, empty);
  });
  replace("matrix", el("table", { class: "matrix" }, el("thead", {}, head), groups));
  const all = matrix.rows.length > 0 && silent.length === 0 && matrix.rows.every((row) => row.cells.every((cell) => cell.state === "new"));
  state.releaseAt = matrix.all_released_in_seconds !== null ? Date.now() / 1000 + matrix.all_released_in_seconds : null;
  // A read token sees the last answers known; it never makes the server ask.
  const by = matrix.source === "scheduler" ? " by the scheduler" : "";
  const missing = silent.length ? " No answer, or not a full one, from " + silent.join(", ") + "." : "";
  $("matrix-summary").dataset.source = matrix.source;
  $("matrix-summary").textContent = matrix.source === "none"
    ? "Not asked yet: the scheduler's next step or a probe token's visit asks."
    : (all ? "Every server and cache gives the new values." : "Not everywhere yet.") + missing + " Asked" + by + " at " + when(matrix.checked_at) + " (" + seconds(matrix.age_seconds) + " ago).";
  $("matrix-summary").className = all ? "good" : "warn";
}

async function drawMatrixNow() {
  if (!state.token) return;
  try {
    const list = await api("GET", "/migrations");
    const running = list.migrations.find((m) => !FINAL.includes(m.state));
    // At the top while a migration runs; out of the way otherwise.
    $("matrix-section").hidden = !running;
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

// The probe agents: where each looks from, online or offline (an offline
// agent never counts as agreeing), when last seen, the jobs it did and holds.
async function drawAgents() {
  try {
    const list = await api("GET", "/agents");
    if (!list.agents.length) { message("agents", "No agent has polled since serve started: every check runs from here (local)."); return; }
    const rows = list.agents.map((a) => el("tr", { "data-agent": a.location + "/" + a.name, class: a.online ? null : "offline" },
      el("td", {}, a.location), el("td", {}, a.name), el("td", {}, a.online ? "online" : "offline"),
      el("td", {}, seconds(a.seen_seconds_ago) + " ago"), el("td", { class: "num" }, a.jobs_done), el("td", { class: "num" }, a.jobs_leased)));
    replace("agents", el("table", {}, el("thead", {}, el("tr", {}, ["location", "agent", "state", "last seen", "jobs done", "leased"].map((h) => el("th", {}, h)))), el("tbody", {}, rows)),
      el("p", { class: "muted" }, "Offline after " + list.offline_after_seconds + " s of silence; an offline agent never counts as agreeing."));
  } catch (error) {
    message("agents", error.message, "bad");
  }
}

async function refresh() {
  if (!(await whoami())) return;
  try {
    const list = await drawZones();
    const migrations = await drawMigrations();
    await Promise.all([drawTimelineAndAudit(list, migrations), drawMail(), drawAgents()]);
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
