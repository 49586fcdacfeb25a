// Voice copilot panel (templates/voice/panel.html).
//
// Microphone -> AudioWorklet (static/js/audio-worklet.js: 24 kHz mono PCM16) -> binary
// messages on /ws/procedures/<id>/voice/ -> the server relays them to the Realtime API
// (the API key never comes here). Back: JSON events and the assistant's audio as binary
// PCM16 24 kHz mono, each run announced by {"type": "audio.start", "item_id": ...}.
// Playback is scheduled with WebAudio, and how many ms of each item were actually played
// is tracked, so that when the clinician talks over the assistant (barge-in) the server
// can cut the assistant's context at exactly what was heard.
// Everything shown comes from the server or a model: it goes in with textContent only.

const RATE = 24000;
const NO_RETRY_CODES = new Set([4401, 4403, 4404, 4413, 4503]);
const RETRY_DELAYS_MS = [1000, 3000, 8000];
const STATE_TEXT = {
  off: "Off",
  connecting: "Connecting…",
  listening: "Listening",
  hearing: "Listening (hearing you)",
  ready_ptt: "Ready: hold the button to talk",
  talking: "Talking (release to send)",
  thinking: "Thinking…",
  speaking: "Speaking",
  error: "Error",
};

function pcm16ToFloat32(buffer) {
  const pcm = new Int16Array(buffer);
  const out = new Float32Array(pcm.length);
  for (let i = 0; i < pcm.length; i++) out[i] = pcm[i] / (pcm[i] < 0 ? 0x8000 : 0x7fff);
  return out;
}

// Schedules assistant audio gaplessly and knows how much of each item has been heard.
export class Player {
  constructor(context) {
    this.context = context;
    this.chunks = []; // {itemId, start, duration, source}
    this.nextTime = 0;
    this.itemId = null;
  }

  enqueue(itemId, buffer) {
    const samples = pcm16ToFloat32(buffer);
    if (!samples.length) return;
    const audio = this.context.createBuffer(1, samples.length, RATE);
    audio.copyToChannel(samples, 0);
    const source = this.context.createBufferSource();
    source.buffer = audio;
    source.connect(this.context.destination);
    const now = this.context.currentTime;
    const start = Math.max(now + 0.03, this.nextTime);
    source.start(start);
    this.nextTime = start + audio.duration;
    this.itemId = itemId;
    this.chunks.push({ itemId, start, duration: audio.duration, source });
    this.prune(now);
  }

  prune(now) {
    // Chunks of the current item are kept to count what was played; older items go.
    this.chunks = this.chunks.filter((c) => c.itemId === this.itemId || c.start + c.duration > now);
  }

  isPlaying() {
    return this.context.currentTime < this.nextTime;
  }

  playedMs(itemId) {
    const now = this.context.currentTime;
    let played = 0;
    for (const c of this.chunks) {
      if (c.itemId === itemId) played += Math.min(Math.max(now - c.start, 0), c.duration);
    }
    return Math.round(played * 1000);
  }

  // Stops at once; returns {itemId, playedMs} of the item that was cut, or null.
  stop() {
    if (!this.isPlaying() || !this.itemId) return null;
    const cut = { itemId: this.itemId, playedMs: this.playedMs(this.itemId) };
    for (const c of this.chunks) {
      try { c.source.stop(); } catch { /* not started yet or already stopped */ }
    }
    this.chunks = [];
    this.nextTime = 0;
    return cut;
  }
}

