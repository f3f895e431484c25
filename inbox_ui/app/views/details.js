// The right column: what an agent needs in five seconds — the bot's summary, why it handed over
// (with the evidence), key facts, who the visitor is, their mood, and who did what when.

import { h, mount } from "../lib/dom.js";
import { state, changed } from "../lib/store.js";
import {
  reasonLabel, priorityInfo, humanize, percent, fullTime, clock, ago, sentimentOf, OUTCOMES, STATUS_LABEL, duration,
} from "../lib/format.js";

export { section, reasonSection, timelineSection };

export function createDetails() {
  const el = h("aside", { class: "details", attrs: { "aria-label": "Conversation details" } });

  function render() {
    const id = state.selectedId;
    const detail = id ? state.details.get(id) : null;
    if (!detail) {
      mount(el);
      el.hidden = !id;
      return;
    }
    el.hidden = false;
    const handoff = detail.handoff;
    const summary = (handoff && handoff.summary) || {};
    mount(
      el,
      summarySection(detail, handoff, summary),
      handoff ? reasonSection(handoff) : null,
      factsSection(summary.facts),
      visitorSection(detail),
      timelineSection(detail),
    );
  }

  return { el, render };
}

function section(title, ...body) {
  return h("section", { class: "panel" }, h("h3", null, title), ...body);
}

function summarySection(detail, handoff, summary) {
  if (!handoff) {
    return section("Summary", h("p", { class: "muted" },
      detail.status === "bot" ? "The bot is handling this conversation; it has not asked for a person." : "No handoff summary for this conversation."));
  }
  // The bot's text usually repeats the headline on its first line: show it once.
  let text = typeof summary.text === "string" ? summary.text.trim() : "";
  if (summary.headline && text.startsWith(summary.headline)) text = text.slice(summary.headline.length).trim();
  const long = text.split("\n").length > 5 || text.length > 320;
  const open = expanded.has(detail.id);
  const answered = Array.isArray(summary.bot_answered_labels) && summary.bot_answered_labels.length
    ? summary.bot_answered_labels
    : (summary.bot_answered || []).map(humanizeUtter);
  return section(
    "Summary",
    summary.headline ? h("p", { class: "headline" }, summary.headline) : null,
    text ? h("p", { class: ["summary-text", long && !open && "clamped"] }, text) : null,
    text && long
      ? h("button", {
        class: "link small", type: "button",
        on: { click: () => { if (open) expanded.delete(detail.id); else expanded.add(detail.id); changed("detail"); } },
      }, open ? "Show less" : "Show the whole summary")
      : null,
    !summary.headline && !text ? h("p", { class: "muted" }, "The bot gave no summary.") : null,
    !text && answered.length ? h("p", { class: "small muted" }, "Bot already answered: ", answered.join(", ")) : null,
  );
}

const expanded = new Set(); // conversations whose whole summary the agent unfolded

function humanizeUtter(name) {
  return humanize(String(name).replace(/^utter_/, ""));
}

function reasonSection(handoff) {
  const prio = priorityInfo(handoff.priority);
  const ev = handoff.evidence || {};
  const intent = typeof ev.intent === "object" && ev.intent ? ev.intent.name : ev.intent;
  const rest = Object.entries(ev).filter(([k, v]) =>
    !["intent", "confidence", "text"].includes(k) && v !== null && v !== "" && v !== 0 && v !== false && typeof v !== "object" &&
    !(k === "top_intent" && v === intent));
  const confidence = typeof ev.intent === "object" && ev.intent ? ev.intent.confidence : ev.confidence;
  return section(
    "Why a person",
    h("div", { class: "badges" },
      h("span", { class: "badge badge-reason" }, reasonLabel(handoff.reason)),
      prio ? h("span", { class: `badge badge-prio prio-${prio.level}`, title: `Priority ${prio.n}` }, `${prio.label} priority`) : null,
      handoff.team ? h("span", { class: "badge" }, `Team: ${handoff.team}`) : null),
    ev.text ? h("blockquote", { class: "evidence-quote" }, ev.text) : null,
    intent
      ? h("p", { class: "small" }, "Detected intent ", h("code", null, intent), confidence !== undefined && confidence !== null ? ` · ${percent(confidence)} confidence` : "")
      : null,
    rest.length ? h("dl", { class: "kv small" }, rest.flatMap(([k, v]) => [h("dt", null, humanize(k)), h("dd", null, v === true ? "Yes" : String(v))])) : null,
  );
}

function factsSection(facts) {
  const entries = facts && typeof facts === "object" ? Object.entries(facts).filter(([, v]) => v !== null && v !== "") : [];
  if (!entries.length) return section("Key facts", h("p", { class: "muted" }, "None collected by the bot."));
  return section("Key facts", h("dl", { class: "kv" }, entries.flatMap(([k, v]) => [
    h("dt", null, humanize(k)),
    h("dd", { class: "fact" }, typeof v === "object" ? JSON.stringify(v) : String(v)),
  ])));
}

