// Timeline marks beside a <video>: "Cecum reached", "Scope out", "Appendiceal orifice",
// "Ileocecal valve". A button (or Shift + C / O / A / I, not while typing) marks the moment
// the video shows now; a set mark can be moved to the current time or removed. The marks
// live on the server (the marks API, session auth + CSRF); the withdrawal time is computed
// from them the way reporting/withdrawal.py does it, and every panel of the page shows the
// same marks (a session has at most one mark of each kind).
//
// The panel's data-marks-video names its <video> (a CSS selector); data-video is the
// recording's id, empty on the live page, where the time is the live page's media time.
// Everything is rendered with textContent / attributes, never innerHTML.
import { formatDuration, mediaClock } from "./timefmt.js";

const KEYS = { KeyC: "cecum_reached", KeyO: "scope_out", KeyA: "appendiceal_orifice", KeyI: "ileocecal_valve" };
const START = "cecum_reached";
const END = "scope_out";

const panels = [];
let marks = null;  // [{id, kind, time_ms, video}], null until loaded
let active = null;  // the panel whose video was played last: the keys act on it
let liveClock = null;
let keysWired = false;

// The live page's own media clock (static/js/live.js), when it offers one.
export function setLiveClock(fn) { liveClock = typeof fn === "function" ? fn : null; }

// Media ms -> m:ss as the player's clock shows it (truncated, like the mmss template filter).
const clock = mediaClock;

function videoOf(mark) { return mark.video ?? mark.video_id ?? null; }

export function withdrawal(list) {
  const byKind = new Map(list.map((mark) => [mark.kind, mark]));
  const start = byKind.get(START);
  const end = byKind.get(END);
  if (!start && !end) return { seconds: null, problem: "Mark 'Cecum reached' and 'Scope out' on the timeline." };
  if (!start) return { seconds: null, problem: "Mark 'Cecum reached' on the timeline." };
  if (!end) return { seconds: null, problem: "Mark 'Scope out' on the timeline." };
  if (String(videoOf(start) || "") !== String(videoOf(end) || "")) {
    return { seconds: null, problem: "'Cecum reached' and 'Scope out' are marked on different recordings; mark both on the same one." };
  }
  if (end.time_ms <= start.time_ms) return { seconds: null, problem: "'Scope out' must come after 'Cecum reached'." };
  return { seconds: (end.time_ms - start.time_ms) / 1000, problem: "" };
}

function csrf(panel) {
  return panel.querySelector("[name=csrfmiddlewaretoken]")?.value
    || document.querySelector("[name=csrfmiddlewaretoken]")?.value || "";
}

function setStatus(panel, text, isError = false) {
  const line = panel.querySelector("[data-role=status]");
  if (!line) return;
  line.textContent = text;
  line.classList.toggle("error", isError);
}

async function call(panel, method, url, body) {
  const headers = { Accept: "application/json", "X-CSRFToken": csrf(panel) };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(url, {
    method, headers, credentials: "same-origin", body: body === undefined ? undefined : JSON.stringify(body),
  });
  const data = response.status === 204 ? {} : await response.json().catch(() => ({}));
  if (!response.ok) {
    const error = data.error || {};
    const fields = error.fields && typeof error.fields === "object" ? Object.values(error.fields).flat().join(" ") : "";
    throw new Error(error.message || fields || data.detail || `The server refused (HTTP ${response.status}).`);
  }
  return data;
}

function videoElement(panel) {
  const selector = panel.dataset.marksVideo;
  return selector ? document.querySelector(selector) : null;
}

function nowMs(panel) {
  const video = videoElement(panel);
  if (!video || (video.readyState < 1 && !video.srcObject)) return null;
  if (!panel.dataset.video && liveClock) return Math.max(0, Math.round(liveClock()));
  return Math.max(0, Math.round(video.currentTime * 1000));
}

function nameOfRecording(id) {
  const panel = panels.find((p) => p.dataset.video === String(id));
  return panel ? panel.dataset.videoName : "another recording";
}

function render(panel) {
  if (marks === null) return;
  const own = panel.dataset.video || "";
  for (const item of panel.querySelectorAll(".mark-item[data-kind]")) {
    const mark = marks.find((m) => m.kind === item.dataset.kind);
    item.classList.toggle("is-set", Boolean(mark));
    const time = item.querySelector("[data-role=time]");
    const where = item.querySelector("[data-role=where]");
    const actions = item.querySelector("[data-role=actions]");
    if (mark) {
      const link = document.createElement("a");
      link.href = "#";
      link.className = "mark-seek";
      link.dataset.ms = String(mark.time_ms);
      link.dataset.video = videoOf(mark) || "";
      link.textContent = clock(mark.time_ms);
      time.replaceChildren(link);
      const markVideo = String(videoOf(mark) || "");
      where.textContent = markVideo === own ? "" : markVideo ? nameOfRecording(markVideo) : "live stream";
    } else {
      time.textContent = "not marked";
      where.textContent = "";
    }
    if (actions) actions.hidden = !mark;
  }
  const line = panel.querySelector("[data-role=withdrawal]");
  if (line) {
    const w = withdrawal(marks);
    const value = w.seconds === null ? document.createElement("span") : document.createElement("strong");
    if (w.seconds === null) { value.className = "hint"; value.textContent = w.problem; }
    else value.textContent = formatDuration(w.seconds);
    line.replaceChildren("Withdrawal time: ", value);
    if (w.seconds !== null && w.seconds < Number(panel.dataset.targetS || 360)) {
      const short = document.createElement("span");
      short.className = "status status-short";
      short.textContent = `shorter than ${formatDuration(Number(panel.dataset.targetS || 360))}`;
      line.append(" ", short);
    }
  }
}

