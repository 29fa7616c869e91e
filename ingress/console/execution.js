// One execution: its facts, replay and cancel, the node graph coloured by job
// status, the chosen node's config, jobs (result, log, error, duration), a
// waiting manual node's form, and the trigger context (redacted by the API).
// Refreshes itself until the execution is final.

import { get, post } from "./api.js";
import { badge, clear, duration, errorBox, h, isFinal, json, statusName, when } from "./dom.js";
import { drawGraph, nodesByKey } from "./graph.js";

const REFRESH_MS = 1500;

export function render(root, { rest }) {
  const id = rest[0];
  let alive = true;
  let timer = null;
  let selected = null;
  const versions = new Map();

  const head = h("div", { id: "execution-head" }, h("p", { class: "muted" }, "Loading…"));
  const message = h("div", { id: "execution-message", "aria-live": "polite" });
  const waiting = h("div", { id: "waiting" });
  const graphBox = h("div", { class: "graph-box" });
  const detail = h("aside", { id: "node-detail", class: "card", "aria-live": "polite", tabindex: "-1" }, h("p", { class: "muted" }, "Select a node to see its job."));
  const context = h("pre", { id: "context", class: "code", tabindex: "0", "aria-label": "Trigger context" });
  const output = h("pre", { id: "output", class: "code", tabindex: "0", "aria-label": "Output" });
  root.append(
    h("p", {}, h("a", { href: "#/executions" }, "← Executions")),
    head,
    message,
    waiting,
    h("div", { class: "split" }, h("section", { class: "card", "aria-label": "Nodes" }, h("h2", {}, "Nodes"), graphBox), detail),
    h("section", { class: "card" }, h("h2", {}, "Trigger context"), h("p", { class: "muted" }, "As stored: authorization, cookie and configured headers are redacted."), context),
    h("section", { class: "card" }, h("h2", {}, "Output"), output),
  );

  let execution = null;
  let version = null;
  let jobsByNode = new Map();
  let graph = null;
  let lastSnapshot = null;

  async function load() {
    try {
      execution = (await get("/api/executions:get", { filterByTk: id })).data;
      if (!versions.has(execution.workflowId)) {
        versions.set(
          execution.workflowId,
          await get("/api/workflows:get", { filterByTk: execution.workflowId }).then((r) => r.data, () => null),
        );
      }
      version = versions.get(execution.workflowId);
    } catch (error) {
      if (alive) clear(head, errorBox(error));
      return;
    }
    if (!alive) return;
    // Unchanged since the last look: keep the page as it is (a half-filled form too).
    const snapshot = JSON.stringify(execution);
    if (snapshot === lastSnapshot) {
      if (!isFinal(execution.status)) timer = setTimeout(load, REFRESH_MS);
      return;
    }
    lastSnapshot = snapshot;
    jobsByNode = new Map();
    for (const job of execution.jobs || []) {
      if (!jobsByNode.has(job.nodeKey)) jobsByNode.set(job.nodeKey, []);
      jobsByNode.get(job.nodeKey).push(job);
    }
    drawHead();
    graph = drawGraph(version ? version.nodes : [], jobsByNode, (node) => choose(node.key, true));
    clear(graphBox, graph.element);
    if (!version) graphBox.append(h("p", { class: "muted" }, `Version #${execution.workflowId} is gone; jobs below.`));
    context.textContent = json(execution.context);
    output.textContent = json(execution.output);
    drawWaiting();
    const firstFailed = (execution.jobs || []).find((j) => j.status < 0);
    choose(selected ?? firstFailed?.nodeKey ?? null, false);
    if (!isFinal(execution.status)) timer = setTimeout(load, REFRESH_MS);
  }

  function drawHead() {
    const e = execution;
    const final = isFinal(e.status);
    const replay = h("button", { type: "button", id: "replay", onclick: () => act("replay") }, "Replay");
    // Cancel asks twice (a second click within five seconds): it cannot be undone.
    const cancel = h("button", { type: "button", id: "cancel", class: "danger", disabled: final }, "Cancel");
    let armed = null;
    cancel.addEventListener("click", () => {
      if (armed) {
        clearTimeout(armed);
        act("cancel");
        return;
      }
      cancel.textContent = "Confirm cancel";
      armed = setTimeout(() => {
        armed = null;
        cancel.textContent = "Cancel";
      }, 5000);
    });
    const failedJob = final && e.status < 0 ? (e.jobs || []).find((j) => j.status < 0) : null;
    clear(
      head,
      h("h1", {}, "Execution ", h("span", { class: "mono small" }, e.id)),
      h(
        "dl",
        { class: "facts" },
        fact("Status", [badge(e.status), e.reason ? ` ${e.reason}` : ""]),
        fact("Workflow", h("a", { href: `#/executions?workflow=${encodeURIComponent(e.key)}`, class: "mono" }, e.key)),
        fact("Version", `#${e.workflowId}${version ? ` ${version.title || ""}` : ""}`),
        fact("Created", when(e.createdAt)),
        fact("Started", when(e.startedAt)),
        fact("Finished", when(e.finishedAt)),
        fact("Duration", duration(e.startedAt || e.createdAt, e.finishedAt)),
        fact("Attempt", `${e.attempt}${e.exhausted ? " (exhausted)" : ""}`),
        e.replayOf ? fact("Replay of", h("a", { href: `#/execution/${e.replayOf}`, class: "mono" }, e.replayOf)) : null,
        e.manually ? fact("Started by", "a manual run") : null,
      ),
      e.error ? h("div", { class: "error", role: "alert", id: "execution-error" }, e.error) : null,
      failedJob
        ? h(
            "div",
            { class: "error", role: "alert", id: "failed-node" },
            `Node ${nodeName(failedJob.nodeKey)} ended ${statusName(failedJob.status, { job: true })}`,
            errorMessage(failedJob) ? `: ${errorMessage(failedJob)}` : "",
          )
        : null,
      h("div", { class: "actions" }, replay, cancel),
    );
  }

  function nodeName(key) {
    const node = version ? nodesByKey(version.nodes).get(key) : null;
    return node?.title ? `${node.title} (${key})` : key;
  }

  async function act(action) {
    message.replaceChildren();
    try {
      const reply = await post(`/api/executions:${action}`, { filterByTk: id });
      if (action === "replay") {
        window.location.hash = `#/execution/${reply.data.execution.id}`;
        return;
      }
      message.append(h("div", { class: "ok", role: "status" }, "Canceled."));
      clearTimeout(timer);
      lastSnapshot = null;
      load();
    } catch (error) {
      message.append(errorBox(error));
    }
  }

  function choose(key, focus) {
    selected = key;
    if (graph) graph.select(key);
    if (key === null) return;
    const node = version ? nodesByKey(version.nodes).get(key) : null;
    const jobs = jobsByNode.get(key) || [];
    clear(
      detail,
      h("h2", {}, node?.title || key),
      h("p", { class: "muted" }, `${node?.type || jobs[0]?.nodeType || "?"} · key ${key}`),
      jobs.length === 0 ? h("p", {}, "This node did not run.") : null,
      ...jobs.map((job, i) => jobView(job, jobs.length > 1 ? i + 1 : null)),
      node ? [h("h3", {}, "Input (config as defined)"), h("pre", { class: "code node-config", tabindex: "0" }, json(node.config ?? {}))] : null,
    );
    if (focus) detail.focus();
  }

  function jobView(job, run) {
    const failed = job.status < 0;
    const manualWaiting = job.nodeType === "manual" && job.status === 0;
    return h(
      "section",
      { class: "job", dataset: { job: job.id } },
      h("h3", {}, run ? `Run ${run}` : "Job", " ", badge(job.status, { job: true })),
      h(
        "dl",
        { class: "facts" },
        fact("Duration", job.status === 0 ? "waiting" : duration(job.startedAt, job.updatedAt)),
        fact("Started", when(job.startedAt)),
        job.attempt > 1 ? fact("Attempt", String(job.attempt)) : null,
      ),
      failed && errorMessage(job) ? h("p", { class: "error job-error" }, errorMessage(job)) : null,
      manualWaiting ? null : h("h4", { class: failed ? "error-text" : "" }, failed ? "Error" : "Result"),
      manualWaiting ? null : h("pre", { class: `code job-result${failed ? " failed" : ""}`, tabindex: "0" }, json(job.result)),
      job.log ? [h("h4", {}, failed ? "Log" : "Log"), h("pre", { class: "code job-log", tabindex: "0" }, job.log)] : null,
      job.meta && !manualWaiting ? [h("h4", {}, "Meta"), h("pre", { class: "code", tabindex: "0" }, json(job.meta))] : null,
      manualWaiting ? manualForm(job) : null,
    );
  }

  function drawWaiting() {
    const pending = (execution.jobs || []).filter((j) => j.nodeType === "manual" && j.status === 0);
    clear(
      waiting,
      ...pending.map((job) =>
        h(
          "div",
          { class: "notice", role: "status" },
          `Waiting for a person at node ${job.nodeKey}${job.meta?.title ? ` (${job.meta.title})` : ""}. `,
          h("button", { type: "button", class: "quiet", onclick: () => choose(job.nodeKey, true) }, "Open its form"),
        ),
      ),
    );
  }

  function manualForm(job) {
    const meta = job.meta || {};
    const done = meta.submissions || {};
    const open = (meta.assignees || []).filter((a) => !(a in done));
    const formId = `manual-${job.id}`;
    const assignee = h("select", { id: `${formId}-assignee`, name: "assignee" }, ...open.map((a) => h("option", { value: a }, a)));
    const result = h("textarea", { id: `${formId}-result`, name: "result", rows: "4", spellcheck: "false" }, "{}");
    const note = h("div", { "aria-live": "polite" });
    async function send(status) {
      note.replaceChildren();
      let value;
      try {
        value = result.value.trim() ? JSON.parse(result.value) : null;
      } catch (error) {
        note.append(h("div", { class: "error", role: "alert" }, `Result is not JSON: ${error.message}`));
        return;
      }
      try {
        await post("/api/jobs:resume", { filterByTk: job.id }, { assignee: assignee.value, status, result: value });
        note.append(h("div", { class: "ok", role: "status" }, "Submitted."));
        clearTimeout(timer);
        setTimeout(load, 300);
      } catch (error) {
        note.append(errorBox(error));
      }
    }
    return h(
      "form",
      { class: "manual", onsubmit: (event) => { event.preventDefault(); send(1); } },
      h("h4", {}, meta.title || "Manual step"),
      Object.keys(done).length ? h("p", { class: "muted" }, `Submitted: ${Object.entries(done).map(([a, s]) => `${a} (${statusName(s.status)})`).join(", ")}`) : null,
      h("label", { for: assignee.id }, "Submit as"),
      assignee,
      h("label", { for: result.id }, "Result (JSON)"),
      result,
      h("div", { class: "actions" }, h("button", { type: "submit" }, "Approve"), h("button", { type: "button", class: "danger", onclick: () => send(-5) }, "Reject")),
      note,
    );
  }

  load();
  return () => {
    alive = false;
    clearTimeout(timer);
  };
}

/** A failed job's message: its result's `message` (or the result, if text). */
function errorMessage(job) {
  const result = job.result;
  if (typeof result === "string") return result;
  if (result && typeof result.message === "string") return result.message;
  return null;
}

function fact(name, value) {
  return h("div", {}, h("dt", {}, name), h("dd", {}, value));
}
