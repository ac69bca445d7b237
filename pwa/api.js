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
