// Truce dashboard: reads the public API with the viewer's key and redraws every 30 seconds.
// Each panel loads on its own, so one failing endpoint never blanks the others.
"use strict";

const POLL_MS = 30_000;
const KEY_STORE = "truce.apiKey";
const DAY_MS = 86_400_000;
const CURRENCY = "USD";
const STAGES = ["Undefined", "Defined", "Aligned", "Integrated"];
const SLA_STATES = ["breached", "warning", "running"];
const FUNNEL_STEPS = [
  { key: "mqls", label: "MQL" },
  { key: "sals", label: "SAL", rate: "mql_to_sal", verb: "accepted" },
  { key: "sqls", label: "SQL", rate: "sal_to_sql", verb: "became opportunities" },
  { key: "won", label: "Won", rate: "sql_to_won", verb: "won" },
];
// `better` says which way a change is good news for both teams.
const HEADLINES = [
  { name: "lead-acceptance-rate", label: "Lead acceptance", better: "up" },
  { name: "sla-compliance", label: "SLA compliance", better: "up" },
  { name: "time-to-accept", label: "Time to accept (median)", better: "down" },
  { name: "time-to-first-touch", label: "Time to first touch (median)", better: "down" },
  { name: "sales-cycle-length", label: "Sales cycle (median)", better: "down" },
  { name: "win-rate", label: "Win rate", better: "up" },
  { name: "cost-of-sales", label: "Cost of sales", better: "down" },
  { name: "marketing-sourced-share", label: "Marketing-sourced revenue", better: "up" },
  { name: "mql-commitment-attainment", label: "MQL commitment attained", better: "up" },
];

// ---------- small helpers ----------

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null) continue;
    if (name === "text") node.textContent = value;
    else if (name === "class") node.className = value;
    else if (name === "testid") node.dataset.testid = value;
    else node.setAttribute(name, value);
  }
  node.append(...children.filter((c) => c !== null && c !== undefined));
  return node;
}

function svg(tag, attrs = {}) {
  const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (name === "text") node.textContent = value;
    else if (name === "testid") node.dataset.testid = value;
    else node.setAttribute(name, value);
  }
  return node;
}

const noData = (what = "no data yet") => el("p", { class: "empty", testid: "no-data", text: what });

function isoDay(ms) {
  return new Date(ms).toISOString().slice(0, 10);
}

// Windows end at the start of tomorrow (UTC), so today's activity counts.
function windowDays(daysBack, daysLength) {
  const now = new Date();
  const tomorrow = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate() + 1);
  const end = tomorrow - daysBack * DAY_MS;
  return { start: isoDay(end - daysLength * DAY_MS), end: isoDay(end) };
}

function metricPath(name, range) {
  return `/api/v1/metrics/${name}?start=${range.start}&end=${range.end}`;
}

// ---------- the key and the API ----------

let memoryKey = null;

function readKey() {
  try {
    return localStorage.getItem(KEY_STORE) || memoryKey;
  } catch {
    return memoryKey;
  }
}

function saveKey(key) {
  memoryKey = key || null;
  try {
    if (key) localStorage.setItem(KEY_STORE, key);
    else localStorage.removeItem(KEY_STORE);
  } catch {
    // storage may be disabled; the key then lives as long as the page
  }
}

