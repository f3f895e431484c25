// Keyboard shortcuts for what agents do all day. Single keys work when no text field has focus;
// Alt+Up/Down moves between conversations from anywhere, even while typing.

import { state, TABS } from "./store.js";
import { step, switchView, claim, toggleTeam } from "./actions.js";
import {
  openHandback, openResolve, openShortcuts, openTransfer, openEscalate, openCloseTicket,
} from "../views/dialogs.js";
import { canTransfer, canEscalate } from "../views/conversation.js";
import { toggleDetails } from "../views/conversation.js";

function typing(target) {
  if (!target || !(target instanceof Element)) return false;
  return target.closest("input, textarea, select, [contenteditable=''], [contenteditable=true]") !== null;
}

export function installShortcuts({ composer }) {
  document.addEventListener("keydown", (e) => {
    if (document.querySelector("dialog[open]")) return; // the dialog has the keyboard
    if (e.altKey && (e.key === "ArrowDown" || e.key === "ArrowUp")) {
      e.preventDefault();
      step(e.key === "ArrowDown" ? 1 : -1);
      return;
    }
    if (e.ctrlKey || e.metaKey || e.altKey || typing(e.target)) return;
    // In the Tickets tab (and the team view) the conversation keys do nothing: no hidden effects.
    const row = state.selectedId && state.view !== "tickets" && !state.panel ? state.conversations.get(state.selectedId) : null;
    const ticket = state.view === "tickets" && !state.panel && state.selectedTicketId !== null ? state.tickets.get(state.selectedTicketId) : null;
    const tab = TABS.find((t) => t.key === e.key);
    let handled = true;
    if (tab) switchView(tab.view);
    else {
      switch (e.key) {
        case "j":
          step(1);
          break;
        case "k":
          step(-1);
          break;
        case "a":
          if (row) claim(row.id);
          break;
        case "r":
          if (row) composer.focus("reply");
          break;
        case "n":
          if (row) composer.focus("note");
          break;
        case "/":
          if (row) composer.startCanned();
          break;
        case "h":
          if (row && (row.status === "queued" || row.status === "assigned")) openHandback(row.id);
          break;
        case "e":
          if (row && (row.status === "queued" || row.status === "assigned")) openResolve(row.id);
          else if (ticket && ticket.status === "open") openCloseTicket(ticket.id);
          break;
        case "t":
          if (row && canTransfer(row)) openTransfer(row.id);
          break;
        case "s":
          if (row && canEscalate(row)) openEscalate(row.id);
          break;
        case "v":
          toggleTeam();
          break;
        case "i":
          toggleDetails();
          break;
        case "?":
          openShortcuts();
          break;
        default:
          handled = false;
      }
    }
    if (handled) e.preventDefault();
  });
}