async function refresh(panel) {
  const data = await call(panel, "GET", panel.dataset.api);
  const list = Array.isArray(data) ? data : data.results || data.marks || [];
  marks = list.map((m) => ({ id: m.id, kind: m.kind, time_ms: Number(m.time_ms), video: videoOf(m) }));
  panels.forEach(render);
}

async function setMark(panel, kind) {
  const label = panel.querySelector(`.mark-item[data-kind="${kind}"]`)?.dataset.label || kind;
  const ms = nowMs(panel);
  if (ms === null) {
    setStatus(panel, "No video to mark yet: load the recording (or start the camera) first.", true);
    return;
  }
  const video = panel.dataset.video || null;
  const existing = (marks || []).find((m) => m.kind === kind);
  try {
    if (existing) await call(panel, "PATCH", `${panel.dataset.api}${existing.id}/`, { time_ms: ms, video });
    else await call(panel, "POST", panel.dataset.api, { kind, time_ms: ms, video });
    await refresh(panel);
    setStatus(panel, `${label} marked at ${clock(ms)}.`);
  } catch (error) {
    setStatus(panel, `${label} not marked: ${error.message}`, true);
  }
}

async function removeMark(panel, kind) {
  const label = panel.querySelector(`.mark-item[data-kind="${kind}"]`)?.dataset.label || kind;
  const existing = (marks || []).find((m) => m.kind === kind);
  if (!existing) return;
  try {
    await call(panel, "DELETE", `${panel.dataset.api}${existing.id}/`);
    await refresh(panel);
    setStatus(panel, `${label} removed.`);
  } catch (error) {
    setStatus(panel, `${label} not removed: ${error.message}`, true);
  }
}

function seek(panel, link) {
  const target = link.dataset.video
    ? document.querySelector(`video[data-video="${CSS.escape(link.dataset.video)}"]`)
    : (!panel.dataset.video ? videoElement(panel) : null);
  if (!target || target.srcObject) return;  // a camera stream cannot be rewound
  target.currentTime = Number(link.dataset.ms) / 1000;
  target.scrollIntoView({ block: "nearest" });
}

function wire(panel) {
  panel.dataset.wired = "true";
  panels.push(panel);
  const editable = panel.dataset.canEdit === "true";
  const video = videoElement(panel);
  if (video) for (const type of ["play", "seeked"]) video.addEventListener(type, () => { active = panel; });
  panel.addEventListener("pointerdown", () => { active = panel; });
  panel.addEventListener("click", (event) => {
    const target = event.target instanceof Element ? event.target : null;
    const link = target?.closest("a.mark-seek");
    if (link) { event.preventDefault(); seek(panel, link); return; }
    const button = target?.closest("button[data-kind]");
    if (!button || !editable) return;
    active = panel;
    if (button.classList.contains("mark-remove")) removeMark(panel, button.dataset.kind);
    else setMark(panel, button.dataset.kind);  // "Cecum reached" or "Move to now": the current time
  });
}

function typing(target) {
  return target instanceof HTMLInputElement || target instanceof HTMLTextAreaElement
    || target instanceof HTMLSelectElement || (target instanceof HTMLElement && target.isContentEditable);
}

function wireKeys() {
  if (keysWired) return;
  keysWired = true;
  document.addEventListener("keydown", (event) => {
    if (!event.shiftKey || event.ctrlKey || event.metaKey || event.altKey || event.repeat || typing(event.target)) return;
    const kind = KEYS[event.code];
    if (!kind) return;
    const panel = (active && active.isConnected ? active : null) || panels.find((p) => p.dataset.canEdit === "true");
    if (!panel || panel.dataset.canEdit !== "true") return;
    event.preventDefault();
    setMark(panel, kind);
  });
}

export function wireMarksPanels(root = document) {
  const fresh = Array.from(root.querySelectorAll("[data-marks-panel]")).filter((p) => p.dataset.wired !== "true");
  fresh.forEach(wire);
  if (!fresh.length) return;
  wireKeys();
  refresh(fresh[0]).catch((error) => setStatus(fresh[0], `Marks not loaded: ${error.message}`, true));
}
