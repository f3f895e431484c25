// Getting an agent's attention without being annoying: a short chime made with WebAudio (no audio
// files), a browser notification when the tab is in the background, and "(2) Inbox" in the title.

const MUTE_KEY = "handoff.muted";
let audio = null;

export function isMuted() {
  return localStorage.getItem(MUTE_KEY) === "1";
}

export function setMuted(muted) {
  localStorage.setItem(MUTE_KEY, muted ? "1" : "0");
}

/** Browsers only let a page make sound after a user gesture: call this from one (click, key). */
export function unlockAudio() {
  try {
    if (!audio) {
      const Ctx = window.AudioContext || window.webkitAudioContext;
      if (!Ctx) return;
      audio = new Ctx();
    }
    if (audio.state === "suspended") audio.resume();
  } catch {
    audio = null;
  }
}

function tone(freq, start, length, volume) {
  const osc = audio.createOscillator();
  const gain = audio.createGain();
  osc.type = "sine";
  osc.frequency.value = freq;
  gain.gain.setValueAtTime(0.0001, start);
  gain.gain.exponentialRampToValueAtTime(volume, start + 0.015);
  gain.gain.exponentialRampToValueAtTime(0.0001, start + length);
  osc.connect(gain).connect(audio.destination);
  osc.start(start);
  osc.stop(start + length + 0.02);
}

/** kind "handoff": two rising notes; kind "message": one soft note. */
export function chime(kind = "handoff") {
  if (isMuted() || !audio || audio.state !== "running") return;
  const t = audio.currentTime + 0.01;
  if (kind === "handoff") {
    tone(660, t, 0.18, 0.12);
    tone(990, t + 0.13, 0.28, 0.1);
  } else {
    tone(880, t, 0.16, 0.06);
  }
}

export function notificationState() {
  return "Notification" in window ? Notification.permission : "unsupported";
}

/** Ask for notification permission; only works from a user gesture. */
export async function askNotificationPermission() {
  if (!("Notification" in window) || Notification.permission !== "default") return notificationState();
  try {
    return await Notification.requestPermission();
  } catch {
    return notificationState();
  }
}

/** A desktop notification, only when the agent is looking elsewhere. Clicking it opens `onClick`. */
export function desktopNotify(title, body, tag, onClick) {
  if (notificationState() !== "granted" || (document.visibilityState === "visible" && document.hasFocus())) return;
  try {
    const n = new Notification(title, { body, tag, renotify: false, silent: true });
    n.onclick = () => {
      window.focus();
      onClick && onClick();
      n.close();
    };
    setTimeout(() => n.close(), 15000);
  } catch {
    /* some browsers only allow notifications from a service worker */
  }
}

let baseTitle = "Inbox";
let alertText = null;
let alertTimer = null;
let alertPhase = false;

export function setTitleCount(n) {
  baseTitle = n > 0 ? `(${n}) Inbox` : "Inbox";
  if (!alertText && document.title !== baseTitle) document.title = baseTitle;
}

/** While the inbox tab is in the background, alternate the title with `text` (e.g. "New: Emma")
 * so the tab catches the eye in a row of tabs; stops as soon as the agent comes back. */
export function titleAlert(text) {
  if (document.visibilityState !== "hidden") return;
  alertText = text;
  if (alertTimer) return;
  alertTimer = setInterval(() => {
    if (document.visibilityState !== "hidden") return stopTitleAlert();
    alertPhase = !alertPhase;
    document.title = alertPhase ? `● ${alertText}` : baseTitle;
  }, 1200);
}

function stopTitleAlert() {
  clearInterval(alertTimer);
  alertTimer = null;
  alertText = null;
  alertPhase = false;
  document.title = baseTitle;
}

document.addEventListener("visibilitychange", () => {
  if (document.visibilityState !== "hidden" && alertTimer) stopTitleAlert();
});
