// What an agent can do, each as one function: views and keyboard shortcuts call these, these call
// the API and update the store. Errors become a flash message an agent can act on.

import { api, ApiError } from "./api.js";
import {
  state, changed, setDetail, upsertConversation, addMessage, addTimeline, addPending, updatePending,
  removePending, markSeen, rowsOf, flash, unreadOf, replaceMessage, upsertTicket, ticketRows, markTicketSeen,
} from "./store.js";
import { chime, desktopNotify, setTitleCount, titleAlert } from "./notify.js";
import { reasonLabel, duration, whyLabel } from "./format.js";

export function uuid() {
  if (window.crypto && crypto.randomUUID) {
    try {
      return crypto.randomUUID();
    } catch {
      /* not a secure context: fall through */
    }
  }
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const hex = [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

function nameOf(username) {
  if (!username) return "someone";
  if (state.me && username === state.me.username) return "you";
  for (const row of state.conversations.values()) if (row.assignee === username && row.assignee_name) return row.assignee_name;
  return username;
}

export function explain(err) {
  if (!(err instanceof ApiError)) return "Something went wrong. Try again.";
  switch (err.code) {
    case "already_assigned":
      return `Already assigned to ${nameOf(err.detail.assignee)}.`;
    case "not_assignee":
      return err.detail.assignee ? `${nameOf(err.detail.assignee)} is handling this conversation.` : "Assign the conversation to yourself first.";
    case "invalid_transition":
      return `Not possible any more: the conversation is ${err.detail.status === "bot" ? "back with the bot" : err.detail.status || "closed"}.`;
    case "message_too_long":
      return `Too long: ${err.detail.length} characters, the limit is ${err.detail.limit}.`;
    case "ticket_already_done":
      return "This ticket is already done.";
    case "no_supervisor":
      return "There is no supervisor to escalate to.";
    case "forbidden":
      return "Only a supervisor can do that.";
    default:
      return err.message;
  }
}

// -- lists and conversations ------------------------------------------------------------------------

/** Load a tab from the server; returns the feed position the list is consistent with. */
export async function loadView(view) {
  const res = await api.conversations(view);
  for (const row of res.conversations) upsertConversation(row);
  // A row the server no longer lists under this view has moved on (we missed it while away).
  const ids = new Set(res.conversations.map((r) => r.id));
  for (const row of rowsOf(view)) {
    if (!ids.has(row.id)) api.conversation(row.id).then(setDetailOrRow, () => {});
  }
  state.loadedViews.add(view);
  // "open" is queued + assigned: the Unassigned and Mine tabs are filters over it.
  if (view === "open") ["unassigned", "mine"].forEach((v) => state.loadedViews.add(v));
  changed("list", "tabs");
  return res.last_event_id || 0;
}

function setDetailOrRow(detail) {
  if (state.details.has(detail.id)) setDetail(detail);
  else {
    const { messages, timeline, handoff, metadata, ...row } = detail;
    upsertConversation(row);
  }
}

export async function switchView(view) {
  if (state.view === view && !state.panel) return;
  state.view = view;
  state.panel = null;
  changed("list", "tabs", "panel");
  if (view === "tickets") {
    if (!state.loadedTickets.has(state.ticketFilter)) await loadTickets(state.ticketFilter);
    return;
  }
  if (!state.loadedViews.has(view)) {
    try {
      await loadView(view);
    } catch (err) {
      flash(explain(err), "error");
    }
  }
}

export async function openConversation(id, { focus = false } = {}) {
  if (!id) return;
  if (state.view === "tickets") state.view = "open"; // e.g. from a notification
  state.panel = null;
  state.realerted.delete(id);
  state.selectedId = id;
  state.focusComposer = focus;
  history.replaceState(null, "", `#/c/${encodeURIComponent(id)}`);
  markSeen(id);
  changed("selection", "detail", "transcript", "list", "panel", "tabs");
  if (!state.details.has(id)) await refreshDetail(id);
}

export async function refreshDetail(id) {
  state.loading.add(id);
  changed("detail");
  try {
    setDetail(await api.conversation(id));
    if (state.selectedId === id) markSeen(id);
  } catch (err) {
    if (err instanceof ApiError && err.status === 404) {
      state.conversations.delete(id);
      if (state.selectedId === id) state.selectedId = null;
      flash("That conversation no longer exists.", "error");
    } else {
      flash(explain(err), "error");
    }
  } finally {
    state.loading.delete(id);
    changed("detail", "transcript", "list");
  }
}

export function closeConversation() {
  state.selectedId = null;
  history.replaceState(null, "", "#/");
  changed("selection", "detail", "transcript", "list");
}

/** Move the selection up or down the current tab. */
export function step(delta) {
  if (state.view === "tickets") {
    const rows = ticketRows();
    if (!rows.length) return;
    const i = rows.findIndex((t) => t.id === state.selectedTicketId);
    const next = i === -1 ? (delta > 0 ? 0 : rows.length - 1) : Math.min(rows.length - 1, Math.max(0, i + delta));
    if (rows[next] && rows[next].id !== state.selectedTicketId) openTicket(rows[next].id);
    return;
  }
  const rows = rowsOf(state.view);
  if (!rows.length) return;
  const i = rows.findIndex((r) => r.id === state.selectedId);
  const next = i === -1 ? (delta > 0 ? 0 : rows.length - 1) : Math.min(rows.length - 1, Math.max(0, i + delta));
  if (rows[next] && rows[next].id !== state.selectedId) openConversation(rows[next].id);
}

// -- claiming and closing ----------------------------------------------------------------------------

export async function claim(id = state.selectedId) {
  const row = state.conversations.get(id);
  if (!row) return;
  if (row.status === "assigned" && row.assignee === state.me.username) return;
  try {
    setDetail(await api.claim(id));
    // Keep the conversation in view: it just moved from Unassigned to Mine.
    if (state.view === "unassigned" && state.selectedId === id) switchView("mine");
    flash("Assigned to you. The visitor sees that you joined.", "success", 3000);
    state.focusComposer = true;
    changed("detail");
  } catch (err) {
    // Someone was faster: fetch who has it now, so the message can name them.
    if (err instanceof ApiError && err.status === 409) await refreshDetail(id);
    flash(explain(err), "error");
    if (!(err instanceof ApiError && err.status === 409)) refreshDetail(id);
  }
}

export async function handBack(id, { outcome, note, facts }) {
  setDetail(await api.handback(id, { outcome, note: note || undefined, facts }));
  flash("Handed back to the bot.", "success", 3000);
}

/** Resolve; returns null, or what went wrong in words. */
export async function resolve(id, note = "") {
  try {
    setDetail(await api.resolve(id, note || undefined));
    flash("Resolved. The bot looks after the visitor again.", "success", 3000);
    return null;
  } catch (err) {
    return explain(err);
  }
}

/** Transfer to an agent ({to}) or back to the queue of a team ({team}), with an optional note. */
export async function transfer(id, { to, team, note }) {
  const detail = await api.transfer(id, { to, team, note: note || undefined });
  setDetail(detail);
  flash(to ? `Transferred to ${detail.assignee_name || to}.` : `Sent to the ${team} team's queue.`, "success", 3000);
  return detail;
}

/** Escalate to a supervisor (the least-loaded available one). */
export async function escalate(id, note) {
  const detail = await api.escalate(id, note);
  setDetail(detail);
  flash(`Escalated to ${detail.assignee_name || detail.assignee || "a supervisor"}.`, "success", 3000);
  return detail;
}

// -- tickets ---------------------------------------------------------------------------------------

export async function loadTickets(status = "open") {
  try {
    const res = await api.tickets(status);
    const ids = new Set();
    for (const t of res.tickets || []) {
      upsertTicket(t);
      ids.add(t.id);
    }
    // A ticket we knew as open that the server no longer lists as open was closed meanwhile.
    for (const t of state.tickets.values()) if (t.status === status && !ids.has(t.id) && status === "open") state.tickets.delete(t.id);
    state.loadedTickets.add(status);
  } catch (err) {
    // A gateway without tickets (404) shows an empty tab rather than an error on every start.
    if (!(err instanceof ApiError && err.status === 404)) flash(explain(err), "error");
    state.loadedTickets.add(status);
  }
  changed("list", "tabs", "ticket");
}

export async function setTicketFilter(status) {
  if (state.ticketFilter === status) return;
  state.ticketFilter = status;
  changed("list", "ticket");
  if (!state.loadedTickets.has(status)) await loadTickets(status);
}

export async function openTicket(id) {
  const t = state.tickets.get(id);
  if (!t) return;
  state.selectedTicketId = id;
  state.panel = null;
  if (state.view !== "tickets") state.view = "tickets";
  markTicketSeen(id);
  changed("list", "tabs", "ticket", "panel");
  // Its conversation, to read what was said before the visitor left a message.
  if (t.conversation_id && !state.details.has(t.conversation_id)) {
    try {
      setDetail(await api.conversation(t.conversation_id));
    } catch (err) {
      if (!(err instanceof ApiError && err.status === 404)) flash(explain(err), "error");
    }
    changed("ticket");
  }
}

/** Mark a ticket done; returns null, or what went wrong in words. */
export async function closeTicket(id, note = "") {
  try {
    upsertTicket(await api.closeTicket(id, note || undefined));
    flash("Ticket marked done.", "success", 3000);
    return null;
  } catch (err) {
    if (err instanceof ApiError && err.status === 409) {
      await loadTickets("done");
      const t = state.tickets.get(id);
      return t && t.status === "done" ? `Already done${t.closed_by_name ? ` by ${t.closed_by_name}` : ""}.` : explain(err);
    }
    return explain(err);
  }
}

// -- supervisor view -------------------------------------------------------------------------------

let teamLoading = null;
/** GET /api/agents into state.team (supervisors); at most one request at a time. */
export function refreshTeam() {
  if (!state.me || state.me.role !== "supervisor") return Promise.resolve();
  if (teamLoading) return teamLoading;
  teamLoading = api.agents().then(
    (res) => {
      state.team = { ...res, at: Date.now(), error: null };
      changed("team");
    },
    (err) => {
      state.team = { ...(state.team || {}), error: explain(err) };
      changed("team");
    },
  ).finally(() => (teamLoading = null));
  return teamLoading;
}

export function toggleTeam(show = state.panel !== "team") {
  if (!state.me || state.me.role !== "supervisor") return;
  state.panel = show ? "team" : null;
  if (show) refreshTeam();
  changed("panel", "team", "tabs");
}

// -- sending ---------------------------------------------------------------------------------------

const RETRY_DELAYS = [700, 2000, 5000];

/** Send a reply or a note optimistically: it shows at once, is retried on network failure
 * (replies are idempotent on client_id), and stays with a Retry button if it still fails. */
export function send(conversationId, kind, text) {
  const p = {
    clientId: uuid(), conversationId, kind, text, status: "sending", error: null,
    createdAt: Date.now() / 1000,
  };
  addPending(p);
  deliver(p);
  return p;
}

export function retry(p) {
  updatePending(p, { status: "sending", error: null });
  deliver(p);
}

export function discard(p) {
  removePending(p);
}

async function deliver(p) {
  for (let attempt = 0; ; attempt += 1) {
    try {
      const msg = p.kind === "note" ? await api.note(p.conversationId, p.text) : await api.reply(p.conversationId, p.text, p.clientId);
      removePending(p);
      addMessage(msg);
      return;
    } catch (err) {
      // A note has no idempotency key, so only a request that surely never arrived is retried.
      const retriable = err instanceof ApiError && err.transient && (p.kind === "reply" || err.status === 0);
      if (retriable && attempt < RETRY_DELAYS.length) {
        await new Promise((r) => setTimeout(r, RETRY_DELAYS[attempt]));
        if (!(state.pending.get(p.conversationId) || []).includes(p)) return; // discarded meanwhile
        continue;
      }
      if (p.echoed) removePending(p); // the feed already showed it stored
      else updatePending(p, { status: "failed", error: explain(err) });
      return;
    }
  }
}

// -- events ----------------------------------------------------------------------------------------

/** Apply one feed event (SSE or poll) to the store, and tell the agent what needs them. */
export function applyEvent(ev) {
  if (ev.type === "ticket_created" || ev.type === "ticket_updated") {
    applyTicketEvent(ev);
    return;
  }
  if (state.panel === "team") refreshTeamSoon();
  const row = ev.conversation;
  const before = row ? state.conversations.get(row.id) : null;
  if (row) upsertConversation(row);
  if (ev.type === "message_created" && ev.message) {
    const added = addMessage(ev.message);
    if (added) matchPending(ev.message);
    onNewMessage(ev.message, row);
  }
  if (ev.type === "message_updated" && ev.message) replaceMessage(ev.message);
  if (ev.type === "conversation_updated" && ev.timeline) {
    addTimeline(ev.conversation_id, ev.timeline);
    const kind = ev.timeline.kind;
    if (kind === "handoff_requested") {
      // The handoff summary is only in the detail: fetch it for a conversation already open.
      if (state.details.has(ev.conversation_id)) refreshDetail(ev.conversation_id);
      if (!before || before.status !== "queued") onNewHandoff(row || { id: ev.conversation_id });
    } else if (kind === "unclaimed") {
      // Nobody took it in time: alert everyone again, as for a new handoff.
      state.realerted.add(ev.conversation_id);
      onNewHandoff(row || state.conversations.get(ev.conversation_id) || { id: ev.conversation_id }, ev.timeline);
    } else if (kind === "team_transferred" && row && row.status === "queued" && before && before.status !== "queued") {
      onNewHandoff(row); // back in the queue, for a team
    } else if (["transferred", "escalated", "claimed"].includes(kind) && row && state.me) {
      // Someone else (or auto routing) gave me this conversation: it must not slip into Mine unnoticed.
      const tl = ev.timeline;
      const toMe = row.status === "assigned" && row.assignee === state.me.username && tl.actor !== state.me.username;
      if (toMe || (kind === "claimed" && tl.detail && tl.detail.auto && row.assignee === state.me.username)) onAssignedToMe(row, tl);
    }
  }
  changed("title");
}

/** A reply that arrived through the feed before its own POST answered: show it once. */
function matchPending(msg) {
  if (msg.role !== "agent" && msg.role !== "note") return;
  if (!state.me || msg.author !== state.me.username) return;
  const kind = msg.role === "note" ? "note" : "reply";
  const list = state.pending.get(msg.conversation_id) || [];
  const p = list.find((x) => x.kind === kind && x.status === "sending" && x.text.trim() === msg.text);
  if (p) updatePending(p, { echoed: true });
}

function onNewMessage(msg, row) {
  const watching = state.selectedId === msg.conversation_id && document.visibilityState === "visible";
  // What I said myself (a reply, a note, "Sarah joined the chat") is never unread for me.
  const mine = msg.author && state.me && msg.author === state.me.username;
  const caughtUp = row && state.seen[row.id] === (row.message_count || 0) - 1;
  if (watching || (mine && caughtUp)) markSeen(msg.conversation_id);
  if (msg.role !== "visitor" || !row) return;
  const assignedToMe = row.status === "assigned" && row.assignee === state.me.username;
  if (assignedToMe && !(watching && document.hasFocus())) {
    chime("message");
    desktopNotify(`${row.visitor_label}`, msg.text.slice(0, 140), `msg-${row.id}`, () => openConversation(row.id));
  }
}

function onNewHandoff(row, unclaimed = null) {
  if (row.status !== "queued") return;
  chime("handoff");
  const reason = reasonLabel(row.reason);
  const who = row.visitor_label || "a visitor";
  const waited = unclaimed && unclaimed.detail && unclaimed.detail.waited_s;
  desktopNotify(
    unclaimed ? `Still waiting: ${who}` : `New conversation: ${who}`,
    unclaimed
      ? `Nobody has taken it${waited ? ` for ${duration(waited)}` : ""}. The visitor was offered to leave a message.`
      : [reason, row.headline].filter(Boolean).join(" — ") || "A visitor is waiting for a person.",
    `handoff-${row.id}`,
    () => openConversation(row.id),
  );
  titleAlert(unclaimed ? `Still waiting: ${who}` : `New: ${who}`);
}

function onAssignedToMe(row, tl) {
  const d = tl.detail || {};
  const by = d.actor_name || tl.actor;
  const what = tl.kind === "escalated" ? `${by} escalated it to you` : tl.kind === "transferred" ? `${by} transferred it to you` : "Assigned to you by routing";
  chime("handoff");
  desktopNotify(`${row.visitor_label || "A visitor"}: ${what}`, d.note || row.headline || "", `assigned-${row.id}`, () => openConversation(row.id));
  titleAlert(`For you: ${row.visitor_label || "a visitor"}`);
  if (state.selectedId !== row.id) flash(`${row.visitor_label || "A conversation"}: ${what}.`, "info", 6000);
}

function applyTicketEvent(ev) {
  const t = ev.ticket;
  if (!t) return;
  const known = state.tickets.has(t.id);
  // A "done" ticket is only kept when the done list was loaded (it is sorted among those).
  if (t.status === "open" || state.loadedTickets.has("done") || known) upsertTicket(t);
  // Its conversation's timeline gained a "ticket_created" entry: refresh an open copy.
  if (ev.type === "ticket_created" && t.conversation_id && state.details.has(t.conversation_id)) refreshDetail(t.conversation_id);
  if (ev.type === "ticket_created" && !known && t.status === "open") {
    chime("handoff");
    desktopNotify(
      `New ticket: ${t.email || t.visitor_label || "a visitor"}`,
      [whyLabel(t.why), t.issue].filter(Boolean).join(" — ").slice(0, 160),
      `ticket-${t.id}`,
      () => openTicket(t.id),
    );
    titleAlert(`New ticket: ${t.email || "offline message"}`);
  }
  changed("title");
}

let teamTimer = null;
function refreshTeamSoon() {
  if (teamTimer) return;
  teamTimer = setTimeout(() => {
    teamTimer = null;
    refreshTeam();
  }, 600);
}

/** "(N) Inbox": visitors waiting for anyone, my conversations with unread messages, and open
 * tickets nobody here has looked at yet. */
export function updateTitle() {
  let n = 0;
  for (const row of state.conversations.values()) {
    if (row.status === "queued") n += 1;
    else if (row.status === "assigned" && row.assignee === state.me?.username && (unreadOf(row) || 0) > 0) n += 1;
  }
  for (const t of state.tickets.values()) if (t.status === "open" && !state.seenTickets.has(t.id)) n += 1;
  setTitleCount(n);
}
