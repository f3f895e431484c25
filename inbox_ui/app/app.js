// The inbox: boot, log in, load the queues, follow the live feed, and render on every change.
// Layout: header | queue (tabs + rows) | conversation (head, transcript, composer) | details.

import { h, mount } from "./lib/dom.js";
import { api, hasToken, setToken, whenUnauthorized } from "./lib/api.js";
import { EventFeed } from "./lib/realtime.js";
import {
  state, subscribe, changed, loadSeen, loadPending, markSeen, flash,
} from "./lib/store.js";
import { applyEvent, loadView, openConversation, updateTitle, explain } from "./lib/actions.js";
import { unlockAudio } from "./lib/notify.js";
import { installShortcuts } from "./lib/keys.js";
import { createLogin } from "./views/login.js";
import { createHeader } from "./views/header.js";
import { createQueue } from "./views/queue.js";
import { createConversation } from "./views/conversation.js";
import { createDetails } from "./views/details.js";
import { openShortcuts } from "./views/dialogs.js";

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
  const toast = h("div", { class: "toast", attrs: { role: "status", "aria-live": "polite" }, hidden: true });
  root.className = "app";
  mount(root, header.el, queue.el, conversation.el, details.el, toast);

  subscribe((parts) => {
    if (parts.has("header") || parts.has("connection")) header.render();
    if (parts.has("list") || parts.has("tabs") || parts.has("selection")) queue.render();
    conversation.render(parts);
    if (parts.has("detail") || parts.has("selection")) details.render();
    if (parts.has("flash")) {
      toast.hidden = !state.flash;
      if (state.flash) {
        toast.className = `toast toast-${state.flash.kind}`;
        toast.textContent = state.flash.text;
      }
    }
    updateTitle();
    root.classList.toggle("has-selection", Boolean(state.selectedId));
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

  const m = /^#\/c\/(.+)$/.exec(location.hash);
  if (m) openConversation(decodeURIComponent(m[1]));
  changed("header", "list", "tabs", "selection", "detail", "transcript", "connection");
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