// `#key=...` lets a bookmark or a test hand over a key; it is stored and wiped from the URL.
function takeKeyFromFragment() {
  const params = new URLSearchParams(location.hash.replace(/^#/, ""));
  const key = params.get("key");
  if (!key) return;
  saveKey(key);
  history.replaceState(null, "", location.pathname + location.search);
}

class ApiError extends Error {
  constructor(status, detail) {
    super(detail || `status ${status}`);
    this.status = status;
  }
}

async function api(path) {
  const key = readKey();
  if (!key) throw new ApiError(0, "no key");
  let response;
  try {
    response = await fetch(path, {
      headers: { Authorization: `Bearer ${key}`, Accept: "application/json" },
      cache: "no-store",
    });
  } catch {
    throw new ApiError(-1, "unreachable");
  }
  if (!response.ok) {
    let detail = "";
    try {
      const body = await response.json();
      detail = typeof body.detail === "string" ? body.detail : "";
    } catch {
      // not JSON: the status says enough
    }
    throw new ApiError(response.status, detail);
  }
  return response.json();
}

function explain(error) {
  switch (error.status) {
    case 0: return "Enter an API key above to see this panel.";
    case -1: return "API unreachable: is the service running?";
    case 401: return "Error: key rejected (401).";
    case 403: return "Error: this key may not read this (403).";
    case 404: return "Error: not available on this server yet (404).";
    case undefined: return `Error: ${error.message}`;
    default: return `Error: the API answered ${error.status}${error.message ? `: ${error.message}` : ""}.`;
  }
}

const errorLine = (error) =>
  el("p", { class: error.status === 0 ? "hint" : "error", testid: "error", text: explain(error) });

// ---------- formatting ----------

function formatDuration(minutes) {
  const total = Math.round(Math.abs(minutes));
  const h = Math.floor(total / 60);
  const m = total % 60;
  if (h === 0) return `${m}m`;
  if (h < 48) return m ? `${h}h ${m}m` : `${h}h`;
  return `${Math.floor(h / 24)}d ${h % 24}h`;
}

function formatNumber(value, digits = 1) {
  return Number.isInteger(value) ? String(value) : value.toFixed(digits).replace(/\.0+$/, "");
}

function formatValue(value, unit) {
  if (value === null || value === undefined) return "–";
  const u = (unit || "").toLowerCase();
  if (u === "ratio" || u === "percent") return `${formatNumber(value * 100)}%`;
  if (u.includes("minute")) return formatDuration(value);
  if (u === "days") return `${formatNumber(value)} ${value === 1 ? "day" : "days"}`;
  if (u.startsWith("currency")) {
    const money = new Intl.NumberFormat("en-US", {
      style: "currency", currency: CURRENCY, maximumFractionDigits: 0,
    }).format(value);
    return u.includes("per day") ? `${money}/day` : money;
  }
  if (u === "count") return String(Math.round(value));
  return `${formatNumber(value)} ${unit || ""}`.trim();
}

function formatTime(iso) {
  return new Date(iso).toLocaleString([], {
    month: "short", day: "numeric", hour: "2-digit", minute: "2-digit",
  });
}

// ---------- panel 1: the funnel ----------

async function loadFunnel() {
  const range = windowDays(0, 90);
  const metric = await api(metricPath("funnel-conversion", range));
  if (!metric || !metric.count) return noData();
  const stats = metric.stats || {};
  const counts = { mqls: stats.mqls ?? metric.count };
  for (const step of FUNNEL_STEPS.slice(1)) {
    const previous = counts[FUNNEL_STEPS[FUNNEL_STEPS.indexOf(step) - 1].key];
    counts[step.key] = stats[step.key] ??
      (stats[step.rate] == null || previous == null ? null : Math.round(previous * stats[step.rate]));
  }
  const rows = el("ol", { class: "funnel" });
  for (const step of FUNNEL_STEPS) {
    if (step.rate) {
      const rate = stats[step.rate];
      rows.append(el("li", { class: "conversion" },
        el("span", { testid: `funnel-rate-${step.rate}`, text: formatValue(rate, "ratio") }),
        ` ${step.verb}`));
    }
    const count = counts[step.key];
    const bar = el("div", { class: `bar stage-${step.key}` });
    bar.style.width = `${counts.mqls && count ? Math.max(1.5, (100 * count) / counts.mqls) : 0}%`;
    rows.append(el("li", { class: "step" },
      el("span", { class: "step-label", text: step.label }),
      el("div", { class: "track" }, bar),
      el("span", { class: "step-count", testid: `funnel-count-${step.key}`,
        text: count == null ? "–" : String(count) })));
  }
  return [
    el("p", { class: "figure", title: `MQLs created from ${range.start} until ${range.end}` },
      el("strong", { testid: "funnel-overall", text: formatValue(metric.value, "ratio") }),
      ` of ${counts.mqls} MQLs won`),
    rows,
    await rejectionReasons(range),
  ];
}

async function rejectionReasons(range) {
  let metric;
  try {
    metric = await api(metricPath("rejection-reasons", range));
  } catch (error) {
    return el("p", { class: "muted", text: `Rejection reasons: ${explain(error)}` });
  }
  const rows = (metric.stats && metric.stats.by_reason) ||
    (metric.groups || []).map((g) => ({ reason: g.key, count: g.count ?? g.value }));
  if (!rows.length) return el("p", { class: "muted", text: "Rejection reasons: none yet." });
  const list = el("ul", { class: "reasons" });
  for (const row of rows.slice(0, 5)) {
    list.append(el("li", {}, el("span", { text: row.reason }), el("b", { text: String(row.count) })));
  }
  return el("div", {}, el("h3", { text: "Top rejection reasons" }), list);
}

// ---------- panel 2: the SLA board ----------

// The clock that matters for an open handoff is its soonest-due clock still running.
function liveClock(handoff) {
  const clocks = Object.entries(handoff.clocks || {})
    .filter(([, c]) => !c.stopped_at && SLA_STATES.includes(c.state))
    .map(([kind, c]) => ({ kind, ...c }))
    .sort((a, b) => Date.parse(a.due_at) - Date.parse(b.due_at));
  return clocks[0] || null;
}

function dueText(iso, now) {
  const minutes = (Date.parse(iso) - now) / 60_000;
  return minutes >= 0 ? `in ${formatDuration(minutes)}` : `${formatDuration(minutes)} overdue`;
}

async function loadSlaBoard() {
  const [open, breached] = await Promise.allSettled([
    api("/api/v1/handoffs?state=open&limit=200"),
    api("/api/v1/handoffs?sla=breached&limit=500"),
  ]);
  if (open.status === "rejected" && breached.status === "rejected") throw open.reason;
  return [
    open.status === "fulfilled" ? openHandoffs(open.value) : errorLine(open.reason),
    breached.status === "fulfilled" ? breachesByOwner(breached.value) : errorLine(breached.reason),
  ];
}

function openHandoffs(page) {
  const rows = (page.items || [])
    .map((handoff) => ({ handoff, clock: liveClock(handoff) }))
    .filter((row) => row.clock)
    .sort((a, b) => Date.parse(a.clock.due_at) - Date.parse(b.clock.due_at));
  if (!rows.length) return noData("no data yet: no open handoffs");
  const chips = el("p", { class: "chips" });
  for (const state of SLA_STATES) {
    const n = rows.filter((r) => r.clock.state === state).length;
    chips.append(el("span", { class: `chip ${state}` },
      el("b", { testid: `sla-count-${state}`, text: String(n) }), ` ${state}`));
  }
  const now = Date.now();
  const body = el("tbody");
  for (const { handoff, clock } of rows.slice(0, 50)) {
    body.append(el("tr", { class: clock.state, testid: "sla-row" },
      el("td", { title: clock.due_at },
        el("span", { text: dueText(clock.due_at, now) }),
        el("small", { text: formatTime(clock.due_at) })),
      el("td", {}, el("span", { class: `pill ${clock.state}`, testid: "sla-state", text: clock.state })),
      el("td", { text: clock.kind.replace("_", " ") }),
      el("td", { testid: "sla-owner", text: handoff.owner_name || handoff.owner || "unassigned" }),
      el("td", { title: `person ${handoff.person_id}`, text: `#${handoff.id}` })));
  }
  const more = rows.length > 50 || page.next_cursor
    ? el("p", { class: "muted", text: "Showing the 50 soonest due of the first page." }) : null;
  return el("div", {}, chips,
    el("table", { class: "sla" },
      el("thead", {}, el("tr", {}, ...["Due", "State", "Clock", "Owner", "Handoff"]
        .map((h) => el("th", { text: h })))),
      body),
    more);
}

function breachesByOwner(page) {
  const tally = new Map();
  for (const handoff of page.items || []) {
    const owner = handoff.owner_name || handoff.owner || "unassigned";
    tally.set(owner, (tally.get(owner) || 0) + 1);
  }
  const heading = el("h3", { text: "Breaches by owner" });
  if (!tally.size) return el("div", {}, heading, noData("no breaches recorded"));
  const top = Math.max(...tally.values());
  const list = el("ul", { class: "owners" });
  for (const [owner, count] of [...tally].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))) {
    const bar = el("div", { class: "bar breached" });
    bar.style.width = `${(100 * count) / top}%`;
    list.append(el("li", { testid: "breach-row" },
      el("span", { testid: "breach-owner", text: owner }),
      el("div", { class: "track" }, bar),
      el("b", { testid: "breach-count", text: String(count) })));
  }
  return el("div", {}, heading, list);
}

