// Festival dashboard: every district card asks the server for a fresh copy of itself every data-refresh seconds
// and swaps it in, so the page stays live without a reload. Without JavaScript the page is complete as served.
(() => {
  "use strict";
  const refresh = async (card) => {
    if (document.hidden) return;
    try {
      const response = await fetch(card.dataset.cardSrc, { credentials: "same-origin", headers: { accept: "text/html" } });
      // signed out meanwhile: the redirect lands on the sign-in page, which is no card
      if (!response.ok || response.redirected) return;
      const fresh = document.createElement("template");
      fresh.innerHTML = await response.text();
      const opened = new Set([...card.querySelectorAll("details[open]")].map((d) => d.className + d.closest("[data-area]")?.dataset.area));
      card.replaceChildren(fresh.content);
      for (const d of card.querySelectorAll("details")) {
        if (opened.has(d.className + d.closest("[data-area]")?.dataset.area)) d.open = true;
      }
      card.dataset.refreshed = String(Number(card.dataset.refreshed || "0") + 1);
    } catch (_) {
      // offline for a moment: the next round tries again
    }
  };
  for (const card of document.querySelectorAll("[data-card-src]")) {
    const seconds = Math.max(5, Number(card.dataset.refresh) || 20);
    setInterval(() => refresh(card), seconds * 1000);
  }
})();
