// The screens. Each one renders into ctx.main and returns {title}; ctx.alive() turns false
// as soon as the user has navigated elsewhere, so late responses are dropped.
import { live, mutate, OfflineError, post, query, queryFresh, recordOffer } from "./api.js";
import { badge, busy, calmerPlaces, dayChoices, fresh, liveCrowd, paint, popularCharts, source, ticking } from "./crowd.js";
import { amapUrl, appleMapsUrl, currentPosition, metersBetween, snap } from "./geo.js";
import {
  ago, categoryLabel, dateRange, dateTime, distance, fromBrowser, locale, monthDay, money, offerBadge, priceRange, relative, setLocale,
  t, todayKey,
} from "./i18n.js";
import {
  coupons, deviceKey, keepCoupon, keepCoupons, KEPT_KEYS, favourites, inboxPrefs, isFavourite, markRead, readIds, refreshFavourite, saveInboxPrefs, toggleFavourite, TOPICS,
} from "./store.js";
import { $, $$, html, icon, picture, raw, toast } from "./ui.js";

const DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
const PAGE = 20;
const NEAR_RADIUS_M = 5000;
const SUGGESTIONS = {
  "zh-CN": ["hqb", "华强北", "东门", "手信", "金饰", "茶"],
  "zh-HK": ["hqb", "華強北", "東門", "手信", "金飾", "茶"],
  en: ["hqb", "Dongmen", "oysters", "gold", "tea", "drones"],
};

const skeleton = (n = 3) => html`<div class="loading" aria-busy="true"><div class="sk sk-title"></div>${Array.from({ length: n }, () => html`<div class="sk"></div>`)}</div>`;
const price = (level) => "¥".repeat(Math.max(1, Math.min(4, level)));

function status(m) {
  if (m.openNow) {
    return html`<span class="status open"><span class="dot"></span>${t("openNow")}${m.closesAt ? html` · ${t("closesAt", { time: m.closesAt })}` : ""}</span>`;
  }
  return html`<span class="status closed"><span class="dot"></span>${t("closed")}</span>`;
}

function favButton(item) {
  const on = isFavourite(item.id);
  return html`<button type="button" class="fav" aria-pressed="${String(on)}" data-fav="${JSON.stringify(item)}">${icon("heart")}<span>${on ? t("saved") : t("save")}</span></button>`;
}

/** Wires the favourite toggles inside root. */
function bindFavs(root) {
  for (const b of $$("[data-fav]", root)) {
    b.addEventListener("click", () => {
      const on = toggleFavourite(JSON.parse(b.dataset.fav));
      b.setAttribute("aria-pressed", String(on));
      b.querySelector("span").textContent = on ? t("saved") : t("save");
      toast(on ? t("savedToast") : t("removedToast"));
    });
  }
}

function offerMini(o) {
  return html`<li><a class="ocard" href="/m/${o.merchant.id}">
    <span class="obadge">${offerBadge(o)}</span>
    <span class="otitle">${o.title}</span>
    <span class="omerchant">${o.merchant.name}${o.merchant.district ? html` · ${o.merchant.district.name}` : ""}</span>
    <span class="oends">${icon("clock")}${t("ends", { rel: relative(o.validUntil) })}</span>
  </a></li>`;
}

function offerFull(o) {
  const meta = [o.minSpendFen ? t("minSpend", { amount: money(o.minSpendFen) }) : "", t("validUntil", { date: dateTime(o.validUntil) })]
    .filter(Boolean).join(" · ");
  return html`<li class="offer">
    <div class="obadge big">${offerBadge(o)}</div>
    <div class="obody">
      <h3>${o.title}</h3>
      ${o.description ? html`<p>${o.description}</p>` : ""}
      <p class="ometa">${meta}</p>
      ${claimButton(o)}
      ${o.couponCode ? html`<div class="coupon"><span class="coupon-label">${t("coupon")}</span><code>${o.couponCode}</code><button type="button" class="linkbtn" data-copy="${o.couponCode}" data-offer="${o.id}">${icon("copy")}${t("copy")}</button></div>` : ""}
    </div>
  </li>`;
}

function claimButton(o) {
  const held = coupons().some((c) => c.offer && c.offer.id === o.id && c.state === "CLAIMED");
  if (o.stock === 0 && !held) return html`<p class="claim"><button type="button" class="btn" disabled>${t("soldOut")}</button></p>`;
  return html`<p class="claim"><button type="button" class="btn primary" data-claim="${o.id}">${icon("tag")}${held ? t("claimedShort") : t("claim")}</button>
    ${held ? html`<a class="linkbtn" href="/coupons">${t("myCoupons")}</a>` : ""}</p>`;
}

/** 领取: one coupon of the offer for this device; kept on the device at once, for offline use. */
function bindClaim(root) {
  for (const b of $$("[data-claim]", root)) {
    b.addEventListener("click", async () => {
      b.disabled = true;
      try {
        const { claimOffer } = await mutate("ClaimOffer", { id: b.dataset.claim, deviceKey: deviceKey() });
        if (claimOffer.errors.length) {
          toast(claimOffer.errors[0].message);
        } else {
          keepCoupon(claimOffer.coupon);
          b.innerHTML = html`${icon("tag")}${t("claimedShort")}`.s;
          toast(t("claimed"), { label: t("viewCoupons"), run: () => { location.assign("/coupons"); } });
        }
      } catch (err) {
        toast(err instanceof OfflineError ? t("offline") : t("error"));
      } finally {
        b.disabled = false;
      }
    });
  }
}

function bindCopy(root) {
  for (const b of $$("[data-copy]", root)) {
    b.addEventListener("click", async () => {
      try { await navigator.clipboard.writeText(b.dataset.copy); } catch { /* shown anyway: the code is on screen */ }
      if (b.dataset.offer) recordOffer(b.dataset.offer, "SAVE"); // a copied coupon is the shopper keeping the offer
      toast(t("copied"));
    });
  }
}

// ---------------------------------------------------------------- Home

export async function home(ctx) {
  const data = await query("Home");
  if (!ctx.alive()) return {};
  const fest = data.festivals[0];
  const offers = data.offers.edges.map((e) => e.node);
  ctx.main.innerHTML = html`
    <section class="hero">
      <h1 tabindex="-1">${t("hello")}</h1>
      <a class="searchbox" href="/search">${icon("search")}<span>${t("searchBox")}</span></a>
    </section>
    ${fest ? html`<a class="banner${fest.images.length ? " has-pic" : ""}" href="/festivals#f-${fest.id}">
      ${picture(fest.images[0], "96px", "bpic")}
      <span class="kicker">${icon("spark")}${t("onNow")}</span>
      <strong>${fest.name}</strong>
      <span class="banner-dates">${dateRange(fest.startsOn, fest.endsOn)}</span>
      ${icon("chevron", "i chev")}
    </a>` : ""}
    <section aria-labelledby="h-districts">
      <h2 id="h-districts">${t("pickDistrict")}</h2>
      <ul class="districts">${data.districts.map((d, i) => html`<li><a class="dcard" href="/d/${d.id}">
        <span class="mono tone-${i % 8}" aria-hidden="true">${[...d.name][0]}</span>
        <span class="dtext">
          <span class="dtop"><span class="dname">${d.name}</span>${d.crowd && d.crowd.updatedAt ? badge(d.id, d.crowd) : ""}</span>
          <span class="ddesc">${d.description}</span>
          <span class="dmeta">${t("merchantsCount", { n: d.merchants.totalCount })} · ${t("areasCount", { n: d.areas.length })}</span>
          ${fresh(d.id, d.crowd)}
        </span>
        ${icon("chevron", "i chev")}
      </a></li>`)}</ul>
    </section>
    <section aria-labelledby="h-ending">
      <h2 id="h-ending">${t("endingSoon")}</h2>
      ${offers.length ? html`<ul class="hscroll">${offers.map(offerMini)}</ul>` : html`<p class="muted">${t("noEndingSoon")}</p>`}
    </section>
    <section class="quick">
      <a class="qcard" href="/gifts">${icon("gift")}<span>${t("gifts")}</span></a>
      <a class="qcard" href="/festivals">${icon("calendar")}<span>${t("festivals")}</span></a>
    </section>`.s;
  ctx.onLeave(ticking(ctx.main));
  return { title: t("appLong") };
}

