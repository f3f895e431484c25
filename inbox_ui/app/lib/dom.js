// The only way the inbox builds DOM. User data (visitor text, names, notes, facts) only ever
// becomes a Text node or a textContent; there is no innerHTML anywhere in the app, so a message
// like `<img src=x onerror=alert(1)>` is shown literally.

const BLOCKED_ATTR = /^(on|innerhtml$|outerhtml$|srcdoc$)/i;

/**
 * h("button", {class: "btn", on: {click: fn}, attrs: {title: "x"}, dataset: {id: 1}}, "Label", child)
 * Props: class (string | array), text, attrs, dataset, on, and a few DOM properties
 * (value, checked, disabled, hidden, type, htmlFor, tabIndex, id, title, placeholder, name).
 */
export function h(tag, props, ...children) {
  const el = document.createElement(tag);
  if (props) applyProps(el, props);
  append(el, children);
  return el;
}

const PROPERTIES = new Set([
  "value", "checked", "disabled", "hidden", "type", "htmlFor", "tabIndex", "id", "title",
  "placeholder", "name", "rows", "autocomplete", "required", "maxLength", "open", "spellcheck",
]);

function applyProps(el, props) {
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null) continue;
    if (value === false && !PROPERTIES.has(key)) continue;
    if (key === "class") {
      el.className = Array.isArray(value) ? value.filter(Boolean).join(" ") : value;
    } else if (key === "text") {
      el.textContent = String(value);
    } else if (key === "on") {
      for (const [name, fn] of Object.entries(value)) el.addEventListener(name, fn);
    } else if (key === "dataset") {
      for (const [k, v] of Object.entries(value)) if (v !== undefined && v !== null) el.dataset[k] = String(v);
    } else if (key === "attrs") {
      for (const [k, v] of Object.entries(value)) setAttr(el, k, v);
    } else if (PROPERTIES.has(key)) {
      el[key] = value;
    } else {
      setAttr(el, key, value);
    }
  }
}

export function setAttr(el, name, value) {
  if (BLOCKED_ATTR.test(name)) throw new Error(`refusing to set attribute ${name}`);
  if (value === false || value === null || value === undefined) el.removeAttribute(name);
  else el.setAttribute(name, value === true ? "" : String(value));
}

export function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false || child === "") continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

/** Replace all children of `el`. */
export function mount(el, ...children) {
  el.replaceChildren();
  return append(el, children);
}

export function $(selector, root = document) {
  return root.querySelector(selector);
}

/** An inline SVG icon from a fixed, trusted set of path data (never user data). */
const ICONS = {
  send: "M3 20.5 21 12 3 3.5v6.8l12 1.7-12 1.7z",
  note: "M19 3H5a2 2 0 0 0-2 2v14a2 2 0 0 0 2 2h10l6-6V5a2 2 0 0 0-2-2zM7 8h10v2H7zm5 6H7v-2h5zm2 5.5V14h5.5z",
  bell: "M12 22a2.5 2.5 0 0 0 2.4-2h-4.8a2.5 2.5 0 0 0 2.4 2zM19 17v-6a7 7 0 0 0-5.5-6.8V3a1.5 1.5 0 0 0-3 0v1.2A7 7 0 0 0 5 11v6l-2 2h18z",
  mute: "M16.5 12A4.5 4.5 0 0 0 14 8v2.2l2.4 2.4c.1-.2.1-.4.1-.6zM19 12c0 .9-.2 1.8-.5 2.6l1.5 1.5A8.8 8.8 0 0 0 21 12a9 9 0 0 0-7-8.8v2.1A7 7 0 0 1 19 12zM4.3 3 3 4.3 7.7 9H3v6h4l5 5v-6.7l4.3 4.3a7 7 0 0 1-2.3 1.2v2.1a9 9 0 0 0 3.7-1.8l2 2L21 19.7zM12 4 9.9 6.1 12 8.2z",
  sound: "M3 9v6h4l5 5V4L7 9zm13.5 3A4.5 4.5 0 0 0 14 8v8a4.5 4.5 0 0 0 2.5-4zM14 3.2v2.1a7 7 0 0 1 0 13.4v2.1a9 9 0 0 0 0-17.6z",
  back: "M10 9V5l-7 7 7 7v-4.1c5 0 8.5 1.6 11 5.1-1-5-4-10-11-11z",
  check: "M9 16.2 4.8 12l-1.4 1.4L9 19 21 7l-1.4-1.4z",
  user: "M12 12a4 4 0 1 0 0-8 4 4 0 0 0 0 8zm0 2c-2.7 0-8 1.3-8 4v2h16v-2c0-2.7-5.3-4-8-4z",
  keyboard: "M20 5H4a2 2 0 0 0-2 2v10a2 2 0 0 0 2 2h16a2 2 0 0 0 2-2V7a2 2 0 0 0-2-2zm-9 3h2v2h-2zm0 3h2v2h-2zM8 8h2v2H8zm0 3h2v2H8zm-1 2H5v-2h2zm0-3H5V8h2zm9 7H8v-2h8zm0-4h-2v-2h2zm0-3h-2V8h2zm3 3h-2v-2h2zm0-3h-2V8h2z",
  inbox: "M19 3H5a2 2 0 0 0-2 2v14a2 2 0 0 0 2 2h14a2 2 0 0 0 2-2V5a2 2 0 0 0-2-2zm0 12h-4a3 3 0 0 1-6 0H5V5h14z",
  bolt: "M7 2v11h3v9l7-12h-4l4-8z",
  transfer: "M4 5h11V2l5 5-5 5V9H4zm16 10H9v-3l-5 5 5 5v-3h11z",
  escalate: "M10 12a4 4 0 1 0 0-8 4 4 0 0 0 0 8zm0 2c-3 0-8 1.5-8 4.5V20h16v-1.5c0-3-5-4.5-8-4.5zM19 1.5l4 4h-3V11h-2V5.5h-3z",
  team: "M9 11a3.5 3.5 0 1 0 0-7 3.5 3.5 0 0 0 0 7zm7.5 0a3 3 0 1 0 0-6 3 3 0 0 0 0 6zM9 13c-2.7 0-7 1.3-7 4v2h14v-2c0-2.7-4.3-4-7-4zm7.5 0c-.4 0-.8 0-1.3.1 1.1.9 1.8 2.1 1.8 3.9v2h6v-2c0-2.6-4-4-6.5-4z",
  // A ticket outline with a dashed tear line (drawn with evenodd: the inner shape is a hole).
  ticket: "M4 5h16a1 1 0 0 1 1 1v3a3 3 0 0 0 0 6v3a1 1 0 0 1-1 1H4a1 1 0 0 1-1-1v-3a3 3 0 0 0 0-6V6a1 1 0 0 1 1-1zm1 2v2.6a5 5 0 0 1 0 4.8V17h14v-2.6a5 5 0 0 1 0-4.8V7zm9 1h1.6v2.2H14zm0 3.4h1.6v2.2H14zm0 3.4h1.6V17H14z",
  info: "M12 2a10 10 0 1 0 0 20 10 10 0 0 0 0-20zm1 15h-2v-6h2zm0-8h-2V7h2z",
};

const EVENODD = new Set(["ticket"]);

export function icon(name, extraClass = "") {
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("aria-hidden", "true");
  svg.setAttribute("class", `icon ${extraClass}`.trim());
  const path = document.createElementNS(ns, "path");
  path.setAttribute("d", ICONS[name] || "");
  if (EVENODD.has(name)) path.setAttribute("fill-rule", "evenodd");
  svg.append(path);
  return svg;
}
