// The Inferplane dashboard: reads the admin API with the key the user gives, draws SVG charts.
// No dependencies. Every text from the server goes in through textContent, never as HTML.
"use strict";

const KEY_STORE = "inferplane.dashboard.key";
const OPEN_MODE = "-";  // stored instead of a key: open mode, no Authorization header
const SVG = "http://www.w3.org/2000/svg";
const COLORS = ["#2f6fdf", "#19a58b", "#e0892b", "#8a5cd6", "#d64545", "#4a86c9", "#7f8c8d"];
const REFRESH_MS = 60000;

const state = { key: null, usage: null, dim: "model", timer: null, drift: undefined };

// -- small DOM helpers --------------------------------------------------------------------

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value !== null && value !== undefined) node.setAttribute(name, value);
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(typeof child === "string" ? document.createTextNode(child) : child);
  }
  return node;
}

function svg(tag, attrs, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attrs || {})) node.setAttribute(name, value);
  if (text !== undefined) node.textContent = text;
  return node;
}

function $(id) { return document.getElementById(id); }

// -- formatting ---------------------------------------------------------------------------

function num(value, digits) {
  if (value === null || value === undefined || Number.isNaN(value)) return "–";
  const abs = Math.abs(value);
  if (abs !== 0 && abs < 0.001) return value.toExponential(1);
  const d = digits !== undefined ? digits : abs >= 100 ? 0 : abs >= 10 ? 1 : abs >= 1 ? 2 : 3;
  return value.toLocaleString("en-US", { minimumFractionDigits: 0, maximumFractionDigits: d });
}

function compact(value) {
  if (value === null || value === undefined) return "–";
  const abs = Math.abs(value);
  for (const [size, suffix] of [[1e9, "G"], [1e6, "M"], [1e3, "k"]]) {
    if (abs >= size) return num(value / size, abs >= size * 100 ? 0 : 1) + suffix;
  }
  return num(value);
}

function usd(value) {
  if (value === null || value === undefined) return "–";
  const abs = Math.abs(value);
  const digits = abs >= 100 ? 0 : abs >= 1 ? 2 : abs >= 0.01 ? 3 : 5;
  return "$" + value.toLocaleString("en-US", { minimumFractionDigits: Math.min(digits, 2),
    maximumFractionDigits: digits });
}

function energy(joules) {
  const wh = joules / 3600;
  return wh >= 1000 ? num(wh / 1000) + " kWh" : num(wh) + " Wh";
}

function grams(g) {
  return g >= 1000 ? num(g / 1000) + " kg" : g > 0 && g < 0.1 ? num(g * 1000) + " mg"
    : num(g) + " g";
}
function litres(l) { return l >= 1 || l === 0 ? num(l) + " L" : num(l * 1000) + " mL"; }
function ms(value) { return value === null || value === undefined ? "–" : num(value) + " ms"; }

function when(ts) {
  const d = new Date(ts * 1000);
  return d.toLocaleString("en-GB", { month: "short", day: "numeric", hour: "2-digit",
    minute: "2-digit", hour12: false });
}

function tickLabel(ts, span) {
  const d = new Date(ts * 1000);
  if (span > 2 * 86400) {
    return d.toLocaleDateString("en-GB", { month: "short", day: "numeric" });
  }
  return d.toLocaleTimeString("en-GB", { hour: "2-digit", minute: "2-digit", hour12: false });
}

function niceMax(value) {
  if (!(value > 0)) return 1;
  const power = Math.pow(10, Math.floor(Math.log10(value)));
  for (const step of [1, 2, 4, 6, 8, 10]) {  // each a multiple of 4 nice numbers
    if (step * power >= value) return step * power;
  }
  return 10 * power;
}

// -- charts -------------------------------------------------------------------------------

function chartBox(name) {
  const box = document.querySelector(`[data-chart="${name}"]`);
  box.replaceChildren();
  return box;
}

