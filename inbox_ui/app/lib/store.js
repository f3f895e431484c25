// The inbox state in one place, and the only functions that change it. Views read `state` and
// subscribe to changes; nothing else writes to it.
//
// * conversations: every conversation row the agent has seen (from list loads and from events);
//   the tabs are filters over it, so a row moves between tabs the moment an event says so.
// * details: the full conversation (messages, timeline, handoff) of those opened this session,
//   kept current by events.
// * pending: replies and notes typed here that the server has not confirmed yet (or refused),
//   persisted in sessionStorage so a reload never loses them.
// * seen: per conversation, the message count when the agent last looked at it (localStorage,
//   per agent): the unread count is what arrived since.
// * tickets: offline tickets (left when nobody could take a handoff), by id; "open" ones are loaded
//   at start, "done" ones when the agent first looks at them; events keep both current.

const listeners = new Set();

export const state = {
  me: null,
  view: "unassigned",
  conversations: new Map(),
  loadedViews: new Set(),
  details: new Map(),
  loading: new Set(),
  selectedId: null,
  pending: new Map(),
  seen: {},
  connection: "connecting",
  canned: [],
  flash: null,
  tickets: new Map(),
  ticketFilter: "open", // which tickets the Tickets tab lists: "open" | "done"
  loadedTickets: new Set(), // ticket statuses loaded from the server
  selectedTicketId: null,
  seenTickets: new Set(), // tickets this agent has opened (localStorage, per agent)
  panel: null, // "team": the supervisor view fills the conversation area
  realerted: new Set(), // queued conversations nobody took in time (an "unclaimed" alert), until opened
  team: null, // the last GET /api/agents answer (supervisors)
};

export const TABS = [
  { view: "unassigned", label: "Unassigned", key: "1" },
  { view: "mine", label: "Mine", key: "2" },
  { view: "open", label: "All open", short: "Open", key: "3" },
  { view: "resolved", label: "Resolved", short: "Done", key: "4" },
  { view: "tickets", label: "Tickets", icon: "ticket", key: "5" },
];

let scheduled = false;
const changedParts = new Set();

/** Tell views that `parts` changed ("list", "detail", "header", "pending", ...); batched per frame. */
export function changed(...parts) {
  for (const p of parts) changedParts.add(p);
  if (scheduled) return;
  scheduled = true;
  requestAnimationFrame(() => {
    scheduled = false;
    const parts = new Set(changedParts);
    changedParts.clear();
    for (const fn of listeners) fn(parts);
  });
}

