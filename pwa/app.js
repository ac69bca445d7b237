// Shangquan shopper PWA: client-side routing over the history API, language switch, service worker.
import { ApiError, OfflineError, seen } from "./api.js";
import { applyLocale, t } from "./i18n.js";
import * as screens from "./screens.js";
import { $, $$, html, toast } from "./ui.js";

const ROUTES = [
  [/^\/(?:app\/(?:index\.html)?)?$/, screens.home, "home"],
  [/^\/d\/([\w-]+)$/, screens.district, "home", true, "District"],
  [/^\/m\/([\w-]+)$/, screens.merchant, "merchants", true, "Merchant"],
  [/^\/merchants$/, screens.merchants, "merchants"],
  [/^\/gifts$/, screens.gifts, "gifts"],
  [/^\/festivals$/, screens.festivals, "festivals"],
  [/^\/search$/, screens.search, null, true],
  [/^\/favourites$/, screens.saved, "favourites"],
  [/^\/inbox$/, screens.inboxScreen, "inbox"],
  [/^\/coupons$/, screens.couponsScreen, "coupons"],
  [/^\/settings$/, screens.settings, "settings"],
];

/** The API's ID for a path segment: links from notifications and the back office may use the readable key
 * (/d/huaqiangbei) where the app's own links use the global ID. */