// ---------- panel 3: headline metrics with trends ----------

async function loadHeadlines() {
  const current = windowDays(0, 30);
  const previous = windowDays(30, 30);
  const results = await Promise.all(HEADLINES.map(async (h) => {
    const [now, before] = await Promise.allSettled([
      api(metricPath(h.name, current)), api(metricPath(h.name, previous)),
    ]);
    return { ...h, now, before };
  }));
  if (results.every((r) => r.now.status === "rejected")) throw results[0].now.reason;
  const known = results.filter((r) => r.now.status === "fulfilled" || r.before.status === "fulfilled");
  const hasValue = known.some((r) => [r.now, r.before]
    .some((s) => s.status === "fulfilled" && s.value && s.value.value != null));
  if (!hasValue) return noData();
  return el("div", { class: "cards" }, ...results.map(card));
}

function card(result) {
  const box = el("article", { class: "card", testid: `headline-${result.name}` },
    el("h3", { text: result.label }));
  if (result.now.status === "rejected") {
    box.append(errorLine(result.now.reason));
    return box;
  }
  const metric = result.now.value || {};
  const before = result.before.status === "fulfilled" ? result.before.value || {} : null;
  box.append(metric.value == null
    ? el("p", { class: "value none", testid: "no-data", text: "no data yet" })
    : el("p", { class: "value", testid: "headline-value", text: formatValue(metric.value, metric.unit) }));
  box.append(trend(metric, before, result.better));
  box.append(el("p", { class: "muted", text: `n = ${metric.count ?? 0}` }));
  return box;
}