function empty(box, text) {
  box.append(el("div", { class: "empty" }, text));
}

// A time chart: series = [{name, color, values: [number|null per bucket], kind: "line"|"bar"}].
// Bars of several series stack. format(v) labels the y axis and the tooltips; counts are
// whole numbers, so their axis goes to at least 4.
function timeChart(name, buckets, series, format, counts) {
  const box = chartBox(name);
  const hasData = series.some((s) => s.values.some((v) => v !== null && v > 0));
  if (!hasData) {
    empty(box, "No data in this range.");
    return;
  }
  const width = box.clientWidth || 400;
  const height = box.clientHeight || 210;
  const m = { left: 56, right: 10, top: 22, bottom: 22 };
  const w = width - m.left - m.right;
  const h = height - m.top - m.bottom;
  const n = buckets.length;
  const step = state.usage.bucket_s;
  const span = state.usage.until - state.usage.since;
  const bars = series.filter((s) => s.kind === "bar");
  const stacked = buckets.map((_, i) => bars.reduce((sum, s) => sum + (s.values[i] || 0), 0));
  const lineMax = Math.max(0, ...series.filter((s) => s.kind !== "bar")
    .flatMap((s) => s.values.filter((v) => v !== null)));
  const nice = niceMax(Math.max(lineMax, ...stacked));
  const top = counts ? Math.max(4, Math.ceil(nice / 4) * 4) : nice;  // whole-number ticks
  const x = (i) => m.left + (i / n) * w;
  const y = (v) => m.top + h - (v / top) * h;
  const root = svg("svg", { viewBox: `0 0 ${width} ${height}`, role: "img",
    "aria-label": name });

  const axis = svg("g", { class: "axis" });
  for (let k = 0; k <= 4; k++) {
    const v = (top * k) / 4;
    axis.append(svg("line", { class: k === 0 ? "base" : "grid", x1: m.left, x2: m.left + w,
      y1: y(v), y2: y(v) }));
    axis.append(svg("text", { x: m.left - 6, y: y(v) + 3.5, "text-anchor": "end" }, format(v)));
  }
  const ticks = Math.min(6, n);
  for (let k = 0; k < ticks; k++) {
    const i = Math.round((k * (n - 1)) / Math.max(1, ticks - 1));
    axis.append(svg("text", { x: x(i + 0.5), y: height - 6, "text-anchor": "middle" },
      tickLabel(buckets[i].start, span)));
  }
  root.append(axis);

  const bandWidth = w / n;
  const barWidth = Math.max(1, bandWidth * 0.72);
  const base = buckets.map(() => 0);
  bars.forEach((s) => {
    const g = svg("g", { fill: s.color });
    s.values.forEach((v, i) => {
      if (!(v > 0)) return;
      const rect = svg("rect", { class: "mark", x: x(i) + (bandWidth - barWidth) / 2,
        y: y(base[i] + v), width: barWidth, height: Math.max(0.5, y(base[i]) - y(base[i] + v)),
        rx: Math.min(2, barWidth / 4) });
      rect.append(svg("title", {}, `${s.name} ${when(buckets[i].start)}–` +
        `${tickLabel(buckets[i].start + step, 0)}: ${format(v)}`));
      g.append(rect);
      base[i] += v;
    });
    root.append(g);
  });
  series.filter((s) => s.kind !== "bar").forEach((s) => {
    let d = "";
    let pen = false;
    s.values.forEach((v, i) => {
      if (v === null) { pen = false; return; }
      d += `${pen ? "L" : "M"}${x(i + 0.5).toFixed(1)},${y(v).toFixed(1)}`;
      pen = true;
    });
    root.append(svg("path", { d, fill: "none", stroke: s.color, "stroke-width": 1.8,
      "stroke-linejoin": "round" }));
    const g = svg("g", { fill: s.color });
    s.values.forEach((v, i) => {
      if (v === null) return;
      const dot = svg("circle", { class: "mark", cx: x(i + 0.5), cy: y(v),
        r: n > 60 ? 1.8 : 2.6 });
      dot.append(svg("title", {}, `${s.name} ${when(buckets[i].start)}: ${format(v)}`));
      g.append(dot);
    });
    root.append(g);
  });

  if (series.length > 1) {
    const legend = svg("g", { class: "legend" });
    let at = m.left;
    series.forEach((s) => {
      legend.append(svg("rect", { x: at, y: 4, width: 10, height: 10, rx: 2, fill: s.color }));
      legend.append(svg("text", { x: at + 14, y: 13 }, s.name));
      at += 24 + s.name.length * 6.5;
    });
    root.append(legend);
  }
  box.append(root);
}

