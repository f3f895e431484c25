// The transcript of one conversation: visitor, bot, agent, internal-note and system turns, each
// clearly distinct, plus this agent's unconfirmed sends. Elements are keyed (message id, or client
// id for a pending send) and reused, so new messages append without disturbing the agent's text
// selection or scroll position.

import { h, mount, icon } from "../lib/dom.js";
import { state, pendingOf } from "../lib/store.js";
import { retry, discard } from "../lib/actions.js";
import { clock, dayLabel, fullTime, intentOf, percent, sentimentOf } from "../lib/format.js";

const GROUP_GAP_S = 120;

/** `current()` says which conversation to show: the selected one, or (Tickets) a ticket's. */
export function createTranscript({ current = () => state.selectedId, className = "transcript", label = "Conversation transcript" } = {}) {
  const list = h("div", { class: "transcript-inner" });
  const jump = h("button", { class: "jump", type: "button", hidden: true }, "New messages ↓");
  const el = h("div", { class: className, attrs: { role: "log", "aria-live": "polite", "aria-label": label } }, list);
  const wrap = h("div", { class: "transcript-wrap" }, el, jump);
  const cache = new Map(); // key -> {sig, el}
  let shownId = null;
  let lastCount = 0;

  let atEnd = true; // was the agent reading the newest messages before the last change?
  jump.addEventListener("click", () => scrollToEnd(true));
  el.addEventListener("scroll", () => {
    atEnd = nearEnd();
    if (atEnd) jump.hidden = true;
  });
  // The composer grows and shrinks (banner, multi-line drafts): keep the newest message in view.
  new ResizeObserver(() => {
    if (atEnd) el.scrollTop = el.scrollHeight;
  }).observe(el);

  function nearEnd() {
    return el.scrollHeight - el.scrollTop - el.clientHeight < 80;
  }

  function scrollToEnd(smooth = false) {
    el.scrollTo({ top: el.scrollHeight, behavior: smooth ? "smooth" : "auto" });
    atEnd = true;
    jump.hidden = true;
  }

  function render() {
    const id = current();
    const detail = id ? state.details.get(id) : null;
    const switched = id !== shownId;
    if (switched) {
      cache.clear();
      list.replaceChildren();
      shownId = id;
      lastCount = 0;
    }
    if (!detail) {
      if (id && state.loading.has(id)) mount(list, h("div", { class: "transcript-loading" }, "Loading conversation…"));
      return;
    }
    const stick = switched || nearEnd();
    const items = build(detail);
    const wanted = [];
    const keep = new Set();
    for (const item of items) {
      let entry = cache.get(item.key);
      if (!entry || entry.sig !== item.sig) {
        entry = { sig: item.sig, el: item.make() };
        cache.set(item.key, entry);
      }
      keep.add(item.key);
      wanted.push(entry.el);
    }
    for (const key of [...cache.keys()]) if (!keep.has(key)) cache.delete(key);
    // Reconcile children in order, moving only what is out of place.
    if (list.firstChild && !list.firstChild.dataset?.key) list.replaceChildren();
    wanted.forEach((node, i) => {
      const at = list.children[i];
      if (at !== node) list.insertBefore(node, at || null);
    });
    while (list.children.length > wanted.length) list.lastChild.remove();

    const grew = items.length > lastCount;
    lastCount = items.length;
    const ownNew = items.length && items[items.length - 1].own;
    if (stick || (grew && ownNew)) scrollToEnd();
    else if (grew) jump.hidden = false;
  }

  return { el: wrap, render, scrollToEnd };
}

/** The ordered list of things to show, each with a key, a signature (re-render when it changes)
 * and a factory. */
function build(detail) {
  const items = [];
  const me = state.me?.username;
  let prev = null;
  let lastDay = null;
  let lastIntent = null;
  const push = (ts, item) => {
    const day = new Date(ts * 1000).toDateString();
    if (day !== lastDay) {
      lastDay = day;
      items.push({ key: `day-${day}`, sig: dayLabel(ts), make: () => h("div", { class: "day", dataset: { key: `day-${day}` } }, h("span", null, dayLabel(ts))) });
      prev = null;
    }
    items.push(item);
  };

  const buttons = new Map(); // payload -> title of every button the visitor was shown so far
  detail.messages.forEach((m, index) => {
    const continued = prev && prev.role === m.role && prev.author === m.author && m.created_at - prev.created_at < GROUP_GAP_S && m.role !== "system";
    if (m.role === "visitor") lastIntent = intentOf(m.meta);
    // A button click or the widget's opening payload arrives as "/intent": show what the
    // visitor saw (the button's title), not the payload.
    let shown = null;
    if (m.role === "visitor" && /^\/[\w.-]+(\{.*\})?$/.test(m.text.trim())) {
      const title = buttons.get(m.text.trim());
      if (title) shown = { kind: "button", text: title };
      else if (index === 0) shown = { kind: "opened", text: "Opened the chat" };
      else shown = { kind: "payload", text: m.text.trim() };
    }
    for (const r of repliesOf(m)) if (r && r.payload) buttons.set(String(r.payload).trim(), r.title || r.payload);
    const intent = m.role === "bot" ? intentOf(m.meta) || lastIntent : null;
    const key = `m-${m.id}`;
    push(m.created_at, {
      key,
      own: m.author === me && (m.role === "agent" || m.role === "note"),
      sig: `${continued ? 1 : 0}|${m.meta ? JSON.stringify(m.meta).length : 0}|${intent ? intent.name : ""}`,
      make: () => messageEl(m, { continued, intent, key, visitorLabel: detail.visitor_label, shown }),
    });
    prev = m;
  });
  for (const p of pendingOf(detail.id)) {
    if (p.echoed) continue;
    const key = `p-${p.clientId}`;
    push(p.createdAt, { key, own: true, sig: `${p.status}|${p.error || ""}`, make: () => pendingEl(p, key) });
  }
  return items;
}