// ---------------------------------------------------------------- District

export async function district(ctx) {
  const data = await query("DistrictScreen", { id: ctx.params[0] });
  if (!ctx.alive()) return {};
  const d = data.district;
  if (!d) return notFound(ctx);
  const fav = { id: d.id, type: "district", name: d.name, sub: t("districts") };
  refreshFavourite(fav);
  const offers = d.offers.edges.map((e) => e.node);
  const fests = [...d.festivals.map((f) => ({ ...f, now: true })), ...d.upcoming];
  ctx.main.innerHTML = html`
    <header class="phead">
      <div class="titlerow"><h1 tabindex="-1">${d.name}</h1>${favButton(fav)}</div>
      <p class="lead">${d.description}</p>
      <div class="crowd-panel">
        <p class="cp-now"><span class="cp-label" aria-hidden="true">${t("crowdNow")}</span>${badge(d.id, d.crowd, { big: true })}${fresh(d.id, d.crowd)}</p>
        <p class="cp-src">${source(d.id, d.crowd)}</p>
        <h2 class="pt-h" id="h-popular">${t("popularTimes")}</h2>
        <div class="days" role="group" aria-labelledby="h-popular">${dayChoices().map((c, i) => html`<button type="button" class="chip small" data-day="${c.date}" aria-pressed="${String(i === 0)}">${c.label}</button>`)}</div>
        <div class="fc" data-popular="${d.id}" data-kind="district" aria-busy="true"><span class="sk fc-sk"></span></div>
      </div>
    </header>
    <section aria-labelledby="h-areas">
      <h2 id="h-areas">${t("areas")}</h2>
      <ul class="areas">${d.areas.map((a) => html`<li class="area" id="a-${a.slug}">
        <div class="area-top"><h3>${a.name}</h3>${badge(a.id, a.crowd)}</div>
        <div class="fc" data-popular="${a.id}" data-kind="area" aria-busy="true"><span class="sk fc-sk"></span></div>
        <div class="alt" data-alt="${a.id}" hidden></div>
        <div class="area-foot">${fresh(a.id, a.crowd)}
          <button type="button" class="chip area-btn" data-area="${a.id}" aria-pressed="false">${icon("store")}<span>${t("shopsHere")}</span><span class="sr"> · ${a.name}</span></button></div>
      </li>`)}</ul>
    </section>
    ${fests.length ? html`<section aria-labelledby="h-fests">
      <h2 id="h-fests">${t("events")}</h2>
      <ul class="flist">${fests.map((f) => html`<li><a href="/festivals#f-${f.id}" class="frow">
        <span class="pill ${f.now ? "pill-now" : ""}">${f.now ? t("onNow") : t("upcomingShort")}</span>
        <span class="fname">${f.name}</span><span class="fdates">${dateRange(f.startsOn, f.endsOn)}</span></a></li>`)}</ul>
    </section>` : ""}
    ${offers.length ? html`<section aria-labelledby="h-offers">
      <h2 id="h-offers">${t("offers")} <span class="count-badge">${d.offers.totalCount}</span></h2>
      <ul class="hscroll">${offers.map(offerMini)}</ul>
    </section>` : ""}
    <section aria-labelledby="h-merchants" id="merchants">
      <h2 id="h-merchants">${t("merchants")}</h2>
      <div class="mlist-root"></div>
    </section>`.s;
  bindFavs(ctx.main);
  const charts = popularCharts(ctx.main, ctx);
  for (const b of $$("[data-day]", ctx.main)) {
    b.addEventListener("click", () => {
      for (const o of $$("[data-day]", ctx.main)) o.setAttribute("aria-pressed", String(o === b));
      charts.day(b.dataset.day);
    });
  }
  const crowds = new Map(d.areas.map((a) => [a.id, a.crowd]));
  // A busy area (较挤 or more) offers calmer places nearby, on its card and above its merchant list.
  // fresh: a level moved, so what counts as calmer may have changed; ask the server itself
  const offerCalmer = (fresh = false) => {
    for (const el of $$("[data-alt]", ctx.main)) {
      if (busy(crowds.get(el.dataset.alt))) calmerPlaces(el, el.dataset.alt, ctx, { fresh });
      else el.hidden = true;
    }
    const listAlt = $(".mlist-alt", ctx.main);
    const chosen = list.area();
    if (chosen && busy(crowds.get(chosen))) calmerPlaces(listAlt, chosen, ctx, { fresh });
    else listAlt.hidden = true;
  };
  ctx.onLeave(ticking(ctx.main));
  // One live subscription while this screen is open: the current levels at once, then each change.
  ctx.onLeave(liveCrowd(d.id, (u) => {
    if (!ctx.alive()) return;
    if (paint(ctx.main, d.id, u.crowd)) charts.refresh(d.id);
    let moved = false;
    for (const a of u.areas) {
      crowds.set(a.areaId, a.crowd);
      if (paint(ctx.main, a.areaId, a.crowd)) {
        charts.refresh(a.areaId);
        moved = true;
      }
    }
    if (moved) offerCalmer(true);
  }));
  const list = merchantList($(".mlist-root", ctx.main), ctx, { districtId: d.id });
  for (const b of $$("[data-area]", ctx.main)) {
    b.addEventListener("click", () => {
      const on = b.getAttribute("aria-pressed") !== "true";
      for (const o of $$("[data-area]", ctx.main)) o.setAttribute("aria-pressed", "false");
      b.setAttribute("aria-pressed", String(on));
      list.set({ area: on ? b.dataset.area : null });
      offerCalmer();
      $("#merchants").scrollIntoView({ behavior: matchMedia("(prefers-reduced-motion: reduce)").matches ? "auto" : "smooth" });
    });
  }
  const area = ctx.query.get("area");
  if (area) $(`[data-area="${CSS.escape(area)}"]`, ctx.main)?.setAttribute("aria-pressed", "true");
  offerCalmer();
  return { title: d.name };
}

// ---------------------------------------------------------------- Merchant list (district page and /merchants)

