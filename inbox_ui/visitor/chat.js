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
    try { window.localStorage.removeItem("chat_session"); } catch (e) { /* private mode */ }
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
  if (q.has("delay")) {
    var delay = Math.max(0, Number(q.get("delay")) || 0);
    config.customMessageDelay = function () { return delay; };
  }

  var mount = document.createElement("div");
  mount.id = "webchat";
  document.body.appendChild(mount);
  window.WebChat.default(config, null);
})();
