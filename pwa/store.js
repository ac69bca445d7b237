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
