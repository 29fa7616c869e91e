// Live: throughput and latency from `/metrics` (read with the admin token, so
// the per-workflow series are there), scraped every two seconds; rates and
// percentiles come from the difference between two scrapes. Charts are small
// SVG line charts, drawn here.

import { request } from "./api.js";
import { clear, errorBox, h, ms } from "./dom.js";

const SCRAPE_MS = 2000;
const KEEP = 90; // points: three minutes
const MIN_SLOTS = 30; // the x axis spans at least one minute
const STATUS_COLORS = {
  resolved: "#2e7d32",
  failed: "#c62828",
  error: "#8e0000",
  aborted: "#ef6c00",
  canceled: "#757575",
  rejected: "#6a1b9a",
  "retry needed": "#f9a825",
};
const STATUS_BY_NUMBER = { 1: "resolved", "-1": "failed", "-2": "error", "-3": "aborted", "-4": "canceled", "-5": "rejected", "-6": "retry needed" };

/** Prometheus text → [{name, labels, value}] (comments skipped). */
export function parseMetrics(text) {
  const samples = [];
  const line = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/;
  const label = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;
  for (const raw of text.split("\n")) {
    if (!raw || raw.startsWith("#")) continue;
    const m = line.exec(raw);
    if (!m) continue;
    const labels = {};
    for (const l of (m[2] || "").matchAll(label)) labels[l[1]] = l[2].replace(/\\(.)/g, "$1");
    samples.push({ name: m[1], labels, value: Number(m[3]) });
  }
  return samples;
}

function sum(samples, name, keep = () => true) {
  return samples.filter((s) => s.name === name && keep(s.labels)).reduce((t, s) => t + s.value, 0);
}

function groupSum(samples, name, by) {
  const out = {};
  for (const s of samples) if (s.name === name) out[s.labels[by]] = (out[s.labels[by]] || 0) + s.value;
  return out;
}

/** Quantile `q` from cumulative bucket counts {le: count} (as histogram_quantile). */
export function quantile(q, buckets) {
  const bounds = Object.keys(buckets)
    .map((le) => [le === "+Inf" ? Infinity : Number(le), buckets[le]])
    .sort((a, b) => a[0] - b[0]);
  const total = bounds.length ? bounds[bounds.length - 1][1] : 0;
  if (total <= 0) return null;
  const rank = q * total;
  let prevBound = 0;
  let prevCount = 0;
  for (const [bound, count] of bounds) {
    if (count >= rank) {
      if (bound === Infinity) return prevBound;
      const inBucket = count - prevCount;
      return prevBound + (bound - prevBound) * (inBucket > 0 ? (rank - prevCount) / inBucket : 1);
    }
    prevBound = bound;
    prevCount = count;
  }
  return prevBound;
}

function bucketDelta(now, before, name) {
  const a = groupSum(now, `${name}_bucket`, "le");
  const b = before ? groupSum(before, `${name}_bucket`, "le") : {};
  const out = {};
  for (const le of Object.keys(a)) out[le] = Math.max(0, a[le] - (b[le] || 0));
  return out;
}

/** One point from two scrapes `dt` seconds apart. */
export function point(now, before, dt) {
  const accepted = (s) => sum(s, "rayhook_webhook_requests_total", (l) => /^2/.test(l.status));
  const byStatus = (s) => groupSum(s, "rayhook_executions_total", "status");
  const nowStatus = byStatus(now);
  const beforeStatus = byStatus(before);
  const executions = {};
  for (const [status, count] of Object.entries(nowStatus)) {
    executions[STATUS_BY_NUMBER[status] || status] = Math.max(0, count - (beforeStatus[status] || 0)) / dt;
  }
  const webhook = bucketDelta(now, before, "rayhook_webhook_seconds");
  const run = bucketDelta(now, before, "rayhook_execution_duration_seconds");
  const seconds = (v) => (v === null ? null : v * 1000);
  return {
    accepted: Math.max(0, accepted(now) - accepted(before)) / dt,
    executions,
    p50: seconds(quantile(0.5, webhook)),
    p99: seconds(quantile(0.99, webhook)),
    run50: seconds(quantile(0.5, run)),
    run99: seconds(quantile(0.99, run)),
    backlog: Object.fromEntries(
      now.filter((s) => s.name === "rayhook_inbox_backlog").map((s) => [s.labels.key, s.value]),
    ),
  };
}

