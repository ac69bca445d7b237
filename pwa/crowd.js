// How busy a place is: level badges (text and colour, never colour alone), freshness, popular times (a bar
// chart per day), calmer places nearby, and the live feed — one graphql-transport-ws subscription per open district.
import { live, query, queryFresh } from "./api.js";
import { dateTime, locale, t } from "./i18n.js";
import { html, raw } from "./ui.js";

// The document of graphql/operations/CrowdUpdates.graphql (whitespace collapsed; a test compares them).
const SUBSCRIPTION = "subscription CrowdUpdates($districtId: ID!) { crowdUpdates(districtId: $districtId) { districtId sentAt crowd { level percent stale updatedAt source confidence sensors } areas { areaId crowd { level percent stale updatedAt } } } }";
const STALE_MS = 15 * 60000; // the server's default CROWD_STALE_MINUTES: a cached answer ages on the device too
const HOUR = 3600000;
const REFRESH_GAP = 5000; // a level moving back and forth refetches a forecast at most this often

const known = (c) => Boolean(c && c.updatedAt);
const levelOf = (c) => (known(c) ? c.level : "NONE");
const staleOf = (c) => known(c) && (c.stale || Date.now() - Date.parse(c.updatedAt) > STALE_MS);
const intl = () => (locale === "en" ? "en-GB" : locale);
// Intl formatters are costly to build (a district page formats hundreds of percentages): one per locale
const formatters = new Map();
const formatter = (kind, make) => {
  const key = `${kind}:${intl()}`;
  if (!formatters.has(key)) formatters.set(key, make(intl()));
  return formatters.get(key);
};
const pct = (p) => formatter("pct", (l) => new Intl.NumberFormat(l, { style: "percent", maximumFractionDigits: 0 })).format(p / 100);
const hhmm = (iso) => formatter("hhmm", (l) => new Intl.DateTimeFormat(l, { timeZone: "Asia/Shanghai", hour: "2-digit", minute: "2-digit", hourCycle: "h23" })).format(new Date(iso));
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
export function badge(id, c, { big = false, still = false } = {}) {
  const level = levelOf(c);
  // a still badge (a calmer place listed elsewhere) is not painted live: its list is fetched again instead
  return html`<span class="crowd${big ? " big" : ""}" ${still ? "data-still" : "data-crowd"}="${id}" data-level="${level}" data-stale="${String(staleOf(c))}" data-at="${c?.updatedAt || ""}">
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

// ------------------------------------------------------------------ popular times

const LEVELS = ["QUIET", "MODERATE", "BUSY", "PACKED"];
/** Whether a place is busy enough (较挤 or more) to offer calmer places nearby. */
export const busy = (c) => known(c) && !staleOf(c) && LEVELS.indexOf(c.level) >= 2;

/** The local (Shenzhen) date of now plus `days`, as YYYY-MM-DD. */
export function shenzhenDate(days = 0) {
  return new Date(Date.now() + 8 * HOUR + days * 24 * HOUR).toISOString().slice(0, 10);
}

/** The seven days popular times cover: today, then weekday names. */
export function dayChoices() {
  const f = new Intl.DateTimeFormat(intl(), { timeZone: "UTC", weekday: "short" });
  return Array.from({ length: 7 }, (_, i) => {
    const date = shenzhenDate(i);
    return { date, label: i === 0 ? t("today") : f.format(new Date(`${date}T12:00:00Z`)) };
  });
}

/**
 * Popular times as an inline SVG bar chart (role img, summarized in its label): the usual level of each
 * local hour, the best hours marked, and on today the live value drawn over its hour.
 */
export function popularChart(pt) {
  const W = 240;
  const H = 64;
  const step = W / 24;
  const top = Math.max(100, ...pt.hours.map((h) => Math.max(h.percent, h.typicalPercent)));
  const y = (p) => H - (Math.max(0, p) * (H - 4)) / top;
  const best = pt.bestHours ? pt.bestHours.label : "";
  const [from, to] = best ? best.split("–").map((s) => parseInt(s, 10)) : [-1, -1];
  const live = pt.hours.find((h) => h.isLive);
  const bars = pt.hours.map((h) => {
    const level = LEVELS[LEVELS.indexOf(h.level)] && !h.isLive ? h.level : "NONE";
    const cls = `pt-b lv-${level}${h.hour >= from && h.hour < to ? " pt-calm" : ""}`;
    const x = (h.hour * step + 1).toFixed(1);
    return `<rect class="${cls}" x="${x}" y="${y(h.typicalPercent).toFixed(1)}" width="${(step - 2).toFixed(1)}" height="${(H - y(h.typicalPercent)).toFixed(1)}" rx="1.5"/>`;
  }).join("");
  const liveBar = live ? `<rect class="pt-live lv-${live.level}" x="${(live.hour * step + 2.5).toFixed(1)}" y="${y(live.percent).toFixed(1)}" width="${(step - 5).toFixed(1)}" height="${(H - y(live.percent)).toFixed(1)}" rx="1"/><path class="pt-live-cap" d="M${(live.hour * step).toFixed(1)} ${y(live.percent).toFixed(1)}h${step.toFixed(1)}"/>` : "";
  const label = [pt.summary, best ? t("bestHours", { range: best }) : "", live ? t("liveNow", { pct: pct(live.percent) }) : ""]
    .filter(Boolean).join("; ");
  return html`<svg class="pt" role="img" aria-label="${label}" viewBox="0 0 ${W} ${H}" preserveAspectRatio="none" data-summary="${pt.summaryKind}">${raw(bars + liveBar)}</svg>
    <span class="pt-axis" aria-hidden="true"><span>00</span><span>06</span><span>12</span><span>18</span><span>24</span></span>
    <p class="pt-sum">${pt.summary}</p>
    <p class="pt-best">${best ? t("bestHours", { range: best }) : t("bestGone")}${live ? html` · <span class="pt-live-t">${t("liveNow", { pct: pct(live.percent) })}</span>` : ""}</p>`;
}

/**
 * Fills each [data-popular] (an area's or the district's, data-kind) once it comes near the viewport with
 * the popular times of the chosen day (one small persisted query each). day(date) switches every chart;
 * refresh(id) fetches today's again from the server itself: the live level is part of it.
 */
export function popularCharts(root, ctx) {
  let date = shenzhenDate();
  const lastFresh = new Map(); // id → when it was last asked of the server itself (0: shown, from wherever)
  const latest = new Map(); // id → number of its newest request: an older answer arriving late is dropped
  const dirty = new Set(); // its level moved before it was shown: skip the caches when it is
  const timers = new Map();
  function load(el, fresh) {
    const id = el.dataset.popular;
    const district = el.dataset.kind === "district";
    const mine = (latest.get(id) || 0) + 1;
    latest.set(id, mine);
    lastFresh.set(id, fresh ? Date.now() : 0);
    const current = () => ctx.alive() && latest.get(id) === mine;
    el.setAttribute("aria-busy", "true");
    (fresh ? queryFresh : query)(district ? "DistrictPopular" : "AreaPopular", { id, date })
      .then((data) => { if (current()) el.innerHTML = popularChart((district ? data.district : data.area).popularTimes).s; })
      .catch(() => { if (current()) el.innerHTML = html`<p class="fc-none">${t("noForecast")}</p>`.s; })
      .finally(() => { if (current()) el.removeAttribute("aria-busy"); });
  }
  const io = new IntersectionObserver((entries) => {
    for (const e of entries) {
      if (!e.isIntersecting) continue;
      io.unobserve(e.target);
      load(e.target, dirty.delete(e.target.dataset.popular));
    }
  }, { rootMargin: "200px 0px" });
  const observeAll = () => { for (const el of root.querySelectorAll("[data-popular]")) io.observe(el); };
  observeAll();
  ctx.onLeave(() => {
    io.disconnect();
    for (const timer of timers.values()) clearTimeout(timer);
  });
  return {
    day(next) {
      date = next;
      lastFresh.clear();
      io.disconnect();
      observeAll();
    },
    refresh(id) {
      const el = root.querySelector(sel("data-popular", id));
      if (!el || timers.has(id) || date !== shenzhenDate()) return;
      if (!lastFresh.has(id)) { dirty.add(id); return; }
      const wait = Math.max(0, lastFresh.get(id) + REFRESH_GAP - Date.now());
      timers.set(id, setTimeout(() => { timers.delete(id); if (ctx.alive()) load(el, true); }, wait));
    },
  };
}

/** "附近更空的地方" for a busy area into el: calmer areas within walking distance, each explained in a line. */
export async function calmerPlaces(el, areaId, ctx, { fresh = false } = {}) {
  if (!fresh && el.dataset.loaded === areaId) { el.hidden = !el.querySelector("li"); return; }
  el.dataset.loaded = areaId;
  try {
    const data = await (fresh ? queryFresh : query)("CalmerAlternatives", { id: areaId });
    if (!ctx.alive()) return;
    const alts = data.area.calmerAlternatives;
    el.innerHTML = alts.length ? html`<h4 class="alt-h">${t("calmerNearby")}</h4><ul class="alt-list">${alts.map((a) => html`<li>
      <a class="alt-row" href="/d/${a.area.district.id}?area=${encodeURIComponent(a.area.id)}">
        <span class="alt-top"><span class="alt-name">${a.area.name}<small> · ${a.area.district.name}</small></span>${badge(a.area.id, a.area.crowd, { still: true })}</span>
        <span class="alt-why">${a.explanation}</span></a></li>`)}</ul>`.s : "";
    el.hidden = !alts.length;
  } catch {
    el.hidden = true;
    delete el.dataset.loaded;
  }
}

// ------------------------------------------------------------------ live

/**
 * Subscribes to crowdUpdates(districtId) and calls onUpdate with every payload: the current state first,
 * then one per change (see live() in api.js for when the socket is open). Returns stop().
 */
export function liveCrowd(districtId, onUpdate) {
  return live(SUBSCRIPTION, { districtId }, (data) => { if (data.crowdUpdates) onUpdate(data.crowdUpdates); });
}
