// The supervisor view: every agent's availability, load against capacity and teams, and the queue
// (depth, urgent, longest wait). GET /api/agents, refreshed on feed events and every 10 seconds
// while the view is open. It fills the conversation area; the queue column stays beside it.

import { h, mount } from "../lib/dom.js";
import { state } from "../lib/store.js";
import { refreshTeam, toggleTeam } from "../lib/actions.js";
import { ago, duration, nowSec, initials, hueOf, AVAILABILITY_LABEL, fullTime } from "../lib/format.js";

const REFRESH_MS = 10000;

export function createTeam() {
  const el = h("main", { class: "team-view", attrs: { "aria-label": "Team" } });
  setInterval(() => {
    if (state.panel === "team" && document.visibilityState === "visible") refreshTeam();
  }, REFRESH_MS);

  function longestWait() {
    let oldest = null;
    for (const row of state.conversations.values()) {
      if (row.status === "queued" && row.queued_at && (oldest === null || row.queued_at < oldest)) oldest = row.queued_at;
    }
    return oldest;
  }

  function stat(key, label, value, extra, level = "") {
    return h("div", { class: ["stat", level && `stat-${level}`], dataset: { stat: key } },
      h("div", { class: "stat-value" }, value),
      h("div", { class: "stat-label" }, label),
      extra ? h("div", { class: "stat-extra" }, extra) : null);
  }

  function render() {
    const team = state.team;
    if (!team || !team.agents) {
      mount(el, h("div", { class: "conv-empty" }, h("div", { class: "conv-empty-inner" },
        team && team.error ? h("p", { class: "form-error" }, team.error) : h("p", { class: "muted" }, "Loading the team…"))));
      return;
    }
    const agents = [...team.agents].sort((a, b) => {
      const order = { available: 0, busy: 1, away: 2 };
      return (order[a.availability] ?? 3) - (order[b.availability] ?? 3) || (b.load || 0) - (a.load || 0) || a.display_name.localeCompare(b.display_name);
    });
    const available = agents.filter((a) => a.availability === "available");
    const free = available.reduce((n, a) => n + Math.max(0, (a.capacity || 0) - (a.load || 0)), 0);
    const oldest = longestWait();

    // Teams, from the agents' memberships.
    const teams = new Map();
    for (const a of agents) {
      for (const name of a.teams || []) {
        const t = teams.get(name) || { name, agents: 0, available: 0, load: 0, capacity: 0 };
        t.agents += 1;
        if (a.availability === "available") {
          t.available += 1;
          t.capacity += a.capacity || 0;
        }
        t.load += a.load || 0;
        teams.set(name, t);
      }
    }

    mount(el, h("div", { class: "team-inner" },
      h("div", { class: "team-head" },
        h("div", null,
          h("h2", null, "Team"),
          h("p", { class: "muted small" }, `Routing: ${team.routing === "auto" ? "automatic (least-loaded available agent)" : "manual (agents pick from the queue)"} · updated `,
            h("span", { class: "team-updated", dataset: { at: team.at } }, "just now"),
            team.error ? h("span", { class: "form-error" }, ` · ${team.error}`) : null)),
        h("button", { class: "btn btn-quiet", type: "button", title: "Back to conversations (V)", on: { click: () => toggleTeam(false) } }, "Close")),
      h("div", { class: "stats" },
        stat("waiting", "Waiting", String(team.queue_depth ?? 0), oldest ? h("span", { class: "wait-since", dataset: { since: oldest } }, "") : "nobody waiting", (team.queue_depth || 0) > 0 ? "warn" : ""),
        stat("urgent", "Urgent waiting", String(team.urgent_queued ?? 0), null, (team.urgent_queued || 0) > 0 ? "danger" : ""),
        stat("available", "Available", `${available.length} of ${agents.length}`, `${free} free ${free === 1 ? "slot" : "slots"}`, available.length ? "" : "danger"),
        stat("tickets", "Open tickets", String([...state.tickets.values()].filter((t) => t.status === "open").length), null)),
      h("table", { class: "team-table" },
        h("thead", null, h("tr", null,
          h("th", { attrs: { scope: "col" } }, "Agent"),
          h("th", { attrs: { scope: "col" } }, "Status"),
          h("th", { attrs: { scope: "col" } }, "Load"),
          h("th", { attrs: { scope: "col" } }, "Teams"),
          h("th", { attrs: { scope: "col" } }, "Last seen"))),
        h("tbody", null, agents.map((a) => {
          const load = a.load || 0;
          const cap = a.capacity || 0;
          const full = cap > 0 && load >= cap;
          return h("tr", { dataset: { agent: a.username, availability: a.availability } },
            h("td", null, h("div", { class: "agent-cell" },
              h("span", { class: "avatar", attrs: { style: `--hue:${hueOf(a.username)}`, "aria-hidden": "true" } }, initials(a.display_name)),
              h("span", { class: "agent-name" }, a.display_name),
              a.role === "supervisor" ? h("span", { class: "badge" }, "Supervisor") : null,
              a.username === state.me.username ? h("span", { class: "muted small" }, "(you)") : null)),
            h("td", null, h("span", { class: "avail" }, h("span", { class: `avail-dot avail-${a.availability}` }), AVAILABILITY_LABEL[a.availability] || a.availability)),
            h("td", null, h("div", { class: ["load", full && "load-full"], title: `${load} assigned conversation${load === 1 ? "" : "s"}, capacity ${cap}` },
              h("span", { class: "load-bar" }, h("span", { class: "load-fill", attrs: { style: `width:${cap ? Math.min(100, Math.round((load / cap) * 100)) : load ? 100 : 0}%` } })),
              h("span", { class: "load-text" }, `${load} / ${cap}`))),
            h("td", null, (a.teams || []).length ? h("div", { class: "badges" }, a.teams.map((t) => h("span", { class: "badge" }, t))) : h("span", { class: "muted" }, "—")),
            h("td", { class: "muted", title: a.last_seen_at ? fullTime(a.last_seen_at) : "" }, a.last_seen_at ? ago(a.last_seen_at) : "never"));
        }))),
      teams.size
        ? h("div", { class: "team-teams" },
          h("h3", null, "Teams"),
          h("div", { class: "team-chips" }, [...teams.values()].sort((a, b) => a.name.localeCompare(b.name)).map((t) =>
            h("div", { class: ["team-chip", t.available === 0 && "team-chip-none"] },
              h("strong", null, t.name),
              h("span", null, `${t.available} of ${t.agents} available · ${t.load} assigned`)))))
        : null,
    ));
    tick();
  }

  function tick() {
    const since = el.querySelector(".wait-since");
    if (since) since.textContent = `longest ${duration(nowSec() - Number(since.dataset.since))}`;
    const upd = el.querySelector(".team-updated");
    if (upd) {
      const s = Math.round((Date.now() - Number(upd.dataset.at)) / 1000);
      upd.textContent = s < 3 ? "just now" : `${s} s ago`;
    }
  }
  setInterval(() => state.panel === "team" && tick(), 1000);

  return { el, render };
}