// A horizontal bar chart: items = [{label, value, note}].
function barChart(name, items, format) {
  const box = chartBox(name);
  const shown = items.filter((item) => item.value > 0).slice(0, 8);
  if (!shown.length) {
    empty(box, "No data in this range.");
    return;
  }
  const width = box.clientWidth || 400;
  const rowHeight = Math.min(26, (box.clientHeight || 210) / shown.length);
  const height = rowHeight * shown.length;
  const labelWidth = Math.min(170, width * 0.38);
  const valueWidth = 92;
  const w = width - labelWidth - valueWidth;
  const top = Math.max(...shown.map((item) => item.value));
  const root = svg("svg", { viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": name,
    class: "bars" });
  shown.forEach((item, i) => {
    const yy = i * rowHeight;
    const label = item.label.length > 26 ? item.label.slice(0, 25) + "…" : item.label;
    root.append(svg("text", { class: "bar-label", x: 0, y: yy + rowHeight / 2 + 4 }, label));
    const bar = svg("rect", { class: "mark", x: labelWidth, y: yy + rowHeight * 0.18,
      width: Math.max(1.5, (item.value / top) * w), height: rowHeight * 0.64, rx: 2,
      fill: COLORS[i % COLORS.length] });
    bar.append(svg("title", {}, `${item.label}: ${format(item.value)}` +
      (item.note ? ` (${item.note})` : "")));
    root.append(bar);
    root.append(svg("text", { class: "bar-value", x: width, y: yy + rowHeight / 2 + 4,
      "text-anchor": "end" }, format(item.value)));
  });
  box.append(root);
}

// -- the panels ---------------------------------------------------------------------------

function kpis(usage) {
  const t = usage.totals;
  const rate = t.requests ? (100 * t.errors) / t.requests : 0;
  const tiles = [
    ["Requests", compact(t.requests), `${num(rate, 1)}% errors`],
    ["Cost", usd(t.cost_usd), t.total_tokens ? `${usd(t.cost_usd * 1e6 / t.total_tokens)} / Mtok`
      : ""],
    ["Tokens", compact(t.total_tokens), `${compact(t.prompt_tokens)} in · ` +
      `${compact(t.completion_tokens)} out`],
    ["Energy", energy(t.energy_j), ""],
    ["Carbon", grams(t.co2_g), "CO₂e"],
    ["Water", litres(t.water_l), ""],
    ["Latency p95", ms(t.latency_ms.p95), `p50 ${ms(t.latency_ms.p50)}`],
    ["TTFT p95", ms(t.ttft_ms.p95), `ITL p95 ${ms(t.itl_ms.p95)}`],
  ];
  $("kpis").replaceChildren(...tiles.map(([label, value, sub]) =>
    el("div", { class: "kpi" }, el("div", { class: "label" }, label),
      el("div", { class: "value" }, value), el("div", { class: "sub" }, sub))));
}

function percentileSeries(buckets, field) {
  return [["p50", COLORS[1]], ["p95", COLORS[0]], ["p99", COLORS[4]]].map(([p, color]) => ({
    name: p, color, kind: "line", values: buckets.map((b) => b[field][p]) }));
}