export function mountVoicePanel(root) {
  if (!root || root.dataset.canTalk !== "true" || root.dataset.configured !== "true") return null;
  const $ = (id) => root.querySelector(`#${id}`);
  const ui = {
    start: $("voice-start"), stop: $("voice-stop"), ptt: $("voice-ptt"), state: $("voice-state"),
    log: $("voice-transcript"), form: $("voice-text-form"), text: $("voice-text"), error: $("voice-error"),
    modes: root.querySelectorAll('input[name="voice-mode"]'),
  };
  const url = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws/procedures/${root.dataset.session}/voice/`;
  const workletUrl = root.dataset.workletUrl;

  let socket = null;
  let context = null;
  let stream = null;
  let capture = null;
  let player = null;
  let ready = false;
  let mode = "vad";
  let holding = false;
  let thinking = false;
  let hearing = false;
  let fatal = false;
  let stopping = false;
  let attempt = 0;
  let errorTimer = null;
  let audioItem = null;
  const rows = new Map(); // item id -> <li> of the transcript

  function setState(name, detail) {
    ui.state.dataset.state = name;
    ui.state.textContent = detail ? `${STATE_TEXT[name]}: ${detail}` : STATE_TEXT[name];
    root.dataset.state = name;
  }

  function refreshState() {
    if (fatal) return;
    if (!socket) return setState("off");
    if (!ready) return setState("connecting");
    if (player && player.isPlaying()) return setState("speaking");
    if (holding) return setState("talking");
    if (thinking) return setState("thinking");
    if (hearing) return setState("hearing");
    setState(mode === "ptt" ? "ready_ptt" : "listening");
  }

  function showError(message, isFatal) {
    ui.error.hidden = false;
    ui.error.textContent = message;
    clearTimeout(errorTimer);
    if (isFatal) {
      fatal = true;
      setState("error");
    } else {
      errorTimer = setTimeout(() => { ui.error.hidden = true; }, 8000);
    }
  }

  function row(key, who, cls) {
    let li = key ? rows.get(key) : null;
    if (!li) {
      li = document.createElement("li");
      li.className = `voice-${cls}`;
      const label = document.createElement("strong");
      label.textContent = `${who}: `;
      const body = document.createElement("span");
      li.append(label, body);
      ui.log.append(li);
      if (key) rows.set(key, li);
      ui.log.scrollTop = ui.log.scrollHeight;
    }
    return li.querySelector("span");
  }

  function transcript(event, who, cls) {
    const body = row(event.item_id, who, cls);
    if (event.final) body.textContent = event.text || (event.failed ? "(not transcribed)" : body.textContent);
    else body.textContent += event.delta || "";
    ui.log.scrollTop = ui.log.scrollHeight;
  }

  function send(message) {
    if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(message));
  }

  // The clinician talks over the assistant: stop playing and tell the server how much was heard.
  function bargeIn() {
    const cut = player ? player.stop() : null;
    if (cut) send({ type: "playback.truncate", item_id: cut.itemId, audio_end_ms: cut.playedMs });
    refreshState();
  }

  function onEvent(event) {
    switch (event.type) {
      case "status":
        if (event.state === "ready") {
          ready = true;
          attempt = 0;
          thinking = false;
          if (event.mode && event.mode !== mode) send({ type: "mode", mode }); // chosen while connecting
        }
        if (event.state === "reconnecting") { ready = false; }
        if (event.state === "mode") mode = event.mode;
        break;
      case "error":
        showError(event.message || "Voice copilot error.", Boolean(event.fatal));
        if (event.code === "not_configured" || event.fatal) teardown(false);
        thinking = false;
        break;
      case "speech.started":
        hearing = true;
        bargeIn();
        break;
      case "speech.stopped":
        hearing = false;
        thinking = true;
        break;
      case "input.committed":
        thinking = true;
        break;
      case "transcript.user":
        transcript(event, "You", "user");
        break;
      case "transcript.assistant":
        transcript(event, "Copilot", "assistant");
        break;
      case "audio.start":
        audioItem = event.item_id;
        thinking = false;
        break;
      case "tool": {
        const body = row(`tool:${event.call_id}`, "Tool", "tool");
        body.textContent = event.status === "running" ? `${event.name}…` : event.summary || event.name;
        break;
      }
      case "response.done":
        thinking = false;
        break;
      default:
        break;
    }
    refreshState();
  }

  function onAudio(buffer) {
    if (player && audioItem) player.enqueue(audioItem, buffer);
    refreshState();
  }

  function connect() {
    const ws = new WebSocket(url);
    socket = ws;
    ws.binaryType = "arraybuffer";
    ready = false;
    refreshState();
    ws.addEventListener("message", (message) => {
      if (ws !== socket) return; // a socket this panel already let go of
      if (typeof message.data !== "string") return onAudio(message.data);
      let event;
      try { event = JSON.parse(message.data); } catch { return; }
      onEvent(event);
    });
    ws.addEventListener("close", (close) => {
      if (ws !== socket) return;
      socket = null;
      ready = false;
      if (stopping || fatal) return refreshState();
      if (NO_RETRY_CODES.has(close.code) || attempt >= RETRY_DELAYS_MS.length) {
        showError(close.code === 4403 ? "Only the clinician who owns this session can talk to the copilot."
          : "The voice connection closed.", true);
        teardown(false);
        return;
      }
      setState("connecting", "connection lost, retrying");
      setTimeout(() => { if (!stopping && !fatal) connect(); }, RETRY_DELAYS_MS[attempt++]);
    });
  }

  function onCapture(event) {
    const { type, pcm } = event.data || {};
    if (type === "audio") {
      if (ready && (mode === "vad" || holding)) socket.send(pcm);
    } else if (type === "flushed") {
      if (pcm && ready) socket.send(pcm);
      send({ type: "ptt.stop" });
      thinking = true;
      refreshState();
    }
  }

  async function start() {
    fatal = false;
    stopping = false;
    ui.error.hidden = true;
    ui.start.disabled = true;
    setState("connecting", "asking for the microphone");
    try {
      stream = await navigator.mediaDevices.getUserMedia({
        audio: { channelCount: 1, echoCancellation: true, noiseSuppression: true, autoGainControl: true },
      });
      context = new AudioContext();
      await context.audioWorklet.addModule(workletUrl);
      const source = context.createMediaStreamSource(stream);
      capture = new AudioWorkletNode(context, "pcm16-capture", {
        numberOfOutputs: 1, processorOptions: { targetRate: RATE, chunkMs: 100 },
      });
      const mute = context.createGain();
      mute.gain.value = 0; // keeps the worklet pulled by the graph without playing the mic back
      source.connect(capture).connect(mute).connect(context.destination);
      capture.port.onmessage = onCapture;
      player = new Player(context);
    } catch (error) {
      showError(`The microphone could not be opened: ${error && error.message ? error.message : error}`, true);
      teardown(false);
      return;
    }
    ui.stop.hidden = false;
    ui.start.hidden = true;
    ui.ptt.disabled = mode !== "ptt";
    attempt = 0;
    connect();
  }

  function teardown(byUser) {
    stopping = true; // no automatic reconnect after this
    if (socket && socket.readyState <= WebSocket.OPEN) socket.close(1000);
    socket = null;
    ready = false;
    if (player) player.stop();
    if (stream) stream.getTracks().forEach((t) => t.stop());
    if (context) context.close();
    stream = context = capture = player = null;
    holding = thinking = hearing = false;
    ui.stop.hidden = true;
    ui.start.hidden = false;
    ui.start.disabled = false;
    ui.ptt.disabled = true;
    if (byUser) { fatal = false; setState("off"); }
  }

  function pttDown(event) {
    if (event) event.preventDefault();
    if (holding || !ready || mode !== "ptt") return;
    bargeIn();
    holding = true;
    ui.ptt.setAttribute("aria-pressed", "true");
    send({ type: "ptt.start" });
    refreshState();
  }

  function pttUp() {
    if (!holding) return;
    holding = false;
    ui.ptt.setAttribute("aria-pressed", "false");
    // The last partial chunk is sent before ptt.stop (see onCapture).
    if (capture) capture.port.postMessage({ type: "flush" });
    else send({ type: "ptt.stop" });
    refreshState();
  }

  ui.start.addEventListener("click", start);
  ui.stop.addEventListener("click", () => teardown(true));
  ui.ptt.addEventListener("pointerdown", pttDown);
  ["pointerup", "pointerleave", "pointercancel"].forEach((name) => ui.ptt.addEventListener(name, pttUp));
  ui.ptt.addEventListener("keydown", (e) => { if ((e.key === " " || e.key === "Enter") && !e.repeat) pttDown(e); });
  ui.ptt.addEventListener("keyup", (e) => { if (e.key === " " || e.key === "Enter") pttUp(); });
  ui.modes.forEach((input) => input.addEventListener("change", () => {
    if (!input.checked) return;
    mode = input.value;
    ui.ptt.disabled = mode !== "ptt" || !stream;
    send({ type: "mode", mode });
    refreshState();
  }));
  ui.form.addEventListener("submit", (e) => {
    e.preventDefault();
    const text = ui.text.value.trim();
    if (!text) return;
    if (!ready) return showError("Start the voice copilot first (or wait until it is connected).", false);
    bargeIn();
    send({ type: "text", text });
    ui.text.value = "";
    thinking = true;
    refreshState();
  });
  // Playback ends on the audio clock, not on a message: poll to leave "speaking".
  setInterval(() => { if (socket) refreshState(); }, 250);
  setState("off");
  root.dataset.mounted = "true"; // controls are live (tests wait for this)
  return { start, stop: () => teardown(true) };
}
