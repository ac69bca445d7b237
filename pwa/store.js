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
