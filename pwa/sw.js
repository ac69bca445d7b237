/* Shangquan service worker, served at /sw.js (scope "/") with its precache manifest injected by
   server/web/pwa.py: [{url, revision}] where revision is the hash of the file's bytes. */
const PRECACHE = /*@precache*/[];
const VERSION = /*@version*/'dev';

const PRECACHE_CACHE = "sq-precache";
const API_CACHE = "sq-api-v1";
const IMAGE_CACHE = "sq-images-v1";
const API_MAX_ENTRIES = 150;
const IMAGE_MAX_ENTRIES = 60;
const IMAGE_MAX_BYTES = 512 * 1024;
const SHELL = "/app/index.html";
const OFFLINE_PAGE = "/app/offline.html";
const ICON = "/app/icons/icon-192.png";
const BADGE = "/app/icons/badge-96.png";
// Client-side routes of the app: a navigation to any of them gets the precached shell.
const APP_PATHS = /^\/(?:|app\/|app\/index\.html|d\/[\w-]+|m\/[\w-]+|merchants|gifts|festivals|search|favourites|inbox|coupons|settings)$/;

const keyFor = (entry) => `${entry.url}?__v=${entry.revision}`;
const PRECACHED = new Map(PRECACHE.map((e) => [e.url, new URL(keyFor(e), self.location.origin).href]));

// ------------------------------------------------------------------ lifecycle

self.addEventListener("install", (event) => {
  event.waitUntil((async () => {
    const cache = await caches.open(PRECACHE_CACHE);
    await Promise.all(PRECACHE.map(async (entry) => {
      const key = keyFor(entry);
      if (await cache.match(key)) return; // same revision: already here from an earlier version
      const response = await fetch(key, { cache: "no-store" });
      if (!response.ok) throw new Error(`precache ${entry.url}: HTTP ${response.status}`);
      await cache.put(key, response);
    }));
    // The first install has no page to disrupt; an update waits for the user's "reload".
    if (!self.registration.active) await self.skipWaiting();
  })());
});

self.addEventListener("activate", (event) => {
  event.waitUntil((async () => {
    const keep = new Set(PRECACHED.values());
    const cache = await caches.open(PRECACHE_CACHE);
    for (const request of await cache.keys()) if (!keep.has(request.url)) await cache.delete(request);
    for (const name of await caches.keys()) {
      if (![PRECACHE_CACHE, API_CACHE, IMAGE_CACHE].includes(name)) await caches.delete(name);
    }
    await self.clients.claim();
  })());
});

self.addEventListener("message", (event) => {
  const type = event.data && event.data.type;
  if (type === "SKIP_WAITING") self.skipWaiting();
  if (type === "VERSION") event.source?.postMessage({ type: "VERSION", version: VERSION });
});

// ------------------------------------------------------------------ fetch

self.addEventListener("fetch", (event) => {
  const request = event.request;
  if (request.method !== "GET") return;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin) return;

  if (request.mode === "navigate") {
    event.respondWith(APP_PATHS.test(url.pathname) ? shell(request) : networkOr(request, OFFLINE_PAGE));
    return;
  }
  const precached = !url.search && PRECACHED.get(url.pathname);
  if (precached) {
    event.respondWith(fromPrecache(precached, request));
    return;
  }
  if (url.pathname === "/graphql" && url.searchParams.has("extensions")) {
    event.respondWith(staleWhileRevalidate(event));
    return;
  }
  if (request.destination === "image") event.respondWith(imageCacheFirst(request));
});

async function fromPrecache(key, request) {
  const cache = await caches.open(PRECACHE_CACHE);
  return (await cache.match(key)) || fetch(request);
}

async function shell(request) {
  const cache = await caches.open(PRECACHE_CACHE);
  const cached = await cache.match(PRECACHED.get(SHELL));
  if (cached) return cached;
  return networkOr(request, OFFLINE_PAGE);
}

async function networkOr(request, fallbackUrl) {
  try {
    return await fetch(request);
  } catch {
    const cache = await caches.open(PRECACHE_CACHE);
    return (await cache.match(PRECACHED.get(fallbackUrl))) || Response.error();
  }
}

/** Persisted GraphQL GETs: answer from the cache at once, refresh it in the background. The refresh asks
 * with If-None-Match, so an unchanged answer costs a 304 (the server answers it from its own cache, without
 * its database) and the device keeps what it has. */
async function staleWhileRevalidate(event) {
  const cache = await caches.open(API_CACHE);
  const cached = await cache.match(event.request, { ignoreVary: true });
  const etag = cached && cached.headers.get("etag");
  // no-store: this cache is the device's only copy (the HTTP cache would keep a second one and answer the 304
  // itself); the If-None-Match is ours.
  const headers = new Headers(event.request.headers);
  if (etag) headers.set("If-None-Match", etag);
  const ask = new Request(event.request, { cache: "no-store", headers });
  const refresh = fetch(ask).then(async (response) => {
    if (response.status === 304 && cached) return cached.clone();
    // Only what the server marks public (answers without errors) is kept.
    if (response.ok && /\bpublic\b/.test(response.headers.get("cache-control") || "")) {
      await cache.put(event.request, response.clone());
      await trim(cache, API_MAX_ENTRIES);
    }
    return response;
  });
  if (cached) {
    event.waitUntil(refresh.catch(() => {}));
    return cached;
  }
  try {
    return await refresh;
  } catch {
    return new Response(JSON.stringify({ data: null, errors: [{ message: "offline and not cached", extensions: { code: "OFFLINE" } }] }),
      { status: 503, headers: { "content-type": "application/json", "cache-control": "no-store" } });
  }
}

