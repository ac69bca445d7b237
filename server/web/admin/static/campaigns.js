// A campaign's page keeps its counters current: it asks the stats endpoint every 2 s while the campaign sends
// (every 10 s while it waits for approval or its send time) and writes the numbers in place, so nothing else on
// the page is reloaded. Without JavaScript the page's "Refresh" link does the same by hand.
(() => {
  "use strict";
  const root = document.querySelector("[data-stats-url]");
  if (!root || !window.fetch) return;
  const url = root.getAttribute("data-stats-url");
  const SENDING_MS = 2000;
  const WAITING_MS = 10000;
  let timer = 0;
  let stopped = false;

  const schedule = (ms) => {
    clearTimeout(timer);
    if (!stopped) timer = setTimeout(poll, ms);
  };

  const text = (selector, value) => {
    for (const el of document.querySelectorAll(selector)) el.textContent = String(value);
  };

  const apply = (data) => {
    for (const [name, value] of Object.entries(data.stats)) text(`[data-stat="${name}"]`, value);
    text("[data-done]", data.done);
    text("[data-percent]", data.percent);
    const bar = root.querySelector("[data-progress]");
    if (bar) {
      bar.max = Math.max(data.targeted, 1);
      bar.value = data.done;
      bar.textContent = `${data.percent}%`;
    }
    if (data.state !== "awaiting_approval") {
      // a colleague approved or rejected it meanwhile: the buttons would only earn an error
      for (const el of document.querySelectorAll(".approval")) el.hidden = true;
    }
    for (const badge of document.querySelectorAll("[data-state]")) {
      if (badge.textContent !== data.stateLabel) badge.textContent = data.stateLabel;
      badge.className = `status status-${data.state}`;
    }
    if (!data.live) {
      stopped = true;
      for (const el of document.querySelectorAll("[data-while-live], [data-refresh], [data-live-note]")) {
        el.hidden = true;
      }
    }
  };

  async function poll() {
    if (document.hidden) return; // picked up again on visibilitychange
    try {
      const response = await fetch(url, { credentials: "same-origin", cache: "no-store",
                                          headers: { Accept: "application/json" } });
      if (response.status >= 400 && response.status < 500) {
        stopped = true; // signed out, or no longer allowed: the Refresh link says why
        return;
      }
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      const data = await response.json();
      apply(data);
      schedule(data.state === "sending" ? SENDING_MS : WAITING_MS);
    } catch {
      schedule(WAITING_MS); // offline or a restart: try again later
    }
  }

  document.addEventListener("visibilitychange", () => {
    if (!document.hidden) schedule(0);
  });
  for (const note of document.querySelectorAll("[data-live-note]")) note.hidden = false;
  schedule(SENDING_MS);
})();
