// The inbox: boot, log in, load the queues, follow the live feed, and render on every change.
// Layout: header | queue (tabs + rows) | conversation (head, transcript, composer) | details.
// The Tickets tab shows a ticket (and its conversation) in the conversation and details areas;
// the supervisors' team view fills both.

import { h, mount } from "./lib/dom.js";
import { api, hasToken, setToken, whenUnauthorized } from "./lib/api.js";
import { EventFeed } from "./lib/realtime.js";
import {
  state, subscribe, changed, loadSeen, loadPending, markSeen, flash,
} from "./lib/store.js";
import {
  applyEvent, loadView, openConversation, updateTitle, explain, loadTickets, refreshTeam,
} from "./lib/actions.js";
import { unlockAudio } from "./lib/notify.js";
import { installShortcuts } from "./lib/keys.js";
import { createLogin } from "./views/login.js";
import { createHeader } from "./views/header.js";
import { createQueue } from "./views/queue.js";
import { createConversation } from "./views/conversation.js";
import { createDetails } from "./views/details.js";
import { openShortcuts } from "./views/dialogs.js";
import { createTicketView } from "./views/tickets.js";
import { createTeam } from "./views/team.js";

const root = document.getElementById("root");
let feed = null;
let started = false;

function showLogin(message = "") {
  root.className = "";
  mount(root, createLogin((agent) => startInbox(agent), message));
  document.title = "Log in · Inbox";
}

async function logout() {
  try {
    await api.logout();
  } catch {
    /* the session is gone either way */
  }
  setToken(null);
  if (feed) feed.stop();
  location.replace("/inbox");
}

async function startInbox(agent) {
  if (started) return;
  started = true;
  state.me = agent;
  loadSeen(agent.username);
  loadPending();

  const header = createHeader({ onLogout: logout, onHelp: openShortcuts });
  const queue = createQueue();
  const conversation = createConversation();
  const details = createDetails();
  const tickets = createTicketView();
  const team = createTeam();
  const toast = h("div", { class: "toast", attrs: { role: "status", "aria-live": "polite" }, hidden: true });
  root.className = "app";
  mount(root, header.el, queue.el, conversation.el, details.el, tickets.main, tickets.side, team.el, toast);

  subscribe((parts) => {
    // Which screen fills the conversation area: a conversation, a ticket, or the team view.
    const screen = state.panel === "team" ? "team" : state.view === "tickets" ? "tickets" : "conversations";
    const switched = root.dataset.screen !== screen;
    root.dataset.screen = screen;
    conversation.el.hidden = screen !== "conversations";
    details.el.hidden = screen !== "conversations" || !state.selectedId;
    tickets.main.hidden = screen !== "tickets";
    if (screen !== "tickets") tickets.side.hidden = true;
    team.el.hidden = screen !== "team";
    root.classList.toggle("has-selection", screen === "team" || (screen === "tickets" ? state.selectedTicketId !== null : Boolean(state.selectedId)));

    if (switched || parts.has("header") || parts.has("connection") || parts.has("panel")) header.render();
    if (switched || parts.has("list") || parts.has("tabs") || parts.has("selection") || parts.has("panel")) queue.render();
    if (screen === "conversations") {
      conversation.render(switched ? null : parts);
      if (switched || parts.has("detail") || parts.has("selection")) details.render();
    } else if (screen === "tickets") {
      if (switched || parts.has("ticket") || parts.has("detail") || parts.has("transcript") || parts.has("list")) tickets.render();
    } else if (switched || parts.has("team") || parts.has("list")) {
      team.render();
    }
    if (parts.has("flash")) {
      toast.hidden = !state.flash;
      if (state.flash) {
        toast.className = `toast toast-${state.flash.kind}`;
        toast.textContent = state.flash.text;
      }
    }
    updateTitle();
  });

  installShortcuts({ composer: conversation.composer });
  // Sound needs one user gesture before it can play; any click or key will do.
  document.addEventListener("pointerdown", unlockAudio, { passive: true });
  document.addEventListener("keydown", unlockAudio);
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible" && state.selectedId) markSeen(state.selectedId);
  });
  window.addEventListener("focus", () => state.selectedId && markSeen(state.selectedId));

  feed = new EventFeed({
    onEvent: applyEvent,
    onStatus: (status) => {
      state.connection = status;
      root.dataset.connection = status;
      changed("connection");
    },
  });

  try {
    // The feed starts where this list load left off: nothing is missed in between.
    const lastEventId = await loadView("open");
    feed.start(lastEventId);
  } catch (err) {
    flash(explain(err), "error", 10000);
    feed.start(0);
  }
  api.canned().then((res) => (state.canned = res.canned || []), () => {});
  loadTickets("open");
  if (agent.role === "supervisor") refreshTeam();
  // The gateway sets an agent away by itself when their inbox stopped answering (a laptop asleep);
  // the header must say so, or they wait for conversations that never come.
  const syncMe = async () => {
    try {
      const me = await api.me();
      if (state.me && me.availability !== state.me.availability) {
        const was = state.me.availability;
        state.me = { ...state.me, ...me };
        changed("header");
        if (me.availability === "away" && was !== "away") {
          flash("You were set to Away while the inbox was not connected. Choose Available to get conversations again.", "info", 15000);
        }
      } else if (state.me) {
        state.me = { ...state.me, ...me };
      }
    } catch {
      /* offline: the feed shows it */
    }
  };
  setInterval(syncMe, 60000);
  document.addEventListener("visibilitychange", () => document.visibilityState === "visible" && syncMe());

  const m = /^#\/c\/(.+)$/.exec(location.hash);
  if (m) openConversation(decodeURIComponent(m[1]));
  changed("header", "list", "tabs", "selection", "detail", "transcript", "connection", "ticket", "panel");
}

whenUnauthorized(() => {
  if (!started) return;
  started = false;
  if (feed) feed.stop();
  setToken(null);
  location.replace("/inbox#expired");
});

async function boot() {
  // A token in this tab's storage, or only the session cookie (a new tab): ask who we are.
  try {
    const me = await api.me();
    startInbox(me);
  } catch (err) {
    if (err.status !== 401 && hasToken()) {
      showLogin(explain(err));
      return;
    }
    setToken(null);
    showLogin(location.hash === "#expired" ? "Your session has ended. Log in again." : "");
  }
}

boot();
