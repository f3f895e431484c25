// The inbox HTTP API (docs/inbox-api.md): one function per route, one error type.
// The session token is kept in sessionStorage (per tab) and sent as a Bearer token; the HttpOnly
// cookie set by login is what authenticates the EventSource, which cannot send headers.

const TOKEN_KEY = "handoff.token";

export class ApiError extends Error {
  constructor(status, code, message, detail) {
    super(message);
    this.status = status; // 0 when the network failed before any answer
    this.code = code;
    this.detail = detail || {};
  }
  /** Worth retrying as is: the network failed, or the server was briefly unavailable. */
  get transient() {
    return this.status === 0 || this.status === 502 || this.status === 503 || this.status === 504;
  }
}

let token = sessionStorage.getItem(TOKEN_KEY);
let onUnauthorized = () => {};

export function setToken(value) {
  token = value || null;
  if (token) sessionStorage.setItem(TOKEN_KEY, token);
  else sessionStorage.removeItem(TOKEN_KEY);
}

export function hasToken() {
  return Boolean(token);
}

/** Called once, by the app: what to do when the server says the session is gone. */
export function whenUnauthorized(fn) {
  onUnauthorized = fn;
}

async function request(method, path, body, { signal, quiet401 = false } = {}) {
  const headers = { Accept: "application/json" };
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let resp;
  try {
    resp = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "same-origin",
      cache: "no-store",
      signal,
    });
  } catch (err) {
    if (err && err.name === "AbortError") throw err;
    throw new ApiError(0, "network", "Can't reach the server. Check your connection.");
  }
  if (resp.status === 204) return null;
  let data = null;
  const text = await resp.text();
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (!resp.ok) {
    const e = (data && data.error) || {};
    const err = new ApiError(resp.status, e.code || `http_${resp.status}`, e.message || `The server answered ${resp.status}.`, e.detail);
    if (resp.status === 401 && !quiet401) onUnauthorized(err);
    throw err;
  }
  return data;
}

const enc = encodeURIComponent;

export const api = {
  login: (username, password) => request("POST", "/api/login", { username, password }, { quiet401: true }),
  logout: () => request("POST", "/api/logout", {}, { quiet401: true }),
  me: () => request("GET", "/api/me"),
  setAvailability: (availability) => request("POST", "/api/me/availability", { availability }),

  conversations: (view) => request("GET", `/api/conversations?view=${enc(view)}`),
  conversation: (id) => request("GET", `/api/conversations/${enc(id)}`),
  claim: (id) => request("POST", `/api/conversations/${enc(id)}/claim`, {}),
  reply: (id, text, clientId) => request("POST", `/api/conversations/${enc(id)}/messages`, { text, client_id: clientId }),
  note: (id, text) => request("POST", `/api/conversations/${enc(id)}/notes`, { text }),
  handback: (id, { outcome, note, facts }) => request("POST", `/api/conversations/${enc(id)}/handback`, { outcome, note, facts }),
  resolve: (id, note) => request("POST", `/api/conversations/${enc(id)}/resolve`, note ? { note } : {}),
  transfer: (id, { to, team, note }) => request("POST", `/api/conversations/${enc(id)}/transfer`, to ? { to, note } : { team, note }),
  escalate: (id, note) => request("POST", `/api/conversations/${enc(id)}/escalate`, note ? { note } : {}),

  directory: () => request("GET", "/api/directory"),
  agents: () => request("GET", "/api/agents"),

  tickets: (status = "open") => request("GET", `/api/tickets?status=${enc(status)}`),
  closeTicket: (id, note) => request("POST", `/api/tickets/${enc(id)}/close`, note ? { note } : {}),

  canned: () => request("GET", "/api/canned"),
  addCanned: (shortcut, text) => request("POST", "/api/canned", { shortcut, text }),
  deleteCanned: (id) => request("DELETE", `/api/canned/${enc(id)}`),

  poll: (after, timeout, signal) => request("GET", `/api/events/poll?after=${enc(after)}&timeout=${enc(timeout)}`, undefined, { signal }),
};
