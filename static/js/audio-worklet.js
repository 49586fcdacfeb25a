// AudioWorklet processor for the voice copilot's microphone: mixes to mono, low-passes,
// resamples from the context's rate (usually 44.1 or 48 kHz) to 24 kHz and posts
// little-endian PCM16 chunks (Int16Array buffers, transferred) to the main thread.
//
// Messages to the main thread: {type: "audio", pcm: ArrayBuffer} every chunkMs, and
// {type: "flushed", pcm: ArrayBuffer|null} in answer to {type: "flush"} (push-to-talk
// release: the words at the end of a press are in the partial chunk).

const TARGET_RATE_DEFAULT = 24000;

// RBJ biquad low-pass: keeps speech, removes what would alias above the new Nyquist.
function lowpassCoefficients(rate, cutoff, q) {
  const w0 = (2 * Math.PI * cutoff) / rate;
  const alpha = Math.sin(w0) / (2 * q);
  const cos = Math.cos(w0);
  const a0 = 1 + alpha;
  return {
    b0: (1 - cos) / 2 / a0, b1: (1 - cos) / a0, b2: (1 - cos) / 2 / a0,
    a1: (-2 * cos) / a0, a2: (1 - alpha) / a0,
  };
}

class Pcm16Capture extends AudioWorkletProcessor {
  constructor(options) {
    super();
    const opts = (options && options.processorOptions) || {};
    this.targetRate = opts.targetRate || TARGET_RATE_DEFAULT;
    this.ratio = sampleRate / this.targetRate; // input samples per output sample
    this.chunkSamples = Math.max(1, Math.round((this.targetRate * (opts.chunkMs || 100)) / 1000));
    this.out = new Int16Array(this.chunkSamples);
    this.outIndex = 0;
    this.t = 0; // read position, in input samples, relative to the current block
    this.last = 0; // last filtered sample of the previous block (index -1)
    this.filter = this.ratio > 1 ? lowpassCoefficients(sampleRate, 0.45 * this.targetRate, 0.707) : null;
    this.z1 = 0;
    this.z2 = 0;
    this.filtered = new Float32Array(128);
    this.port.onmessage = (event) => {
      if (event.data && event.data.type === "flush") this.flush();
    };
  }

  flush() {
    let pcm = null;
    if (this.outIndex > 0) {
      pcm = this.out.slice(0, this.outIndex).buffer;
      this.outIndex = 0;
    }
    this.port.postMessage({ type: "flushed", pcm }, pcm ? [pcm] : []);
  }

  emit(sample) {
    const s = Math.max(-1, Math.min(1, sample));
    this.out[this.outIndex++] = s < 0 ? s * 0x8000 : s * 0x7fff;
    if (this.outIndex === this.chunkSamples) {
      const pcm = this.out.buffer;
      this.port.postMessage({ type: "audio", pcm }, [pcm]);
      this.out = new Int16Array(this.chunkSamples);
      this.outIndex = 0;
    }
  }

  process(inputs) {
    const input = inputs[0];
    if (!input || input.length === 0 || !input[0]) return true;
    const n = input[0].length;
    if (this.filtered.length < n) this.filtered = new Float32Array(n);
    const f = this.filtered;
    const channels = input.length;
    for (let i = 0; i < n; i++) {
      let x = 0;
      for (let c = 0; c < channels; c++) x += input[c][i];
      x /= channels;
      if (this.filter) {
        // Transposed direct form II.
        const { b0, b1, b2, a1, a2 } = this.filter;
        const y = b0 * x + this.z1;
        this.z1 = b1 * x - a1 * y + this.z2;
        this.z2 = b2 * x - a2 * y;
        x = y;
      }
      f[i] = x;
    }
    // Linear interpolation at steps of `ratio` input samples; index -1 is the previous
    // block's last sample, so the position carries across blocks without a seam.
    let t = this.t;
    while (t <= n - 1) {
      const i0 = Math.floor(t);
      const frac = t - i0;
      const a = i0 < 0 ? this.last : f[i0];
      const b = i0 + 1 <= n - 1 ? f[i0 + 1] : a;
      this.emit(a + (b - a) * frac);
      t += this.ratio;
    }
    this.t = t - n;
    this.last = f[n - 1];
    return true;
  }
}

registerProcessor("pcm16-capture", Pcm16Capture);
