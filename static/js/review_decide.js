// Confirm / reject / note a finding in place: the row's own form is sent with fetch (the
// same CSRF-protected view answers JSON to `Accept: application/json`), so the page does
// not reload and a playing recording keeps playing. Without JS the forms post as before.
// The row, the "Review so far" counts and the Sign button follow the answer; the outcome is
// said in #decision-status (aria-live). Text only: nothing from the answer becomes markup.

const STATUS_LABELS = { proposed: "Proposed", confirmed: "Confirmed", rejected: "Rejected", edited: "Edited" };
const DONE = { confirm: "Confirmed", reject: "Rejected", note: "Note saved for" };

function say(text, isError = false) {
  const line = document.getElementById("decision-status");
  if (!line) return;
  line.textContent = text;
  line.classList.toggle("error", isError);
}

function bump(scope, status, delta) {
  for (const box of document.querySelectorAll(".review-so-far[data-review-scope]")) {
    if (box.dataset.reviewScope !== scope) continue;
    const cell = box.querySelector(`[data-count="${status}"]`);
    if (cell) cell.textContent = String(Math.max(0, (parseInt(cell.textContent, 10) || 0) + delta));
  }
}

function undecided() {
  const cell = document.querySelector('.review-so-far[data-review-scope="all"] [data-count="proposed"]');
  return cell ? parseInt(cell.textContent, 10) || 0 : 0;
}

// The Sign button is enabled only when no finding waits for a decision; the reason sits
// next to it (aria-describedby) while it is disabled.
export function updateSign() {
  const button = document.getElementById("sign-button");
  const reason = document.getElementById("sign-reason");
  if (!button) return;
  const n = undecided();
  button.disabled = n > 0;
  if (n > 0) button.setAttribute("aria-describedby", "sign-reason");
  else button.removeAttribute("aria-describedby");
  if (reason) {
    reason.hidden = n === 0;
    reason.textContent = `${n} proposed finding${n === 1 ? "" : "s"} still need${n === 1 ? "s" : ""} a decision before signing.`;
  }
}

// Apply a finding's new state (the JSON of analysis.serializers.finding_event) to its row
// and the counts. Idempotent: the same answer twice (fetch, then the session's event) counts once.
export function applyFinding(finding) {
  if (!finding || typeof finding.id !== "string") return;
  const row = document.getElementById(`finding-${finding.id}`);
  if (!row) return;
  const before = row.dataset.status;
  const after = String(finding.review_status);
  if (before !== after && STATUS_LABELS[after]) {
    row.classList.remove(`review-${before}`);
    row.classList.add(`review-${after}`);
    row.dataset.status = after;
    for (const scope of ["all", row.dataset.video]) {
      if (!scope) continue;
      bump(scope, before, -1);
      bump(scope, after, +1);
    }
  }
  for (const text of row.querySelectorAll(".review-text")) text.textContent = STATUS_LABELS[after] || after;
  for (const by of row.querySelectorAll(".review-by")) by.textContent = finding.reviewed_by ? `by ${finding.reviewed_by}` : "";
  row.querySelectorAll("button[name=action]").forEach((b) => {
    const pressed = (b.value === "confirm" && after === "confirmed") || (b.value === "reject" && after === "rejected");
    if (pressed) b.setAttribute("aria-pressed", "true"); else b.removeAttribute("aria-pressed");
  });
  updateSign();
}

function labelOf(row) {
  const head = row.querySelector(".finding-head strong");
  return head ? head.textContent.trim() : "the finding";
}

async function send(form, action, row) {
  const body = new FormData(form);
  body.set("action", action);
  const csrf = body.get("csrfmiddlewaretoken");
  const buttons = row.querySelectorAll("button");
  buttons.forEach((b) => { b.disabled = true; });
  say(`Saving: ${action === "note" ? "note" : action} for ${labelOf(row)}…`);
  try {
    // getAttribute: ``form.action`` is the form's button named "action", not its URL.
    const response = await fetch(form.getAttribute("action"), {
      method: "POST", body, credentials: "same-origin",
      headers: { Accept: "application/json", "X-CSRFToken": String(csrf || "") },
    });
    let data = null;
    try { data = await response.json(); } catch { data = null; }
    if (!response.ok || !data || !data.finding) {
      const message = (data && data.error && data.error.message) || `the server answered ${response.status}`;
      say(`Not saved: ${message}`, true);
      return;
    }
    applyFinding(data.finding);
    say(`${DONE[action]} ${labelOf(row)}.`);
  } catch (error) {
    say(`Not saved: the server could not be reached (${error.message || error}). Try again.`, true);
  } finally {
    buttons.forEach((b) => { b.disabled = false; });
  }
}

export function wireDecisions(list) {
  if (!list) return;
  list.addEventListener("submit", (event) => {
    const form = event.target;
    if (!(form instanceof HTMLFormElement)) return;
    const row = form.closest(".finding-row");
    if (!row) return;
    let action = "";
    if (form.classList.contains("decide-form")) {
      const submitter = event.submitter || form.querySelector("button[name=action]");
      action = submitter ? submitter.value : "";
    } else if (form.classList.contains("note-form")) {
      action = "note";
    }
    if (!action) return;  // not ours: let the browser post it
    event.preventDefault();
    send(form, action, row);
  });
  updateSign();
}

export function onFindingEvent(event) {
  if (event && event.type === "finding") applyFinding(event.finding);
}