/** A filterable, infinitely scrolling merchant list; filters live in the URL's query (except "near me"). */
function merchantList(root, ctx, fixed) {
  const q = ctx.query;
  const state = { open: q.get("open") === "1", offer: q.get("offer") === "1", cat: q.get("cat") || "", area: q.get("area") || "",
    district: fixed.districtId || q.get("district") || "", near: null };
  let generation = 0;
  let cursor = null;
  let hasNext = false;
  let loading = false;

  root.innerHTML = html`
    <div class="filters" role="group" aria-label="${t("filters")}">
      <button type="button" class="chip" data-f="open" aria-pressed="${String(state.open)}"><span class="dot ok"></span>${t("openNow")}</button>
      <button type="button" class="chip" data-f="offer" aria-pressed="${String(state.offer)}">${icon("tag")}${t("hasOffer")}</button>
      <button type="button" class="chip" data-f="near" aria-pressed="false">${icon("nav")}<span>${t("nearMe")}</span></button>
    </div>
    <div class="selects">
      ${fixed.districtId ? "" : html`<label class="select"><span class="sr">${t("district")}</span>
        <select data-f="district"><option value="">${t("allDistricts")}</option></select></label>`}
      <label class="select"><span class="sr">${t("category")}</span>
        <select data-f="cat"><option value="">${t("allCategories")}</option></select></label>
    </div>
    <div class="alt mlist-alt" hidden></div>
    <p class="count" aria-live="polite"></p>
    <ul class="mlist"></ul>
    <div class="more"><button type="button" class="btn ghost" hidden>${t("loadMore")}</button></div>`.s;
  const listEl = $(".mlist", root);
  const countEl = $(".count", root);
  const moreBtn = $(".more button", root);

  function filter() {
    const f = {};
    if (state.district) f.districtId = state.district;
    if (state.area) f.areaId = state.area;
    if (state.open) f.openNow = true;
    if (state.offer) f.hasActiveOffer = true;
    if (state.cat) f.categories = [state.cat];
    if (state.near) f.near = { ...snap(state.near), radiusMeters: NEAR_RADIUS_M };
    return f;
  }

  function syncUrl() {
    const p = new URLSearchParams();
    if (state.open) p.set("open", "1");
    if (state.offer) p.set("offer", "1");
    if (state.cat) p.set("cat", state.cat);
    if (state.area) p.set("area", state.area);
    if (!fixed.districtId && state.district) p.set("district", state.district);
    const s = p.toString();
    history.replaceState(history.state, "", location.pathname + (s ? `?${s}` : ""));
  }

  async function load(reset) {
    if (loading && !reset) return;
    const mine = reset ? ++generation : generation;
    if (reset) { cursor = null; listEl.setAttribute("aria-busy", "true"); }
    loading = true;
    moreBtn.textContent = t("loadingMore");
    try {
      const data = await query("Merchants", { filter: filter(), first: PAGE, after: cursor });
      if (mine !== generation || !ctx.alive()) return;
      const conn = data.merchants;
      // near me: the page is the nearest to the grid point asked from; distances and order are from the phone
      const rows = state.near
        ? conn.edges.map((e) => [e.node, metersBetween(state.near, e.node.location)]).sort((a, b) => a[1] - b[1])
        : conn.edges.map((e) => [e.node, e.distanceMeters]);
      const items = rows.map(([node, meters]) => merchantRow(node, meters)).join("");
      if (reset) listEl.innerHTML = items; else listEl.insertAdjacentHTML("beforeend", items);
      cursor = conn.pageInfo.endCursor;
      hasNext = conn.pageInfo.hasNextPage;
      countEl.textContent = conn.totalCount ? t("found", { n: conn.totalCount }) : state.near ? t("nearNone") : t("noMerchants");
    } catch {
      if (mine !== generation) return;
      countEl.textContent = t("error");
      hasNext = false;
    } finally {
      if (mine === generation) {
        loading = false;
        listEl.removeAttribute("aria-busy");
        moreBtn.textContent = t("loadMore");
        moreBtn.hidden = !hasNext;
        // A short page may leave the sentinel in view: observing it afresh reports where it is now.
        if (hasNext) { io.unobserve(sentinel); io.observe(sentinel); }
      }
    }
  }

  const sentinel = $(".more", root);
  const io = new IntersectionObserver((entries) => {
    if (entries.some((e) => e.isIntersecting) && hasNext && !loading) load(false);
  }, { rootMargin: "600px 0px" });
  io.observe(sentinel);
  ctx.onLeave(() => io.disconnect());
  moreBtn.addEventListener("click", () => load(false));

  function set(changes) {
    Object.assign(state, changes);
    syncUrl();
    load(true);
  }

  for (const b of $$("button[data-f]", root)) {
    b.addEventListener("click", async () => {
      const key = b.dataset.f;
      if (key !== "near") {
        b.setAttribute("aria-pressed", String(!state[key]));
        set({ [key]: !state[key] });
        return;
      }
      if (state.near) {
        b.setAttribute("aria-pressed", "false");
        set({ near: null });
        return;
      }
      const label = b.querySelector("span");
      label.textContent = t("locating");
      b.setAttribute("aria-busy", "true");
      try {
        const here = await currentPosition();
        if (!ctx.alive()) return;
        b.setAttribute("aria-pressed", "true");
        set({ near: here });
      } catch {
        toast(t("locationFailed"));
      } finally {
        label.textContent = t("nearMe");
        b.removeAttribute("aria-busy");
      }
    });
  }
  for (const s of $$("select[data-f]", root)) {
    s.addEventListener("change", () => {
      const changes = { [s.dataset.f]: s.value };
      if (s.dataset.f === "district") {
        changes.cat = "";
        fillCategories(s.value);
      }
      set(changes);
    });
  }

  async function fillCategories(districtId) {
    const select = $("select[data-f=cat]", root);
    const counts = new Map();
    let after = null;
    try {
      for (let page = 0; page < 6; page++) {
        const data = await query("MerchantCategories", { districtId: districtId || null, after });
        for (const e of data.merchants.edges) {
          for (const c of e.node.categories) {
            const seen = counts.get(c.slug) || { name: c.name, n: 0 };
            seen.n += 1;
            counts.set(c.slug, seen);
          }
        }
        if (!data.merchants.pageInfo.hasNextPage) break;
        after = data.merchants.pageInfo.endCursor;
      }
    } catch { /* the select keeps "all" */ }
    if (!ctx.alive()) return;
    const sorted = [...counts.entries()].sort((a, b) => b[1].n - a[1].n || a[1].name.localeCompare(b[1].name, locale));
    select.innerHTML = html`<option value="">${t("allCategories")}</option>${sorted.map(([slug, c]) => html`<option value="${slug}">${c.name} (${c.n})</option>`)}`.s;
    select.value = state.cat;
  }

  async function fillDistricts() {
    const select = $("select[data-f=district]", root);
    if (!select) return;
    try {
      const data = await query("Home");
      if (!ctx.alive()) return;
      select.innerHTML = html`<option value="">${t("allDistricts")}</option>${data.districts.map((d) => html`<option value="${d.id}">${d.name}</option>`)}`.s;
      select.value = state.district;
    } catch { /* stays "all districts" */ }
  }

  fillDistricts();
  fillCategories(state.district);
  load(true);
  return { set: (changes) => set(changes), area: () => state.area };
}

function merchantRow(m, meters) {
  const cats = m.categories.slice(0, 2).map((c) => c.name).join(" · ");
  const pic = m.images && m.images[0];
  return html`<li><a class="mcard${pic ? " has-pic" : ""}" href="/m/${m.id}">
    ${picture(pic, "80px", "thumb")}
    <span class="mtop"><span class="mname">${m.name}</span>${meters != null ? html`<span class="mdist">${distance(meters)}</span>` : ""}</span>
    <span class="mmeta">${m.district ? html`<span class="mdistrict">${icon("pin")}${m.district.name}</span> · ` : ""}${cats}<span aria-hidden="true"> · ${price(m.priceLevel)}</span><span class="sr">, ${t("priceLevel")} ${m.priceLevel}/4</span></span>
    <span class="mbottom">${status(m)}${m.offers.length ? html`<span class="moffer">${icon("tag")}${m.offers[0].title}${m.offers.length > 1 ? ` +${m.offers.length - 1}` : ""}</span>` : ""}</span>
  </a></li>`.s;
}

