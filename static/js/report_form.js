// The structured report form: add and remove rows (polyps, ulcers, biopsies, ...) in place,
// and keep the BBPS total current. Without this script the same buttons submit the form
// and the server adds or removes the row, so the page works either way.
//
// New rows are clones of the row's <template>; only attribute values are changed ("__i__"
// becomes the row's number). No HTML is ever built from data (no innerHTML).

const PLACEHOLDER = "__i__";

function renumber(container) {
  const singular = container.dataset.singular || "Row";
  const rows = Array.from(container.querySelectorAll(":scope > .report-row"));
  rows.forEach((row, i) => {
    const title = row.querySelector(".row-title");
    if (title) title.textContent = `${singular} ${i + 1}`;
  });
  const empty = container.querySelector(".rows-empty");
  if (empty) empty.hidden = rows.length > 0;
}

function addRow(form, name) {
  const container = form.querySelector(`.report-rows[data-rows="${CSS.escape(name)}"]`);
  const template = document.getElementById(`row-template-${name}`);
  if (!container || !template) return null;
  // Numbers only need to be distinct: the server renumbers rows in order when it saves.
  const index = String(Number(container.dataset.next || "0"));
  container.dataset.next = String(Number(index) + 1);
  const row = template.content.firstElementChild.cloneNode(true);
  for (const node of [row, ...row.querySelectorAll("*")]) {
    for (const attr of ["name", "id", "for", "value", "aria-describedby", "data-prefix", "data-field"]) {
      const value = node.getAttribute(attr);
      if (value && value.includes(PLACEHOLDER)) node.setAttribute(attr, value.split(PLACEHOLDER).join(index));
    }
  }
  container.append(row);
  renumber(container);
  const first = row.querySelector("input:not([type=hidden]), select, textarea");
  if (first) first.focus();
  return row;
}

function bbpsTotal(form) {
  const out = document.getElementById("bbps-total-value");
  if (!out) return;
  const scores = ["right", "transverse", "left"].map((segment) => form.querySelector(`[name="bbps_${segment}"]`));
  const values = scores.map((select) => (select && select.value !== "" ? Number(select.value) : null));
  const complete = values.every((value) => value !== null);
  out.textContent = complete ? String(values.reduce((a, b) => a + b, 0)) : "–";
  const adequacy = document.getElementById("bbps-adequacy");
  if (adequacy) {
    adequacy.textContent = !complete ? "" : values.every((value) => value >= 2)
      ? "adequate preparation" : "inadequate: a segment scores below 2";
  }
}

export function wireReportForm(form) {
  if (!form) return;
  form.addEventListener("click", (event) => {
    const button = event.target instanceof Element ? event.target.closest("button") : null;
    if (!button || !form.contains(button)) return;
    if (button.hasAttribute("data-add-row")) {
      event.preventDefault();
      addRow(form, button.dataset.addRow);
    } else if (button.hasAttribute("data-remove-row")) {
      event.preventDefault();
      const row = button.closest(".report-row");
      const container = row && row.parentElement;
      if (row) row.remove();
      if (container) renumber(container);
    }
  });
  form.addEventListener("change", (event) => {
    if (event.target instanceof HTMLSelectElement && event.target.name.startsWith("bbps_")) bbpsTotal(form);
  });
  form.querySelectorAll(".report-rows").forEach(renumber);
  bbpsTotal(form);
}
