// Live updates of a session page from /ws/procedures/<id>/events/.
// Progress updates the bar in place; a summary or status change reloads the page so that
// the server renders (and escapes) the new findings. Never inserts markup from messages.

const BACKOFF_MS = [500, 1000, 2000, 5000, 10000];

function setText(id, text) {
  const el = document.getElementById(id);
  if (el) el.textContent = text;
}

function onProgress(event) {
  const bar = document.getElementById("processing-progress");
  if (bar && typeof event.progress === "number") bar.value = event.progress;
  const stages = { sampling: "Sampling frames", analysing: "Analysing", summarising: "Summarising",
                   done: "Done", failed: "Failed", probing: "Probing" };
  setText("processing-stage", stages[event.stage] || String(event.stage));
  if (event.stage === "analysing" && event.phase === "loading_model") {
    // (recordings.js writes the recording's own panel; this is the page-wide line.)
    setText("processing-detail", "Loading the model (the first analysis after the worker starts waits for it; this can take half a minute)…");
  } else if (event.stage === "analysing" && Number.isFinite(event.total)) {
    setText("processing-detail", `${event.done} / ${event.total} frames`);
  } else if (event.stage === "sampling" && Number.isFinite(event.kept)) {
    setText("processing-detail", `${event.kept} frames kept of ${event.sampled} sampled`);
  } else if (event.error) {
    setText("processing-detail", String(event.error));
  }
}

// A recording's playable copy: the same wording as templates/procedures/_playback_status.html.
export function playbackText(event) {
  switch (event.state) {
    case "pending": return "A playable copy is waiting to be made; until then, download the original.";
    case "making": return `Making a playable copy… ${Math.round((Number(event.progress) || 0) * 100)} %`;
    case "ready": return "Playing a browser-playable copy (H.264); the original is the evidence and the times refer to it.";
    case "failed": return `A playable copy could not be made: ${event.error || "unknown reason"}; download the original.`;
    default: return "";
  }
}

function onPlayback(event) {
  const id = String(event.video);
  for (const box of document.querySelectorAll("[data-playback-for]")) {
    if (box.dataset.playbackFor !== id) continue;
    box.dataset.playbackState = String(event.state);
    box.hidden = event.state === "not_needed";
    const text = box.querySelector("[data-playback-text]");
    if (text) text.textContent = playbackText(event);
    const bar = box.querySelector("progress");
    if (bar) {
      if (typeof event.progress === "number") bar.value = event.progress;
      bar.hidden = !(event.state === "pending" || event.state === "making");
    }
  }
  if (event.state === "ready") {
    // The file URL now serves the copy: players of this recording load it, at the same time.
    for (const player of document.querySelectorAll("video")) {
      const src = player.currentSrc || player.src || "";
      if (!src.includes(`/videos/${id}/file`) || src.includes("original=1")) continue;
      const at = player.currentTime;
      player.load();
      player.addEventListener("loadedmetadata", () => { player.currentTime = at; }, { once: true });
    }
  }
}

export function watchSession(sessionId, { onEvent } = {}) {
  let attempt = 0;
  let reloading = false;
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const url = `${scheme}://${location.host}/ws/procedures/${sessionId}/events/`;

  function connect() {
    const socket = new WebSocket(url);
    socket.addEventListener("open", () => { attempt = 0; });
    socket.addEventListener("message", (message) => {
      let event;
      try { event = JSON.parse(message.data); } catch { return; }
      if (onEvent) onEvent(event);
      if (event.type === "progress") onProgress(event);
      if (event.type === "playback") onPlayback(event);
      if ((event.type === "summary" || event.type === "status") && !reloading) {
        reloading = true;
        setTimeout(() => location.reload(), 300);
      }
    });
    socket.addEventListener("close", (close) => {
      if (close.code === 4401 || close.code === 4404) return; // not allowed: don't hammer
      const delay = BACKOFF_MS[Math.min(attempt++, BACKOFF_MS.length - 1)];
      setTimeout(connect, delay);
    });
  }
  connect();
}
