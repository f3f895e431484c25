// Offline tickets: what a visitor left when nobody could take the conversation (no agent
// available, outside hours, waited too long, or they asked to). The Tickets tab lists them in the
// queue column; an open ticket fills the conversation area: the ticket itself, the conversation
// that led to it (read-only), and on the right what the bot knew when it handed over.

import { h, mount, icon } from "../lib/dom.js";
import { state, ticketRows } from "../lib/store.js";
import { openTicket, setTicketFilter } from "../lib/actions.js";
import { ago, fullTime, reasonLabel, whyLabel, initials, hueOf, priorityInfo } from "../lib/format.js";
import { createTranscript } from "./transcript.js";
import { openCloseTicket } from "./dialogs.js";
import { toggleDetails } from "./conversation.js";
import { section, reasonSection, timelineSection } from "./details.js";

const EMPTY = {
  open: ["No open tickets", "When nobody can take a conversation, the visitor can leave an email address and their question. It shows up here, with a sound."],
  done: ["No done tickets yet", "Tickets marked done are kept here."],
};

/** The rows of the Tickets tab (inside the queue column). */
export function renderTicketList(list) {
  const rows = ticketRows();
  const filter = h("div", { class: "ticket-filter", attrs: { role: "group", "aria-label": "Which tickets" } },
    h("span", { class: "ticket-filter-title" }, "Tickets"),
    [["open", "Open"], ["done", "Done"]].map(([value, label]) =>
      h("button", {
        class: ["seg", state.ticketFilter === value && "active"], type: "button", dataset: { filter: value },
        attrs: { "aria-pressed": state.ticketFilter === value ? "true" : "false" },
        on: { click: () => setTicketFilter(value) },
      }, label)));
  if (!rows.length) {
    const loading = !state.loadedTickets.has(state.ticketFilter);
    const [title, text] = EMPTY[state.ticketFilter];
    mount(list, filter, h("div", { class: "empty-list" }, h("strong", null, loading ? "Loading…" : title), loading ? null : h("p", null, text)));
    return;
  }
  mount(list, filter, rows.map(ticketRowEl));
  const selected = list.querySelector(".row.selected");
  if (selected) selected.scrollIntoView({ block: "nearest" });
}

function ticketRowEl(t) {
  const selected = t.id === state.selectedTicketId;
  const unseen = t.status === "open" && !state.seenTickets.has(t.id);
  const prio = priorityInfo(t.priority);
  const when = t.status === "done" ? t.closed_at : t.created_at;
  return h(
    "div",
    {
      class: ["row", "ticket-row", selected && "selected", unseen && "is-new"],
      dataset: { ticket: t.id, status: t.status },
      attrs: { role: "option", "aria-selected": selected ? "true" : "false", tabindex: "-1" },
      on: { click: () => openTicket(t.id) },
    },
    h("div", { class: "row-top" },
      h("span", { class: "avatar", attrs: { style: `--hue:${hueOf(t.conversation_id || t.id)}`, "aria-hidden": "true" } }, initials(t.visitor_label || t.email)),
      h("span", { class: "row-name" }, t.email || "(no email)"),
      h("span", { class: "row-time", title: when ? `${t.status === "done" ? "Done" : "Left"} ${fullTime(when)}` : "" }, when ? ago(when) : "")),
    t.visitor_label ? h("div", { class: "row-visitor" }, t.visitor_label) : null,
    h("div", { class: "row-preview ticket-issue" }, t.issue || t.headline || "No message"),
    h("div", { class: "row-meta" },
      t.why ? h("span", { class: `badge badge-why why-${t.why}` }, whyLabel(t.why)) : null,
      t.reason ? h("span", { class: "badge badge-reason", title: `Why the bot wanted a person: ${reasonLabel(t.reason)}` }, reasonLabel(t.reason)) : null,
      prio && prio.level !== "normal" && prio.level !== "low" ? h("span", { class: `badge badge-prio prio-${prio.level}` }, prio.label) : null,
      h("span", { class: "spacer" }),
      t.status === "done" ? h("span", { class: "done-by" }, t.closed_by_name ? `Done · ${t.closed_by_name}` : "Done") : null,
      unseen ? h("span", { class: "new-dot", title: "Not opened yet" }, "New") : null),
  );
}

