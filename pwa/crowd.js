// How busy a place is: level badges (text and colour, never colour alone), freshness, the 12-hour
// forecast sparkline, and the live feed — one graphql-transport-ws subscription per open district.
import { live, query, queryFresh } from "./api.js";
import { dateTime, locale, t } from "./i18n.js";
import { html } from "./ui.js";

// The document of graphql/operations/CrowdUpdates.graphql (whitespace collapsed; a test compares them).
const SUBSCRIPTION = "subscription CrowdUpdates($districtId: ID!) { crowdUpdates(districtId: $districtId) { districtId sentAt crowd { level percent stale updatedAt source confidence sensors } areas { areaId crowd { level percent stale updatedAt } } } }";
const STALE_MS = 15 * 60000; // the server's default CROWD_STALE_MINUTES: a cached answer ages on the device too
const HOUR = 3600000;
const REFRESH_GAP = 5000; // a level moving back and forth refetches a forecast at most this often

const known = (c) => Boolean(c && c.updatedAt);
const levelOf = (c) => (known(c) ? c.level : "NONE");
const staleOf = (c) => known(c) && (c.stale || Date.now() - Date.parse(c.updatedAt) > STALE_MS);
const intl = () => (locale === "en" ? "en-GB" : locale);
const pct = (p) => new Intl.NumberFormat(intl(), { style: "percent", maximumFractionDigits: 0 }).format(p / 100);
const hhmm = (iso) => new Intl.DateTimeFormat(intl(), { timeZone: "Asia/Shanghai", hour: "2-digit", minute: "2-digit", hourCycle: "h23" }).format(new Date(iso));
const sel = (attr, id) => `[${attr}="${CSS.escape(id)}"]`;

/** "3 分钟前更新" / "Updated 3 min ago"; "暂无数据" / "No data" without a reading. */
export function freshText(iso) {
  if (!iso) return t("noData");
  const min = Math.floor((Date.now() - Date.parse(iso)) / 60000);
  if (min < 1) return t("updatedJust");
  if (min < 60) return t("updatedMin", { n: min });
  if (min < 24 * 60) return t("updatedHour", { n: Math.floor(min / 60) });
  return t("updatedOn", { date: dateTime(iso) });
}

function sourceText(c) {
  if (!known(c) || !c.source) return "";
  const src = c.source.split("+").map((s) => t(`src_${s}`)).join(" + ");
  const conf = t(c.confidence >= 0.7 ? "confHigh" : c.confidence >= 0.4 ? "confMid" : "confLow");
  return [t("sourceLine", { src }), c.sensors === 1 ? t("sensorsOne") : t("sensorsN", { n: c.sensors }), t("confidence", { c: conf })].join(" · ");
}

/** A level badge for the place `id`; paint() keeps it current in place. */
export function badge(id, c, { big = false } = {}) {
  const level = levelOf(c);
  return html`<span class="crowd${big ? " big" : ""}" data-crowd="${id}" data-level="${level}" data-stale="${String(staleOf(c))}" data-at="${c?.updatedAt || ""}">
    <span class="sr">${t("crowdNow")}: </span><span class="lvl"><span class="bars" aria-hidden="true"><i></i><i></i><i></i><i></i></span><span class="lvl-t">${t(`lv_${level}`)}</span></span>
    <span class="pct">${known(c) ? pct(c.percent) : ""}</span><span class="stale-t">${t("staleMark")}</span></span>`;
}

export const fresh = (id, c) => html`<span class="fresh" data-fresh="${id}" data-at="${c?.updatedAt || ""}">${freshText(c?.updatedAt)}</span>`;
export const source = (id, c) => html`<span class="src" data-src="${id}">${sourceText(c)}</span>`;

/** Updates every badge, freshness and source line of place `id` inside root, without re-rendering;
 * true when its level changed. */
export function paint(root, id, c) {
  const level = levelOf(c);
  let moved = false;
  for (const el of root.querySelectorAll(sel("data-crowd", id))) {
    const changed = el.dataset.level !== level;
    moved ||= changed;
    el.dataset.level = level;
    el.dataset.stale = String(staleOf(c));
    el.dataset.at = c.updatedAt || "";
    const text = el.querySelector(".lvl-t");
    if (changed) text.textContent = t(`lv_${level}`);
    const p = el.querySelector(".pct");
    const value = known(c) ? pct(c.percent) : "";
    if (p.textContent !== value) p.textContent = value;
    if (changed) { // a short glow on the badge that moved (none with prefers-reduced-motion: see style.css)
      el.classList.remove("moved");
      void el.offsetWidth;
      el.classList.add("moved");
    }
  }
  for (const el of root.querySelectorAll(sel("data-fresh", id))) {
    el.dataset.at = c.updatedAt || "";
    el.textContent = freshText(c.updatedAt);
  }
  for (const el of root.querySelectorAll(sel("data-src", id))) el.textContent = sourceText(c);
  return moved;
}

