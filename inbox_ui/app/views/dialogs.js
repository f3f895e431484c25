// Modal dialogs (native <dialog>: focus trap and Esc for free): hand back to the bot, resolve,
// transfer, escalate, mark a ticket done, save a reply for later, and the keyboard shortcuts.

import { h, mount } from "../lib/dom.js";
import { state, flash } from "../lib/store.js";
import { api } from "../lib/api.js";
import { handBack, resolve, explain, transfer, escalate, closeTicket } from "../lib/actions.js";
import { AVAILABILITY_LABEL } from "../lib/format.js";

/** A dialog's buttons: the Ctrl+Enter hint, Cancel (``close``) and the submit button. */
function actions(close, submit) {
  return h("div", { class: "dialog-actions" },
    h("span", { class: "muted small hint" }, "Ctrl+Enter"),
    h("button", { class: "btn", type: "button", on: { click: close } }, "Cancel"),
    submit);
}

function dialog(title, ...body) {
  const el = h("dialog", { class: "dialog", attrs: { "aria-label": title } });
  mount(el, h("h2", null, title), ...body);
  document.body.append(el);
  el.addEventListener("close", () => el.remove());
  el.addEventListener("click", (e) => {
    if (e.target === el) el.close(); // a click on the backdrop
  });
  // Ctrl/Cmd+Enter confirms from anywhere in the dialog; a plain Enter in a text box is a new line.
  el.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) {
      const form = el.querySelector("form");
      if (form) {
        e.preventDefault();
        form.requestSubmit();
      }
    }
  });
  el.showModal();
  return el;
}

const OUTCOME_CHOICES = [
  ["resolved", "Resolved", "The problem is solved. The bot says goodbye and stays available."],
  ["follow_up", "Needs follow-up", "Someone has to come back to it later (e.g. a refund to check). The bot tells the visitor."],
  ["continue", "Bot continues", "The visitor still has questions the bot can answer."],
];

/** Hand back: pick an outcome, add an optional note and facts the bot should know. */
export function openHandback(id) {
  const detail = state.details.get(id);
  const known = (detail && detail.handoff && detail.handoff.summary && detail.handoff.summary.facts) || {};
  const factRows = h("div", { class: "facts" });
  const note = h("textarea", { rows: 3, name: "note", placeholder: "Optional: what you did, for the bot and the next agent", attrs: { "aria-label": "Note" } });
  const error = h("p", { class: "form-error", attrs: { role: "alert" } });
  const submit = h("button", { class: "btn btn-primary", type: "submit" }, "Hand back");

  function addFact(key = "", value = "") {
    const k = h("input", { type: "text", value: key, placeholder: "name, e.g. order_number", attrs: { "aria-label": "Fact name" } });
    const v = h("input", { type: "text", value: String(value), placeholder: "value", attrs: { "aria-label": "Fact value" } });
    const row = h("div", { class: "fact-row" }, k, v,
      h("button", { class: "icon-btn small", type: "button", title: "Remove", attrs: { "aria-label": "Remove fact" }, on: { click: () => row.remove() } }, "×"));
    factRows.append(row);
    return k;
  }
  for (const [k, v] of Object.entries(known)) if (typeof v !== "object") addFact(k, v);

  const form = h(
    "form",
    { class: "form" },
    h("fieldset", { class: "outcomes" },
      h("legend", null, "How did it end?"),
      OUTCOME_CHOICES.map(([value, label, help], i) =>
        h("label", { class: "choice" },
          h("input", { type: "radio", name: "outcome", value, checked: i === 0 }),
          h("span", null, h("strong", null, label), h("small", null, help))))),
    h("label", { class: "field" }, h("span", null, "Note"), note),
    h("div", { class: "field" },
      h("span", null, "Facts for the bot ", h("small", { class: "muted" }, "(it can use them in its next answers)")),
      factRows,
      h("button", { class: "link", type: "button", on: { click: () => addFact().focus() } }, "+ Add a fact")),
    error,
    actions(() => dlg.close(), submit),
  );
  const dlg = dialog("Hand back to the bot", h("p", { class: "muted" }, "The visitor is told that the assistant is back; the bot picks up from here."), form);

  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const outcome = form.querySelector("input[name=outcome]:checked").value;
    const facts = {};
    for (const row of factRows.querySelectorAll(".fact-row")) {
      const [k, v] = row.querySelectorAll("input");
      const key = k.value.trim().replace(/\s+/g, "_");
      if (key && v.value.trim()) facts[key] = v.value.trim();
    }
    submit.disabled = true;
    error.textContent = "";
    try {
      await handBack(id, { outcome, note: note.value.trim(), facts });
      dlg.close();
    } catch (err) {
      error.textContent = explain(err);
      submit.disabled = false;
    }
  });
  // The focus lands in the note: keys typed by accident go there, never into a submit.
  note.focus();
}

