// Small helpers every page uses: building elements (never from HTML strings, so
// nothing a webhook sent can become markup), statuses, times.

/** `h("a", {href: "#/x", class: "c", onclick: fn}, "text", child)`. */
export function h(tag, attrs = {}, ...children) {
  const el = tag.startsWith("svg:")
    ? document.createElementNS("http://www.w3.org/2000/svg", tag.slice(4))
    : document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on")) el.addEventListener(name.slice(2), value);
    else if (name === "text") el.textContent = value;
    else if (name === "dataset") Object.assign(el.dataset, value);
    else el.setAttribute(name, value === true ? "" : String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === undefined || child === null || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

export function clear(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

/** SPEC §3: execution statuses (jobs: 0 is PENDING). */
export const STATUSES = [
  [null, "queueing"],
  [0, "started"],
  [1, "resolved"],
  [-1, "failed"],
  [-2, "error"],
  [-3, "aborted"],
  [-4, "canceled"],
  [-5, "rejected"],
  [-6, "retry needed"],
];
const NAMES = new Map(STATUSES);

export function statusName(status, { job = false } = {}) {
  if (status === undefined) return "not run";
  if (job && status === 0) return "pending";
  return NAMES.get(status) ?? String(status);
}

export function isFinal(status) {
  return status !== null && status !== undefined && status !== 0;
}

export function badge(status, options) {
  const name = statusName(status, options);
  return h("span", { class: `badge st-${name.replace(" ", "-")}` }, name);
}

export function when(iso) {
  if (!iso) return "—";
  const d = new Date(iso);
  const pad = (n, w = 2) => String(n).padStart(w, "0");
  return (
    `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
    `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`
  );
}

export function duration(from, to) {
  if (!from || !to) return "—";
  return ms(new Date(to) - new Date(from));
}

export function ms(value) {
  if (value === null || value === undefined || Number.isNaN(value)) return "—";
  if (value < 1) return "< 1 ms";
  if (value < 1000) return `${Math.round(value)} ms`;
  if (value < 60000) return `${(value / 1000).toFixed(value < 10000 ? 2 : 1)} s`;
  return `${Math.floor(value / 60000)} min ${Math.round((value % 60000) / 1000)} s`;
}

export function json(value) {
  return JSON.stringify(value, null, 2) ?? "null";
}

export function errorBox(error) {
  const messages = error && error.messages ? error.messages : [String(error && error.message)];
  return h("div", { class: "error", role: "alert" }, ...messages.map((m) => h("div", {}, m)));
}

/** Parse `#/page/rest?a=1&b=2` → {page, rest, params}. */
export function parseHash(hash) {
  const raw = hash.replace(/^#\/?/, "");
  const [path, search = ""] = raw.split("?");
  const [page = "", ...rest] = path.split("/");
  return { page, rest: rest.map(decodeURIComponent), params: new URLSearchParams(search) };
}
