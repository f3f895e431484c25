// Words and numbers as an agent reads them: durations, times, reasons, priorities, outcomes.

/** Server timestamps are Unix seconds; the clock offset is corrected by the app (see skew). */
let skewMs = 0;
export function setClockSkew(ms) {
  skewMs = ms;
}
export function nowSec() {
  return (Date.now() + skewMs) / 1000;
}

/** "12s", "4m 05s", "1h 02m", "3d 4h" — compact, for a list that ticks every second. */
export function duration(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${String(s % 60).padStart(2, "0")}s`;
  const hr = Math.floor(m / 60);
  if (hr < 24) return `${hr}h ${String(m % 60).padStart(2, "0")}m`;
  return `${Math.floor(hr / 24)}d ${hr % 24}h`;
}

/** "just now", "5 min ago", "2 h ago", "Mon 14:02", "12 Mar" */
export function ago(ts) {
  if (!ts) return "";
  const s = nowSec() - ts;
  if (s < 45) return "just now";
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  if (s < 6 * 3600) return `${Math.floor(s / 3600)} h ago`;
  const d = new Date(ts * 1000);
  const today = new Date();
  if (d.toDateString() === today.toDateString()) return clock(ts);
  if (today - d < 6 * 86400 * 1000) return d.toLocaleDateString(undefined, { weekday: "short" }) + " " + clock(ts);
  return d.toLocaleDateString(undefined, { day: "numeric", month: "short" });
}

export function clock(ts) {
  return new Date(ts * 1000).toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit" });
}

export function fullTime(ts) {
  return new Date(ts * 1000).toLocaleString(undefined, {
    weekday: "short", day: "numeric", month: "short", hour: "2-digit", minute: "2-digit", second: "2-digit",
  });
}

export function dayLabel(ts) {
  const d = new Date(ts * 1000);
  const today = new Date();
  const yesterday = new Date(today.getTime() - 86400000);
  if (d.toDateString() === today.toDateString()) return "Today";
  if (d.toDateString() === yesterday.toDateString()) return "Yesterday";
  return d.toLocaleDateString(undefined, { weekday: "long", day: "numeric", month: "long" });
}

const REASONS = {
  explicit_request: "Asked for a person",
  repeated_failure: "Bot didn't understand",
  low_confidence: "Bot unsure",
  negative_sentiment: "Frustrated visitor",
  sentiment: "Frustrated visitor",
  vip: "VIP customer",
  complaint: "Complaint",
  order_issue: "Order problem",
  policy: "Needs a person",
};

export function reasonLabel(reason) {
  if (!reason) return "";
  return REASONS[reason] || humanize(reason);
}

export function humanize(key) {
  const s = String(key).replace(/[_-]+/g, " ").trim();
  return s.charAt(0).toUpperCase() + s.slice(1);
}

/** Higher numbers are more urgent (the queue sorts by priority, highest first). */
export function priorityInfo(p) {
  if (p === null || p === undefined) return null;
  const n = Number(p);
  if (n >= 4) return { label: "Urgent", level: "urgent", n };
  if (n >= 3) return { label: "High", level: "high", n };
  if (n <= 1) return { label: "Low", level: "low", n };
  return { label: "Normal", level: "normal", n };
}

export const OUTCOMES = {
  resolved: "Resolved",
  follow_up: "Needs follow-up",
  continue: "Bot continues",
};

/** Why a visitor left a message instead of talking to a person (Ticket.why). */
const WHY = {
  no_agents: "Nobody available",
  closed: "Outside hours",
  unclaimed: "Waited too long",
  visitor_request: "Asked to leave a message",
};

export function whyLabel(why) {
  if (!why) return "";
  return WHY[why] || humanize(why);
}

export const AVAILABILITY_LABEL = { available: "Available", busy: "Busy", away: "Away" };

export const STATUS_LABEL = {
  bot: "With the bot",
  queued: "Waiting",
  assigned: "Assigned",
  resolved: "Resolved",
};

export function percent(x) {
  const n = Number(x);
  if (!Number.isFinite(n)) return "";
  return `${Math.round(n <= 1 ? n * 100 : n)}%`;
}

/** Intent name and confidence from a message's meta, whichever shape the bot used. */
export function intentOf(meta) {
  if (!meta) return null;
  const intent = meta.intent;
  if (intent && typeof intent === "object" && intent.name) {
    return { name: intent.name, confidence: intent.confidence ?? meta.confidence };
  }
  if (typeof intent === "string") return { name: intent, confidence: meta.confidence };
  if (typeof meta.intent_name === "string") return { name: meta.intent_name, confidence: meta.confidence };
  return null;
}

/** A sentiment as {label, level} from "negative" / -0.6 / {label, score}. */
export function sentimentOf(value) {
  if (value === null || value === undefined || value === "") return null;
  let label = null;
  let score = null;
  if (typeof value === "number") score = value;
  else if (typeof value === "string") label = value;
  else if (typeof value === "object") {
    label = value.label || value.name || null;
    score = typeof value.score === "number" ? value.score : null;
  }
  if (!label && score !== null) label = score <= -0.25 ? "negative" : score >= 0.25 ? "positive" : "neutral";
  if (!label) return null;
  const l = String(label).toLowerCase();
  const level = /neg|angry|frustr|upset/.test(l) ? "negative" : /pos|happy/.test(l) ? "positive" : "neutral";
  return { label: humanize(l), level, score };
}

/** Initials for an avatar: "Sarah Connor" -> "SC", "Visitor 3f2a9c" -> "V3". */
export function initials(name) {
  const parts = String(name || "?").replace(/<[^>]*>/g, " ").replace(/[^\p{L}\p{N}\s]/gu, "").trim().split(/\s+/).filter(Boolean);
  if (!parts.length) return "?";
  const first = parts[0][0] || "?";
  const second = parts.length > 1 ? parts[parts.length - 1][0] : "";
  return (first + second).toUpperCase();
}

/** A stable hue per visitor, so an agent recognises a conversation in the list at a glance. */
export function hueOf(id) {
  let hash = 0;
  for (const ch of String(id)) hash = (hash * 31 + ch.charCodeAt(0)) | 0;
  return Math.abs(hash) % 360;
}
