// The login screen.

import { h, icon } from "../lib/dom.js";
import { api, setToken } from "../lib/api.js";
import { explain } from "../lib/actions.js";
import { askNotificationPermission, unlockAudio } from "../lib/notify.js";

export function createLogin(onLoggedIn, message = "") {
  const username = h("input", { type: "text", name: "username", autocomplete: "username", required: true, attrs: { autofocus: true, "aria-label": "Username" } });
  const password = h("input", { type: "password", name: "password", autocomplete: "current-password", required: true, attrs: { "aria-label": "Password" } });
  const error = h("p", { class: "form-error", attrs: { role: "alert" } }, message);
  const submit = h("button", { class: "btn btn-primary btn-block", type: "submit" }, "Log in");
  const form = h(
    "form",
    { class: "login-card" },
    h("div", { class: "brand brand-lg" }, icon("inbox"), h("span", null, "Inbox")),
    h("p", { class: "muted" }, "Conversations the bot hands over to people."),
    h("label", { class: "field" }, h("span", null, "Username"), username),
    h("label", { class: "field" }, h("span", null, "Password"), password),
    error,
    submit,
  );
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    // This click is a user gesture: the only moment the browser lets us unlock sound and ask
    // for notifications without an extra button press.
    unlockAudio();
    askNotificationPermission();
    submit.disabled = true;
    error.textContent = "";
    try {
      const res = await api.login(username.value.trim(), password.value);
      setToken(res.token);
      onLoggedIn(res.agent);
    } catch (err) {
      error.textContent = err.status === 401 ? "Wrong username or password." : explain(err);
      submit.disabled = false;
      password.select();
    }
  });
  setTimeout(() => username.focus(), 0);
  return h("div", { class: "login" }, form);
}