export async function merchants(ctx) {
  ctx.main.innerHTML = html`<header class="phead"><h1 tabindex="-1">${t("merchants")}</h1></header><div class="mlist-root"></div>`.s;
  merchantList($(".mlist-root", ctx.main), ctx, {});
  return { title: t("merchants") };
}

// ---------------------------------------------------------------- Merchant

export async function merchant(ctx) {
  const data = await query("MerchantPage", { id: ctx.params[0] });
  if (!ctx.alive()) return {};
  const m = data.merchant;
  if (!m) return notFound(ctx);
  const fav = { id: m.id, type: "merchant", name: m.name, sub: `${m.district.name} · ${m.area.name}` };
  refreshFavourite(fav);
  const today = todayKey();
  const hours = new Map(m.hours.map((h) => [h.day, h.spans]));
  const tel = m.phone.replace(/[^\d+]/g, "");
  ctx.main.innerHTML = html`
    <article class="merchant">
      ${m.images.length ? html`<div class="mpics">${m.images.map((img, i) => picture(img, i ? "40vw" : "(min-width: 40rem) 38rem, calc(100vw - 2rem)", i ? "mpic more-pic" : "mpic", i === 0))}</div>` : ""}
      <header class="phead">
        <p class="crumbs"><a href="/d/${m.district.id}">${m.district.name}</a><span aria-hidden="true"> › </span><span>${m.area.name}</span></p>
        <div class="titlerow"><h1 tabindex="-1">${m.name}</h1>${favButton(fav)}</div>
        <p class="mmeta">${m.categories.map((c) => c.name).join(" · ")}<span aria-hidden="true"> · ${price(m.priceLevel)}</span><span class="sr">, ${t("priceLevel")} ${m.priceLevel}/4</span></p>
        <p>${status(m)}</p>
        ${m.description ? html`<p class="lead">${m.description}</p>` : ""}
      </header>
      <div class="actions">
        ${tel ? html`<a class="btn primary" href="tel:${tel}">${icon("phone")}<span>${t("call")}</span></a>` : ""}
        <a class="btn" href="${amapUrl(m.location, m.name)}" target="_blank" rel="noopener" data-map="amap">${icon("nav")}<span>${t("amap")}</span></a>
        <a class="btn" href="${appleMapsUrl(m.location, m.name)}" target="_blank" rel="noopener" data-map="apple">${icon("map")}<span>${t("appleMaps")}</span></a>
      </div>
      <p class="address">${icon("pin")}<span><span class="sr">${t("address")}: </span>${m.address}${tel ? html`<a href="tel:${tel}">${m.phone}</a>` : ""}</span></p>
      ${m.offers.length ? html`<section aria-labelledby="h-moffers">
        <h2 id="h-moffers">${t("offers")}</h2>
        <ul class="offers">${m.offers.map(offerFull)}</ul>
      </section>` : ""}
      <section aria-labelledby="h-hours">
        <h2 id="h-hours">${t("hours")}</h2>
        <table class="hours"><tbody>${DAYS.map((day) => {
          const spans = hours.get(day) || [];
          return html`<tr class="${day === today ? "today" : ""}"><th scope="row">${t(`d_${day}`)}${day === today ? html` <span class="pill">${t("today")}</span>` : ""}</th>
            <td>${spans.length ? spans.map((s) => s.replace("-", "–")).join(", ") : t("dayClosed")}</td></tr>`;
        })}</tbody></table>
      </section>
      ${m.products.length ? html`<section aria-labelledby="h-mproducts">
        <h2 id="h-mproducts">${t("giftsHere")}</h2>
        <ul class="plist">${m.products.map((p) => html`<li><a href="/gifts?p=${p.id}">${icon("gift")}<span class="pname">${p.name}</span>
          <span class="pprice">${priceRange(p.priceMinFen, p.priceMaxFen)} <small>${p.unit}</small></span></a></li>`)}</ul>
      </section>` : ""}
    </article>`.s;
  bindFavs(ctx.main);
  bindCopy(ctx.main);
  bindClaim(ctx.main);
  for (const o of m.offers) recordOffer(o.id, "VIEW");
  return { title: m.name };
}

// ---------------------------------------------------------------- 深圳手信

const GROUP_PREVIEW = 2; // products per category on the grouped page; "show all" opens the category

export async function gifts(ctx) {
  const data = await query("Products", { first: 50 });
  if (!ctx.alive()) return {};
  const products = data.products.edges.map((e) => e.node);
  const cats = [...new Set(products.map((p) => p.category))];
  let cat = ctx.query.get("cat") || "";
  const focus = ctx.query.get("p");
  const focused = products.find((p) => p.id === focus);
  if (focused) cat = focused.category;
  const item = (p, extra) => html`<li class="product" id="p-${p.id}" data-cat="${p.category}"${extra ? html` data-extra="1"` : ""}>
      ${picture(p.images[0], "(min-width: 40rem) 38rem, calc(100vw - 4rem)", "ppic")}
      <div class="prow"><h3>${p.name}</h3><span class="pprice">${priceRange(p.priceMinFen, p.priceMaxFen)} <small>${p.unit}</small></span></div>
      <span class="pill">${categoryLabel(p.category)}</span>
      <p class="story clamp" id="s-${p.id}">${p.story}</p>
      <button type="button" class="linkbtn" aria-expanded="false" aria-controls="s-${p.id}">${t("readStory")}</button>
      ${p.soldBy.length ? html`<p class="wtb">${t("whereToBuy")}</p><ul class="sold">${p.soldBy.map((m) => html`<li><a href="/m/${m.id}">${icon("store")}<span>${m.name}</span><small>${m.district.name}</small></a></li>`)}</ul>` : ""}
    </li>`;
  ctx.main.innerHTML = html`
    <header class="phead"><h1 tabindex="-1">${t("gifts")}</h1><p class="lead">${t("giftsIntro")}</p></header>
    <div class="filters scrollx" role="group" aria-label="${t("category")}">
      <button type="button" class="chip" data-cat="" aria-pressed="${String(!cat)}">${t("all")}</button>
      ${cats.map((c) => html`<button type="button" class="chip" data-cat="${c}" aria-pressed="${String(cat === c)}">${categoryLabel(c)}</button>`)}
    </div>
    ${cats.map((c) => {
      const list = products.filter((p) => p.category === c);
      return html`<section class="pgroup" data-group="${c}" aria-labelledby="g-${c}">
        <h2 id="g-${c}">${categoryLabel(c)} <span class="count-badge">${list.length}</span></h2>
        <ul class="products">${list.map((p, i) => item(p, i >= GROUP_PREVIEW))}</ul>
        ${list.length > GROUP_PREVIEW ? html`<button type="button" class="btn ghost small showcat" data-show="${c}">${t("showAllN", { n: list.length, what: categoryLabel(c) })}</button>` : ""}
      </section>`;
    })}`.s;
  const apply = () => {
    for (const g of $$(".pgroup", ctx.main)) g.hidden = Boolean(cat) && g.dataset.group !== cat;
    for (const li of $$(".product", ctx.main)) li.hidden = !cat && li.dataset.extra === "1";
    for (const b of $$(".showcat", ctx.main)) b.hidden = Boolean(cat);
    for (const b of $$("button[data-cat]", ctx.main)) b.setAttribute("aria-pressed", String(b.dataset.cat === cat));
  };
  const choose = (next) => {
    cat = next;
    history.replaceState(history.state, "", cat ? `/gifts?cat=${encodeURIComponent(cat)}` : "/gifts");
    apply();
  };
  for (const b of $$("button[data-cat]", ctx.main)) b.addEventListener("click", () => choose(b.dataset.cat));
  for (const b of $$("button[data-show]", ctx.main)) {
    b.addEventListener("click", () => { choose(b.dataset.show); $(`#g-${CSS.escape(cat)}`, ctx.main).scrollIntoView({ block: "start" }); });
  }
  for (const b of $$(".product .linkbtn", ctx.main)) {
    b.addEventListener("click", () => {
      const open = b.getAttribute("aria-expanded") !== "true";
      b.setAttribute("aria-expanded", String(open));
      b.previousElementSibling.classList.toggle("clamp", !open);
      b.textContent = open ? t("hideStory") : t("readStory");
    });
  }
  apply();
  if (focused) {
    const li = document.getElementById(`p-${focus}`);
    li.classList.add("focus");
    li.querySelector(".linkbtn").click();
    ctx.afterRender(() => li.scrollIntoView({ block: "start" }));
  }
  return { title: t("gifts") };
}