/** Re-words "n minutes ago" and marks numbers that have aged past the stale time; every 30 s. */
export function ticking(root) {
  const tick = () => {
    for (const el of root.querySelectorAll(".fresh[data-at]")) el.textContent = freshText(el.dataset.at);
    for (const el of root.querySelectorAll(".crowd[data-at]")) {
      if (el.dataset.at && Date.now() - Date.parse(el.dataset.at) > STALE_MS) el.dataset.stale = "true";
    }
  };
  const timer = setInterval(tick, 30000);
  return () => clearInterval(timer);
}

// ------------------------------------------------------------------ forecast

/** The 12-hour outlook as an inline SVG (role img, summarized in its label), hours in Shenzhen time. */
export function sparkline(points) {
  const now = Date.now();
  const shown = points.filter((p) => Date.parse(p.hour) + HOUR > now); // a cached answer may have aged
  if (shown.length < 2) return html`<p class="fc-none">${t("noForecast")}</p>`;
  const top = Math.max(100, ...shown.map((p) => p.percent));
  const peak = shown.reduce((a, b) => (b.percent > a.percent ? b : a));
  const W = 100;
  const H = 32;
  const x = (i) => 2 + (i * (W - 4)) / (shown.length - 1); // room for the peak dot at either end
  const y = (p) => H - 2 - (p * (H - 4)) / top;
  const xy = shown.map((p, i) => `${x(i).toFixed(2)} ${y(p.percent).toFixed(2)}`);
  const line = `M${xy.join("L")}`;
  const i = shown.indexOf(peak);
  const summary = t("busiestAt", { time: hhmm(peak.hour), pct: pct(peak.percent) });
  return html`<svg class="spark" role="img" aria-label="${t("forecastLabel", { peak: summary })}" viewBox="0 0 ${W} ${H}" preserveAspectRatio="none" data-peak="${peak.level}">
      <path class="spark-area" d="${line}V${H}H${x(0)}Z"/>
      <path class="spark-busy" d="M0 ${y(70).toFixed(2)}H${W}" vector-effect="non-scaling-stroke"/>
      <path class="spark-line" d="${line}" vector-effect="non-scaling-stroke"/>
      <path class="spark-dot" d="M${x(i).toFixed(2)} ${y(peak.percent).toFixed(2)}h0" vector-effect="non-scaling-stroke"/>
    </svg>
    <span class="fc-axis" aria-hidden="true"><span>${hhmm(shown[0].hour)}</span><span class="fc-peak">${summary}</span><span>${hhmm(shown[shown.length - 1].hour)}</span></span>`;
}

/**
 * Fills each [data-forecast=areaId] once it comes near the viewport (one small persisted query each).
 * refresh(areaId) fetches a shown forecast again, from the server itself: the live level is part of it.
 */
export function forecasts(root, ctx) {
  const lastFresh = new Map(); // areaId → when it was last asked of the server itself (0: shown, from wherever)
  const latest = new Map(); // areaId → number of its newest request: an older answer arriving late is dropped
  const dirty = new Set(); // its level moved before it was shown: skip the caches when it is
  const timers = new Map();
  function load(el, fresh) {
    const areaId = el.dataset.forecast;
    const mine = (latest.get(areaId) || 0) + 1;
    latest.set(areaId, mine);
    lastFresh.set(areaId, fresh ? Date.now() : 0);
    const current = () => ctx.alive() && latest.get(areaId) === mine;
    (fresh ? queryFresh : query)("AreaForecast", { areaId })
      .then((data) => { if (current()) el.innerHTML = sparkline(data.crowdForecast).s; })
      .catch(() => { if (current() && !el.querySelector("svg")) el.innerHTML = html`<p class="fc-none">${t("noForecast")}</p>`.s; })
      .finally(() => el.removeAttribute("aria-busy"));
  }
  const io = new IntersectionObserver((entries) => {
    for (const e of entries) {
      if (!e.isIntersecting) continue;
      io.unobserve(e.target);
      load(e.target, dirty.delete(e.target.dataset.forecast));
    }
  }, { rootMargin: "200px 0px" });
  for (const el of root.querySelectorAll("[data-forecast]")) io.observe(el);
  ctx.onLeave(() => {
    io.disconnect();
    for (const timer of timers.values()) clearTimeout(timer);
  });
  return {
    refresh(areaId) {
      const el = root.querySelector(sel("data-forecast", areaId));
      if (!el || timers.has(areaId)) return;
      if (!lastFresh.has(areaId)) { dirty.add(areaId); return; }
      const wait = Math.max(0, lastFresh.get(areaId) + REFRESH_GAP - Date.now());
      timers.set(areaId, setTimeout(() => { timers.delete(areaId); if (ctx.alive()) load(el, true); }, wait));
    },
  };
}

// ------------------------------------------------------------------ live

/**
 * Subscribes to crowdUpdates(districtId) and calls onUpdate with every payload: the current state first,
 * then one per change (see live() in api.js for when the socket is open). Returns stop().
 */
export function liveCrowd(districtId, onUpdate) {
  return live(SUBSCRIPTION, { districtId }, (data) => { if (data.crowdUpdates) onUpdate(data.crowdUpdates); });
}
