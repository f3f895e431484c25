// The left column: queue tabs with counts, and the conversation rows of the current tab.
// Rows are rebuilt when the list changes (cheap: a few hundred rows at most); the wait times tick
// every second by updating only their text.

import { h, mount, icon } from "../lib/dom.js";
import { state, TABS, rowsOf, counts, unreadOf, hasDraft, pendingOf } from "../lib/store.js";
import { switchView, openConversation } from "../lib/actions.js";
import { renderTicketList } from "./tickets.js";
import { duration, ago, reasonLabel, priorityInfo, initials, hueOf, nowSec, fullTime } from "../lib/format.js";

const EMPTY = {
  unassigned: ["No one is waiting", "When the bot hands a conversation over, it appears here at once, with a sound."],
  mine: ["Nothing assigned to you", "Open a conversation under Unassigned and press A to take it."],
  open: ["No open conversations", "Conversations waiting for a person or being handled show up here."],
  resolved: ["Nothing resolved yet", "Conversations you resolve are kept here for reference."],
};

const WAIT_WARN_S = 120;
const WAIT_LATE_S = 300;

export function createQueue() {
  const tabs = h("div", { class: "tabs", attrs: { role: "tablist", "aria-label": "Queues" } });
  const list = h("div", { class: "rows", attrs: { role: "listbox", "aria-label": "Conversations" } });
  const el = h("aside", { class: "queue" }, tabs, list);

  function renderTabs() {
    const c = counts();
    mount(
      tabs,
      TABS.map((t) => {
        const active = state.view === t.view && !state.panel;
        const n = c[t.view];
        return h(
          "button",
          {
            class: ["tab", active && "active"],
            type: "button",
            title: `${t.label}${t.view === "tickets" ? `: ${n} open` : t.view !== "resolved" ? `: ${n}` : ""} (key ${t.key})`,
            dataset: { view: t.view },
            attrs: { role: "tab", "aria-selected": active ? "true" : "false", "aria-keyshortcuts": t.key },
            on: { click: () => switchView(t.view) },
          },
          // Five tabs in a 300 px column: Tickets is an icon (and its count), "All open" reads
          // "Open", and "Resolved" reads "Done" when the column is at its narrowest.
          t.icon ? icon(t.icon) : null,
          h("span", { class: t.icon ? "sr-only" : "tab-label" }, t.label),
          t.short ? h("span", { class: "tab-label-short" }, t.short) : null,
          // Counts on the tabs an agent acts on; All open shows its count on hover (space is short).
          n > 0 && (t.view === "unassigned" || t.view === "mine" || t.view === "tickets")
            ? h("span", {
              class: ["count", (t.view === "unassigned" || (t.view === "tickets" && c.ticketsUnseen > 0)) && "count-hot"],
            }, n > 99 ? "99+" : String(n))
            : null,
        );
      }),
    );
  }

  function renderRows() {
    list.setAttribute("aria-label", state.view === "tickets" ? "Tickets" : "Conversations");
    if (state.view === "tickets") return renderTicketList(list);
    const rows = rowsOf(state.view);
    if (!rows.length) {
      const [title, text] = EMPTY[state.view];
      const loading = !state.loadedViews.has(state.view);
      mount(list, h("div", { class: "empty-list" }, h("strong", null, loading ? "Loading…" : title), loading ? null : h("p", null, text)));
      return;
    }
    mount(list, rows.map(rowEl));
    const selected = list.querySelector(".row.selected");
    if (selected) selected.scrollIntoView({ block: "nearest" });
  }

  function rowEl(row) {
    const selected = row.id === state.selectedId && !state.panel;
    const unread = selected ? 0 : unreadOf(row);
    const prio = priorityInfo(row.priority);
    const last = row.last_message;
    const who = last ? previewPrefix(last) : "";
    const mineOther = row.status === "assigned" && row.assignee !== state.me?.username;
    return h(
      "div",
      {
        class: ["row", selected && "selected", unread === null && row.status === "queued" && "is-new", unread > 0 && "has-unread"],
        dataset: { id: row.id, status: row.status },
        attrs: { role: "option", "aria-selected": selected ? "true" : "false", tabindex: "-1" },
        on: { click: () => openConversation(row.id) },
      },
      h(
        "div",
        { class: "row-top" },
        h("span", { class: "avatar", attrs: { style: `--hue:${hueOf(row.id)}`, "aria-hidden": "true" } }, initials(row.visitor_label)),
        h("span", { class: "row-name" }, row.visitor_label),
        timeEl(row),
      ),
      row.headline ? h("div", { class: "row-subject" }, row.headline) : null,
      h(
        "div",
        { class: "row-preview" },
        who ? h("span", { class: "who" }, who) : null,
        last ? last.text : row.headline || "No messages yet",
      ),
      h(
        "div",
        { class: "row-meta" },
        state.realerted.has(row.id) && row.status === "queued" ? h("span", { class: "badge badge-alert", title: "Nobody took it in time; the visitor was offered to leave a message" }, "Still waiting") : null,
        row.reason ? h("span", { class: "badge badge-reason" }, reasonLabel(row.reason)) : null,
        prio ? h("span", { class: `badge badge-prio prio-${prio.level}`, title: `Priority ${prio.n}` }, prio.label) : null,
        row.status === "assigned" && state.view !== "mine"
          ? h("span", { class: ["badge badge-assignee", !mineOther && "is-me"] }, mineOther ? row.assignee_name || row.assignee : "You")
          : null,
        pendingOf(row.id).some((p) => p.status === "failed") ? h("span", { class: "failed-flag" }, "Not sent") : null,
        hasDraft(row.id) && !selected ? h("span", { class: "draft-flag" }, "Draft") : null,
        h("span", { class: "spacer" }),
        unread > 0 ? h("span", { class: "unread", title: `${unread} new message${unread > 1 ? "s" : ""}` }, String(unread)) : null,
        unread === null && row.status === "queued" ? h("span", { class: "new-dot", title: "Not opened yet" }, "New") : null,
      ),
    );
  }

  function previewPrefix(last) {
    switch (last.role) {
      case "bot":
        return "Bot: ";
      case "agent":
        return "Agent: ";
      case "system":
        return "";
      default:
        return "";
    }
  }

  function timeEl(row) {
    if (row.status === "queued" && row.queued_at) {
      return h("span", { class: "row-time waiting", title: `Waiting since ${fullTime(row.queued_at)}`, dataset: { since: row.queued_at } }, "");
    }
    const last = row.last_message;
    if (row.status === "assigned" && last && last.role === "visitor") {
      return h("span", { class: "row-time waiting", title: `Visitor waiting for a reply since ${fullTime(last.created_at)}`, dataset: { since: last.created_at } }, "");
    }
    const t = (last && last.created_at) || row.updated_at;
    return h("span", { class: "row-time", title: t ? fullTime(t) : "" }, t ? ago(t) : "");
  }

  /** Every second: update the wait clocks (text and colour) without rebuilding rows. */
  function tick() {
    const now = nowSec();
    for (const span of list.querySelectorAll("[data-since]")) {
      const waited = now - Number(span.dataset.since);
      span.textContent = duration(waited);
      span.classList.toggle("warn", waited >= WAIT_WARN_S && waited < WAIT_LATE_S);
      span.classList.toggle("late", waited >= WAIT_LATE_S);
    }
  }

  function render() {
    renderTabs();
    renderRows();
    tick();
  }

  setInterval(tick, 1000);
  render();
  return { el, render };
}
