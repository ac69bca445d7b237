// Favourites live on the device only (localStorage): no account, works offline.
const KEY = "sq.favourites";

export function favourites() {
  try {
    const list = JSON.parse(localStorage.getItem(KEY) || "[]");
    return Array.isArray(list) ? list : [];
  } catch {
    return [];
  }
}

function write(list) {
  try { localStorage.setItem(KEY, JSON.stringify(list)); } catch { /* storage full or disabled */ }
}

export const isFavourite = (id) => favourites().some((f) => f.id === id);

/** item: {id, type: "merchant" | "district", name, sub}; returns whether it is now a favourite. */
export function toggleFavourite(item) {
  const list = favourites();
  const at = list.findIndex((f) => f.id === item.id);
  if (at >= 0) list.splice(at, 1);
  else list.unshift({ ...item, savedAt: Date.now() });
  write(list);
  return at < 0;
}

/** Keeps a saved item's name current (e.g. in the language last seen). */
export function refreshFavourite(item) {
  const list = favourites();
  const found = list.find((f) => f.id === item.id);
  if (found && (found.name !== item.name || found.sub !== item.sub)) {
    Object.assign(found, item);
    write(list);
  }
}

// Inbox: which messages were read, and the districts and topics to follow, also on the device only.
const READ = "sq.inbox.read";
const PREFS = "sq.inbox.prefs";
export const TOPICS = ["FESTIVALS", "OFFERS", "CROWD_ALERTS"];

function load(key, fallback) {
  try { return JSON.parse(localStorage.getItem(key)) ?? fallback; } catch { return fallback; }
}
function save(key, value) {
  try { localStorage.setItem(key, JSON.stringify(value)); } catch { /* storage full or disabled */ }
}

export const readIds = () => new Set(load(READ, []));
export function markRead(ids) {
  const set = readIds();
  for (const id of ids) set.add(id);
  save(READ, [...set].slice(-500));
}

/** {districts: null (every district) | [ids], topics: [PushTopic]} */
export function inboxPrefs() {
  const p = load(PREFS, {});
  return {
    districts: Array.isArray(p.districts) ? p.districts : null,
    topics: Array.isArray(p.topics) ? p.topics.filter((x) => TOPICS.includes(x)) : TOPICS,
  };
}
export const saveInboxPrefs = (prefs) => save(PREFS, prefs);

// Coupons: the device's random key (how the server knows this device's claims; never sent anywhere else)
// and the claimed coupons themselves, QR picture included, so "我的券" opens offline.
const DEVICE = "sq.device";
const COUPONS = "sq.coupons";
/** Kept when the shopper clears this device's data: they are coupons the shopper owns, not traces. */
export const KEPT_KEYS = [DEVICE, COUPONS];

export function deviceKey() {
  let key = load(DEVICE, null);
  if (typeof key !== "string" || key.length < 16) {
    key = crypto.randomUUID ? crypto.randomUUID()
      : Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, "0")).join("");
    save(DEVICE, key);
  }
  return key;
}

export function coupons() {
  const list = load(COUPONS, []);
  return Array.isArray(list) ? list : [];
}

/** A claimed coupon first; the same code again replaces the stored one (e.g. now redeemed). */
export function keepCoupon(coupon) {
  save(COUPONS, [coupon, ...coupons().filter((c) => c.code !== coupon.code)].slice(0, 200));
}

/** The server's list is the truth when it answers; coupons only this device knows stay. */
export function keepCoupons(fromServer) {
  const known = new Set(fromServer.map((c) => c.code));
  save(COUPONS, [...fromServer, ...coupons().filter((c) => !known.has(c.code))].slice(0, 200));
}
