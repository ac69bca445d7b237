// Every read is a persisted query sent by GET: short, cacheable URLs that the service worker
// serves stale-while-revalidate (queryFresh POSTs one when only the server's answer of now will do).
// The operation names map to SHA-256 hashes in operations.js, which the server generates from
// graphql/operations/.
import HASHES from "./operations.js";
import { locale } from "./i18n.js";

export class OfflineError extends Error {}
export class ApiError extends Error {
  constructor(message, code) { super(message); this.code = code; }
}

const TTL_MS = 15000; // as long as the server lets caches keep a response
const memo = new Map();
/** Every query URL this page has loaded: re-requested through the service worker when it first takes control. */
export const seen = new Set();

function request(name, variables = {}) {
  const sha256Hash = HASHES[name];
  if (!sha256Hash) throw new Error(`no persisted document named ${name}`);
  const vars = {};
  for (const [k, v] of Object.entries(variables)) if (v !== null && v !== undefined) vars[k] = v;
  vars.locale = locale;
  return { extensions: { persistedQuery: { version: 1, sha256Hash } }, variables: vars };
}

export function urlFor(name, variables = {}) {
  const { extensions, variables: vars } = request(name, variables);
  const params = new URLSearchParams({ extensions: JSON.stringify(extensions), variables: JSON.stringify(vars) });
  return `/graphql?${params}`;
}

/** data of the named operation; throws OfflineError (no network and nothing saved) or ApiError. */
export function query(name, variables, { fresh = false } = {}) {
  const url = urlFor(name, variables);
  const hit = memo.get(url);
  if (!fresh && hit && Date.now() - hit.at < TTL_MS) return hit.promise;
  const promise = load(url);
  memo.set(url, { at: Date.now(), promise });
  promise.catch(() => memo.delete(url));
  return promise;
}

export function forget(url) { memo.delete(url); }

/** The named operation straight from the server: a POST, which neither the service worker nor an HTTP cache answers. */
export function queryFresh(name, variables) {
  const body = JSON.stringify(request(name, variables));
  return load("/graphql", { method: "POST", headers: { "content-type": "application/json" }, body });
}

/** A document sent as text by POST (mutations and never-cached reads such as the push key). */
export function post(text, variables = {}) {
  const body = JSON.stringify({ query: text, variables });
  return load("/graphql", { method: "POST", headers: { "content-type": "application/json" }, body });
}

/** A persisted mutation, by POST (never cached); data or throws like query(). */
export function mutate(name, variables) {
  const body = JSON.stringify(request(name, variables));
  return load("/graphql", { method: "POST", headers: { "content-type": "application/json" }, body });
}

/** Tell the merchant an offer was seen (VIEW, once per offer and session) or its coupon copied (SAVE); best effort. */
export function recordOffer(id, kind) {
  const key = `sq.seen.${kind}.${id}`;
  try {
    if (kind === "VIEW" && sessionStorage.getItem(key)) return;
    sessionStorage.setItem(key, "1");
  } catch { /* private mode: count anyway */ }
  const body = JSON.stringify(request("RecordOfferInteraction", { id, kind }));
  fetch("/graphql", { method: "POST", headers: { "content-type": "application/json" }, body, keepalive: true })
    .catch(() => { /* offline: the count is a courtesy, not a record */ });
}

async function load(url, init) {
  if (!init) seen.add(url);
  let res;
  try {
    res = await fetch(url, init);
  } catch {
    throw new OfflineError("offline");
  }
  let body;
  try {
    body = await res.json();
  } catch {
    throw new ApiError(`HTTP ${res.status}`, "HTTP");
  }
  const first = body.errors && body.errors[0];
  if (first) {
    const code = first.extensions && first.extensions.code;
    if (code === "OFFLINE") throw new OfflineError("offline");
    throw new ApiError(first.message, code);
  }
  return body.data;
}

// ------------------------------------------------------------------ live (graphql-transport-ws)

const BACKOFF = [1000, 2000, 5000, 10000, 20000, 30000];
const ACK_TIMEOUT = 10000;

/**
 * Runs one subscription over its own WebSocket on /graphql and calls onData(data) for each result. Only while
 * the page is visible and online; reconnects after 1 s, 2 s, 5 s … at most 30 s. onReconnect() is called each
 * time a connection after the first is acknowledged: what was published while there was none is lost, so the
 * caller refetches. Returns stop().
 */
export function live(text, variables, onData, { onReconnect = null } = {}) {
  const url = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/graphql`;
  let ws = null;
  let retryTimer = 0;
  let attempt = 0;
  let stopped = false;
  let acknowledged = false;
  const wanted = () => !stopped && document.visibilityState === "visible" && navigator.onLine;

  function connect() {
    clearTimeout(retryTimer);
    retryTimer = 0;
    if (ws || !wanted()) return;
    let socket;
    try {
      socket = new WebSocket(url, "graphql-transport-ws");
    } catch {
      retry();
      return;
    }
    ws = socket;
    const send = (m) => { if (socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(m)); };
    const ackTimer = setTimeout(() => socket.close(), ACK_TIMEOUT);
    socket.onopen = () => send({ type: "connection_init", payload: {} });
    socket.onmessage = (e) => {
      let m;
      try { m = JSON.parse(e.data); } catch { return; }
      if (m.type === "connection_ack") {
        clearTimeout(ackTimer);
        send({ id: "1", type: "subscribe", payload: { query: text, variables } });
        if (acknowledged && onReconnect) onReconnect();
        acknowledged = true;
      } else if (m.type === "ping") {
        send({ type: "pong" });
      } else if (m.type === "next" && m.id === "1") {
        attempt = 0;
        const data = m.payload && m.payload.data;
        if (data) onData(data);
      } else if (m.type === "error" || m.type === "complete") {
        // The server refused or ended the subscription: try again, but only slowly after an error.
        if (m.type === "error") attempt = BACKOFF.length - 1;
        socket.close(1000);
      }
    };
    socket.onclose = () => {
      clearTimeout(ackTimer);
      if (ws !== socket) return; // closed on purpose
      ws = null;
      retry();
    };
  }

  function retry() {
    if (!wanted() || retryTimer) return;
    const base = BACKOFF[Math.min(attempt, BACKOFF.length - 1)];
    attempt += 1;
    retryTimer = setTimeout(connect, Math.min(BACKOFF[BACKOFF.length - 1], base * (0.85 + Math.random() * 0.3)));
  }

  function disconnect() {
    clearTimeout(retryTimer);
    retryTimer = 0;
    const socket = ws;
    ws = null;
    if (!socket) return;
    if (socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify({ id: "1", type: "complete" }));
    socket.close(1000);
  }

  const resume = () => { attempt = 0; connect(); };
  const onVisibility = () => (document.visibilityState === "visible" ? resume() : disconnect());
  const events = [[document, "visibilitychange", onVisibility], [window, "online", resume], [window, "offline", disconnect],
    [window, "pagehide", disconnect], [window, "pageshow", resume]];
  for (const [target, type, fn] of events) target.addEventListener(type, fn);
  connect();
  return () => {
    stopped = true;
    for (const [target, type, fn] of events) target.removeEventListener(type, fn);
    disconnect();
  };
}