/** Resolve, with an optional note. Irreversible for the agent, so it asks first. */
export function openResolve(id) {
  noteDialog({
    title: "Resolve the conversation",
    intro: "It moves to Resolved and the bot looks after the visitor again. A new request for a person opens it again.",
    placeholder: "Optional: how it was solved, for the record",
    label: "Resolve",
    act: (note) => resolve(id, note),
  });
}

/** A dialog with an optional note and one action. ``act(note)`` resolves to an error to show, or
 * null when done (the dialog closes). */
function noteDialog({ title, intro, placeholder, label, act }) {
  const note = h("textarea", { rows: 3, name: "note", placeholder, attrs: { "aria-label": "Note" } });
  const error = h("p", { class: "form-error", attrs: { role: "alert" } });
  const submit = h("button", { class: "btn btn-primary", type: "submit" }, label);
  const form = h(
    "form",
    { class: "form" },
    h("label", { class: "field" }, h("span", null, "Note"), note),
    error,
    actions(() => dlg.close(), submit),
  );
  const dlg = dialog(title, h("p", { class: "muted" }, intro), form);
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    submit.disabled = true;
    error.textContent = "";
    const problem = await act(note.value.trim());
    if (problem) {
      error.textContent = problem;
      submit.disabled = false;
    } else {
      dlg.close();
    }
  });
  note.focus();
}

/** Transfer to another agent or to a team's queue, with a note for whoever takes it. */
export function openTransfer(id) {
  const row = state.conversations.get(id);
  const list = h("div", { class: "targets", attrs: { role: "radiogroup", "aria-label": "Transfer to" } },
    h("p", { class: "muted small" }, "Loading who is there…"));
  const note = h("textarea", { rows: 3, name: "note", placeholder: "Optional: what they need to know (shown on the timeline and as an internal note)", attrs: { "aria-label": "Note" } });
  const error = h("p", { class: "form-error", attrs: { role: "alert" } });
  const submit = h("button", { class: "btn btn-primary", type: "submit", disabled: true }, "Transfer");
  const form = h(
    "form",
    { class: "form" },
    list,
    h("label", { class: "field" }, h("span", null, "Note"), note),
    error,
    actions(() => dlg.close(), submit),
  );
  const dlg = dialog("Transfer the conversation",
    h("p", { class: "muted" }, "To a person: it is assigned to them at once and the visitor is told who joined. To a team: it goes back to the queue for that team."),
    form);
  dlg.classList.add("dialog-transfer");

  function option(value, label, meta, { availability, disabled = false } = {}) {
    return h("label", { class: ["target", disabled && "is-disabled"] },
      h("input", { type: "radio", name: "target", value, disabled, on: { change: () => (submit.disabled = false) } }),
      availability ? h("span", { class: `avail-dot avail-${availability}`, title: AVAILABILITY_LABEL[availability] || availability }) : h("span", { class: "team-mark", attrs: { "aria-hidden": "true" } }, "#"),
      h("span", { class: "target-name" }, label),
      h("span", { class: "target-meta" }, meta));
  }

  const waiting = row && row.status === "queued"; // a waiting conversation moves to a team's queue only
  api.directory().then((res) => {
    const order = { available: 0, busy: 1, away: 2 };
    const agents = waiting ? [] : (res.agents || [])
      .filter((a) => a.username !== state.me.username && a.username !== row?.assignee)
      .sort((a, b) => (order[a.availability] ?? 3) - (order[b.availability] ?? 3) || a.display_name.localeCompare(b.display_name));
    const teams = res.teams || [];
    mount(list,
      waiting ? null : h("div", { class: "target-group" }, "People"),
      waiting ? h("p", { class: "muted small" }, "It is waiting in the queue: you can send it to another team's queue.") : agents.length
        ? agents.map((a) => option(`agent:${a.username}`, a.display_name,
          [AVAILABILITY_LABEL[a.availability] || a.availability, a.role === "supervisor" ? "supervisor" : null, (a.teams || []).join(", ")].filter(Boolean).join(" · "),
          { availability: a.availability }))
        : h("p", { class: "muted small" }, "Nobody else has an account."),
      teams.length ? h("div", { class: "target-group" }, "Teams") : null,
      teams.map((t) => option(`team:${t.name}`, t.name, `${t.available} of ${t.agents} available`)),
      waiting && !teams.length ? h("p", { class: "muted small" }, "There are no teams yet (a supervisor sets them).") : null);
    const first = list.querySelector("input[value^='agent:']:not(:disabled)") || list.querySelector("input");
    if (first) first.focus();
  }, (err) => {
    mount(list, h("p", { class: "form-error" }, explain(err)));
  });

  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const picked = form.querySelector("input[name=target]:checked");
    if (!picked) {
      error.textContent = "Choose a person or a team.";
      return;
    }
    const [kind, name] = [picked.value.slice(0, picked.value.indexOf(":")), picked.value.slice(picked.value.indexOf(":") + 1)];
    submit.disabled = true;
    error.textContent = "";
    try {
      await transfer(id, kind === "agent" ? { to: name, note: note.value.trim() } : { team: name, note: note.value.trim() });
      dlg.close();
    } catch (err) {
      error.textContent = explain(err);
      submit.disabled = false;
    }
  });
}