/** A line chart: `series` = [{name, color, values (null: gap)}]. */
function chart(title, series, format) {
  const width = 320;
  const height = 120;
  const pad = 4;
  const all = series.flatMap((s) => s.values.filter((v) => v !== null && v !== undefined));
  const top = Math.max(1e-9, ...all) * 1.1;
  // Right-aligned, newest at the right edge; the first minute fills the width
  // sooner than the whole window would.
  const slots = Math.max(MIN_SLOTS, ...series.map((s) => s.values.length));
  const x = (i) => pad + ((width - 2 * pad) * i) / (slots - 1);
  const y = (v) => height - pad - ((height - 2 * pad) * v) / top;
  const svg = h(
    "svg:svg",
    { viewBox: `0 0 ${width} ${height}`, class: "chart", role: "img", "aria-label": `${title} chart` },
    h("svg:line", { x1: pad, y1: height - pad, x2: width - pad, y2: height - pad, class: "axis" }),
    h("svg:line", { x1: pad, y1: y(top / 2.2), x2: width - pad, y2: y(top / 2.2), class: "grid" }),
  );
  for (const s of series) {
    const offset = slots - s.values.length;
    let path = "";
    let pen = false;
    let last = null;
    s.values.forEach((v, i) => {
      if (v === null || v === undefined) {
        pen = false;
        return;
      }
      last = [x(i + offset), y(v)];
      path += `${pen ? "L" : "M"}${last[0].toFixed(1)},${last[1].toFixed(1)} `;
      pen = true;
    });
    if (path) {
      svg.append(h("svg:path", { d: path, stroke: s.color, fill: "none", "stroke-width": "2" }));
      svg.append(h("svg:circle", { cx: last[0].toFixed(1), cy: last[1].toFixed(1), r: "3", fill: s.color }));
    }
  }
  const latest = (s) => {
    for (let i = s.values.length - 1; i >= 0; i--) if (s.values[i] !== null && s.values[i] !== undefined) return s.values[i];
    return null;
  };
  return h(
    "figure",
    { class: "card chart-card" },
    h("figcaption", {}, title, h("span", { class: "muted" }, ` max ${format(top / 1.1)}`)),
    svg,
    h("div", { class: "muted axis-note" }, `last ${Math.round(((slots - 1) * SCRAPE_MS) / 1000)} s`),
    h("ul", { class: "legend" }, ...series.map((s) => h("li", {}, h("span", { class: `swatch`, dataset: { color: s.color } }), `${s.name}: `, h("strong", {}, format(latest(s)))))),
  );
}

export function render(root) {
  let alive = true;
  let timer = null;
  let before = null;
  let beforeAt = 0;
  const points = [];
  const status = h("p", { id: "live-status", class: "muted", "aria-live": "polite" }, "Reading /metrics…");
  const charts = h("div", { id: "charts", class: "charts" });
  root.append(h("h1", {}, "Live"), status, charts);

  async function scrape() {
    try {
      const text = await request("/metrics");
      if (!alive) return;
      const samples = parseMetrics(text);
      const at = performance.now();
      if (before) {
        points.push(point(samples, before, (at - beforeAt) / 1000));
        if (points.length > KEEP) points.shift();
        draw();
        status.textContent = `Every ${SCRAPE_MS / 1000} s from /metrics; last ${new Date().toLocaleTimeString()}.`;
      }
      before = samples;
      beforeAt = at;
    } catch (error) {
      if (alive) clear(status, errorBox(error));
    }
    // The first rate needs two scrapes: take the second one sooner.
    if (alive) timer = setTimeout(scrape, points.length ? SCRAPE_MS : 1000);
  }

  function draw() {
    const rate = (v) => (v === null ? "—" : `${v.toFixed(v < 10 ? 1 : 0)}/s`);
    const time = (v) => (v === null ? "—" : ms(v));
    const statuses = [...new Set(points.flatMap((p) => Object.keys(p.executions)))];
    const keys = [...new Set(points.flatMap((p) => Object.keys(p.backlog)))].sort();
    const palette = ["#1565c0", "#2e7d32", "#ef6c00", "#6a1b9a", "#00838f", "#ad1457", "#4e342e", "#558b2f"];
    clear(
      charts,
      chart("Webhooks accepted", [{ name: "accepted/s", color: "#1565c0", values: points.map((p) => p.accepted) }], rate),
      chart(
        "Executions finished, by status",
        (statuses.length ? statuses : ["resolved"]).map((s) => ({ name: s, color: STATUS_COLORS[s] || "#455a64", values: points.map((p) => p.executions[s] ?? 0) })),
        rate,
      ),
      chart("Webhook reply latency", [
        { name: "p50", color: "#2e7d32", values: points.map((p) => p.p50) },
        { name: "p99", color: "#c62828", values: points.map((p) => p.p99) },
      ], time),
      chart("Execution run time", [
        { name: "p50", color: "#2e7d32", values: points.map((p) => p.run50) },
        { name: "p99", color: "#c62828", values: points.map((p) => p.run99) },
      ], time),
      chart(
        "Backlog per workflow (async inbox)",
        keys.map((k, i) => ({ name: k, color: palette[i % palette.length], values: points.map((p) => p.backlog[k] ?? null) })),
        (v) => (v === null ? "—" : String(Math.round(v))),
      ),
    );
    for (const swatch of charts.querySelectorAll(".swatch")) swatch.style.background = swatch.dataset.color;
  }

  scrape();
  return () => {
    alive = false;
    clearTimeout(timer);
  };
}