function drawUsage(usage) {
  const b = usage.buckets;
  const pick = (f) => b.map((x) => x[f]);
  kpis(usage);
  timeChart("cost", b, [{ name: "cost", color: COLORS[0], kind: "bar",
    values: pick("cost_usd") }], usd);
  timeChart("tokens", b, [
    { name: "prompt", color: COLORS[0], kind: "bar", values: pick("prompt_tokens") },
    { name: "completion", color: COLORS[1], kind: "bar", values: pick("completion_tokens") },
  ], compact);
  timeChart("requests", b, [
    { name: "ok", color: COLORS[1], kind: "bar", values: b.map((x) => x.requests - x.errors) },
    { name: "errors", color: COLORS[4], kind: "bar", values: pick("errors") },
  ], compact, true);
  timeChart("energy", b, [{ name: "energy", color: COLORS[2], kind: "bar",
    values: b.map((x) => x.energy_j / 3600) }], (v) => num(v));
  timeChart("carbon", b, [{ name: "CO₂e", color: COLORS[6], kind: "bar",
    values: pick("co2_g") }], grams);
  timeChart("water", b, [{ name: "water", color: COLORS[5], kind: "bar",
    values: pick("water_l") }], litres);
  timeChart("latency", b, percentileSeries(b, "latency_ms"), (v) => num(v));
  timeChart("ttft", b, percentileSeries(b, "ttft_ms"), (v) => num(v));
  timeChart("itl", b, percentileSeries(b, "itl_ms"), (v) => num(v));
  barChart("errors", usage.errors.map((e) => ({ label: e.type, value: e.requests })), compact);
  for (const dim of ["model", "deployment", "version", "tenant"]) {
    barChart(`by-${dim}`, usage.breakdowns[dim].map((g) => ({
      label: g.name === null ? "(none)" : g.name, value: g.cost_usd,
      note: `${compact(g.requests)} requests` })), usd);
  }
  breakdownTable();
}

function breakdownTable() {
  const rows = state.usage ? state.usage.breakdowns[state.dim] : [];
  const heads = [state.dim, "Requests", "Errors", "Tokens", "Cost", "Energy", "CO₂e", "Water",
    "Latency p95", "TTFT p95", "ITL p95"];
  const table = $("breakdown");
  table.replaceChildren(el("thead", {}, el("tr", {}, ...heads.map((h) => el("th", {}, h)))));
  const body = el("tbody");
  for (const g of rows) {
    body.append(el("tr", {},
      g.name === null ? el("td", { class: "none" }, "(none)") : el("td", {}, g.name),
      el("td", {}, compact(g.requests)), el("td", {}, compact(g.errors)),
      el("td", {}, compact(g.total_tokens)), el("td", {}, usd(g.cost_usd)),
      el("td", {}, energy(g.energy_j)), el("td", {}, grams(g.co2_g)),
      el("td", {}, litres(g.water_l)), el("td", {}, ms(g.latency_ms.p95)),
      el("td", {}, ms(g.ttft_ms.p95)), el("td", {}, ms(g.itl_ms.p95))));
  }
  if (!rows.length) {
    body.append(el("tr", {}, el("td", { colspan: heads.length, class: "none" },
      "No requests in this range.")));
  }
  table.append(body);
}

function item(badge, subject, text, ts) {
  return el("div", { class: "item" }, el("span", { class: `badge ${badge}` }, badge),
    el("div", { class: "what" }, el("span", { class: "subject" }, subject), " ", text),
    el("span", { class: "when" }, ts ? when(ts) : ""));
}

function note(id, text) {
  $(id).replaceChildren(el("div", { class: "empty" }, text));
}