/** Escalate to a supervisor, with a note saying why. */
export function openEscalate(id) {
  noteDialog({
    title: "Escalate to a supervisor",
    intro: "The conversation is assigned to the available supervisor with the fewest conversations. The visitor is told who joined.",
    placeholder: "Optional: why it needs a supervisor",
    label: "Escalate",
    act: async (note) => {
      try {
        await escalate(id, note);
        return null;
      } catch (err) {
        return explain(err);
      }
    },
  });
}

/** Mark an offline ticket done, with an optional note (e.g. "replied by email"). */
export function openCloseTicket(id) {
  const t = state.tickets.get(id);
  noteDialog({
    title: "Mark the ticket done",
    intro: t && t.email ? `Answer ${t.email} by email first; this only records that it is handled.` : "This records that the ticket is handled.",
    placeholder: "Optional: what you did, e.g. “Replied by email with the return label”",
    label: "Mark done",
    act: (note) => closeTicket(id, note),
  });
}

/** Save a reply to insert later by typing /shortcut. */
export function openSaveCanned(text, onSaved) {
  const suggestion = (text.split(/\s+/).slice(0, 2).join("-").toLowerCase().replace(/[^a-z0-9_-]/g, "") || "").slice(0, 24);
  const shortcut = h("input", { type: "text", value: suggestion, required: true, maxLength: 64, attrs: { pattern: "[A-Za-z0-9_\\-]+", "aria-label": "Shortcut" } });
  const body = h("textarea", { rows: 5, value: text, required: true, attrs: { "aria-label": "Text" } });
  const error = h("p", { class: "form-error", attrs: { role: "alert" } });
  const form = h(
    "form",
    { class: "form" },
    h("label", { class: "field" }, h("span", null, "Shortcut ", h("small", { class: "muted" }, "letters, digits, - and _")), h("div", { class: "slash-input" }, h("span", null, "/"), shortcut)),
    h("label", { class: "field" }, h("span", null, "Text"), body),
    error,
    h("div", { class: "dialog-actions" },
      h("button", { class: "btn", type: "button", on: { click: () => dlg.close() } }, "Cancel"),
      h("button", { class: "btn btn-primary", type: "submit" }, "Save")),
  );
  const dlg = dialog("Save a reply", h("p", { class: "muted" }, "Every agent can insert it by typing / and its shortcut in the reply box."), form);
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    try {
      const item = await api.addCanned(shortcut.value.trim().replace(/^\//, ""), body.value.trim());
      state.canned = [...state.canned.filter((c) => c.id !== item.id), item];
      flash(`Saved as /${item.shortcut}.`, "success", 3000);
      dlg.close();
      onSaved && onSaved(item);
    } catch (err) {
      error.textContent = explain(err);
    }
  });
  (text ? shortcut : body).focus();
}

export const SHORTCUTS = [
  ["j / k", "Next / previous conversation"],
  ["Alt + ↓ / ↑", "Next / previous conversation (also while typing)"],
  ["1 2 3 4 5", "Unassigned · Mine · All open · Resolved · Tickets"],
  ["a", "Assign to me"],
  ["r", "Reply"],
  ["n", "Internal note"],
  ["/", "Insert a saved reply"],
  ["Enter", "Send (Shift + Enter: new line)"],
  ["h", "Hand back to the bot"],
  ["t", "Transfer to a person or a team"],
  ["s", "Escalate to a supervisor"],
  ["e", "Resolve · in Tickets: mark the ticket done"],
  ["i", "Show or hide the details (narrow screens)"],
  ["v", "Team view: agents and the queue (supervisors)"],
  ["Ctrl + Enter", "Confirm a dialog"],
  ["Esc", "Leave the reply box · close a dialog"],
  ["?", "This list"],
];

export function openShortcuts() {
  if (document.querySelector("dialog.shortcuts")) return;
  const dlg = dialog("Keyboard shortcuts",
    // Two columns (navigation, then actions), each shortcut one block: it fits a laptop screen.
    h("dl", { class: "shortcut-list shortcut-columns" }, SHORTCUTS.filter(([keys]) => keys !== "v" || state.me?.role === "supervisor").map(([keys, what]) =>
      h("div", { class: "shortcut" },
        h("dt", null, keys.split(" ").map((k) => ["/", "+", "·"].includes(k) && keys !== "/" ? ` ${k} ` : h("kbd", null, k))),
        h("dd", null, what)))),
    h("div", { class: "dialog-actions" }, h("button", { class: "btn", type: "button", on: { click: () => dlg.close() } }, "Close")));
  dlg.classList.add("shortcuts");
}