function repliesOf(m) {
  if (m.role !== "bot" && m.role !== "system") return [];
  return m.payload && Array.isArray(m.payload.quick_replies) ? m.payload.quick_replies : [];
}

/** The buttons a bot or system message offered, as the visitor saw them. */
function repliesEl(replies, muted) {
  return h("div", { class: ["replies", muted && "replies-muted"], attrs: { "aria-label": "Buttons the visitor saw" } },
    replies.map((r) => h("span", { class: "reply-chip", title: r.payload ? `Sends ${r.payload}` : "" }, r.title || r.payload || "")));
}

const ROLE_LABEL = { visitor: "Visitor", bot: "Bot", agent: "Agent", note: "Internal note", system: "" };

function messageEl(m, { continued, intent, key, visitorLabel, shown }) {
  if (shown && shown.kind === "opened") {
    return h("div", { class: "msg msg-system", dataset: { key, id: m.id, role: "visitor" }, title: `${fullTime(m.created_at)}\nThe widget sent ${m.text}` },
      h("span", { class: "system-line quiet" }, `${visitorLabel || "The visitor"} opened the chat`), h("span", { class: "time" }, clock(m.created_at)));
  }
  if (m.role === "system") {
    const replies = repliesOf(m);
    const line = h("div", { class: "msg msg-system", dataset: { key, id: m.id, role: "system" }, title: fullTime(m.created_at) },
      h("span", { class: "system-line" }, m.text), h("span", { class: "time" }, clock(m.created_at)));
    if (!replies.length) return line;
    line.classList.add("with-replies");
    // The buttons the visitor was offered (e.g. Keep waiting / Leave a message), muted: not for the agent.
    return h("div", { class: "msg-system-group", dataset: { key, id: m.id, role: "system" } },
      line, repliesEl(replies, true));
  }
  const ticket = m.payload && typeof m.payload.offline_ticket === "object" ? m.payload.offline_ticket : null;
  if (ticket && !m.text) {
    return h("div", { class: "msg msg-system", dataset: { key, id: m.id, role: m.role }, title: fullTime(m.created_at) },
      h("span", { class: "system-line ticket-line" }, icon("ticket"), `Left a message for ${ticket.email || "the team"}: a ticket was created`),
      h("span", { class: "time" }, clock(m.created_at)));
  }
  let author = ROLE_LABEL[m.role] || m.role;
  if (m.role === "visitor") author = visitorLabel || "Visitor";
  if (m.role === "agent") author = m.author_name || m.author || "Agent";
  if (m.role === "note") author = `Internal note · ${m.author_name || m.author || ""}`;

  const tip = [fullTime(m.created_at)];
  if (intent) tip.push(`Intent: ${intent.name}${intent.confidence !== undefined && intent.confidence !== null ? ` (${percent(intent.confidence)} confidence)` : ""}`);
  if (m.meta && m.meta.utter_action) tip.push(`Response: ${m.meta.utter_action}`);
  const sentiment = m.role === "visitor" && m.meta ? sentimentOf(m.meta.sentiment) : null;
  if (sentiment) tip.push(`Sentiment: ${sentiment.label}`);

  const replies = repliesOf(m);
  return h(
    "div",
    {
      class: ["msg", `msg-${m.role}`, continued && "continued"],
      dataset: { key, id: m.id, role: m.role },
      title: tip.join("\n"),
    },
    continued ? null : h("div", { class: "msg-head" },
      m.role === "note" ? icon("note", "note-icon") : null,
      h("span", { class: "author" }, author),
      m.role === "bot" && intent ? h("span", { class: "intent" }, intent.name) : null,
      h("span", { class: "time" }, clock(m.created_at))),
    shown && shown.kind === "button"
      ? h("div", { class: "bubble clicked", title: `Clicked the button “${shown.text}” (sent ${m.text})` }, h("span", { class: "clicked-tag" }, "Clicked"), shown.text)
      : h("div", { class: ["bubble", shown && "payload"] }, m.text || (replies.length ? "" : "(empty)")),
    replies.length ? repliesEl(replies, false) : null,
    sentiment && sentiment.level === "negative" ? h("div", { class: "sentiment-flag" }, sentiment.label) : null,
  );
}

function pendingEl(p, key) {
  const failed = p.status === "failed";
  return h(
    "div",
    { class: ["msg", p.kind === "note" ? "msg-note" : "msg-agent", "pending", failed && "failed"], dataset: { key, clientId: p.clientId } },
    h("div", { class: "msg-head" }, p.kind === "note" ? icon("note", "note-icon") : null, h("span", { class: "author" }, p.kind === "note" ? "Internal note · you" : "You"), h("span", { class: "time" }, failed ? "Not sent" : "Sending…")),
    h("div", { class: "bubble" }, p.text),
    failed
      ? h("div", { class: "send-error" },
        h("span", null, p.error || "Not sent."),
        h("button", { class: "link", type: "button", on: { click: () => retry(p) } }, "Retry"),
        h("button", { class: "link", type: "button", on: { click: () => discard(p) } }, "Discard"))
      : null,
  );
}
