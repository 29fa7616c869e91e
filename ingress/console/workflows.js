// Workflows: one row per key (its current version, else its newest), with the
// webhook URL, counts and recent rate; a key's versions, its definition as YAML,
// enable/disable; and applying a pasted YAML (or JSON) definition.

import { get, post } from "./api.js";
import { clear, errorBox, h, when } from "./dom.js";
import { toYaml } from "./yaml.js";

/** The recent rate covers this many minutes. */
const RATE_MINUTES = 5;
const DEFINITION_FIELDS = ["key", "title", "type", "sync", "enabled", "config", "options", "nodes"];

export function definitionOf(version) {
  const out = {};
  for (const name of DEFINITION_FIELDS) if (version[name] !== undefined) out[name] = version[name];
  return out;
}

export function render(root, { params }) {
  let alive = true;
  const list = h("div", { id: "workflows", "aria-live": "polite" }, h("p", { class: "muted" }, "Loading…"));
  const detail = h("div", { id: "workflow-detail" });
  root.append(h("h1", {}, "Workflows"), list, detail, applyForm(() => load()));

  async function load(openKey = params.get("key")) {
    let versions;
    try {
      versions = (await get("/api/workflows:list", { paginate: "false" })).data;
    } catch (error) {
      if (alive) clear(list, errorBox(error));
      return;
    }
    if (!alive) return;
    const byKey = new Map();
    for (const version of versions) {
      if (!byKey.has(version.key)) byKey.set(version.key, []);
      byKey.get(version.key).push(version); // newest first, as listed
    }
    if (byKey.size === 0) {
      clear(list, h("p", { class: "muted" }, "No workflows yet: apply a definition below."));
      return;
    }
    const rows = [...byKey.entries()].map(([key, all]) => row(key, all));
    clear(
      list,
      h(
        "table",
        { class: "rows" },
        h(
          "thead",
          {},
          h(
            "tr",
            {},
            ...["Key", "Title", "Mode", "State", "Version", "Webhook URL", "Executions", `Last ${RATE_MINUTES} min`, ""].map(
              (t) => h("th", { scope: "col" }, t),
            ),
          ),
        ),
        h("tbody", {}, ...rows),
      ),
    );
    if (openKey && byKey.has(openKey)) showDetail(openKey, byKey.get(openKey));
  }

  function row(key, all) {
    const shown = all.find((v) => v.current) || all[0];
    const count = h("span", { class: "count" }, "…");
    const rate = h("span", { class: "rate" }, "…");
    counts(key, count, rate);
    const toggle = h(
      "button",
      {
        type: "button",
        class: shown.enabled ? "quiet" : "",
        "aria-label": `${shown.enabled ? "Disable" : "Enable"} ${key}`,
        onclick: async () => {
          toggle.disabled = true;
          try {
            await post("/api/workflows:update", { filterByTk: shown.id }, { enabled: !shown.enabled });
            await load(key);
          } catch (error) {
            clear(detail, errorBox(error));
            toggle.disabled = false;
          }
        },
      },
      shown.enabled ? "Disable" : "Enable",
    );
    return h(
      "tr",
      { dataset: { key } },
      h("td", { "data-label": "Key" }, h("a", { href: `#/executions?workflow=${encodeURIComponent(key)}`, class: "mono" }, key)),
      h("td", { "data-label": "Title" }, shown.title || "—"),
      h("td", { "data-label": "Mode" }, shown.sync ? "sync" : "async"),
      h("td", { "data-label": "State" }, h("span", { class: `pill ${shown.enabled ? "on" : "off"}` }, shown.enabled ? "enabled" : "disabled"), " ", toggle),
      h("td", { "data-label": "Version" }, `#${shown.id}`, h("span", { class: "muted" }, ` (${all.length} in all)`)),
      h("td", { "data-label": "Webhook URL", class: "url" }, h("code", { class: "webhook-url" }, shown.webhookUrl), " ", copyButton(shown.webhookUrl)),
      h("td", { "data-label": "Executions" }, count),
      h("td", { "data-label": `Last ${RATE_MINUTES} min` }, rate),
      h("td", {}, h("button", { type: "button", class: "quiet", onclick: () => showDetail(key, all) }, "Versions & definition")),
    );
  }

  async function counts(key, count, rate) {
    const since = new Date(Date.now() - RATE_MINUTES * 60000).toISOString();
    try {
      const [all, recent] = await Promise.all([
        get("/api/executions:list", { "filter[workflowKey]": key, pageSize: 1 }),
        get("/api/executions:list", { "filter[workflowKey]": key, "filter[createdAt][$gte]": since, pageSize: 1 }),
      ]);
      count.textContent = String(all.meta.count);
      const perMinute = recent.meta.count / RATE_MINUTES;
      rate.textContent = `${recent.meta.count} (${perMinute.toFixed(perMinute < 10 ? 1 : 0)}/min)`;
    } catch {
      count.textContent = rate.textContent = "?";
    }
  }

  function showDetail(key, all) {
    let chosen = all.find((v) => v.current) || all[0];
    const yaml = h("pre", { class: "code yaml", tabindex: "0", "aria-label": "Definition as YAML" });
    const table = h("tbody");
    const message = h("div", { "aria-live": "polite" });
    function draw() {
      yaml.textContent = toYaml(definitionOf(chosen));
      clear(
        table,
        ...all.map((v) =>
          h(
            "tr",
            { class: v === chosen ? "chosen" : "" },
            h("td", { "data-label": "Version" }, `#${v.id}`),
            h("td", { "data-label": "Created" }, when(v.createdAt)),
            h("td", { "data-label": "State" }, v.current ? "current" : v.enabled ? "enabled" : "disabled"),
            h(
              "td",
              {},
              h("button", { type: "button", class: "quiet", "aria-pressed": String(v === chosen), onclick: () => { chosen = v; draw(); } }, "Show YAML"),
              " ",
              v.enabled
                ? null
                : h("button", { type: "button", onclick: () => enable(v) }, "Enable this version"),
            ),
          ),
        ),
      );
    }
    async function enable(v) {
      try {
        await post("/api/workflows:update", { filterByTk: v.id }, { enabled: true });
        await load(key);
      } catch (error) {
        clear(message, errorBox(error));
      }
    }
    draw();
    requestAnimationFrame(() => detail.scrollIntoView({ block: "nearest" }));
    clear(
      detail,
      h(
        "section",
        { class: "card", "aria-label": `Workflow ${key}` },
        h("h2", {}, "Workflow ", h("span", { class: "mono" }, key)),
        message,
        h("table", { class: "rows versions" }, h("thead", {}, h("tr", {}, ...["Version", "Created", "State", ""].map((t) => h("th", { scope: "col" }, t)))), table),
        h("h3", {}, "Definition"),
        yaml,
        h("button", { type: "button", class: "quiet", onclick: () => copyText(yaml.textContent) }, "Copy YAML"),
      ),
    );
  }

  load();
  return () => {
    alive = false;
  };
}