/** The conversation area and the side panel for the selected ticket. */
export function createTicketView() {
  const head = h("div", { class: "ticket-head" }); // styled like .conv-head, not matched by it
  const card = h("div", { class: "ticket-card" });
  // Its own class (not .transcript): the conversation screen's transcript stays the only one.
  const transcript = createTranscript({
    current: () => state.tickets.get(state.selectedTicketId)?.conversation_id || null,
    className: "ticket-log", label: "The conversation that led to the ticket",
  });
  const empty = h("div", { class: "conv-empty" });
  const body = h("div", { class: "conv-body" }, head, card,
    h("div", { class: "ticket-transcript-label" }, "The conversation before the visitor left a message"),
    transcript.el);
  const main = h("main", { class: "conversation ticket-view" }, empty, body);
  const side = h("aside", { class: "details ticket-side", attrs: { "aria-label": "Ticket details" } });

  function renderEmpty() {
    const n = ticketRows("open").length;
    mount(empty, h("div", { class: "conv-empty-inner" },
      icon("ticket", "big"),
      h("h2", null, n ? `${n} open ticket${n > 1 ? "s" : ""}` : "No open tickets"),
      h("p", null, "Visitors leave an email address and their question when nobody can take the conversation. Answer by email, then mark the ticket done (", h("kbd", null, "e"), ")."),
    ));
  }

  function render() {
    const t = state.selectedTicketId !== null ? state.tickets.get(state.selectedTicketId) : null;
    empty.hidden = Boolean(t);
    body.hidden = !t;
    side.hidden = !t;
    if (!t) {
      renderEmpty();
      mount(side);
      return;
    }
    const done = t.status === "done";
    mount(head,
      h("span", { class: "avatar avatar-lg", attrs: { style: `--hue:${hueOf(t.conversation_id || t.id)}`, "aria-hidden": "true" } }, initials(t.visitor_label || t.email)),
      h("div", { class: "conv-title" },
        h("div", { class: "conv-title-line" }, h("h2", null, t.email || "(no email)")),
        h("div", { class: "conv-sub" },
          done ? h("span", { class: "chip chip-resolved" }, "Done") : h("span", { class: "chip chip-queued" }, "Open"),
          h("span", { class: "conv-headline" }, `${t.visitor_label || "A visitor"} · left ${ago(t.created_at)}`))),
      h("div", { class: "conv-actions" },
        t.email ? h("a", { class: "btn", href: `mailto:${t.email}`, title: "Write to the visitor in your mail program" }, "Email") : null,
        done ? null : h("button", { class: "btn btn-primary", type: "button", title: "Mark the ticket done (E)", dataset: { action: "close-ticket" }, on: { click: () => openCloseTicket(t.id) } }, icon("check"), h("span", { class: "label" }, "Mark done")),
        h("button", {
          class: "btn details-toggle", type: "button", title: "Summary and details (I)",
          attrs: { "aria-label": "Summary and details" }, on: { click: toggleDetails },
        }, icon("info"))));

    mount(card,
      h("div", { class: "ticket-issue-full" }, t.issue || "(no message)"),
      h("dl", { class: "kv ticket-kv" },
        h("dt", null, "Why"), h("dd", null, whyLabel(t.why) || "—"),
        h("dt", null, "Left"), h("dd", { title: fullTime(t.created_at) }, `${fullTime(t.created_at)} (${ago(t.created_at)})`),
        done ? [h("dt", null, "Done"), h("dd", null, `${t.closed_at ? fullTime(t.closed_at) : ""}${t.closed_by_name || t.closed_by ? ` by ${t.closed_by_name || t.closed_by}` : ""}`)] : null,
        done && t.note ? [h("dt", null, "Note"), h("dd", { class: "ticket-note" }, t.note)] : null));

    const detail = t.conversation_id ? state.details.get(t.conversation_id) : null;
    const summary = t.summary || {};
    const summaryText = typeof summary.text === "string" ? summary.text.trim() : "";
    mount(side,
      section("Summary",
        t.headline || summary.headline ? h("p", { class: "headline" }, t.headline || summary.headline) : null,
        summaryText ? h("p", { class: "summary-text clamped" }, summaryText) : null,
        !t.headline && !summary.headline && !summaryText ? h("p", { class: "muted" }, "The bot gave no summary.") : null),
      t.reason ? reasonSection({ reason: t.reason, priority: t.priority, team: t.team, evidence: (detail && detail.handoff && detail.handoff.evidence) || {} }) : null,
      summary.facts && Object.keys(summary.facts).length
        ? section("Key facts", h("dl", { class: "kv" }, Object.entries(summary.facts).filter(([, v]) => v !== null && v !== "").flatMap(([k, v]) => [
          h("dt", null, k.replace(/_/g, " ")), h("dd", { class: "fact" }, typeof v === "object" ? JSON.stringify(v) : String(v))])))
        : null,
      detail ? timelineSection(detail) : null,
      h("p", { class: "small muted conv-id panel", title: "Conversation id" }, t.conversation_id || ""));
    transcript.render();
  }

  return { main, side, render };
}
