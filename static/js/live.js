// Live procedure page: sample the <video> (file or camera) to JPEG at an interval, stream
// it over the live WebSocket, and show findings as they arrive.
//
// Frame message: 8-byte big-endian unsigned media timestamp (ms) + JPEG bytes.
// Everything from the server is rendered with textContent / attributes, never innerHTML.
import { mediaClock } from "./timefmt.js";

const MAX_SIDE = 896;        // the analyzer's input size; larger frames only cost bandwidth
const JPEG_QUALITY = 0.8;
const BACKOFF_MS = [500, 1000, 2000, 5000, 10000];
const ZERO_ID = "00000000-0000-0000-0000-000000000000";

// m:ss, as on the session page and the player (h:mm:ss past an hour).
const clock = mediaClock;

// A code ("sigmoid_colon") as people read it ("Sigmoid colon"), as analysis.engine.schemas.humanize.
function label(code) {
  const text = String(code ?? "").replaceAll("_", " ");
  return text.charAt(0).toUpperCase() + text.slice(1);
}

function el(tag, attrs = {}, text) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
}

export function startLivePage(root) {
  const sessionId = root.dataset.session;
  const canSend = root.dataset.canSend === "true";
  const video = document.getElementById("live-video");
  const statusLine = document.getElementById("live-status");
  const timeline = document.getElementById("timeline");
  const canvas = document.getElementById("capture-canvas");
  const csrf = root.parentElement.querySelector("[name=csrfmiddlewaretoken]")?.value
    || document.querySelector("[name=csrfmiddlewaretoken]")?.value;
  const findings = new Map();
  let socket = null;
  let attempt = 0;
  let timer = null;
  let cameraStart = null;
  let stats = { received: 0, dropped: 0 };
  let selected = null;

  function setStatus(text) { statusLine.textContent = text; }

  function render(finding) {
    findings.set(finding.id, finding);
    let item = document.getElementById(`f-${finding.id}`);
    if (!item) {
      item = el("li", { id: `f-${finding.id}`, tabindex: "0", class: "timeline-item" });
      item.addEventListener("click", () => select(finding.id, true));
    }
    item.replaceChildren();
    item.dataset.start = String(finding.start_ms);
    item.className = `timeline-item review-${finding.review_status}` + (selected === finding.id ? " selected" : "");
    if (finding.frame) {
      item.append(el("img", { src: root.dataset.frameUrl.replace(ZERO_ID, finding.frame), alt: "", width: "80", loading: "lazy" }));
    }
    const body = el("div", { class: "timeline-body" });
    const span = finding.end_ms !== finding.start_ms ? `${clock(finding.start_ms)}–${clock(finding.end_ms)}` : clock(finding.start_ms);
    body.append(el("span", { class: "time" }, span), " ");
    body.append(el("strong", {}, finding.label || label(finding.category)), " ");
    body.append(el("span", { class: `risk risk-${finding.risk}` }, `${label(finding.risk)} risk`), " ");
    body.append(el("div", { class: "hint" }, `${label(finding.category)}${finding.location ? " · " + label(finding.location) : ""} · confidence ${finding.confidence == null ? "–" : finding.confidence.toFixed(2)}`));
    const meta = el("div", { class: "provenance" });
    if (finding.is_demo) meta.append(el("span", { class: "demo-flag" }, "DEMO"), " ");
    meta.append(`${label(finding.review_status)}${finding.provenance?.model_id ? " · " + finding.provenance.model_id : ""}`);
    body.append(meta);
    if (canSend && finding.review_status === "proposed") {
      const actions = el("div", { class: "decide" });
      for (const [action, label] of [["confirm", "Confirm"], ["reject", "Reject"]]) {
        const button = el("button", { type: "button", class: action, "data-action": action }, label);
        button.addEventListener("click", (e) => { e.stopPropagation(); review(finding.id, action); });
        actions.append(button);
      }
      body.append(actions);
    }
    item.append(body);
    if (!item.parentElement) {
      // keep the list in media-time order
      const after = Array.from(timeline.children).find((li) => Number(li.dataset.start) > finding.start_ms);
      timeline.insertBefore(item, after || null);
    }
  }

  function select(id, seek) {
    selected = id;
    for (const li of timeline.children) li.classList.toggle("selected", li.id === `f-${id}`);
    const finding = findings.get(id);
    if (seek && finding && video.src && !video.srcObject) video.currentTime = finding.start_ms / 1000;
  }

  async function review(id, action) {
    const body = new FormData();
    body.append("action", action);
    const response = await fetch(root.dataset.reviewUrl.replace(ZERO_ID, id), {
      method: "POST", body, headers: { "X-CSRFToken": csrf, Accept: "application/json" }, credentials: "same-origin",
    });
    const data = await response.json().catch(() => ({}));
    if (response.ok && data.finding) render(data.finding);
    else setStatus((data.error && data.error.message) || `Could not ${action} (HTTP ${response.status}).`);
  }

  function connect() {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    socket = new WebSocket(`${scheme}://${location.host}/ws/procedures/${sessionId}/live/`);
    socket.binaryType = "arraybuffer";
    socket.addEventListener("open", () => { attempt = 0; setStatus(canSend ? "Connected. Choose a recording or the camera." : "Connected (watching)."); });
    socket.addEventListener("message", (message) => {
      let event;
      try { event = JSON.parse(message.data); } catch { return; }
      if (event.type === "snapshot") event.findings.forEach(render);
      else if (event.type === "finding") render(event.finding);
      else if (event.type === "status" && "dropped" in event) {
        stats = event;
        setStatus(`Streaming: ${event.received} frames sent, ${event.dropped} skipped while the model was busy.`);
      } else if (event.type === "error") setStatus(`Frame refused: ${event.message}`);
    });
    socket.addEventListener("close", (close) => {
      if (close.code === 4401 || close.code === 4404) { setStatus("Not allowed to open this session."); return; }
      setStatus("Connection lost; reconnecting…");
      const delay = BACKOFF_MS[Math.min(attempt++, BACKOFF_MS.length - 1)];
      setTimeout(connect, delay);  // the snapshot on reconnect catches up on missed findings
    });
  }

  function mediaTimeMs() {
    if (video.srcObject) return Math.round(performance.now() - cameraStart);
    return Math.round(video.currentTime * 1000);
  }

  function captureAndSend() {
    if (!socket || socket.readyState !== WebSocket.OPEN || video.readyState < 2 || !video.videoWidth) return;
    if (socket.bufferedAmount > 4 * 1024 * 1024) return;  // the network is behind: skip, like the server does
    const scale = Math.min(1, MAX_SIDE / Math.max(video.videoWidth, video.videoHeight));
    canvas.width = Math.round(video.videoWidth * scale);
    canvas.height = Math.round(video.videoHeight * scale);
    canvas.getContext("2d").drawImage(video, 0, 0, canvas.width, canvas.height);
    const ts = mediaTimeMs();
    canvas.toBlob(async (blob) => {
      if (!blob) return;
      const jpeg = new Uint8Array(await blob.arrayBuffer());
      const message = new Uint8Array(8 + jpeg.length);
      new DataView(message.buffer).setBigUint64(0, BigInt(ts), false);
      message.set(jpeg, 8);
      socket.send(message);
    }, "image/jpeg", JPEG_QUALITY);
  }

  function start() {
    // People set the sampling interval in seconds; the timer takes milliseconds.
    const interval = Math.max(200, Math.round(1000 * (Number(document.getElementById("interval-s").value) || 1)));
    stop();
    timer = setInterval(captureAndSend, interval);
    if (!video.srcObject) video.play().catch(() => {});
    document.getElementById("start-stream").disabled = true;
    document.getElementById("stop-stream").disabled = false;
  }

  function stop() {
    if (timer) clearInterval(timer);
    timer = null;
    const startButton = document.getElementById("start-stream");
    if (startButton) startButton.disabled = false;
    const stopButton = document.getElementById("stop-stream");
    if (stopButton) stopButton.disabled = true;
  }

  if (canSend) {
    document.getElementById("video-file").addEventListener("change", (e) => {
      const file = e.target.files[0];
      if (!file) return;
      video.srcObject = null;
      video.src = URL.createObjectURL(file);
      setStatus("Recording loaded. Press Start analysis.");
    });
    document.getElementById("use-camera").addEventListener("click", async () => {
      try {
        video.srcObject = await navigator.mediaDevices.getUserMedia({ video: true, audio: false });
        cameraStart = performance.now();
        await video.play();
        setStatus("Camera on. Press Start analysis.");
      } catch (err) { setStatus(`Camera unavailable: ${err.message}`); }
    });
    document.getElementById("start-stream").addEventListener("click", start);
    document.getElementById("stop-stream").addEventListener("click", stop);
    document.getElementById("interval-s").addEventListener("change", () => { if (timer) start(); });
    video.addEventListener("ended", stop);
    document.addEventListener("keydown", (event) => {
      if (event.target instanceof HTMLInputElement || !selected) return;
      if (event.key === "c") review(selected, "confirm");
      else if (event.key === "r") review(selected, "reject");
    });
  }
  connect();
  // mediaTimeMs: the clock frames are sent with, so marks set on this page use the same one.
  return { findings, stats: () => stats, mediaTimeMs };
}