function trend(metric, before, better) {
  if (before === null) return el("p", { class: "trend muted", text: "previous 30 days: not available" });
  if (before.value == null) return el("p", { class: "trend muted", text: "previous 30 days: no data" });
  const was = formatValue(before.value, before.unit || metric.unit);
  if (metric.value == null) return el("p", { class: "trend muted", text: `was ${was}` });
  const diff = metric.value - before.value;
  const direction = diff > 0 ? "up" : diff < 0 ? "down" : "flat";
  const arrow = { up: "▲", down: "▼", flat: "▶" }[direction];
  const mood = direction === "flat" ? "flat" : direction === better ? "good" : "bad";
  return el("p", { class: `trend ${mood}`, testid: "headline-trend" },
    el("span", { class: "arrow", "aria-label": direction, text: arrow }), ` was ${was}`);
}

// ---------- panel 4: the alignment gauge ----------

function polar(cx, cy, r, degrees) {
  const rad = (Math.PI * degrees) / 180;
  return [cx + r * Math.cos(rad), cy - r * Math.sin(rad)];
}

function arc(cx, cy, r, from, to) {
  const [x1, y1] = polar(cx, cy, r, from);
  const [x2, y2] = polar(cx, cy, r, to);
  return `M ${x1.toFixed(1)} ${y1.toFixed(1)} A ${r} ${r} 0 0 1 ${x2.toFixed(1)} ${y2.toFixed(1)}`;
}

