// The console's entry point: sign-in, the page router (`#/workflows`,
// `#/executions?...`, `#/execution/<id>`, `#/live`), and each page's clean-up.

import { ApiError, request, token, whenUnauthorized } from "./api.js";
import { clear, errorBox, h, parseHash } from "./dom.js";
import * as execution from "./execution.js";
import * as executions from "./executions.js";
import * as live from "./live.js";
import * as workflows from "./workflows.js";

const PAGES = { workflows, executions, execution, live };
const main = document.getElementById("main");
const nav = document.getElementById("nav");
const signout = document.getElementById("signout");

let stopPage = null;
let signInNotice = null;

function stopCurrent() {
  if (stopPage) stopPage();
  stopPage = null;
}

function showSignIn(notice) {
  stopCurrent();
  nav.hidden = true;
  signout.hidden = true;
  const input = h("input", {
    id: "token",
    type: "password",
    name: "token",
    autocomplete: "current-password",
    required: true,
    "aria-describedby": "token-help",
  });
  const message = h("div", { id: "signin-message", "aria-live": "polite" });
  if (notice) message.append(errorBox(notice));
  const button = h("button", { type: "submit" }, "Sign in");
  const form = h(
    "form",
    { class: "signin card", onsubmit: (event) => submit(event, input, message, button) },
    h("h1", {}, "Sign in"),
    h("label", { for: "token" }, "Admin token"),
    input,
    h(
      "p",
      { id: "token-help", class: "muted" },
      "RAYHOOK_ADMIN_TOKEN: `rayhook up` prints it and keeps it in <data dir>/admin-token. " +
        "It stays in this tab only (sessionStorage) and is sent as a Bearer header.",
    ),
    button,
    message,
  );
  clear(main, form);
  input.focus();
}

async function submit(event, input, message, button) {
  event.preventDefault();
  const candidate = input.value.trim();
  message.replaceChildren();
  button.disabled = true;
  try {
    await request("/api/workflows:list", { params: { pageSize: 1 }, bearer: candidate });
    token.set(candidate);
    if (!window.location.hash || window.location.hash === "#/") window.location.hash = "#/workflows";
    route();
  } catch (error) {
    const text =
      error instanceof ApiError && error.status === 401
        ? "Wrong token: rayhook refused it (401). Check RAYHOOK_ADMIN_TOKEN."
        : error.message;
    message.append(h("div", { class: "error", role: "alert" }, text));
    input.select();
  } finally {
    button.disabled = false;
  }
}

function route() {
  if (!token.get()) {
    showSignIn(signInNotice);
    signInNotice = null;
    return;
  }
  const { page, rest, params } = parseHash(window.location.hash);
  const module = PAGES[page];
  if (!module) {
    window.location.replace("#/workflows");
    return;
  }
  stopCurrent();
  nav.hidden = false;
  signout.hidden = false;
  const section = page === "execution" ? "executions" : page;
  for (const link of nav.querySelectorAll("a")) {
    if (link.dataset.page === section) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  clear(main);
  stopPage = module.render(main, { rest, params }) || null;
}

whenUnauthorized(() => {
  token.clear();
  signInNotice = new ApiError(401, ["The token was refused (401): sign in again."]);
  route();
});

signout.addEventListener("click", () => {
  token.clear();
  route();
});
// The skip link must not change the address: the hash is the router's.
document.querySelector(".skip").addEventListener("click", (event) => {
  event.preventDefault();
  main.focus();
});
window.addEventListener("hashchange", route);
route();