// ---------------------------------------------------------------- Festivals

export async function festivals(ctx) {
  const [now, next] = await Promise.all([query("Festivals", { when: "CURRENT" }), query("Festivals", { when: "UPCOMING" })]);
  if (!ctx.alive()) return {};
  const block = (list, current) => html`<ul class="fests">${list.map((f) => {
    const md = monthDay(f.startsOn);
    const shown = f.offers.slice(0, 3);
    const rest = f.offers.slice(3);
    const offerLi = (o) => html`<li><a class="forow" href="/m/${o.merchant.id}"><span class="obadge">${offerBadge(o)}</span>
      <span class="fotext"><span class="fotitle">${o.title}</span><small>${o.merchant.name}${o.merchant.district ? html` · ${o.merchant.district.name}` : ""}</small></span>${icon("chevron", "i fochev")}</a></li>`;
    return html`<li class="fest" id="f-${f.id}">
      <div class="cal ${current ? "cal-now" : ""}" aria-hidden="true"><span class="cal-m">${md.month}</span><span class="cal-d">${md.day}</span></div>
      <div class="fbody">
        <p class="kicker">${t(`k_${f.kind}`)} · ${dateRange(f.startsOn, f.endsOn)}</p>
        <h3>${f.name}</h3>
        <p>${f.description}</p>
        ${f.districts.length ? html`<ul class="tags">${f.districts.map((d) => html`<li><a class="chip small" href="/d/${d.id}">${d.name}</a></li>`)}</ul>` : ""}
      </div>
      ${f.offers.length ? html`<div class="fofull"><p class="wtb">${t("festivalOffers")} · ${f.offers.length}</p><ul class="folist">${shown.map(offerLi)}</ul>
        ${rest.length ? html`<details class="fomore"><summary>${t("showAllOffers", { n: f.offers.length })}</summary><ul class="folist">${rest.map(offerLi)}</ul></details>` : ""}</div>` : ""}
    </li>`;
  })}</ul>`;
  ctx.main.innerHTML = html`
    <header class="phead"><h1 tabindex="-1">${t("festivals")}</h1></header>
    <section aria-labelledby="h-now"><h2 id="h-now">${t("current")}</h2>
      ${now.festivals.length ? block(now.festivals, true) : html`<p class="muted">${t("noFestivals")}</p>`}</section>
    <section aria-labelledby="h-next"><h2 id="h-next">${t("upcoming")}</h2>
      ${next.festivals.length ? block(next.festivals, false) : html`<p class="muted">${t("noFestivals")}</p>`}</section>`.s;
  if (location.hash) {
    const target = document.getElementById(decodeURIComponent(location.hash.slice(1)));
    if (target) { target.classList.add("focus"); ctx.afterRender(() => target.scrollIntoView({ block: "start" })); }
  }
  return { title: t("festivals") };
}

// ---------------------------------------------------------------- Search

const SEARCH_MAX = 20; // what one search answers per kind; more merchants are paged with "查看全部"
const SEARCH_PREVIEW = 5;

export async function search(ctx) {
  const initial = ctx.query.get("q") || "";
  let all = ctx.query.get("all") === "merchants";
  ctx.main.innerHTML = html`
    <h1 class="sr" tabindex="-1">${t("search")}</h1>
    <form class="searchform" role="search" action="/search">
      <label for="q" class="sr">${t("searchLabel")}</label>
      ${icon("search")}
      <input id="q" name="q" type="search" value="${initial}" placeholder="${t("searchBox")}" autocomplete="off" autocapitalize="off" spellcheck="false" enterkeyhint="search">
    </form>
    <div id="results" aria-live="polite"></div>`.s;
  const input = $("#q", ctx.main);
  const out = $("#results", ctx.main);
  let timer;
  let seq = 0;
  async function run() {
    const text = input.value.trim();
    history.replaceState(history.state, "", text ? `/search?q=${encodeURIComponent(text)}${all ? "&all=merchants" : ""}` : "/search");
    const mine = ++seq;
    if (!text) {
      out.innerHTML = html`<p class="muted hint">${t("searchHint")}</p>
        <ul class="suggest">${SUGGESTIONS[locale].map((s) => html`<li><a class="chip" href="/search?q=${encodeURIComponent(s)}">${s}</a></li>`)}</ul>`.s;
      return;
    }
    try {
      if (all) { await allMerchants(text, mine); return; }
      const { search: r } = await query("Search", { query: text });
      if (mine !== seq || !ctx.alive()) return;
      const more = (n) => (n >= SEARCH_MAX ? `${SEARCH_MAX}+` : String(n));
      const group = (id, title, items, row, seeAll) => (items.length ? html`<section class="rgroup" aria-labelledby="${id}">
        <h2 id="${id}">${title} <span class="count-badge">${more(items.length)}</span></h2><ul class="rlist">${items.slice(0, seeAll ? SEARCH_PREVIEW : items.length).map(row)}</ul>
        ${seeAll && items.length > SEARCH_PREVIEW ? html`<a class="btn ghost small seeall" href="${seeAll}">${t("seeAll")}</a>` : ""}</section>` : "");
      out.innerHTML = (r.merchants.length + r.products.length + r.districts.length === 0
        ? html`<p class="muted">${t("noMatches", { q: text })}</p>`
        : html`
          ${group("r-d", t("resultsDistricts"), r.districts, (d) => html`<li><a href="/d/${d.id}">${icon("map")}<span>${d.name}</span></a></li>`)}
          ${group("r-m", t("resultsMerchants"), r.merchants, (m) => html`<li><a href="/m/${m.id}">${icon("store")}<span>${m.name}</span><small>${m.district.name}</small></a></li>`,
            `/search?q=${encodeURIComponent(text)}&all=merchants`)}
          ${group("r-p", t("resultsProducts"), r.products, (p) => html`<li><a href="/gifts?p=${p.id}">${icon("gift")}<span>${p.name}</span><small>${categoryLabel(p.category)}</small></a></li>`)}`).s;
    } catch {
      if (mine === seq) out.innerHTML = html`<p class="muted">${t("error")}</p>`.s;
    }
  }
  /** Every matching merchant, a page at a time ("查看全部"), each with its district. */
  async function allMerchants(text, mine, after = null) {
    const data = await query("SearchAll", { query: text, first: PAGE, after });
    if (mine !== seq || !ctx.alive()) return;
    const conn = data.merchants;
    const rows = conn.edges.map((e) => merchantRow(e.node)).join("");
    if (!after) {
      out.innerHTML = html`<section class="rgroup" aria-labelledby="r-all">
        <h2 id="r-all">${t("resultsMerchants")} <span class="count-badge">${conn.totalCount}</span></h2>
        <p class="count">${t("found", { n: conn.totalCount })} · <a class="linkbtn" href="/search?q=${encodeURIComponent(text)}">${t("backToResults")}</a></p>
        <ul class="mlist"></ul><div class="more"><button type="button" class="btn ghost" id="all-more" hidden>${t("loadMore")}</button></div></section>`.s;
      $("#all-more", out).addEventListener("click", (e) => {
        e.currentTarget.textContent = t("loadingMore");
        allMerchants(text, seq, e.currentTarget.dataset.after).catch(() => toast(t("error")));
      });
    }
    $(".mlist", out).insertAdjacentHTML("beforeend", rows);
    const btn = $("#all-more", out);
    btn.hidden = !conn.pageInfo.hasNextPage;
    btn.textContent = t("loadMore");
    btn.dataset.after = conn.pageInfo.endCursor || "";
  }
  input.addEventListener("input", () => { all = false; clearTimeout(timer); timer = setTimeout(run, 220); });
  $("form", ctx.main).addEventListener("submit", (e) => { e.preventDefault(); clearTimeout(timer); run(); input.blur(); });
  run();
  ctx.afterRender(() => { if (!initial) input.focus(); });
  return { title: t("search"), focus: false };
}

