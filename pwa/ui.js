// Tiny rendering helpers: an escaping html`` template, icons, toasts.

class Raw {
  constructor(s) { this.s = s; }
  toString() { return this.s; }
}

export const raw = (s) => new Raw(s);
const ESC = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };
export const esc = (v) => String(v ?? "").replace(/[&<>"']/g, (c) => ESC[c]);

const part = (v) => (v instanceof Raw ? v.s : Array.isArray(v) ? v.map(part).join("") : v === false || v == null ? "" : esc(v));

/** html`<p>${text}</p>`: interpolations are escaped unless they are html`` results (or arrays of them). */
export function html(strings, ...values) {
  let out = strings[0];
  for (let i = 0; i < values.length; i++) out += part(values[i]) + strings[i + 1];
  return new Raw(out);
}

const P = {
  bell: "M6 16V11a6 6 0 0 1 12 0v5l1.5 2h-15zM10 20.5a2 2 0 0 0 4 0",
  phone: "M6.6 3.5h3l1.5 4-2 1.3a11 11 0 0 0 6.1 6.1l1.3-2 4 1.5v3a2 2 0 0 1-2.2 2A17 17 0 0 1 4.6 5.7a2 2 0 0 1 2-2.2z",
  nav: "M12 21s-6.5-6-6.5-11a6.5 6.5 0 0 1 13 0c0 5-6.5 11-6.5 11zM12 12.5a2.5 2.5 0 1 0 0-5 2.5 2.5 0 0 0 0 5z",
  heart: "M12 20s-7-4.4-7-10a4 4 0 0 1 7-2.6A4 4 0 0 1 19 10c0 5.6-7 10-7 10z",
  clock: "M12 21a9 9 0 1 0 0-18 9 9 0 0 0 0 18zM12 7v5l3 2",
  tag: "M3.5 12.5V4.5h8l9 9-8 8zM8 9a1 1 0 1 0 0-2 1 1 0 0 0 0 2z",
  chevron: "M9 5l7 7-7 7",
  copy: "M8 8h11v12H8zM5 16V4h11",
  gift: "M4 10h16v10H4zM3 7h18v3H3zM12 7v13M12 7c-1-3-5-4-5-1.5S12 7 12 7zm0 0c1-3 5-4 5-1.5S12 7 12 7z",
  calendar: "M5 6h14v14H5zM5 10h14M9 3v5M15 3v5",
  map: "M9 4L3 6.5v13L9 17l6 2.5 6-2.5v-13L15 6.5zM9 4v13M15 6.5v13",
  spark: "M12 3l2.2 5.8L20 11l-5.8 2.2L12 19l-2.2-5.8L4 11l5.8-2.2z",
  store: "M4 9l1.5-5h13L20 9M4 9v11h16V9M4 9c0 2 3.5 2.5 4 0 .5 2.5 3.5 2.5 4 0 .5 2.5 3.5 2.5 4 0 .5 2.5 4 2 4 0M10 20v-5h4v5",
  search: "M11 17.5a6.5 6.5 0 1 0 0-13 6.5 6.5 0 0 0 0 13zM16 16l4.5 4.5",
  pin: "M12 21s-6.5-6-6.5-11a6.5 6.5 0 0 1 13 0c0 5-6.5 11-6.5 11z",
};

/** A server picture: srcset for the screen's density, its own width/height so nothing shifts while it loads,
 * lazy unless it is the page's first view (eager: the largest thing on screen, fetched first). */
export const picture = (img, sizes, cls, eager = false) => (img ? html`<img class="${cls}" src="${img.url}" srcset="${img.srcset}" sizes="${sizes}" width="${img.width}" height="${img.height}" alt="${img.alt}" decoding="async"${raw(eager ? ' fetchpriority="high"' : ' loading="lazy"')}>` : "");

export const icon = (name, cls = "i") => raw(`<svg class="${cls}" aria-hidden="true" viewBox="0 0 24 24"><path d="${P[name]}"/></svg>`);

let toastTimer;
/** A short message in the polite live region; with an action button when `action` is given. */
export function toast(message, action) {
  const el = document.getElementById("toast");
  clearTimeout(toastTimer);
  el.innerHTML = html`<span>${message}</span>${action ? html`<button type="button">${action.label}</button>` : ""}`.s;
  el.hidden = false;
  if (action) el.querySelector("button").addEventListener("click", action.run, { once: true });
  else toastTimer = setTimeout(() => { el.hidden = true; }, 2600);
}

export const $ = (sel, root = document) => root.querySelector(sel);
export const $$ = (sel, root = document) => [...root.querySelectorAll(sel)];