function drawAlerts(alerts, drift) {
  const drifted = drift ? drift.filter((r) => r.drifted) : [];
  const items = [
    ...alerts.map((a) => item(a.severity, a.subject, a.summary, a.since)),
    ...drifted.map((r) => item("warning", `drift ${r.model}`,
      `${r.feature}${r.tenant ? " (" + r.tenant + ")" : ""}: ${r.test} ${num(r.statistic)} ` +
      `over ${num(r.threshold)}`, null)),
  ];
  if (!items.length) {
    $("alerts").replaceChildren(el("div", { class: "item" }, el("span", { class: "badge ok" },
      "ok"), el("div", { class: "what" }, "Nothing firing.")));
    return;
  }
  $("alerts").replaceChildren(...items);
}

function drawChanges(ops) {
  const items = [
    ...ops.kills.map((k) => item("kill", `${k.kind} ${k.name}`,
      `in force, by ${k.actor}: ${k.reason}`, k.ts)),
    ...ops.changes.filter((c) => c.action !== "kill").map((c) => item(c.action,
      `${c.kind} ${c.target}`, (c.to_stage ? `${c.from_stage || "–"} → ${c.to_stage}` : "") +
      ` by ${c.actor}` + (c.reason ? `: ${c.reason}` : ""), c.ts)),
  ];
  if (!items.length) { note("changes", "No kills in force and no rollouts in this range."); return; }
  $("changes").replaceChildren(...items);
}

function drawDrift(reports) {
  if (!reports.length) { note("drift", "No drift reports yet."); return; }
  const table = el("table", {}, el("thead", {}, el("tr", {},
    ...["Model", "Tenant", "Feature", "Test", "Statistic", "Threshold", "p", "n", "Status"]
      .map((h) => el("th", {}, h)))));
  const body = el("tbody");
  for (const r of reports) {
    body.append(el("tr", {}, el("td", {}, r.model), el("td", {}, r.tenant || "all"),
      el("td", {}, r.feature), el("td", {}, r.test), el("td", {}, num(r.statistic)),
      el("td", {}, num(r.threshold)), el("td", {}, r.p_value === null ? "–" : num(r.p_value)),
      el("td", {}, `${compact(r.reference_n)} / ${compact(r.current_n)}`),
      el("td", {}, el("span", { class: `badge ${r.drifted ? "drifted" : "ok"}` },
        r.drifted ? "drifted" : "ok"))));
  }
  table.append(body);
  $("drift").replaceChildren(el("div", { class: "table-wrap" }, table));
}

// -- talking to the gateway ---------------------------------------------------------------

class HttpError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

async function get(path) {
  const headers = { accept: "application/json" };
  if (state.key && state.key !== OPEN_MODE) headers.authorization = `Bearer ${state.key}`;
  const response = await fetch(path, { headers, cache: "no-store" });
  const body = await response.json().catch(() => null);
  if (!response.ok) {
    const message = body && body.error ? body.error.message : response.statusText;
    throw new HttpError(response.status, message);
  }
  return body;
}

function query() {
  const until = Date.now() / 1000;
  const params = new URLSearchParams({ since: String(until - Number($("f-range").value)),
    until: String(until) });
  if ($("f-model").value) params.set("model", $("f-model").value);
  if ($("f-tenant").value) params.set("tenant", $("f-tenant").value);
  return params;
}

function fillSelect(select, values, keep) {
  const first = select.options[0];
  select.replaceChildren(first, ...values.map((v) => el("option", { value: v }, v)));
  select.value = values.includes(keep) ? keep : "";
}

// Whether the gateway has drift detection: its admin API document lists /v1/drift (asked once,
// so a gateway without it is never sent a request that must fail).
async function driftAvailable() {
  if (state.drift === undefined) {
    const doc = await get("/admin/openapi.json").catch(() => null);
    state.drift = Boolean(doc && doc.paths && doc.paths["/v1/drift"]);
  }
  return state.drift;
}

