// Executions: the SPEC §9 filters (workflow, status, time range, a trigger
// context path = value), newest first, paged, refreshed every few seconds while
// "Live" is on. The filters live in the URL (`#/executions?workflow=...`), so a
// search can be bookmarked and the back button works.

import { get, post } from "./api.js";
import { STATUSES, badge, clear, duration, errorBox, h, when } from "./dom.js";

const PAGE_SIZE = 20;
const REFRESH_MS = 2000;
const FIELDS = ["workflow", "status", "exhausted", "from", "to", "path", "value", "page"];

/** The §9 filters as query parameters (executions:list, bulk replay). */
export function filterParams(state) {
  const params = {};
  if (state.workflow) params["filter[workflowKey]"] = state.workflow;
  if (state.status) params["filter[status]"] = state.status;
  if (state.exhausted) params["filter[exhausted]"] = state.exhausted;
  if (state.from) params["filter[createdAt][$gte]"] = new Date(state.from).toISOString();
  if (state.to) params["filter[createdAt][$lte]"] = new Date(state.to).toISOString();
  if (state.path && state.value !== undefined) {
    const path = state.path.trim().replace(/^(\$?context\.)/, "");
    params[`filter[context.${path}]`] = state.value;
  }
  return params;
}

/** Query parameters of executions:list for the page's filters and page. */
export function listParams(state) {
  return { ...filterParams(state), pageSize: PAGE_SIZE, page: state.page || 1 };
}

