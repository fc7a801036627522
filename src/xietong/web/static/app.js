// Page behaviour without inline scripts (the CSP forbids them).
document.addEventListener("DOMContentLoaded", () => {
  const meta = document.querySelector('meta[name="csrf-token"]');
  // htmx sends the CSRF token with every unsafe request.
  document.body.addEventListener("htmx:configRequest", (event) => {
    if (meta) event.detail.headers["X-CSRF-Token"] = meta.content;
  });
  for (const button of document.querySelectorAll("[data-toggle]")) {
    button.addEventListener("click", () => {
      const target = document.getElementById(button.dataset.toggle);
      if (!target) return;
      const open = target.classList.toggle("open");
      button.setAttribute("aria-expanded", String(open));
    });
  }
});
