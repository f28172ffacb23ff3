// Small DOM helpers. Everything is built with createElement / textContent (never innerHTML
// from strings), so the page works under a CSP without 'unsafe-inline' and no value a router
// or an operator typed can become markup.

export const $ = (id) => document.getElementById(id);

/** Creates an element: `el("td", {class: "x", "data-user": k}, "text" | Node | [...])`. */
export function el(tag, attrs = {}, children = []) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") e.className = v;
    else if (k === "text") e.textContent = v;
    else e.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of [].concat(children)) {
    if (c === undefined || c === null) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

/** The children that are there (`replaceChildren` would print `null` as text). */
export const present = (...xs) => xs.filter((x) => x !== null && x !== undefined && x !== false);

/** Runs `fn` once input has been quiet for `ms`. */
export function debounce(fn, ms = 120) {
  let t;
  return (...args) => {
    clearTimeout(t);
    t = setTimeout(() => fn(...args), ms);
  };
}

const INT = new Intl.NumberFormat("en-US");
export const fmtInt = (n) => INT.format(n);
/** A share in [0, 1] as a percentage with two decimals. */
export const fmtShare = (x) => `${(100 * x).toFixed(2)} %`;
/** A count out of a total as a percentage (display only). */
export const fmtOf = (n, total) => (total > 0 ? fmtShare(n / total) : "–");

/** Milliseconds as a short duration: 90 s, 45 min, 3 h 20 min, 2 d 4 h. */
export function fmtDuration(ms) {
  const s = Math.round(ms / 1000);
  if (s < 120) return `${s} s`;
  const m = Math.round(s / 60);
  if (m < 120) return `${m} min`;
  const h = Math.floor(m / 60);
  if (h < 48) return m % 60 ? `${h} h ${m % 60} min` : `${h} h`;
  const d = Math.floor(h / 24);
  return h % 24 ? `${d} d ${h % 24} h` : `${d} d`;
}

/** Seconds on a replay clock: 12 s, 12.5 s, 3 min 20 s. */
export function fmtClock(ms) {
  const s = ms / 1000;
  if (s < 600) return `${Number.isInteger(s) ? s : s.toFixed(2)} s`;
  return `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
}

/** Replaces a table body's rows. */
export function fillRows(tbody, rows) {
  tbody.replaceChildren(...rows.map((cells) => el("tr", {}, cells.map((c) => (c instanceof Node && c.tagName === "TD" ? c : el("td", {}, c))))));
}

/** A JS error from the core as text ("field: message" for field errors). */
export const errText = (e) => String(e?.message ?? e);

/** Parses a JSON object typed by the operator; throws a readable error. */
export function parseObject(text, what) {
  const t = text.trim();
  if (!t) return {};
  let v;
  try {
    v = JSON.parse(t);
  } catch (e) {
    throw new Error(`${what} is not valid JSON: ${e.message}`);
  }
  if (v === null || typeof v !== "object" || Array.isArray(v)) throw new Error(`${what} must be a JSON object of variables`);
  return v;
}

/** `Name: value` lines → `{name: value}`. */
export function parseHeaders(text) {
  const h = {};
  for (const line of text.split("\n")) {
    const i = line.indexOf(":");
    if (i > 0) h[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
  }
  return h;
}
