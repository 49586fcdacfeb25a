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
  if (event.stage === "analysing" && Number.isFinite(event.total)) {
    setText("processing-detail", `${event.done} / ${event.total} frames`);
  } else if (event.stage === "sampling" && Number.isFinite(event.kept)) {
    setText("processing-detail", `${event.kept} frames kept of ${event.sampled} sampled`);
  } else if (event.error) {
    setText("processing-detail", String(event.error));
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
