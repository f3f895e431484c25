// The reply box: public reply or internal note (yellow), Enter sends, Shift+Enter is a new line,
// "/" searches saved replies. What is typed is saved per conversation and mode in sessionStorage,
// so switching conversations or reloading never loses a draft.

import { h, mount, icon } from "../lib/dom.js";
import { state, loadDraft, saveDraft, changed, flash } from "../lib/store.js";
import { send, claim, explain } from "../lib/actions.js";
import { api } from "../lib/api.js";

const modes = new Map(); // conversation id -> "reply" | "note"

export function createComposer({ onSaveCanned }) {
  const textarea = h("textarea", {
    class: "composer-input",
    rows: 2,
    attrs: { "aria-label": "Message", autocomplete: "off" },
    spellcheck: true,
  });
  const popup = h("div", { class: "canned-popup", hidden: true, attrs: { role: "listbox", "aria-label": "Saved replies" } });
  const tabReply = h("button", { class: "mode", type: "button", dataset: { mode: "reply" }, title: "Reply to the visitor (R)" }, "Reply");
  const tabNote = h("button", { class: "mode", type: "button", dataset: { mode: "note" }, title: "Internal note, only agents see it (N)" }, icon("note"), "Internal note");
  const banner = h("div", { class: "composer-banner", hidden: true });
  const sendBtn = h("button", { class: "btn btn-primary send", type: "button" });
  const hint = h("span", { class: "composer-hint" });
  const saveBtn = h("button", { class: "link", type: "button", title: "Save the text as a reply you can insert with /shortcut" }, "Save for reuse…");
  const el = h(
    "div",
    { class: "composer" },
    h("div", { class: "composer-tabs", attrs: { role: "tablist" } }, tabReply, tabNote),
    banner,
    h("div", { class: "composer-box" }, popup, textarea),
    h("div", { class: "composer-foot" }, hint, h("span", { class: "spacer" }), saveBtn, sendBtn),
  );

  let canned = { items: [], index: 0, open: false, start: 0 };
  let saveTimer = null;

  const current = () => state.selectedId;
  const modeOf = (id) => modes.get(id) || "reply";

  function setMode(mode, focus = true) {
    const id = current();
    if (!id) return;
    modes.set(id, mode);
    render(); // saves the other mode's draft, shows this one's
    if (focus && !textarea.disabled) textarea.focus();
  }

  tabReply.addEventListener("click", () => setMode("reply"));
  tabNote.addEventListener("click", () => setMode("note"));
  saveBtn.addEventListener("click", () => onSaveCanned(textarea.value.trim()));
  sendBtn.addEventListener("click", () => submit());

  function flushDraft() {
    clearTimeout(saveTimer);
    // The textarea holds the draft of the conversation and mode it was last rendered for.
    if (el.dataset.for) saveDraft(el.dataset.for, el.dataset.mode, textarea.value);
  }

  textarea.addEventListener("input", () => {
    autosize();
    clearTimeout(saveTimer);
    const id = current();
    const mode = modeOf(id);
    saveTimer = setTimeout(() => {
      saveDraft(id, mode, textarea.value);
      changed("list");
    }, 250);
    updateCanned();
  });
  textarea.addEventListener("blur", () => {
    flushDraft();
    // Close the saved-reply list a moment later (a click on an item lands first), but only if the
    // box is still left: an agent who clicks away and straight back, and starts a /shortcut within
    // that moment, must not see the list vanish, or Enter would send "/shortcut" to the visitor.
    setTimeout(() => {
      if (document.activeElement !== textarea) closeCanned();
    }, 150);
  });
  textarea.addEventListener("keydown", (e) => {
    if (canned.open) {
      if (e.key === "ArrowDown" || e.key === "ArrowUp") {
        e.preventDefault();
        const n = canned.items.length;
        if (n) canned.index = (canned.index + (e.key === "ArrowDown" ? 1 : n - 1)) % n;
        renderCanned();
        return;
      }
      if ((e.key === "Enter" || e.key === "Tab") && canned.items.length) {
        e.preventDefault();
        insertCanned(canned.items[canned.index]);
        return;
      }
      if (e.key === "Escape") {
        e.preventDefault();
        e.stopPropagation();
        closeCanned();
        return;
      }
    }
    if (e.key === "Enter" && !e.shiftKey && !e.altKey && !e.isComposing) {
      e.preventDefault();
      submit();
    } else if (e.key === "Escape") {
      e.preventDefault();
      e.stopPropagation();
      textarea.blur();
    }
  });

  function autosize() {
    textarea.style.height = "auto";
    textarea.style.height = `${Math.min(textarea.scrollHeight + 2, 260)}px`;
  }

  /** What the agent may do here: {reply: bool, why: string, claimFirst: bool}. */
  function permissions() {
    const row = state.conversations.get(current());
    const me = state.me?.username;
    if (!row) return { reply: false, why: "" };
    if (row.status === "assigned" && row.assignee === me) return { reply: true };
    if (row.status === "queued") return { reply: true, claimFirst: true };
    if (row.status === "assigned") {
      return { reply: false, why: `${row.assignee_name || row.assignee} is handling this conversation. You can leave an internal note.` };
    }
    if (row.status === "resolved") return { reply: false, why: "This conversation is resolved; the bot is looking after the visitor. You can leave an internal note." };
    return { reply: false, why: "The bot is handling this conversation. You can reply once it is handed to a person; internal notes are always possible." };
  }

  async function submit() {
    const id = current();
    if (!id) return;
    const text = textarea.value.trim();
    if (!text) return;
    const mode = modeOf(id);
    if (mode === "reply") {
      const can = permissions();
      if (!can.reply) {
        flash(can.why, "error");
        return;
      }
      if (can.claimFirst) {
        // Replying to a waiting visitor takes the conversation, as in every chat inbox.
        sendBtn.disabled = true;
        try {
          await claim(id);
        } finally {
          sendBtn.disabled = false;
        }
        const row = state.conversations.get(id);
        if (!(row && row.status === "assigned" && row.assignee === state.me.username)) return; // claim failed: text stays
      }
    }
    send(id, mode, text);
    textarea.value = "";
    saveDraft(id, mode, "");
    autosize();
    closeCanned();
    changed("list");
  }

  // -- saved replies ("/shortcut") ----------------------------------------------------------------
  let cannedLoadedAt = 0;
  async function ensureCanned() {
    if (Date.now() - cannedLoadedAt < 60000) return;
    cannedLoadedAt = Date.now();
    try {
      state.canned = (await api.canned()).canned || [];
    } catch (err) {
      cannedLoadedAt = 0;
      flash(explain(err), "error");
    }
  }

  function slashQuery() {
    const pos = textarea.selectionStart;
    const before = textarea.value.slice(0, pos);
    const m = /(^|\s)\/([\w-]*)$/.exec(before);
    if (!m) return null;
    return { query: m[2].toLowerCase(), start: pos - m[2].length - 1 };
  }

  async function updateCanned() {
    const q = slashQuery();
    if (!q) return closeCanned();
    await ensureCanned();
    const again = slashQuery();
    if (!again) return closeCanned();
    const query = again.query;
    const scored = state.canned
      .map((c) => {
        const sc = c.shortcut.toLowerCase();
        const score = !query ? 1 : sc.startsWith(query) ? 3 : sc.includes(query) ? 2 : c.text.toLowerCase().includes(query) ? 1 : 0;
        return { c, score };
      })
      .filter((x) => x.score > 0)
      .sort((a, b) => b.score - a.score || a.c.shortcut.localeCompare(b.c.shortcut));
    canned = { items: scored.slice(0, 8).map((x) => x.c), index: 0, open: true, start: again.start, query };
    renderCanned();
  }

  function renderCanned() {
    popup.hidden = !canned.open;
    if (!canned.open) return;
    if (!canned.items.length) {
      mount(popup, h("div", { class: "canned-empty" },
        state.canned.length ? `No saved reply matches “/${canned.query}”.` : "No saved replies yet.",
        " Write the text, then use “Save for reuse…”."));
      return;
    }
    mount(
      popup,
      h("div", { class: "canned-head" }, "Saved replies", h("span", null, "↑↓ choose · Enter insert · Esc close")),
      canned.items.map((c, i) =>
        h(
          "div",
          {
            class: ["canned-item", i === canned.index && "active"],
            attrs: { role: "option", "aria-selected": i === canned.index ? "true" : "false" },
            on: {
              mousedown: (e) => {
                e.preventDefault();
                insertCanned(c);
              },
            },
          },
          h("span", { class: "canned-shortcut" }, `/${c.shortcut}`),
          h("span", { class: "canned-text" }, c.text),
        ),
      ),
    );
  }

  function insertCanned(c) {
    const end = textarea.selectionStart;
    const value = textarea.value;
    textarea.value = value.slice(0, canned.start) + c.text + value.slice(end);
    const caret = canned.start + c.text.length;
    textarea.setSelectionRange(caret, caret);
    closeCanned();
    autosize();
    textarea.dispatchEvent(new Event("input"));
    textarea.focus();
  }

  function closeCanned() {
    if (!canned.open) return;
    canned = { items: [], index: 0, open: false, start: 0 };
    popup.hidden = true;
  }

  // -- render --------------------------------------------------------------------------------------
  function render() {
    const id = current();
    el.hidden = !id;
    if (!id) return;
    const mode = modeOf(id);
    if (el.dataset.for !== id || el.dataset.mode !== mode) {
      // Another conversation or mode: keep the old draft, show this one's.
      flushDraft();
      el.dataset.for = id;
      el.dataset.mode = mode;
      textarea.value = loadDraft(id, mode);
      closeCanned();
      requestAnimationFrame(autosize);
    }
    const can = permissions();
    const blocked = mode === "reply" && !can.reply;
    tabReply.classList.toggle("active", mode === "reply");
    tabNote.classList.toggle("active", mode === "note");
    tabReply.setAttribute("aria-selected", String(mode === "reply"));
    tabNote.setAttribute("aria-selected", String(mode === "note"));
    textarea.disabled = blocked;
    banner.hidden = !(blocked || (mode === "reply" && can.claimFirst));
    if (blocked) {
      mount(banner, h("span", null, can.why), h("button", { class: "link", type: "button", on: { click: () => setMode("note") } }, "Write a note (N)"));
      banner.className = "composer-banner";
    } else if (mode === "reply" && can.claimFirst) {
      mount(banner, h("span", null, "Nobody has this conversation yet. Sending a reply assigns it to you."),
        h("button", { class: "link", type: "button", on: { click: () => claim(id) } }, "Assign to me (A)"));
      banner.className = "composer-banner info";
    }
    textarea.placeholder = mode === "note"
      ? "Internal note: only agents see it  (Enter adds · Shift+Enter new line)"
      : blocked ? "" : "Reply to the visitor…  (Enter sends · Shift+Enter new line · / saved replies)";
    mount(sendBtn, icon(mode === "note" ? "note" : "send"), mode === "note" ? "Add note" : "Send");
    sendBtn.disabled = blocked;
    hint.textContent = mode === "note" ? "Notes never reach the visitor." : "";
    saveBtn.hidden = mode === "note";
    if (state.focusComposer && !textarea.disabled) {
      state.focusComposer = false;
      textarea.focus();
    }
  }

  return {
    el,
    render,
    focus(mode) {
      if (!current()) return;
      if (mode && mode !== modeOf(current())) setMode(mode);
      else if (!textarea.disabled) textarea.focus();
      else if (mode === "reply") flash(permissions().why, "error");
    },
    startCanned() {
      if (!current()) return;
      if (modeOf(current()) !== "reply") setMode("reply", false);
      if (textarea.disabled) return;
      textarea.focus();
      const v = textarea.value;
      if (!v.endsWith("/")) textarea.value = v + (v && !/\s$/.test(v) ? " /" : "/");
      textarea.setSelectionRange(textarea.value.length, textarea.value.length);
      textarea.dispatchEvent(new Event("input"));
    },
    isOpen: () => canned.open,
    flushDraft,
  };
}
