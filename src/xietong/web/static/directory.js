// Directory pages: filter forms marked data-autosubmit search again when a menu changes
// (htmx swaps the results in where the form asks for it; otherwise the page reloads).
document.addEventListener("DOMContentLoaded", () => {
  for (const form of document.querySelectorAll("form[data-autosubmit]")) {
    form.addEventListener("change", (event) => {
      if (event.target instanceof HTMLSelectElement) form.requestSubmit();
    });
  }
});
