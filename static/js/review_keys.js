// Keyboard review of the findings list: j/k move, c confirm, r reject, e edit.
// Actions submit the row's own (CSRF-protected) forms, so the server decides as for clicks
// (review_decide.js sends them in place).

export function wireReviewKeys(table) {
  if (!table || !table.querySelector(".decide")) return;
  const rows = () => Array.from(table.querySelectorAll(".finding-row"));
  let index = rows().findIndex((row) => row.classList.contains("review-proposed"));
  if (index < 0) index = 0;

  // ``scroll``: only when the clinician moves with j/k. On page load the first undecided
  // finding is selected without scrolling: the page opens at its top, not at the list.
  function focus(i, { scroll = true } = {}) {
    const all = rows();
    if (!all.length) return;
    index = Math.max(0, Math.min(all.length - 1, i));
    all.forEach((row) => row.classList.remove("selected"));
    all[index].classList.add("selected");
    all[index].focus({ preventScroll: true });
    if (scroll) all[index].scrollIntoView({ block: "nearest" });
  }

  document.addEventListener("keydown", (event) => {
    const target = event.target;
    if (target instanceof HTMLInputElement || target instanceof HTMLTextAreaElement || target instanceof HTMLSelectElement) return;
    if (event.metaKey || event.ctrlKey || event.altKey) return;
    const row = rows()[index];
    if (event.key === "j") focus(index + 1);
    else if (event.key === "k") focus(index - 1);
    else if (row && (event.key === "c" || event.key === "r")) {
      row.querySelector(`button[value="${event.key === "c" ? "confirm" : "reject"}"]`).click();
    } else if (row && event.key === "e") {
      location.href = row.dataset.editUrl;
    } else return;
    event.preventDefault();
  });
  focus(index, { scroll: false });
  // A click in a row makes it the one the keys act on (without taking focus from the button).
  table.addEventListener("click", (event) => {
    const row = event.target instanceof Element ? event.target.closest(".finding-row") : null;
    if (!row) return;
    index = Math.max(0, rows().indexOf(row));
    rows().forEach((r) => r.classList.toggle("selected", r === row));
  });
}