// ---------------------------------------------------------------- Favourites

export async function saved(ctx) {
  const render = () => {
    const list = favourites();
    ctx.main.innerHTML = html`
      <header class="phead"><h1 tabindex="-1">${t("favourites")}</h1></header>
      ${list.length ? html`<ul class="rlist favs">${list.map((f) => html`<li>
        <a href="${f.type === "district" ? "/d/" : "/m/"}${f.id}">${icon(f.type === "district" ? "map" : "store")}<span>${f.name}</span><small>${f.sub || ""}</small></a>
        <button type="button" class="fav" aria-pressed="true" data-fav="${JSON.stringify(f)}">${icon("heart")}<span class="sr">${t("saved")}</span></button>
      </li>`)}</ul>` : html`<p class="empty">${icon("heart", "i big")}<span>${t("noFavourites")}</span></p>`}`.s;
    for (const b of $$("[data-fav]", ctx.main)) {
      b.addEventListener("click", () => { toggleFavourite(JSON.parse(b.dataset.fav)); toast(t("removedToast")); render(); });
    }
  };
  render();
  return { title: t("favourites") };
}

// ---------------------------------------------------------------- Inbox

// The document of graphql/operations/InboxItems.graphql (whitespace collapsed; a test compares them).
const INBOX_LIVE = "subscription InboxItems($districts: [ID!]!, $topics: [PushTopic!], $locale: String, $newerThan: String) { inboxItems(districts: $districts, topics: $topics, locale: $locale, newerThan: $newerThan) { id title body url topics districtIds createdAt } }";

/** The districts and topics the inbox asks for: the saved choice, or every district. */
async function inboxVars() {
  const prefs = inboxPrefs();
  const all = (await query("Districts")).districts;
  return { all, prefs, vars: { districts: prefs.districts ?? all.map((d) => d.id), topics: prefs.topics } };
}

/** Shows the unread count on the bell and on the app icon (Badging API, where there is one). */
export function showUnread(n) {
  const el = $("#inbox-badge");
  if (el) { el.hidden = !n; el.textContent = n > 99 ? "99+" : String(n); }
  const bell = $("#inbox-link");
  if (bell) bell.setAttribute("aria-label", n ? `${t("inbox")} · ${t("unread", { n })}` : t("inbox"));
  try {
    if (n && navigator.setAppBadge) navigator.setAppBadge(n).catch(() => {});
    else if (!n && navigator.clearAppBadge) navigator.clearAppBadge().catch(() => {});
  } catch { /* not allowed here */ }
}

const unreadOf = (items) => { const read = readIds(); return items.filter((m) => !read.has(m.id)).length; };

/** Counts the unread messages of the newest page (at start-up and when the app comes back into view). */
export async function checkInbox() {
  const { vars } = await inboxVars();
  if (!vars.districts.length || !vars.topics.length) return showUnread(0);
  const data = await query("Inbox", { ...vars, first: PAGE }, { fresh: true });
  showUnread(unreadOf(data.inbox.edges.map((e) => e.node)));
}

const isIOS = () => /iPad|iPhone|iPod/.test(navigator.userAgent) || (navigator.platform === "MacIntel" && navigator.maxTouchPoints > 1);
const standalone = () => navigator.standalone === true || matchMedia("(display-mode: standalone)").matches;
const pushSupported = () => "serviceWorker" in navigator && "PushManager" in window && "Notification" in window;

function keyBytes(b64url) {
  const b64 = b64url.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((b64url.length + 3) % 4);
  return Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
}

const SUBSCRIBE = `mutation SubscribePush($subscription: PushSubscriptionInput!, $districts: [ID!]!, $topics: [PushTopic!]!, $locale: String) {
  subscribePush(subscription: $subscription, districts: $districts, topics: $topics, locale: $locale) { errors { message } } }`;
const UPDATE = `mutation UpdatePushPreferences($endpoint: String!, $districts: [ID!]!, $topics: [PushTopic!]!, $locale: String) {
  updatePushPreferences(endpoint: $endpoint, districts: $districts, topics: $topics, locale: $locale) { errors { message } } }`;

/** Only ever run from the "turn on notifications" tap: permission, then subscribe, then tell the server. */
async function turnOnPush(vars) {
  if (isIOS() && !standalone()) return t("iosHint");
  if (!pushSupported()) return t("pushUnsupported");
  if (await Notification.requestPermission() !== "granted") return t("pushDenied");
  const reg = await navigator.serviceWorker.ready;
  const { pushPublicKey } = await post("query PushPublicKey { pushPublicKey }");
  const sub = (await reg.pushManager.getSubscription())
    || await reg.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: keyBytes(pushPublicKey) });
  const { endpoint, keys } = sub.toJSON();
  const data = await post(SUBSCRIBE, { subscription: { endpoint, keys: { p256dh: keys.p256dh, auth: keys.auth } }, ...vars, locale });
  const problem = data.subscribePush.errors[0];
  return problem ? problem.message : t("pushOn");
}

/** Keeps an existing subscription's districts and topics in step with the settings (best effort). */
async function updatePush(vars) {
  if (!pushSupported() || Notification.permission !== "granted") return;
  const sub = await (await navigator.serviceWorker.ready).pushManager.getSubscription();
  if (sub) await post(UPDATE, { endpoint: sub.endpoint, ...vars, locale });
}

function inboxItem(m, read, arrived, arriving) {
  const unread = !read.has(m.id);
  const live = `${arrived.has(m.id) ? " arrived" : ""}${arriving.has(m.id) ? " arriving" : ""}`;
  return html`<li class="msg${unread ? " unread" : ""}${live}" data-id="${m.id}">
    <div class="msg-top">${unread ? html`<span class="obadge">${t("isNew")}</span>` : ""}<strong>${m.title}</strong></div>
    <p>${m.body}</p>
    <div class="msg-foot"><time datetime="${m.createdAt}" title="${dateTime(m.createdAt)}">${ago(m.createdAt)}</time>
      <a class="btn small" href="${/^(https:\/\/|\/(?!\/))/.test(m.url) ? m.url : "/"}" data-open>${t("open")}</a>
      ${unread ? html`<button type="button" class="btn ghost small" data-read>${t("markRead")}</button>` : ""}</div>
  </li>`;
}

