// The admin API client: the token lives in this tab's sessionStorage and goes
// out as `Authorization: Bearer` (no cookies, so nothing for CSRF to ride on).

const TOKEN_KEY = "rayhook.adminToken";

export const token = {
  get: () => sessionStorage.getItem(TOKEN_KEY),
  set: (value) => sessionStorage.setItem(TOKEN_KEY, value),
  clear: () => sessionStorage.removeItem(TOKEN_KEY),
};

export class ApiError extends Error {
  constructor(status, messages) {
    super(messages.join("\n"));
    this.status = status;
    this.messages = messages;
  }
}

/** Called when a request is refused with 401: the token is gone or changed. */
let onUnauthorized = () => {};
export function whenUnauthorized(handler) {
  onUnauthorized = handler;
}

function urlOf(path, params) {
  const url = new URL(path, window.location.origin);
  for (const [name, value] of Object.entries(params || {})) {
    if (value === undefined || value === null || value === "") continue;
    for (const one of Array.isArray(value) ? value : [value]) url.searchParams.append(name, one);
  }
  return url;
}

/**
 * One request. `body`: an object (sent as JSON) or a string with `contentType`.
 * `bearer` overrides the stored token (sign-in checks a candidate with it).
 * Resolves to the parsed JSON (or the text, for /metrics); rejects with ApiError.
 */
export async function request(path, { method = "GET", params, body, contentType, bearer } = {}) {
  const headers = { Authorization: `Bearer ${bearer ?? token.get() ?? ""}` };
  let payload;
  if (typeof body === "string") {
    payload = body;
    headers["Content-Type"] = contentType || "text/plain";
  } else if (body !== undefined) {
    payload = JSON.stringify(body);
    headers["Content-Type"] = "application/json";
  }
  let resp;
  try {
    resp = await fetch(urlOf(path, params), { method, headers, body: payload, cache: "no-store" });
  } catch (err) {
    throw new ApiError(0, [`rayhook is not reachable (${err.message})`]);
  }
  const text = await resp.text();
  const isJson = (resp.headers.get("Content-Type") || "").includes("json");
  let data = text;
  if (isJson && text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (!resp.ok) {
    const messages = (data && Array.isArray(data.errors) && data.errors.map((e) => e.message)) || [
      `${resp.status} ${resp.statusText}`,
    ];
    const error = new ApiError(resp.status, messages);
    if (resp.status === 401 && bearer === undefined) onUnauthorized(error);
    throw error;
  }
  return data;
}

export const get = (path, params) => request(path, { params });
export const post = (path, params, body, contentType) =>
  request(path, { method: "POST", params, body, contentType });
