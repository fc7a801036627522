// The colleague picker of the group conversation forms (progressive enhancement).
//
// Without this script the search is a GET form and the results of one search are ticked.
// With it (and htmx fetching the results as one types), a ticked colleague moves to the
// chosen list, so that a new search keeps them; a result already chosen is not offered twice.

const chosen = document.getElementById("chosen-members");
const results = document.getElementById("colleague-results");

if (chosen && results) {
  const picked = () => new Set([...chosen.querySelectorAll("input[name=member_ids]")].map((i) => i.value));

  results.addEventListener("change", (event) => {
    const box = event.target;
    if (!(box instanceof HTMLInputElement) || box.name !== "member_ids" || !box.checked) return;
    const label = box.closest("label");
    if (label && !picked().has(box.value)) chosen.append(label);
  });

  document.body.addEventListener("htmx:afterSwap", (event) => {
    if (event.target !== results) return;
    const have = picked();
    for (const box of results.querySelectorAll("input[name=member_ids]")) {
      if (have.has(box.value)) box.closest("label")?.remove();
    }
  });
}