// Four 45° segments on a half circle, left to right; the needle points at the stage.
function gauge(stage) {
  const index = STAGES.indexOf(stage);
  const [cx, cy, r] = [160, 150, 110];
  const root = svg("svg", { viewBox: "0 0 320 190", class: "gauge", role: "img",
    "aria-label": `Alignment stage: ${stage}` });
  STAGES.forEach((name, i) => {
    const from = 180 - i * 45 - 1;
    const to = 180 - (i + 1) * 45 + 1;
    root.append(svg("path", { d: arc(cx, cy, r, from, to),
      class: `segment seg-${i}${i === index ? " active" : ""}` }));
    const [lx, ly] = polar(cx, cy, r + 26, 180 - i * 45 - 22.5);
    root.append(svg("text", { x: lx.toFixed(1), y: ly.toFixed(1),
      class: `seg-label${i === index ? " active" : ""}`, text: name }));
  });
  if (index >= 0) {
    const [nx, ny] = polar(cx, cy, r - 22, 180 - index * 45 - 22.5);
    root.append(svg("line", { x1: cx, y1: cy, x2: nx.toFixed(1), y2: ny.toFixed(1), class: "needle" }));
    root.append(svg("circle", { cx, cy, r: 7, class: "hub" }));
  }
  root.append(svg("text", { x: cx, y: cy + 32, class: "stage-name", testid: "alignment-stage",
    text: stage }));
  return root;
}

function teamScore(label, team, testid) {
  const detail = team && team.score != null
    ? `${formatNumber(team.score)} (${team.stage}, ${team.responses} responses)`
    : "no answers yet";
  return el("li", {}, el("span", { text: label }), el("b", { testid, text: detail }));
}

async function loadAlignment() {
  const placement = await api("/api/v1/alignment");
  if (!placement || !placement.stage) return noData();
  const survey = placement.survey || {};
  const scores = el("ul", { class: "scores" },
    teamScore("Sales", survey.sales, "alignment-sales-score"),
    teamScore("Marketing", survey.marketing, "alignment-marketing-score"),
    el("li", {}, el("span", { text: "Gap" }),
      el("b", { testid: "alignment-gap", text: survey.gap == null ? "–" : formatNumber(survey.gap) })));
  const steps = placement.next_steps || [];
  const evidence = placement.evidence || [];
  return [
    gauge(placement.stage),
    scores,
    el("h3", { text: "Next steps" }),
    steps.length
      ? el("ol", { class: "steps" }, ...steps.map((s) => el("li", { testid: "next-step", text: s })))
      : noData("no next steps: stay put"),
    evidence.length ? el("h3", { text: "Evidence" }) : null,
    evidence.length
      ? el("ul", { class: "evidence" }, ...evidence.map((e) => el("li", {
        class: e.met ? "met" : "unmet", title: `value ${e.value}, threshold ${e.threshold}`,
        text: `${e.met ? "✓" : "✗"} ${e.indicator} (${e.supports})`,
      })))
      : null,
  ];
}

// ---------- refresh loop ----------

const PANELS = [
  ["funnel", loadFunnel],
  ["sla-board", loadSlaBoard],
  ["headlines", loadHeadlines],
  ["alignment", loadAlignment],
];

async function refreshPanel(id, load) {
  const section = document.getElementById(id);
  const body = section.querySelector(".body");
  section.setAttribute("aria-busy", "true");
  try {
    const content = await load();
    body.replaceChildren(...[content].flat().filter(Boolean));
    section.dataset.state = "ok";
  } catch (error) {
    body.replaceChildren(errorLine(error instanceof ApiError ? error : new ApiError(undefined, String(error))));
    section.dataset.state = "error";
  } finally {
    section.removeAttribute("aria-busy");
  }
}

let refreshing = false;

async function refresh() {
  if (refreshing) return;
  refreshing = true;
  const status = document.getElementById("status");
  try {
    await Promise.all(PANELS.map(([id, load]) => refreshPanel(id, load)));
    status.textContent = readKey()
      ? `Updated ${new Date().toLocaleTimeString()}; next refresh in 30 s.`
      : "No key yet: paste one above.";
  } finally {
    refreshing = false;
  }
}

function start() {
  takeKeyFromFragment();
  const form = document.getElementById("key-form");
  const input = document.getElementById("api-key");
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    saveKey(input.value.trim());
    input.value = "";
    refresh();
  });
  document.getElementById("forget-key").addEventListener("click", () => {
    saveKey(null);
    refresh();
  });
  window.addEventListener("hashchange", () => {
    takeKeyFromFragment();
    refresh();
  });
  refresh();
  setInterval(refresh, POLL_MS);
}

document.addEventListener("DOMContentLoaded", start);
