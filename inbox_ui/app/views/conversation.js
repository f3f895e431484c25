// The middle column: who the visitor is and what state the conversation is in, the actions
// (assign, hand back, resolve), the transcript and the reply box.

import { h, mount, icon } from "../lib/dom.js";
import { state } from "../lib/store.js";
import { claim } from "../lib/actions.js";
import { initials, hueOf, reasonLabel, duration, nowSec } from "../lib/format.js";
import { createTranscript } from "./transcript.js";
import { createComposer } from "./composer.js";
import { openHandback, openResolve, openSaveCanned, openTransfer, openEscalate, SHORTCUTS } from "./dialogs.js";

/** Transfer: the assignee or a supervisor of an assigned conversation; a supervisor can also send
 * a waiting one to another team's queue. */
export function canTransfer(row) {
  const me = state.me;
  if (!me || !row) return false;
  if (row.status === "assigned") return row.assignee === me.username || me.role === "supervisor";
  return row.status === "queued" && me.role === "supervisor";
}

/** Escalate to a supervisor: the assignee, or anyone while it waits (not a supervisor: they are
 * the ones it would go to). */
export function canEscalate(row) {
  const me = state.me;
  if (!me || !row || me.role === "supervisor") return false;
  return (row.status === "assigned" && row.assignee === me.username) || row.status === "queued";
}

/** On narrow screens the details panel is a drawer; this opens and closes it. */
export function toggleDetails() {
  document.getElementById("root").classList.toggle("details-open");
}

export function createConversation() {
  const head = h("div", { class: "conv-head" });
  const transcript = createTranscript();
  const composer = createComposer({ onSaveCanned: (text) => openSaveCanned(text) });
  const empty = h("div", { class: "conv-empty" });
  const body = h("div", { class: "conv-body" }, head, transcript.el, composer.el);
  const el = h("main", { class: "conversation" }, empty, body);

  function renderEmpty() {
    mount(
      empty,
      h("div", { class: "conv-empty-inner" },
        icon("inbox", "big"),
        h("h2", null, "Pick a conversation"),
        h("p", null, "Press ", h("kbd", null, "j"), " to open the first one in the list, or ", h("kbd", null, "?"), " to see every shortcut."),
        h("dl", { class: "shortcut-list compact" }, SHORTCUTS.slice(0, 6).flatMap(([keys, what]) => [
          h("dt", null, keys), h("dd", null, what)]))),
    );
  }

  function permissions(row) {
    const me = state.me;
    const mine = row.status === "assigned" && row.assignee === me.username;
    const open = row.status === "queued" || row.status === "assigned";
    const canClose = open && (row.status === "queued" || mine || me.role === "supervisor");
    return { mine, open, canClose, canClaim: row.status === "queued" };
  }

  function renderHead() {
    const row = state.conversations.get(state.selectedId);
    if (!row) return mount(head);
    const detail = state.details.get(row.id);
    const custom = (detail && detail.metadata && detail.metadata.customData) || {};
    const vip = String(custom.tier || "").toLowerCase() === "vip";
    const p = permissions(row);
    const headline = detail && detail.handoff && detail.handoff.summary && detail.handoff.summary.headline;

    let status;
    if (row.status === "queued") {
      status = h("span", { class: "chip chip-queued" }, "Waiting ", h("span", { dataset: { since: row.queued_at || "" }, class: "chip-clock" }, row.queued_at ? duration(nowSec() - row.queued_at) : ""));
    } else if (row.status === "assigned") {
      status = h("span", { class: ["chip chip-assigned", p.mine && "is-me"] }, p.mine ? "Assigned to you" : `Assigned to ${row.assignee_name || row.assignee}`);
    } else if (row.status === "resolved") {
      status = h("span", { class: "chip chip-resolved" }, "Resolved");
    } else {
      status = h("span", { class: "chip chip-bot" }, "With the bot");
    }

    mount(
      head,
      h("span", { class: "avatar avatar-lg", attrs: { style: `--hue:${hueOf(row.id)}`, "aria-hidden": "true" } }, initials(row.visitor_label)),
      h("div", { class: "conv-title" },
        h("div", { class: "conv-title-line" },
          h("h2", null, row.visitor_label),
          vip ? h("span", { class: "badge badge-vip" }, "VIP") : null),
        h("div", { class: "conv-sub" },
          status,
          h("span", { class: "conv-headline" }, headline || (row.reason ? reasonLabel(row.reason) : "")))),
      h("div", { class: "conv-actions" },
        p.canClaim
          ? h("button", { class: "btn btn-primary", type: "button", title: "Assign to me (A)", dataset: { action: "claim" }, on: { click: () => claim(row.id) } }, icon("user"), h("span", { class: "label" }, "Assign to me"))
          : null,
        canTransfer(row)
          ? h("button", { class: "btn", type: "button", title: "Transfer to a person or a team (T)", dataset: { action: "transfer" }, on: { click: () => openTransfer(row.id) } }, icon("transfer"), h("span", { class: "label" }, "Transfer"))
          : null,
        canEscalate(row)
          ? h("button", { class: "btn", type: "button", title: "Escalate to a supervisor (S)", dataset: { action: "escalate" }, on: { click: () => openEscalate(row.id) } }, icon("escalate"), h("span", { class: "label" }, "Escalate"))
          : null,
        p.canClose
          ? h("button", { class: "btn", type: "button", title: "Hand back to the bot (H)", dataset: { action: "handback" }, on: { click: () => openHandback(row.id) } }, icon("back"), h("span", { class: "label" }, "Hand back"))
          : null,
        p.canClose
          ? h("button", { class: "btn", type: "button", title: "Resolve (E)", dataset: { action: "resolve" }, on: { click: () => openResolve(row.id) } }, icon("check"), h("span", { class: "label" }, "Resolve"))
          : null,
        h("button", {
          class: "btn details-toggle", type: "button", title: "Summary and details (I)",
          attrs: { "aria-label": "Summary and details" }, on: { click: toggleDetails },
        }, icon("info"))),
    );
  }

  function tick() {
    const clock = head.querySelector("[data-since]");
    if (clock && clock.dataset.since) clock.textContent = duration(nowSec() - Number(clock.dataset.since));
  }
  setInterval(tick, 1000);

  function render(parts) {
    const has = Boolean(state.selectedId);
    empty.hidden = has;
    body.hidden = !has;
    if (!has) {
      renderEmpty();
      return;
    }
    if (!parts || parts.has("detail") || parts.has("selection") || parts.has("list")) renderHead();
    if (!parts || parts.has("transcript") || parts.has("selection")) transcript.render();
    composer.render();
  }

  return { el, render, composer };
}