function globalId(param, type) {
  if (!type) return param;
  try {
    if (atob(param.replace(/-/g, "+").replace(/_/g, "/")).startsWith(`${type}:`)) return param;
  } catch { /* not base64: a readable key */ }
  return btoa(`${type}:${param}`).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

const main = $("#main");
let current = 0;
let leaving = [];
let firstRender = true;

async function render({ restoreScroll = null } = {}) {
  const token = ++current;
  for (const fn of leaving) fn();
  leaving = [];
  const after = [];
  const path = location.pathname;
  let match = null;
  let route = null;
  for (const r of ROUTES) {
    match = r[0].exec(path);
    if (match) { route = r; break; }
  }
  const ctx = {
    main,
    params: match ? match.slice(1).map(decodeURIComponent).map((p) => globalId(p, route[4])) : [],
    query: new URLSearchParams(location.search),
    alive: () => token === current,
    onLeave: (fn) => leaving.push(fn),
    afterRender: (fn) => after.push(fn),
    rerender: () => { saveScroll(); render({ restoreScroll: window.scrollY }).then(showUnread); },
  };
  for (const a of $$(".tabbar a, #inbox-link, #coupons-link, #settings-link")) {
    if (route && a.dataset.tab === route[2]) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  $("#back").hidden = !(route && route[3]);
  main.setAttribute("aria-busy", "true");
  if (!firstRender && main.querySelector(".loading") === null) {
    main.innerHTML = html`<div class="loading"><div class="sk sk-title"></div><div class="sk"></div><div class="sk"></div></div>`.s;
  }
  let result = {};
  try {
    result = route ? await route[1](ctx) : screens.notFound(ctx);
  } catch (err) {
    if (token !== current) return;
    result = failure(err);
  }
  if (token !== current) return;
  screenSaved = !result.unsaved;
  showNetwork();
  main.removeAttribute("aria-busy");
  document.title = result.title ? `${result.title} · ${t("app")}` : t("app");
  if (restoreScroll != null) window.scrollTo(0, restoreScroll);
  else if (!location.hash) window.scrollTo(0, 0);
  for (const fn of after) fn();
  if (!firstRender && result.focus !== false) main.querySelector("h1")?.focus({ preventScroll: true });
  firstRender = false;
  document.documentElement.dataset.ready = path; // lets tests and tools know a screen is done
}

function failure(err) {
  const offline = err instanceof OfflineError;
  const missing = err instanceof ApiError && (err.code === "NOT_FOUND" || err.code === "INVALID_ID");
  if (missing) return screens.notFound({ main });
  if (!(offline)) console.error(err);
  main.innerHTML = html`<div class="empty" role="alert">
    <span>${offline ? t("offlineEmpty") : t("error")}</span>
    <button type="button" class="btn" id="retry">${t("retry")}</button></div>`.s;
  $("#retry").addEventListener("click", () => render());
  return { title: offline ? t("offline") : t("error"), unsaved: offline };
}

// ------------------------------------------------------------- navigation

function saveScroll() {
  history.replaceState({ ...(history.state || {}), scroll: window.scrollY }, "");
}

export function navigate(url, { replace = false } = {}) {
  const target = new URL(url, location.href);
  if (target.origin !== location.origin) { location.href = url; return; }
  saveScroll();
  const depth = (history.state && history.state.depth) || 0;
  if (replace) history.replaceState({ depth }, "", target.pathname + target.search + target.hash);
  else history.pushState({ depth: depth + 1 }, "", target.pathname + target.search + target.hash);
  render();
}

document.addEventListener("click", (e) => {
  if (e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
  const a = e.target.closest("a[href]");
  if (!a || a.target || a.hasAttribute("download")) return;
  const url = new URL(a.href, location.href);
  if (url.origin !== location.origin || !ROUTES.some((r) => r[0].test(url.pathname))) return;
  e.preventDefault();
  if (a.id === "back") {
    if (history.state && history.state.depth > 0) history.back();
    else navigate("/", { replace: true });
    return;
  }
  if (url.pathname === location.pathname && url.search === location.search && url.hash === location.hash) return;
  navigate(url.href);
});

window.addEventListener("popstate", (e) => render({ restoreScroll: e.state && e.state.scroll }));
history.scrollRestoration = "manual";

// ------------------------------------------------------------- network status

const netbar = $("#netbar");
let screenSaved = true; // whether the screen shown came out of what the device had saved
/** The offline line: "showing saved content" only above a screen that is; else just "offline". */
function showNetwork() {
  netbar.hidden = navigator.onLine;
  netbar.textContent = navigator.onLine ? "" : t(screenSaved ? "offlineSaved" : "offline");
}
window.addEventListener("offline", showNetwork);
window.addEventListener("online", () => { showNetwork(); toast(t("online")); });

// ------------------------------------------------------------- service worker

async function registerServiceWorker() {
  if (!("serviceWorker" in navigator)) return;
  const sw = navigator.serviceWorker;
  let reloadOnChange = false;
  const hadController = Boolean(sw.controller);
  sw.addEventListener("controllerchange", () => {
    // Reload only after the user asked for the new version. The first install takes control quietly,
    // and the data this visit fetched before it had a worker is fetched again through it, so that
    // the pages seen on the very first visit work offline.
    if (reloadOnChange) location.reload();
    else if (!hadController) for (const url of seen) fetch(url).catch(() => {});
  });
  sw.addEventListener("message", (e) => {
    const msg = e.data || {};
    if (msg.type === "navigate" && typeof msg.url === "string") navigate(msg.url);
    if (msg.type === "pushed") showUnread(); // a new message: the bell counts it (the open inbox has it live)
  });
  const reg = await sw.register("/sw.js", { scope: "/", updateViaCache: "none" });
  const offer = (worker) => {
    if (!worker || !sw.controller) return;
    toast(t("updateReady"), {
      label: t("reload"),
      run: () => { reloadOnChange = true; worker.postMessage({ type: "SKIP_WAITING" }); },
    });
  };
  if (reg.waiting) offer(reg.waiting);
  reg.addEventListener("updatefound", () => {
    const w = reg.installing;
    w?.addEventListener("statechange", () => { if (w.state === "installed") offer(w); });
  });
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible") reg.update().catch(() => {});
  });
}

// ------------------------------------------------------------- start

// ------------------------------------------------------------- inbox badge

let unreadTimer;
/** Refreshes the bell's unread count (not on the inbox itself, which keeps it current). */
function showUnread() {
  clearTimeout(unreadTimer);
  unreadTimer = setTimeout(() => {
    if (location.pathname !== "/inbox") screens.checkInbox().catch(() => {});
  }, 300);
}
document.addEventListener("visibilitychange", () => { if (document.visibilityState === "visible") showUnread(); });

applyLocale();
showNetwork();
render().then(showUnread);
if (document.readyState === "complete") registerServiceWorker();
else window.addEventListener("load", registerServiceWorker);
