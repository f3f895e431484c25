// The stock rasa-webchat widget, connected to the handoff gateway (same origin, /socket.io/).
// Query parameters, for demos and tests:
//   delay=0    no "typing" delay before bot messages (customMessageDelay)
//   vip=1      customData.tier = "vip"
//   name=Emma  customData.name (the inbox shows it instead of "Visitor 3f2a")
//   reset=1    forget the stored conversation and start a new one
(function () {
  "use strict";
  var q = new URLSearchParams(window.location.search);
  if (q.get("reset") === "1") {
    try {
      window.localStorage.removeItem("chat_session");
      window.localStorage.removeItem("handoff_status");
    } catch (e) { /* private mode */ }
  }

  var customData = { language: "en" };
  if (q.get("vip") === "1") customData.tier = "vip";
  var name = (q.get("name") || "").trim();
  if (name) customData.name = name.slice(0, 60);

  var avatar = "data:image/svg+xml," + encodeURIComponent(
    "<svg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 40 40'><rect width='40' height='40' rx='20' fill='#1f4d3a'/>" +
    "<path d='M13 28V12l14 16V12' stroke='#f3e7c9' stroke-width='2.6' fill='none' stroke-linecap='round' stroke-linejoin='round'/></svg>");

  var config = {
    selector: "#webchat",
    socketUrl: window.location.protocol + "//" + window.location.host,
    socketPath: "/socket.io/",
    initPayload: "/greet",
    customData: customData,
    params: { storage: "local" },
    // Show "Waiting for server..." instead of hiding the chat while the connection is down.
    hideWhenNotConnected: false,
    title: "Northwind Shop",
    subtitle: "Our assistant, with people from our team",
    inputTextFieldHint: "Type a message…",
    profileAvatar: avatar,
    showMessageDate: true,
    mainColor: "#1f4d3a",
    userBackgroundColor: "#1f4d3a",
    userTextColor: "#ffffff",
  };
  // A status line under the widget's header: who the visitor is talking to, or their place in the
  // queue. The stock widget renders each status as plain text already; the page reads the richer
  // `metadata.handoff` the gateway adds (the widget strips metadata before rendering).
  var status = loadStatus();
  config.onSocketEvent = {
    bot_uttered: function (message) {
      var next = statusFrom(message, status);
      if (next) {
        status = next;
        saveStatus(status);
        showStatus();
      }
    },
  };
  new MutationObserver(showStatus).observe(document.body, { childList: true, subtree: true });

  function statusFrom(message, current) {
    var meta = message && message.metadata;
    var handoff = meta && meta.handoff;
    if (handoff && handoff.status === "queued") {
      return { kind: "queued", position: handoff.queue_position || current.position || null,
               wait: handoff.expected_wait_s != null ? handoff.expected_wait_s : current.wait };
    }
    if (handoff && handoff.status === "assigned" && handoff.agent_name) {
      return { kind: "agent", agent: handoff.agent_name };
    }
    if (handoff && (handoff.status === "bot" || handoff.status === "resolved")) return { kind: "bot" };
    if (meta && meta.role === "agent" && meta.author_name) return { kind: "agent", agent: meta.author_name };
    // The assistant speaks only when it owns the conversation again (e.g. the visitor stopped waiting).
    if (!meta && current.kind === "queued" && message && message.text) return { kind: "bot" };
    return null;
  }

  function statusText(s) {
    if (s.kind === "agent") return "Chatting with " + s.agent + " from our team";
    if (s.kind !== "queued") return "";
    var text = "Waiting for a person";
    if (s.position) text += " · number " + s.position + " in the queue";
    if (s.wait != null) text += " · about " + Math.max(1, Math.round(s.wait / 60)) + " min";
    return text;
  }

  function showStatus() {
    var holder = document.querySelector(".rw-header-and-loading");
    if (!holder) return;  // the chat is closed
    var line = holder.querySelector(".handoff-status");
    var text = statusText(status);
    if (!line) {
      if (!text) return;
      line = document.createElement("div");
      line.className = "handoff-status";
      line.setAttribute("role", "status");
      holder.appendChild(line);
    }
    if (line.textContent !== text) line.textContent = text;  // textContent: names are never HTML
    line.dataset.kind = status.kind;
    line.hidden = !text;
  }

  function loadStatus() {
    try { return JSON.parse(window.localStorage.getItem("handoff_status")) || { kind: "bot" }; }
    catch (e) { return { kind: "bot" }; }
  }

  function saveStatus(s) {
    try { window.localStorage.setItem("handoff_status", JSON.stringify(s)); } catch (e) { /* private mode */ }
  }

  if (q.has("delay")) {
    var delay = Math.max(0, Number(q.get("delay")) || 0);
    config.customMessageDelay = function () { return delay; };
  }

  var mount = document.createElement("div");
  mount.id = "webchat";
  document.body.appendChild(mount);
  window.WebChat.default(config, null);
})();