function visitorSection(detail) {
  const custom = (detail.metadata && detail.metadata.customData) || {};
  const rows = [];
  if (custom.name) rows.push(["Name", custom.name]);
  if (custom.email) rows.push(["Email", custom.email]);
  if (custom.tier) rows.push(["Tier", String(custom.tier).toUpperCase() === "VIP" ? "VIP" : humanize(custom.tier)]);
  if (custom.language) rows.push(["Language", custom.language]);
  for (const [k, v] of Object.entries(custom)) {
    if (["name", "email", "tier", "language"].includes(k) || v === null || typeof v === "object") continue;
    rows.push([humanize(k), String(v)]);
  }
  rows.push(["Started", fullTime(detail.created_at)]);
  const sentiment = latestSentiment(detail);
  return section(
    "Visitor",
    sentiment
      ? h("p", { class: `sentiment sentiment-${sentiment.level}` }, h("span", { class: "sentiment-dot" }), `Mood: ${sentiment.label}`,
        sentiment.score !== null ? h("span", { class: "muted" }, ` (${sentiment.score.toFixed(2)})`) : null)
      : null,
    h("dl", { class: "kv" }, rows.flatMap(([k, v]) => [h("dt", null, k), h("dd", null, v)])),
    h("p", { class: "small muted conv-id", title: "Conversation id (the widget's session id)" }, detail.id),
  );
}

function latestSentiment(detail) {
  for (let i = detail.messages.length - 1; i >= 0; i -= 1) {
    const m = detail.messages[i];
    if (m.role === "visitor" && m.meta && m.meta.sentiment !== undefined) {
      const s = sentimentOf(m.meta.sentiment);
      if (s) return s;
    }
  }
  return null;
}

const CHOICES = {
  cancel: "stopped waiting and went back to the assistant",
  leave_message: "chose to leave a message instead of waiting",
  keep_waiting: "chose to keep waiting",
};

function describe(entry) {
  const d = entry.detail || {};
  const who = d.actor_name || (entry.actor === "bot" ? "The bot" : entry.actor === "visitor" ? "The visitor" : entry.actor === "system" ? "The inbox" : entry.actor) || "Someone";
  switch (entry.kind) {
    case "handoff_requested":
      return `${who} handed over${d.reason ? ` — ${reasonLabel(d.reason)}` : ""}`;
    case "claimed":
      return d.auto ? `Routed to ${who} (auto-assigned)` : `${who} took the conversation`;
    case "released":
      return `${who} put it back in the queue`;
    case "transferred":
      return `${who} transferred it to ${d.to_agent_name || d.to_agent || "another agent"}`;
    case "team_transferred":
      return `${who} sent it to the ${d.team || "other"} team's queue`;
    case "escalated":
      return `${who} escalated it to ${d.to_agent_name || d.to_agent || "a supervisor"}`;
    case "handed_back":
      return `${who} handed back to the bot${d.outcome ? ` — ${OUTCOMES[d.outcome] || humanize(d.outcome)}` : ""}`;
    case "resolved":
      return `${who} resolved it`;
    case "cancelled":
      return `The visitor ${CHOICES[d.choice] || "went back to the assistant"}`;
    case "keep_waiting":
      return "The visitor chose to keep waiting";
    case "ticket_created":
      return `The visitor left a message${d.email ? ` for ${d.email}` : ""}: a ticket is in Tickets`;
    case "unclaimed":
      return `Nobody took it${d.waited_s ? ` for ${duration(d.waited_s)}` : ""}: the visitor was offered to leave a message or go back to the assistant, and agents were alerted again`;
    default:
      return `${humanize(entry.kind)}${entry.to_status ? ` → ${STATUS_LABEL[entry.to_status] || entry.to_status}` : ""}`;
  }
}

function timelineSection(detail) {
  const entries = detail.timeline || [];
  if (!entries.length) return section("Timeline", h("p", { class: "muted" }, "No status changes yet."));
  return section(
    "Timeline",
    h("ol", { class: "timeline" }, entries.map((t) =>
      h("li", { class: `tl tl-${t.kind}`, title: fullTime(t.created_at) },
        h("span", { class: "tl-dot" }),
        h("div", { class: "tl-body" },
          h("div", null, describe(t)),
          t.detail && t.detail.note ? h("div", { class: "tl-note" }, `“${t.detail.note}”`) : null,
          h("div", { class: "tl-time" }, `${clock(t.created_at)} · ${ago(t.created_at)}`))))),
  );
}