/** Images: cache first, at most IMAGE_MAX_ENTRIES of them, none bigger than IMAGE_MAX_BYTES. */
async function imageCacheFirst(request) {
  const cache = await caches.open(IMAGE_CACHE);
  const cached = await cache.match(request);
  if (cached) return cached;
  const response = await fetch(request);
  const size = Number(response.headers.get("content-length") || 0);
  if (response.ok && response.type === "basic" && size <= IMAGE_MAX_BYTES) {
    await cache.put(request, response.clone());
    await trim(cache, IMAGE_MAX_ENTRIES);
  }
  return response;
}

async function trim(cache, max) {
  const keys = await cache.keys(); // oldest first
  for (const request of keys.slice(0, Math.max(0, keys.length - max))) await cache.delete(request);
}

// ------------------------------------------------------------------ push

/** A same-origin path from a push payload; anything else falls back to the home page. */
function safePath(value) {
  try {
    const url = new URL(value || "/", self.location.origin);
    return url.origin === self.location.origin ? url.pathname + url.search + url.hash : "/";
  } catch {
    return "/";
  }
}

/** A notification image: an https URL (the server allows no other scheme) or a path of this site. */
function safeImage(value) {
  if (typeof value !== "string" || !value) return undefined;
  if (value.startsWith("/") && !value.startsWith("//")) return safePath(value);
  try {
    return new URL(value).protocol === "https:" ? value : undefined;
  } catch {
    return undefined;
  }
}

// The server sends each campaign to a subscription once, but a worker that dies between the push service's
// answer and writing it down sends it again: the ids of the last SEEN_MAX campaigns shown are kept here, so a
// shopper sees a campaign once, even across restarts of this worker.
const SEEN_DB = "sq-push";
const SEEN_STORE = "seen";
const SEEN_KEY = "ids";
const SEEN_MAX = 200;

function openSeen() {
  return new Promise((resolve, reject) => {
    const request = indexedDB.open(SEEN_DB, 1);
    request.onupgradeneeded = () => request.result.createObjectStore(SEEN_STORE);
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

/** True the first time a campaign id comes: checked and written in one readwrite transaction, so of two pushes
 * handled at once only one wins. Without IndexedDB it shows (a duplicate then replaces, by its tag). */
async function firstSighting(id) {
  if (!id) return true;
  let db;
  try { db = await openSeen(); } catch { return true; }
  try {
    return await new Promise((resolve, reject) => {
      const tx = db.transaction(SEEN_STORE, "readwrite");
      const store = tx.objectStore(SEEN_STORE);
      let first = true;
      const read = store.get(SEEN_KEY);
      read.onsuccess = () => {
        const ids = Array.isArray(read.result) ? read.result : [];
        first = !ids.includes(id);
        if (first) store.put([...ids, id].slice(-SEEN_MAX), SEEN_KEY);
      };
      tx.oncomplete = () => resolve(first);
      tx.onerror = () => reject(tx.error);
      tx.onabort = () => reject(tx.error);
    });
  } catch {
    return true;
  } finally {
    db.close();
  }
}

self.addEventListener("push", (event) => {
  let data = {};
  try {
    data = event.data ? event.data.json() : {};
  } catch {
    data = { body: event.data ? event.data.text() : "" };
  }
  event.waitUntil(showPush(data));
});

/** Shows a push and tells open windows, which refresh the inbox count. A campaign already shown (a worker
 * killed at the wrong moment can send one twice) replaces its own notification silently: showing nothing would
 * make Chrome show "updated in the background" and Safari count a push without a notification against us. */
async function showPush(data) {
  const id = typeof data.id === "string" && data.id ? data.id : null;
  const shown = await firstSighting(id);
  const actions = Array.isArray(data.actions) ? data.actions.slice(0, 2) : [];
  const options = {
    body: data.body || "",
    icon: data.icon ? safePath(data.icon) : ICON,
    image: safeImage(data.image),
    badge: BADGE,
    tag: data.tag || (id ? `campaign-${id}` : undefined),
    renotify: shown && Boolean(data.tag),
    silent: !shown,
    timestamp: data.timestamp || Date.now(),
    data: {
      id,
      url: safePath(data.url),
      actions: Object.fromEntries(actions.map((a) => [a.action, safePath(a.url || data.url)])),
    },
    actions: actions.map((a) => ({ action: String(a.action), title: String(a.title || a.action) })),
  };
  await self.registration.showNotification(data.title || "商圈 Shangquan", options);
  const windows = await self.clients.matchAll({ type: "window", includeUncontrolled: true });
  for (const client of windows) client.postMessage({ type: "pushed", id, shown });
}

self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  event.waitUntil(openFromNotification(event.notification, event.action));
});

/** Focuses a window of the app on the notification's page (or opens one) and reports the click. */
async function openFromNotification(notification, action) {
  const data = notification.data || {};
  const path = (action && data.actions && data.actions[action]) || data.url || "/";
  const target = new URL(path, self.location.origin).href;
  const report = fetch("/push/clicked", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ id: data.id, action: action || null, url: path }),
    keepalive: true,
  }).catch(() => {}); // best effort: the endpoint may not exist yet
  const windows = await self.clients.matchAll({ type: "window", includeUncontrolled: true });
  const same = windows.find((c) => c.url === target) || windows.find((c) => new URL(c.url).origin === self.location.origin);
  if (same) {
    try { await same.focus(); } catch { /* focusing needs the click's user activation */ }
    if (same.url !== target) same.postMessage({ type: "navigate", url: path });
  } else if (self.clients.openWindow) {
    await self.clients.openWindow(target);
  }
  await report;
}