export function render(root, { params }) {
  const state = Object.fromEntries(FIELDS.map((f) => [f, params.get(f) || ""]));
  state.page = Number(state.page) || 1;
  let alive = true;
  let timer = null;
  const seen = new Set();
  let first = true;

  const workflowSelect = h("select", { id: "f-workflow", name: "workflow" }, h("option", { value: "" }, "All workflows"));
  const statusSelect = h(
    "select",
    { id: "f-status", name: "status" },
    h("option", { value: "" }, "Any status"),
    ...STATUSES.map(([n, name]) => h("option", { value: n === null ? "null" : String(n) }, name)),
  );
  const exhaustedSelect = h(
    "select",
    { id: "f-exhausted", name: "exhausted" },
    h("option", { value: "" }, "Either"),
    h("option", { value: "true" }, "Exhausted (retries used up)"),
    h("option", { value: "false" }, "Not exhausted"),
  );
  exhaustedSelect.value = state.exhausted;
  const from = h("input", { id: "f-from", name: "from", type: "datetime-local", step: "1" });
  const to = h("input", { id: "f-to", name: "to", type: "datetime-local", step: "1" });
  const path = h("input", { id: "f-path", name: "path", placeholder: "body.data.object.id", spellcheck: "false" });
  const value = h("input", { id: "f-value", name: "value", placeholder: "pi_123", spellcheck: "false" });
  const liveBox = h("input", { id: "f-live", type: "checkbox", checked: true });
  statusSelect.value = state.status;
  from.value = state.from;
  to.value = state.to;
  path.value = state.path;
  value.value = state.value;

  const form = h(
    "form",
    {
      class: "filters card",
      role: "search",
      onsubmit: (event) => {
        event.preventDefault();
        const next = new URLSearchParams();
        const values = { workflow: workflowSelect.value, status: statusSelect.value, exhausted: exhaustedSelect.value, from: from.value, to: to.value, path: path.value.trim(), value: value.value };
        if (!values.path) values.value = "";
        for (const [k, v] of Object.entries(values)) if (v) next.set(k, v);
        const hash = `#/executions${next.size ? `?${next}` : ""}`;
        if (window.location.hash === hash) load();
        else window.location.hash = hash;
      },
    },
    field("Workflow", workflowSelect),
    field("Status", statusSelect),
    field("Retries", exhaustedSelect),
    field("Created from", from),
    field("Created to", to),
    field("Context path", path),
    field("= value", value),
    h("div", { class: "actions" }, h("button", { type: "submit" }, "Search"), h("a", { href: "#/executions", class: "button quiet" }, "Clear")),
  );
  const summaryLine = h("p", { id: "exec-summary", class: "muted", "aria-live": "polite" });
  const bulkMessage = h("div", { id: "bulk-message", "aria-live": "polite" });
  const replayAll = replayAllButton(state, bulkMessage);
  const table = h("div", { id: "executions" });
  const pager = h("nav", { class: "pager", "aria-label": "Result pages" });
  root.append(
    h("h1", {}, "Executions"),
    form,
    h("div", { class: "toolbar" }, summaryLine, h("div", { class: "actions" }, replayAll, h("label", { class: "inline" }, liveBox, " Live"))),
    bulkMessage,
    table,
    pager,
  );
  liveBox.addEventListener("change", schedule);

  get("/api/workflows:list", { paginate: "false" })
    .then((reply) => {
      const keys = [...new Set(reply.data.map((v) => v.key))].sort();
      if (state.workflow && !keys.includes(state.workflow)) keys.unshift(state.workflow);
      for (const key of keys) workflowSelect.append(h("option", { value: key }, key));
      workflowSelect.value = state.workflow;
    })
    .catch(() => {});

  async function load() {
    let reply;
    try {
      reply = await get("/api/executions:list", listParams(state));
    } catch (error) {
      if (alive) clear(table, errorBox(error));
      schedule();
      return;
    }
    if (!alive) return;
    const { data, meta } = reply;
    const pages = Math.max(1, Math.ceil(meta.count / PAGE_SIZE));
    summaryLine.textContent = `${meta.count} execution${meta.count === 1 ? "" : "s"}, newest first` +
      (pages > 1 ? ` — page ${state.page} of ${pages}` : "");
    if (data.length === 0) clear(table, h("p", { class: "muted" }, "No executions match."));
    else clear(table, rows(data));
    first = false;
    clear(
      pager,
      state.page > 1 ? h("a", { class: "button quiet", href: pageHash(state.page - 1) }, "← Newer") : null,
      state.page < pages ? h("a", { class: "button quiet", href: pageHash(state.page + 1) }, "Older →") : null,
    );
    schedule();
  }

  function rows(data) {
    return h(
      "table",
      { class: "rows" },
      h("thead", {}, h("tr", {}, ...["Execution", "Workflow", "Status", "Created", "Duration", "Attempt", "Note"].map((t) => h("th", { scope: "col" }, t)))),
      h(
        "tbody",
        {},
        ...data.map((e) => {
          const fresh = !first && !seen.has(e.id);
          seen.add(e.id);
          return h(
            "tr",
            { class: fresh ? "fresh" : "", dataset: { id: e.id } },
            h("td", { "data-label": "Execution" }, h("a", { href: `#/execution/${e.id}`, class: "mono" }, e.id.slice(0, 12) + "…" + e.id.slice(-4))),
            h("td", { "data-label": "Workflow", class: "mono" }, e.key),
            h("td", { "data-label": "Status" }, badge(e.status), e.reason ? h("span", { class: "muted" }, ` ${e.reason}`) : null),
            h("td", { "data-label": "Created" }, when(e.createdAt)),
            h("td", { "data-label": "Duration" }, duration(e.startedAt || e.createdAt, e.finishedAt)),
            h("td", { "data-label": "Attempt" }, String(e.attempt), e.exhausted ? " (exhausted)" : ""),
            h("td", { "data-label": "Note" }, note(e)),
          );
        }),
      ),
    );
  }

  function note(e) {
    const parts = [];
    if (e.error) parts.push(h("span", { class: "error-text" }, e.error));
    if (e.replayOf) parts.push(h("span", {}, "replay of ", h("a", { href: `#/execution/${e.replayOf}`, class: "mono" }, e.replayOf.slice(0, 8) + "…")));
    if (e.manually) parts.push("manual run");
    return parts.length ? parts : "";
  }

  function pageHash(page) {
    const next = new URLSearchParams(params);
    next.set("page", String(page));
    return `#/executions?${next}`;
  }

  function schedule() {
    clearTimeout(timer);
    if (alive && liveBox.checked) timer = setTimeout(load, REFRESH_MS);
  }

  load();
  return () => {
    alive = false;
    clearTimeout(timer);
  };
}

/**
 * SPEC §11: replay every final execution the filters match. Only with at least
 * one filter (the API refuses none), and only after a second click within 5 s.
 */
function replayAllButton(state, message) {
  const filters = filterParams(state);
  const button = h("button", { type: "button", id: "replay-all", class: "quiet", hidden: Object.keys(filters).length === 0 }, "Replay all matching");
  let armed = null;
  button.addEventListener("click", async () => {
    if (!armed) {
      button.textContent = "Confirm: replay all matching";
      armed = setTimeout(() => {
        armed = null;
        button.textContent = "Replay all matching";
      }, 5000);
      return;
    }
    clearTimeout(armed);
    armed = null;
    button.textContent = "Replay all matching";
    button.disabled = true;
    message.replaceChildren();
    try {
      const reply = await post("/api/executions:replay", filters);
      const { count, skipped } = reply.data;
      message.append(
        h("div", { class: "ok", role: "status" }, `Replayed ${count} execution${count === 1 ? "" : "s"}` + (skipped ? ` (${skipped} skipped: no enabled version)` : "") + "."),
      );
    } catch (error) {
      message.append(errorBox(error));
    } finally {
      button.disabled = false;
    }
  });
  return button;
}

function field(label, input) {
  return h("div", { class: "field" }, h("label", { for: input.id }, label), input);
}