function applyForm(reload) {
  const area = h("textarea", {
    id: "definition",
    rows: "12",
    spellcheck: "false",
    placeholder: "key: orders\ntitle: Orders\ntype: webhook\nsync: false\nenabled: true\nnodes: []",
  });
  const message = h("div", { id: "apply-message", "aria-live": "polite" });
  const button = h("button", { type: "submit" }, "Apply");
  return h(
    "form",
    {
      class: "card apply",
      onsubmit: async (event) => {
        event.preventDefault();
        message.replaceChildren();
        button.disabled = true;
        const text = area.value.trim();
        const isJson = text.startsWith("{") || text.startsWith("[");
        try {
          const documents = isJson && text.startsWith("[") ? JSON.parse(text) : [text];
          const applied = [];
          for (const doc of documents) {
            const body = typeof doc === "string" ? doc : JSON.stringify(doc);
            const reply = await post("/api/workflows:create", {}, body, isJson ? "application/json" : "application/yaml");
            applied.push(reply.data);
            for (const warning of reply.warnings || []) message.append(h("div", { class: "warning" }, warning));
          }
          message.prepend(
            h("div", { class: "ok", role: "status" }, ...applied.map((v) => h("div", {}, `Applied ${v.key}: version #${v.id}${v.enabled ? ", enabled" : ", disabled"}`))),
          );
          await reload();
        } catch (error) {
          message.append(errorBox(error));
        } finally {
          button.disabled = false;
        }
      },
    },
    h("h2", {}, "Apply a definition"),
    h("label", { for: "definition" }, "Paste a workflow definition (YAML or JSON). A known key gets a new version."),
    area,
    button,
    message,
  );
}

export function copyButton(text) {
  const button = h("button", { type: "button", class: "quiet copy", "aria-label": `Copy ${text}` }, "Copy");
  button.addEventListener("click", async () => {
    button.textContent = (await copyText(text)) ? "Copied" : "Select and copy";
    setTimeout(() => (button.textContent = "Copy"), 1500);
  });
  return button;
}

async function copyText(text) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    return false;
  }
}
