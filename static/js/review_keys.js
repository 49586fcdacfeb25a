// Keyboard review of the findings table: j/k move, c confirm, r reject, e edit.
// Actions submit the row's own (CSRF-protected) forms, so the server decides as for clicks.

export function wireReviewKeys(table) {
  if (!table || !table.querySelector(".decide")) return;
  const rows = () => Array.from(table.querySelectorAll("tr.finding-row"));
  let index = rows().findIndex((row) => row.classList.contains("review-proposed"));
  if (index < 0) index = 0;

  function focus(i) {
    const all = rows();
    if (!all.length) return;
    index = Math.max(0, Math.min(all.length - 1, i));
    all.forEach((row) => row.classList.remove("selected"));
    all[index].classList.add("selected");
    all[index].focus({ preventScroll: false });
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
  focus(index);
}