export function subscribe(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

// -- conversations ---------------------------------------------------------------------------------

/** Keep the newest version of a row: events can arrive before or after a list load. */
export function upsertConversation(row) {
  if (!row || !row.id) return;
  const old = state.conversations.get(row.id);
  if (old && (old.updated_at || 0) > (row.updated_at || 0)) return;
  state.conversations.set(row.id, { ...old, ...row });
  const detail = state.details.get(row.id);
  if (detail) Object.assign(detail, row);
  changed("list", "detail");
}

export function inView(row, view, me) {
  switch (view) {
    case "unassigned":
      return row.status === "queued";
    case "mine":
      return row.status === "assigned" && me && row.assignee === me.username;
    case "open":
      return row.status === "queued" || row.status === "assigned";
    case "resolved":
      return row.status === "resolved";
    default:
      return false;
  }
}

/** The rows of a tab, in the order an agent works them. */
export function rowsOf(view) {
  const rows = [...state.conversations.values()].filter((r) => inView(r, view, state.me));
  if (view === "resolved") return rows.sort((a, b) => (b.updated_at || 0) - (a.updated_at || 0));
  // Most urgent first, then longest waiting: stable while the agent moves through the list.
  // queue_priority (from list loads) includes the raise for a long wait; events carry priority only.
  const prio = (r) => Math.max(r.priority ?? 0, r.queue_priority ?? 0);
  return rows.sort(
    (a, b) => prio(b) - prio(a) || (a.queued_at || a.created_at || 0) - (b.queued_at || b.created_at || 0),
  );
}

export function counts() {
  const c = { unassigned: 0, mine: 0, open: 0, resolved: 0, tickets: 0, ticketsUnseen: 0 };
  for (const row of state.conversations.values()) {
    for (const view of ["unassigned", "mine", "open", "resolved"]) if (inView(row, view, state.me)) c[view] += 1;
  }
  for (const t of state.tickets.values()) {
    if (t.status !== "open") continue;
    c.tickets += 1;
    if (!state.seenTickets.has(t.id)) c.ticketsUnseen += 1;
  }
  return c;
}

// -- tickets ---------------------------------------------------------------------------------------

export function upsertTicket(ticket) {
  if (!ticket || ticket.id === undefined || ticket.id === null) return;
  const old = state.tickets.get(ticket.id);
  state.tickets.set(ticket.id, { ...old, ...ticket });
  changed("list", "tabs", "ticket");
}

/** The tickets of the Tickets tab: newest first (the order the API gives). */
export function ticketRows(status = state.ticketFilter) {
  const rows = [...state.tickets.values()].filter((t) => t.status === status);
  if (status === "done") return rows.sort((a, b) => (b.closed_at || 0) - (a.closed_at || 0));
  return rows.sort((a, b) => (b.created_at || 0) - (a.created_at || 0));
}

let seenTicketsKey = null;

function loadSeenTickets(username) {
  seenTicketsKey = `handoff.seenTickets.${username}`;
  try {
    state.seenTickets = new Set(JSON.parse(localStorage.getItem(seenTicketsKey) || "[]"));
  } catch {
    state.seenTickets = new Set();
  }
}

export function markTicketSeen(id) {
  if (id === null || id === undefined || state.seenTickets.has(id)) return;
  state.seenTickets.add(id);
  if (seenTicketsKey) {
    try {
      // Only open tickets need remembering; keep the list short.
      const keep = [...state.seenTickets].filter((x) => state.tickets.get(x)?.status !== "done").slice(-500);
      localStorage.setItem(seenTicketsKey, JSON.stringify(keep));
    } catch {
      /* ignore */
    }
  }
  changed("list", "tabs", "title");
}

// -- details -------------------------------------------------------------------------------------

export function setDetail(detail) {
  detail.messages = [...(detail.messages || [])].sort((a, b) => a.seq - b.seq);
  detail.timeline = detail.timeline || [];
  state.details.set(detail.id, detail);
  const { messages, timeline, handoff, metadata, ...row } = detail;
  upsertConversation(row);
  changed("detail", "transcript");
}

export function addMessage(message) {
  const detail = state.details.get(message.conversation_id);
  if (!detail) return false;
  if (detail.messages.some((m) => m.id === message.id)) return false;
  detail.messages.push(message);
  if (detail.messages.length > 1 && detail.messages[detail.messages.length - 2].seq > message.seq) {
    detail.messages.sort((a, b) => a.seq - b.seq);
  }
  changed("transcript", "detail");
  return true;
}

/** A message whose meta changed (the NLU result of a visitor turn arrives a moment later). */
export function replaceMessage(message) {
  const detail = state.details.get(message.conversation_id);
  if (!detail) return false;
  const i = detail.messages.findIndex((m) => m.id === message.id);
  if (i === -1) return addMessage(message);
  detail.messages[i] = { ...detail.messages[i], ...message };
  changed("transcript", "detail");
  return true;
}

export function addTimeline(conversationId, entry) {
  const detail = state.details.get(conversationId);
  if (!detail || !entry) return;
  if (detail.timeline.some((t) => t.id === entry.id)) return;
  detail.timeline.push(entry);
  changed("detail");
}

// -- unread ----------------------------------------------------------------------------------------

let seenKey = null;

export function loadSeen(username) {
  loadSeenTickets(username);
  seenKey = `handoff.seen.${username}`;
  try {
    state.seen = JSON.parse(localStorage.getItem(seenKey) || "{}") || {};
  } catch {
    state.seen = {};
  }
}

export function markSeen(id) {
  const row = state.conversations.get(id);
  if (!row) return;
  if (state.seen[id] === row.message_count) return;
  state.seen[id] = row.message_count || 0;
  if (seenKey) {
    try {
      localStorage.setItem(seenKey, JSON.stringify(state.seen));
    } catch {
      /* storage full: unread counts reset on reload, nothing else breaks */
    }
  }
  changed("list", "title");
}

/** Messages since the agent last opened it; null if never opened ("new"). */
export function unreadOf(row) {
  const seen = state.seen[row.id];
  if (seen === undefined) return null;
  return Math.max(0, (row.message_count || 0) - seen);
}

// -- pending sends ---------------------------------------------------------------------------------

const PENDING_KEY = "handoff.pending";

export function loadPending() {
  try {
    const saved = JSON.parse(sessionStorage.getItem(PENDING_KEY) || "[]");
    for (const p of saved) {
      // After a reload nothing is in flight: whatever was not confirmed needs a decision.
      if (p.status === "sending") p.status = "failed";
      p.error = p.error || "Not confirmed before the page reloaded.";
      addPending(p, false);
    }
  } catch {
    /* ignore a corrupt entry */
  }
}

function savePending() {
  const all = [...state.pending.values()].flat();
  try {
    sessionStorage.setItem(PENDING_KEY, JSON.stringify(all));
  } catch {
    /* ignore */
  }
}

export function addPending(p, save = true) {
  const list = state.pending.get(p.conversationId) || [];
  list.push(p);
  state.pending.set(p.conversationId, list);
  if (save) savePending();
  changed("transcript", "list");
}

export function updatePending(p, patch) {
  Object.assign(p, patch);
  savePending();
  changed("transcript", "list");
}

export function removePending(p) {
  const list = (state.pending.get(p.conversationId) || []).filter((x) => x !== p);
  if (list.length) state.pending.set(p.conversationId, list);
  else state.pending.delete(p.conversationId);
  savePending();
  changed("transcript", "list");
}

export function pendingOf(id) {
  return state.pending.get(id) || [];
}

// -- drafts ----------------------------------------------------------------------------------------

export function draftKey(id, mode) {
  return `handoff.draft.${id}.${mode}`;
}

export function loadDraft(id, mode) {
  return sessionStorage.getItem(draftKey(id, mode)) || "";
}

export function saveDraft(id, mode, text) {
  try {
    if (text) sessionStorage.setItem(draftKey(id, mode), text);
    else sessionStorage.removeItem(draftKey(id, mode));
  } catch {
    /* ignore */
  }
}

export function hasDraft(id) {
  return Boolean(loadDraft(id, "reply") || loadDraft(id, "note"));
}

// -- flash messages ----------------------------------------------------------------------------------

let flashTimer = null;

/** A short message at the bottom of the screen: kind is "info", "error" or "success". */
export function flash(text, kind = "info", ms = 5000) {
  state.flash = { text, kind, at: Date.now() };
  clearTimeout(flashTimer);
  flashTimer = setTimeout(() => {
    state.flash = null;
    changed("flash");
  }, ms);
  changed("flash");
}
