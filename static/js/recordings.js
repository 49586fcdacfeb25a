// Several recordings on one session page. Every time link (a finding's time, a plot mark,
// a key frame) carries the recording it refers to: data-video="<id>" data-ms="<media ms>".
// Clicking one plays *that* recording's player from that moment and pauses the others; a
// time never seeks another recording's video. The "Add a finding" link follows the
// recording being watched (?video=<id>&ms=<time>), so a clinician's finding names it.

const STAGES = { uploaded: "Uploaded", probing: "Probing", sampling: "Sampling frames", analysing: "Analysing",
                 summarising: "Summarising", done: "Done", failed: "Failed" };

// The worker is loading the model's weights (analysis.scheduler): said, so that
// "0 / 20 frames" does not sit still for half a minute. Same words as the template.
export const MODEL_LOADING = "Loading the model (the first analysis after the worker starts waits for it; this can take half a minute)…";

function players(root) {
  return Array.from(root.querySelectorAll("video.recording-player[data-video]"));
}

function panelOf(videoId) {
  return Array.from(document.querySelectorAll("section.recording[data-video]"))
    .find((section) => section.dataset.video === videoId) || null;
}

// Play recording `videoId` from `ms`. Returns the player, or null when that recording has
// no player on the page (still processing, or failed).
export function seekRecording(videoId, ms, root = document) {
  const all = players(root);
  const player = all.find((p) => p.dataset.video === videoId);
  if (!player) return null;
  all.forEach((other) => { if (other !== player && !other.paused) other.pause(); });
  document.querySelectorAll("section.recording.playing").forEach((s) => s.classList.remove("playing"));
  const panel = panelOf(videoId);
  if (panel) panel.classList.add("playing");
  const seconds = Math.max(0, Number(ms) || 0) / 1000;
  const go = () => {
    player.currentTime = seconds;
    player.play().catch(() => {});
  };
  if (player.readyState >= 1) go();  // HAVE_METADATA: seeking is possible now
  else {
    player.addEventListener("loadedmetadata", go, { once: true });
    if (player.preload === "none") player.load();
  }
  player.scrollIntoView({ block: "center" });
  return player;
}

function followWatched(player, link) {
  if (!link) return;
  const url = new URL(link.href, location.href);
  url.searchParams.set("video", player.dataset.video);
  url.searchParams.set("ms", String(Math.round(player.currentTime * 1000)));
  link.href = url.pathname + url.search;
}

export function wireRecordings(root = document) {
  const addFinding = document.getElementById("add-finding");
  let watched = null;  // the player the clinician last played or moved
  if (addFinding) {
    // At the moment of the click, not the last pause: a playing video's time has moved on.
    addFinding.addEventListener("click", () => { if (watched) followWatched(watched, addFinding); });
  }
  root.addEventListener("click", (event) => {
    const link = event.target instanceof Element ? event.target.closest(".seek[data-video][data-ms]") : null;
    if (!link) return;
    const player = seekRecording(link.dataset.video, link.dataset.ms, root);
    if (player) event.preventDefault();  // else: the link's anchor shows the recording's panel
  });
  players(root).forEach((player) => {
    for (const kind of ["play", "pause", "seeked"]) {
      player.addEventListener(kind, () => { watched = player; followWatched(player, addFinding); });
    }
  });
}

// The "Add another recording" button reveals the upload panel (hidden once a session has
// a recording, so that adding one is a choice, not the box left over after analysis).
export function wireAddRecording(button, panel) {
  if (!button || !panel) return;
  button.addEventListener("click", () => {
    if (button.disabled) return;
    panel.hidden = false;
    button.setAttribute("aria-expanded", "true");
    button.hidden = true;
    const input = panel.querySelector("#upload-file");
    if (input) input.focus();
  });
}

// Progress of one recording (events name their recording): update that recording's own
// panel and its row in the list. Text only, never markup from the message.
export function onRecordingEvent(event) {
  if (!event || event.type !== "progress" || typeof event.video !== "string") return;
  const panel = panelOf(event.video);
  const label = STAGES[event.stage] || String(event.stage);
  if (panel) {
    const bar = panel.querySelector(".processing-progress");
    if (bar && typeof event.progress === "number") bar.value = event.progress;
    const stage = panel.querySelector(".processing-stage");
    if (stage) stage.textContent = label;
    const detail = panel.querySelector(".processing-detail");
    if (detail && event.stage === "analysing" && event.phase === "loading_model") {
      detail.textContent = MODEL_LOADING;
    } else if (detail && event.stage === "analysing" && Number.isFinite(event.total)) {
      detail.textContent = `${event.done} / ${event.total} frames`;
    } else if (detail && event.stage === "sampling" && Number.isFinite(event.kept)) {
      detail.textContent = `${event.kept} frames kept of ${event.sampled} sampled`;
    }
  }
  const row = Array.from(document.querySelectorAll("#recording-list tr[data-video]"))
    .find((r) => r.dataset.video === event.video);
  if (row) {
    const state = row.querySelector(".recording-state");
    if (state) state.textContent = label;
    const bar = row.querySelector(".recording-progress");
    if (bar && typeof event.progress === "number") bar.value = event.progress;
  }
}