async function loadOperations(usage) {
  if (usage.scope !== "operator") {
    for (const id of ["alerts", "changes", "drift"]) {
      note(id, "Shown to operator (viewer) keys only.");
    }
    return;
  }
  let drift = null;
  if (await driftAvailable()) {
    try {
      drift = (await get("/admin/v1/drift")).reports;
      drawDrift(drift);
    } catch (error) {
      if (error.status === 404) note("drift", "Drift detection not configured.");
      else note("drift", `Drift unavailable: ${error.message}`);
    }
  } else {
    note("drift", "Drift detection not configured.");
  }
  const ops = await get("/admin/v1/dashboard/operations?" +
    new URLSearchParams({ since: String(usage.since) }));
  drawAlerts(ops.alerts, drift);
  drawChanges(ops);
}

function setStatus(text, isError) {
  $("status").textContent = text;
  $("status").classList.toggle("error", Boolean(isError));
}

async function refresh() {
  setStatus("Loading…");
  let usage;
  try {
    usage = await get("/admin/v1/dashboard/usage?" + query());
  } catch (error) {
    if (error.status === 401 || error.status === 403) {
      askForKey(error.message);
      setStatus("");
    } else {
      setStatus(`Could not load the dashboard: ${error.message}`, true);
    }
    return;
  }
  state.usage = usage;
  $("who").textContent = usage.scope === "operator" ? "operator view · all tenants"
    : `tenant view · ${usage.tenant}`;
  fillSelect($("f-model"), usage.models, usage.model || $("f-model").value);
  fillSelect($("f-tenant"), usage.tenants, usage.tenant || $("f-tenant").value);
  $("f-tenant").disabled = usage.scope !== "operator";
  drawUsage(usage);
  try {
    await loadOperations(usage);
  } catch (error) {
    setStatus(`Could not load alerts and changes: ${error.message}`, true);
    return;
  }
  $("generated").textContent = `Updated ${new Date().toLocaleTimeString("en-GB")}.`;
  setStatus(`${when(usage.since)} – ${when(usage.until)} · buckets of ` +
    `${usage.bucket_s >= 3600 ? num(usage.bucket_s / 3600) + " h" : num(usage.bucket_s / 60) + " min"}`);
  document.body.dataset.loaded = String(Date.now());
}

function askForKey(message) {
  $("key-dialog").hidden = false;
  $("key-error").hidden = !message;
  $("key-error").textContent = message || "";
  $("key-input").value = "";
  $("key-input").focus();
}

function signIn(key) {
  state.key = key;
  sessionStorage.setItem(KEY_STORE, key);
  state.drift = undefined;
  $("key-dialog").hidden = true;
  refresh();
}

function start() {
  $("key-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const key = $("key-input").value.trim();
    if (key) signIn(key);
  });
  $("key-open").addEventListener("click", () => signIn(OPEN_MODE));
  $("sign-out").addEventListener("click", () => {
    sessionStorage.removeItem(KEY_STORE);
    state.key = null;
    askForKey("");
  });
  for (const id of ["f-range", "f-model", "f-tenant"]) {
    $(id).addEventListener("change", refresh);
  }
  $("refresh").addEventListener("click", refresh);
  $("breakdown-tabs").addEventListener("click", (event) => {
    const dim = event.target.dataset && event.target.dataset.dim;
    if (!dim) return;
    state.dim = dim;
    for (const b of $("breakdown-tabs").querySelectorAll("button")) {
      b.classList.toggle("active", b.dataset.dim === dim);
    }
    breakdownTable();
  });
  let resized = null;
  window.addEventListener("resize", () => {
    clearTimeout(resized);
    resized = setTimeout(() => { if (state.usage) drawUsage(state.usage); }, 150);
  });
  state.key = sessionStorage.getItem(KEY_STORE);
  if (state.key) refresh(); else askForKey("");
  state.timer = setInterval(() => { if (state.key && $("key-dialog").hidden) refresh(); },
    REFRESH_MS);
}

document.addEventListener("DOMContentLoaded", start);
