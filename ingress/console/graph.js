// The node graph as defined: the main chain top to bottom; a branching node
// (condition, multi-conditions, loop, parallel) opens its branches side by side
// under it, each labelled, and the chain continues after them. Each node is a
// button coloured by the status of its (last) job.

import { h, statusName } from "./dom.js";

/** Label of branch `index` of `node` (SPEC §3: which index means what). */
export function branchLabel(node, index) {
  switch (node.type) {
    case "condition":
      return index === "1" ? "true" : index === "0" ? "false" : index;
    case "multi-conditions": {
      if (index === "0") return "otherwise";
      const item = (node.config?.conditions || [])[Number(index) - 1];
      return item?.title ? `${index}: ${item.title}` : `condition ${index}`;
    }
    case "loop":
      return index === "0" ? "each item" : index;
    case "parallel":
      return `branch ${index}`;
    default:
      return index;
  }
}

function branchOrder(node) {
  const keys = Object.keys(node.branches || {});
  const rank = (k) => (k === "0" && node.type !== "loop" ? Number.MAX_SAFE_INTEGER : Number(k));
  return keys.sort((a, b) => (node.type === "condition" ? Number(b) - Number(a) : rank(a) - rank(b)));
}

/**
 * `nodes`: the definition's main chain. `jobsByNode`: node key → jobs (run order).
 * `onSelect(node)` when a node is chosen. Returns {element, select(key)}.
 */
export function drawGraph(nodes, jobsByNode, onSelect) {
  const buttons = new Map();

  function nodeBox(node) {
    const jobs = jobsByNode.get(node.key) || [];
    const last = jobs[jobs.length - 1];
    const status = last ? statusName(last.status, { job: true }) : "not run";
    const button = h(
      "button",
      {
        type: "button",
        class: `node st-${status.replace(" ", "-")}`,
        "aria-pressed": "false",
        dataset: { node: node.key },
        onclick: () => onSelect(node),
      },
      h("span", { class: "node-title" }, node.title || node.key),
      h("span", { class: "node-meta" }, `${node.type} · ${node.key}`),
      h("span", { class: "node-status" }, status + (jobs.length > 1 ? ` ×${jobs.length}` : "")),
    );
    buttons.set(node.key, button);
    return button;
  }

  function chain(list) {
    return h(
      "ol",
      { class: "chain" },
      ...list.map((node) => {
        const item = h("li", { class: "step" }, nodeBox(node));
        const order = branchOrder(node);
        if (order.length) {
          item.append(
            h(
              "ul",
              { class: "branches" },
              ...order.map((index) =>
                h(
                  "li",
                  { class: "branch" },
                  h("span", { class: "branch-label" }, branchLabel(node, index)),
                  node.branches[index].length ? chain(node.branches[index]) : h("span", { class: "muted empty" }, "(nothing)"),
                ),
              ),
            ),
          );
        }
        return item;
      }),
    );
  }

  const element = h("div", { class: "graph", role: "group", "aria-label": "Node graph" }, nodes.length ? chain(nodes) : h("p", { class: "muted" }, "No nodes."));
  return {
    element,
    select(key) {
      for (const [k, b] of buttons) b.setAttribute("aria-pressed", String(k === key));
    },
  };
}

/** Every node of a definition, depth first: key → node. */
export function nodesByKey(nodes, out = new Map()) {
  for (const node of nodes || []) {
    out.set(node.key, node);
    for (const branch of Object.values(node.branches || {})) nodesByKey(branch, out);
  }
  return out;
}
