// Invitations: show only the part of the form for the chosen role, and copy the created link with one click.
// Both are conveniences: without JavaScript the server answers a changed role, and the link is copied by hand.
(() => {
  "use strict";
  const form = document.querySelector("[data-role-form]");
  const role = form && form.querySelector("select[name=role]");
  if (role) {
    const show = () => {
      for (const part of form.querySelectorAll("[data-for-role]")) part.hidden = part.dataset.forRole !== role.value;
    };
    role.addEventListener("change", show);
    show();
  }
  const status = document.getElementById("copy-status");
  for (const button of document.querySelectorAll("button[data-copy]")) {
    const input = document.getElementById(button.dataset.copy);
    if (!input) continue;
    button.hidden = false;
    button.addEventListener("click", async () => {
      let copied = false;
      try {
        await navigator.clipboard.writeText(input.value);
        copied = true;
      } catch (_) {
        input.select();  // the browser refused (no permission, not https): select it for the person to copy
      }
      if (status) status.textContent = copied ? status.dataset.copied : status.dataset.failed;
    });
  }
})();
