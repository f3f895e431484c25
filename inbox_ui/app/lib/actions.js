// What an agent can do, each as one function: views and keyboard shortcuts call these, these call
// the API and update the store. Errors become a flash message an agent can act on.

import { api, ApiError } from "./api.js";
import {
  state, changed, setDetail, upsertConversation, addMessage, addTimeline, addPending, updatePending,
  removePending, markSeen, rowsOf, flash, unreadOf,
} from "./store.js";
import { chime, desktopNotify, setTitleCount } from "./notify.js";
import { reasonLabel } from "./format.js";

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
  if (state.view === view) return;
  state.view = view;
  changed("list", "tabs");
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
  state.selectedId = id;
  state.focusComposer = focus;
  history.replaceState(null, "", `#/c/${encodeURIComponent(id)}`);
  markSeen(id);
  changed("selection", "detail", "transcript", "list");
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
  const row = ev.conversation;
  const before = row ? state.conversations.get(row.id) : null;
  if (row) upsertConversation(row);
  if (ev.type === "message_created" && ev.message) {
    const added = addMessage(ev.message);
    if (added) matchPending(ev.message);
    onNewMessage(ev.message, row);
  }
  if (ev.type === "conversation_updated" && ev.timeline) {
    addTimeline(ev.conversation_id, ev.timeline);
    const kind = ev.timeline.kind;
    if (kind === "handoff_requested") {
      // The handoff summary is only in the detail: fetch it for a conversation already open.
      if (state.details.has(ev.conversation_id)) refreshDetail(ev.conversation_id);
      if (!before || before.status !== "queued") onNewHandoff(row || { id: ev.conversation_id });
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

function onNewHandoff(row) {
  if (row.status !== "queued") return;
  chime("handoff");
  const reason = reasonLabel(row.reason);
  desktopNotify(
    `New conversation: ${row.visitor_label || "a visitor"}`,
    [reason, row.headline].filter(Boolean).join(" — ") || "A visitor is waiting for a person.",
    `handoff-${row.id}`,
    () => openConversation(row.id),
  );
}

/** "(N) Inbox": visitors waiting for anyone, plus my conversations with unread messages. */
export function updateTitle() {
  let n = 0;
  for (const row of state.conversations.values()) {
    if (row.status === "queued") n += 1;
    else if (row.status === "assigned" && row.assignee === state.me?.username && (unreadOf(row) || 0) > 0) n += 1;
  }
  setTitleCount(n);
}