export async function inboxScreen(ctx) {
  let { all, prefs, vars } = await inboxVars();
  let items = [];
  let cursor = null;
  let newest = null; // the cursor of the newest item of the first page
  let more = false;
  const fetchPage = async () => {
    if (!vars.districts.length || !vars.topics.length) { items = []; more = false; return; }
    const data = await query("Inbox", { ...vars, first: PAGE, after: cursor }, { fresh: !cursor });
    items = cursor ? items.concat(data.inbox.edges.map((e) => e.node)) : data.inbox.edges.map((e) => e.node);
    // the newest item's cursor: the subscription first sends what was announced after it ("" when none)
    if (!cursor) newest = data.inbox.edges.length ? data.inbox.edges[0].cursor : "";
    cursor = data.inbox.pageInfo.endCursor;
    more = data.inbox.pageInfo.hasNextPage;
  };
  const arrived = new Set(); // came in while the inbox was open: tinted until the next visit
  let arriving = new Set(); // came in just now: fades in once
  await fetchPage();
  if (!ctx.alive()) return {};
  const chosen = new Set(vars.districts);
  const iosHint = isIOS() && !standalone();
  ctx.main.innerHTML = html`
    <header class="phead"><h1 tabindex="-1">${t("inboxTitle")}</h1><p class="muted" id="unread-line"></p></header>
    <section aria-labelledby="h-msgs"><h2 id="h-msgs" class="sr">${t("inbox")}</h2>
      <p class="sr" id="msgs-live" role="status"></p>
      <div id="msgs"></div></section>
    <section class="notif" aria-labelledby="h-notif">
      <h2 id="h-notif">${t("notifSettings")}</h2>
      <form id="prefs">
        <fieldset><legend>${t("districts")}</legend>${all.map((d) => html`<label class="check"><input type="checkbox" name="district" value="${d.id}"${chosen.has(d.id) ? html` checked` : ""}> ${d.name}</label>`)}</fieldset>
        <fieldset><legend>${t("topicsLabel")}</legend>${TOPICS.map((x) => html`<label class="check"><input type="checkbox" name="topic" value="${x}"${vars.topics.includes(x) ? html` checked` : ""}> ${t(`t_${x}`)}</label>`)}</fieldset>
      </form>
      ${iosHint ? html`<p class="hint" id="ios-hint">${t("iosHint")}</p>` : ""}
      <button type="button" class="btn primary" id="push-on">${icon("bell")}${t("turnOn")}</button>
      <p class="muted" id="push-status" role="status"></p>
    </section>`.s;
  const list = $("#msgs", ctx.main);
  const paint = () => {
    const read = readIds();
    const n = unreadOf(items);
    $("#unread-line", ctx.main).textContent = n ? t("unread", { n }) : "";
    showUnread(n);
    const problem = !vars.districts.length || !vars.topics.length;
    list.innerHTML = html`${items.length ? html`
      ${n ? html`<button type="button" class="btn ghost small" id="read-all">${t("markAllRead")}</button>` : ""}
      <ul class="msgs">${items.map((m) => inboxItem(m, read, arrived, arriving))}</ul>
      ${more ? html`<button type="button" class="btn" id="inbox-more">${t("loadMore")}</button>` : ""}`
      : html`<p class="empty">${icon("bell", "i big")}<span>${problem ? t("pickOne") : t("noMessages")}</span></p>`}`.s;
  };
  paint();
  // New messages arrive over a subscription while the inbox is open; after a lost connection the first
  // page is fetched again, since what was announced meanwhile never reached this socket.
  const addNew = (fresh) => {
    const known = new Set(items.map((m) => m.id));
    const added = fresh.filter((m) => !known.has(m.id));
    if (!added.length) return;
    for (const m of added) arrived.add(m.id);
    items = [...added, ...items].sort((a, b) => Date.parse(b.createdAt) - Date.parse(a.createdAt));
    arriving = new Set(added.map((m) => m.id));
    paint();
    arriving = new Set();
    $("#msgs-live", ctx.main).textContent = t("newMessage", { title: added[0].title });
  };
  const refetch = async () => {
    if (!vars.districts.length || !vars.topics.length) return;
    try {
      const data = await query("Inbox", { ...vars, first: PAGE }, { fresh: true });
      if (ctx.alive()) addNew(data.inbox.edges.map((e) => e.node));
    } catch { /* offline again: the next reconnect tries once more */ }
  };
  let stopLive = () => {};
  const follow = () => {
    stopLive();
    stopLive = () => {};
    if (!vars.districts.length || !vars.topics.length) return;
    stopLive = live(INBOX_LIVE, { ...vars, locale, newerThan: newest }, (data) => { if (data.inboxItems) addNew([data.inboxItems]); },
      { onReconnect: refetch });
  };
  follow();
  ctx.onLeave(() => stopLive());
  list.addEventListener("click", async (e) => {
    const li = e.target.closest("li[data-id]");
    if (li && (e.target.closest("[data-read]") || e.target.closest("[data-open]"))) { markRead([li.dataset.id]); if (e.target.closest("[data-read]")) paint(); }
    if (e.target.closest("#read-all")) { markRead(items.map((m) => m.id)); paint(); }
    const btn = e.target.closest("#inbox-more");
    if (btn) {
      btn.disabled = true; btn.textContent = t("loadingMore");
      try { await fetchPage(); } catch { toast(t("error")); }
      if (ctx.alive()) paint();
    }
  });
  const form = $("#prefs", ctx.main);
  form.addEventListener("change", async () => {
    const districts = $$("[name=district]:checked", form).map((i) => i.value);
    const topics = $$("[name=topic]:checked", form).map((i) => i.value);
    prefs = { districts: districts.length === all.length ? null : districts, topics };
    saveInboxPrefs(prefs);
    vars = { districts, topics };
    cursor = null;
    try { await fetchPage(); } catch { toast(t("error")); return; }
    if (!ctx.alive()) return;
    paint();
    follow();
    toast(t("settingsSaved"));
    updatePush(vars).catch(() => {});
  });
  $("#push-on", ctx.main).addEventListener("click", async (e) => {
    const status = $("#push-status", ctx.main);
    e.currentTarget.disabled = true;
    status.textContent = t("turningOn");
    let message;
    try { message = await turnOnPush(vars); } catch { message = t("pushUnsupported"); }
    if (!ctx.alive()) return;
    status.textContent = message;
    $("#push-on", ctx.main).disabled = false;
  });
  return { title: t("inboxTitle") };
}

// ---------------------------------------------------------------- Settings

const LANGS = [["zh-CN", "简体中文"], ["zh-HK", "繁體中文"], ["en", "English"]];

