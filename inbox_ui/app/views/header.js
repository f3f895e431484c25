// The top bar: product name, connection state, attention settings, the agent and their availability.

import { h, mount, icon } from "../lib/dom.js";
import { state, flash } from "../lib/store.js";
import { api } from "../lib/api.js";
import { explain, toggleTeam } from "../lib/actions.js";
import { initials } from "../lib/format.js";
import {
  isMuted, setMuted, unlockAudio, chime, notificationState, askNotificationPermission,
} from "../lib/notify.js";

const CONNECTION = {
  connecting: { label: "Connecting…", hint: "Opening the live feed." },
  live: { label: "Live", hint: "New conversations and messages arrive instantly (server-sent events)." },
  polling: { label: "Live (polling)", hint: "The event stream is unavailable here, so the inbox asks the server for news every few seconds. Nothing is missed." },
  offline: { label: "Offline — retrying", hint: "Can't reach the server. Messages you send are kept and retried." },
};

const AVAILABILITY = [
  ["available", "Available"],
  ["busy", "Busy"],
  ["away", "Away"],
];

export function createHeader({ onLogout, onHelp }) {
  const conn = h("span", { class: "conn", attrs: { role: "status" } });
  const bell = h("button", { class: "icon-btn", type: "button" });
  const sound = h("button", { class: "icon-btn", type: "button" });
  const availability = h(
    "select",
    {
      class: "availability",
      attrs: { "aria-label": "Your availability" },
      on: { change: (e) => setAvailability(e.target.value) },
    },
    AVAILABILITY.map(([value, label]) => h("option", { value }, label)),
  );
  const teamBtn = h("button", {
    class: "btn btn-quiet team-btn", type: "button", title: "Team: agents, load and the queue (V)", dataset: { action: "team" },
    on: { click: () => toggleTeam() },
  }, icon("team"), h("span", null, "Team"));
  const avatar = h("span", { class: "avatar avatar-me", attrs: { "aria-hidden": "true" } });
  const name = h("span", { class: "me-name" });
  const el = h(
    "header",
    { class: "topbar" },
    h("div", { class: "brand" }, icon("inbox"), h("span", null, "Inbox")),
    conn,
    h("div", { class: "spacer" }),
    teamBtn,
    bell,
    sound,
    h("button", {
      class: "icon-btn", type: "button", title: "Keyboard shortcuts (?)",
      attrs: { "aria-label": "Keyboard shortcuts" }, on: { click: onHelp },
    }, icon("keyboard")),
    h("div", { class: "me" }, avatar, h("div", { class: "me-text" }, name, h("span", { class: "availability-wrap" }, h("span", { class: "dot" }), availability))),
    h("button", { class: "btn btn-quiet", type: "button", on: { click: onLogout } }, "Log out"),
  );

  async function setAvailability(value) {
    const previous = state.me.availability;
    state.me.availability = value;
    render();
    try {
      state.me = await api.setAvailability(value);
    } catch (err) {
      state.me.availability = previous;
      flash(explain(err), "error");
    }
    render();
  }

  bell.addEventListener("click", async () => {
    unlockAudio();
    const result = await askNotificationPermission();
    if (result === "denied") flash("Notifications are blocked for this site in your browser settings.", "error");
    else if (result === "granted") flash("Desktop notifications are on while the inbox is in the background.", "success", 3000);
    render();
  });
  sound.addEventListener("click", () => {
    setMuted(!isMuted());
    unlockAudio();
    if (!isMuted()) chime("handoff");
    render();
  });

  function render() {
    const c = CONNECTION[state.connection] || CONNECTION.connecting;
    conn.className = `conn conn-${state.connection}`;
    conn.title = c.hint;
    mount(conn, h("span", { class: "conn-dot" }), c.label);

    const perm = notificationState();
    bell.hidden = perm === "unsupported";
    bell.className = `icon-btn ${perm === "granted" ? "on" : "attention"}`;
    bell.title = perm === "granted" ? "Desktop notifications are on" : perm === "denied" ? "Notifications are blocked in the browser settings" : "Turn on desktop notifications";
    bell.setAttribute("aria-label", bell.title);
    mount(bell, icon("bell"));

    const muted = isMuted();
    sound.title = muted ? "Sound is off (click to turn on)" : "Sound is on (click to mute)";
    sound.setAttribute("aria-label", sound.title);
    sound.className = `icon-btn ${muted ? "" : "on"}`;
    mount(sound, icon(muted ? "mute" : "sound"));

    teamBtn.hidden = !state.me || state.me.role !== "supervisor";
    teamBtn.classList.toggle("active", state.panel === "team");
    teamBtn.setAttribute("aria-pressed", state.panel === "team" ? "true" : "false");
    if (state.me) {
      name.textContent = state.me.display_name;
      avatar.textContent = initials(state.me.display_name);
      availability.value = state.me.availability;
      el.dataset.availability = state.me.availability;
    }
  }

  render();
  return { el, render };
}
