// Runs the browser code of the voice panel under Node with the smallest fakes of the Web
// Audio API it needs, and prints what it observed as JSON (see test_static_js.py).
import { pathToFileURL } from "node:url";
import path from "node:path";

const root = process.argv[2];
const results = {};

// --- the capture worklet: resampling to 24 kHz PCM16 --------------------------------------
let Processor = null;
globalThis.AudioWorkletProcessor = class {
  constructor() {
    this.port = { posted: [], onmessage: null, postMessage(message) { this.posted.push(message); } };
  }
};
globalThis.registerProcessor = (name, cls) => { Processor = cls; results.registered = name; };

async function capture(rate, seconds, freq, amplitude, channels) {
  globalThis.sampleRate = rate;
  if (!Processor) await import(pathToFileURL(path.join(root, "static/js/audio-worklet.js")).href);
  const node = new Processor({ processorOptions: { targetRate: 24000, chunkMs: 100 } });
  const total = Math.round(rate * seconds);
  for (let offset = 0; offset < total; offset += 128) {
    const n = Math.min(128, total - offset);
    const block = [];
    for (let c = 0; c < channels; c++) {
      const data = new Float32Array(n);
      for (let i = 0; i < n; i++) data[i] = amplitude * Math.sin((2 * Math.PI * freq * (offset + i)) / rate);
      block.push(data);
    }
    node.process([block], [[]]);
  }
  node.port.onmessage({ data: { type: "flush" } });
  const chunks = node.port.posted;
  const samples = [];
  for (const m of chunks) if (m.pcm) samples.push(...new Int16Array(m.pcm));
  // Frequency from zero crossings after the filter settled; peak from the middle.
  const middle = samples.slice(2400, samples.length - 2400);
  let crossings = 0;
  for (let i = 1; i < middle.length; i++) if ((middle[i - 1] < 0) !== (middle[i] < 0)) crossings++;
  return {
    samples: samples.length,
    full_chunks: chunks.filter((m) => m.type === "audio").length,
    chunk_samples: chunks[0] && chunks[0].pcm ? new Int16Array(chunks[0].pcm).length : 0,
    last_type: chunks[chunks.length - 1].type,
    freq: (crossings / 2) / (middle.length / 24000),
    peak: Math.max(...middle.map(Math.abs)),
  };
}

results.from48k = await capture(48000, 1.0, 1000, 0.5, 1);
results.from44k = await capture(44100, 1.0, 440, 0.5, 2);
results.alias48k = await capture(48000, 1.0, 18000, 0.5, 1); // above 12 kHz: must be filtered out

// --- playback bookkeeping: what was actually heard, per item --------------------------------
class FakeContext {
  constructor() { this.currentTime = 0; this.destination = {}; this.sources = []; }
  createBuffer(channels, length, rate) { return { duration: length / rate, copyToChannel() {} }; }
  createBufferSource() {
    const source = { connect() {}, start(t) { this.startedAt = t; }, stop() { this.stopped = true; } };
    this.sources.push(source);
    return source;
  }
}
const { Player } = await import(pathToFileURL(path.join(root, "static/js/voice.js")).href);
const context = new FakeContext();
const player = new Player(context);
const chunk = new Int16Array(2400).buffer; // 100 ms
player.enqueue("item_a", chunk);
player.enqueue("item_a", chunk);
player.enqueue("item_a", chunk);
results.starts = context.sources.map((s) => Math.round(s.startedAt * 1000));
context.currentTime = 0.18;
results.played_at_180 = player.playedMs("item_a");
results.playing = player.isPlaying();
results.cut = player.stop();
results.stopped = context.sources.every((s) => s.stopped);
results.playing_after_stop = player.isPlaying();
console.log(JSON.stringify(results));