/** Language, notifications per district and topic, followed districts, and wiping this device's data. */
export async function settings(ctx) {
  const data = await query("Settings");
  if (!ctx.alive()) return {};
  const all = data.districts;
  const prefs = inboxPrefs();
  const chosen = new Set(prefs.districts ?? all.map((d) => d.id));
  const followed = favourites().filter((f) => f.type === "district");
  const quiet = data.pushQuietHours;
  const hh = (h) => `${String(h).padStart(2, "0")}:00`;
  ctx.main.innerHTML = html`
    <header class="phead"><h1 tabindex="-1">${t("settings")}</h1></header>
    <section class="set" aria-labelledby="h-lang"><h2 id="h-lang">${t("language")}</h2>
      <div class="seg" role="group" aria-labelledby="h-lang">${LANGS.map(([code, name]) => html`<button type="button" data-setlang="${code}" lang="${code}" aria-pressed="${String(code === locale)}">${name}</button>`)}</div>
    </section>
    <section class="set notif" aria-labelledby="h-notif"><h2 id="h-notif">${t("notifSettings")}</h2>
      <form id="prefs">
        <fieldset><legend>${t("districts")}</legend>${all.map((d) => html`<label class="check"><input type="checkbox" name="district" value="${d.id}"${chosen.has(d.id) ? html` checked` : ""}> ${d.name}</label>`)}</fieldset>
        <fieldset><legend>${t("topicsLabel")}</legend>${TOPICS.map((x) => html`<label class="check"><input type="checkbox" name="topic" value="${x}"${prefs.topics.includes(x) ? html` checked` : ""}> ${t(`t_${x}`)}</label>`)}</fieldset>
      </form>
      <p class="hint" id="quiet-note">${quiet ? t("quietHours", { from: hh(quiet.start), to: hh(quiet.end) }) : t("noQuietHours")}</p>
      <button type="button" class="btn primary" id="push-on">${icon("bell")}${t("turnOn")}</button>
      <p class="muted" id="push-status" role="status"></p>
    </section>
    <section class="set" aria-labelledby="h-follow"><h2 id="h-follow">${t("followed")}</h2>
      ${followed.length ? html`<ul class="rlist favs">${followed.map((f) => html`<li>
        <a href="/d/${f.id}">${icon("map")}<span>${f.name}</span></a>
        <button type="button" class="fav" aria-pressed="true" data-unfollow="${f.id}">${icon("heart")}<span class="sr">${t("saved")}</span></button></li>`)}</ul>`
        : html`<p class="muted">${t("noFollowed")}</p>`}
    </section>
    <section class="set" aria-labelledby="h-clear"><h2 id="h-clear">${t("clearData")}</h2>
      <p class="muted">${t("clearDataHint")}</p>
      <button type="button" class="btn danger" id="clear-data">${t("clearDataButton")}</button>
    </section>`.s;
  for (const b of $$("[data-setlang]", ctx.main)) {
    b.addEventListener("click", () => {
      if (b.getAttribute("aria-pressed") === "true") return;
      setLocale(b.dataset.setlang);
      ctx.rerender();
    });
  }
  const form = $("#prefs", ctx.main);
  form.addEventListener("change", () => {
    const districts = $$("[name=district]:checked", form).map((i) => i.value);
    const topics = $$("[name=topic]:checked", form).map((i) => i.value);
    saveInboxPrefs({ districts: districts.length === all.length ? null : districts, topics });
    toast(t("settingsSaved"));
    updatePush({ districts, topics }).catch(() => {});
  });
  $("#push-on", ctx.main).addEventListener("click", async (e) => {
    const statusEl = $("#push-status", ctx.main);
    e.currentTarget.disabled = true;
    statusEl.textContent = t("turningOn");
    const districts = $$("[name=district]:checked", form).map((i) => i.value);
    const topics = $$("[name=topic]:checked", form).map((i) => i.value);
    let message;
    try { message = await turnOnPush({ districts, topics }); } catch { message = t("pushUnsupported"); }
    if (!ctx.alive()) return;
    statusEl.textContent = message;
    $("#push-on", ctx.main).disabled = false;
  });
  for (const b of $$("[data-unfollow]", ctx.main)) {
    b.addEventListener("click", () => {
      const f = followed.find((x) => x.id === b.dataset.unfollow);
      if (f) toggleFavourite(f);
      toast(t("removedToast"));
      ctx.rerender();
    });
  }
  $("#clear-data", ctx.main).addEventListener("click", async () => {
    if (!confirm(t("clearDataConfirm"))) return;
    await clearDeviceData();
    toast(t("dataCleared"));
    ctx.rerender();
  });
  return { title: t("settings") };
}

/** Forgets everything this app keeps on the device: favourites, inbox state, language, saved answers, push. */
async function clearDeviceData() {
  try {
    for (const key of Object.keys(localStorage)) if (key.startsWith("sq.") && !KEPT_KEYS.includes(key)) localStorage.removeItem(key);
    for (const key of Object.keys(sessionStorage)) if (key.startsWith("sq.")) sessionStorage.removeItem(key);
  } catch { /* storage disabled: nothing was kept */ }
  try {
    // Saved API answers and pictures; the app's own files stay so that it still opens offline.
    for (const name of await caches.keys()) if (!name.includes("precache")) await caches.delete(name);
  } catch { /* no Cache Storage here */ }
  try {
    const reg = "serviceWorker" in navigator ? await navigator.serviceWorker.getRegistration() : null;
    const sub = reg && reg.pushManager ? await reg.pushManager.getSubscription() : null;
    if (sub) await sub.unsubscribe();
  } catch { /* no push here */ }
  setLocale(fromBrowser(), { remember: false });
  showUnread(0);
}

export function notFound(ctx) {
  ctx.main.innerHTML = html`<section class="nf">
    <p class="nf-code" aria-hidden="true">404</p>
    <h1 tabindex="-1">${t("notFound")}</h1>
    <p class="muted">${t("notFoundHint")}</p>
    <div class="nf-actions"><a class="btn primary" href="/">${icon("map")}${t("navHome")}</a><a class="btn" href="/search">${icon("search")}${t("search")}</a></div>
  </section>`.s;
  return { title: t("notFound") };
}

// ---------------------------------------------------------------- 我的券

const COUPON_STATE = { CLAIMED: "couponClaimed", REDEEMED: "couponRedeemed", EXPIRED: "couponExpired" };

function couponCard(c) {
  // An offer's end can pass while the app is offline: the device then shows it expired on its own.
  const state = c.state === "CLAIMED" && new Date(c.expiresAt) <= new Date() ? "EXPIRED" : c.state;
  const o = c.offer;
  return html`<li class="coupon-card state-${state.toLowerCase()}">
    ${state === "CLAIMED" ? html`<div class="qr" role="img" aria-label="${t("coupon")} ${c.code}">${raw(c.qrSvg)}</div>` : ""}
    <div class="cbody">
      <p class="ccode"><code>${c.code}</code></p>
      ${o ? html`<h2>${o.title}</h2><p class="muted">${o.merchant ? html`<a href="/m/${o.merchant.id}">${o.merchant.name}</a> · ` : ""}${offerBadge(o)}</p>` : ""}
      <p class="cstate"><span class="tag">${t(COUPON_STATE[state])}</span> ${t("expiresAt", { date: dateTime(c.expiresAt) })}</p>
    </div>
  </li>`;
}

export async function couponsScreen(ctx) {
  const paintList = () => {
    const list = coupons();
    ctx.main.innerHTML = html`<header class="phead"><h1 tabindex="-1">${t("myCoupons")}</h1>
      ${list.length ? html`<p class="muted">${t("showAtCounter")}</p>` : ""}</header>
      ${list.length ? html`<ul class="coupons">${list.map(couponCard)}</ul>` : html`<p class="empty">${t("noCoupons")}</p>`}`.s;
  };
  paintList(); // what the device holds, at once and offline
  try {
    const { myCoupons } = await queryFresh("MyCoupons", { deviceKey: deviceKey() });
    if (!ctx.alive()) return {};
    keepCoupons(myCoupons);
    paintList();
  } catch { /* offline: the device's own copy is shown */ }
  return { title: t("myCoupons") };
}
