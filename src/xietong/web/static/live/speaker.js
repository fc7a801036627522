// Active speaker: a WebAudio analyser on each stream's audio; the loudest tile above a
// floor is highlighted, re-evaluated a few times a second.
const FLOOR = 0.02;
const EVERY_MS = 300;

export class Speakers {
  constructor() {
    this.context = null;
    this.meters = new Map(); // key -> {analyser, source, tile, data}
    this.timer = null;
  }

  _context() {
    if (!this.context) {
      const Ctx = window.AudioContext || window.webkitAudioContext;
      if (!Ctx) return null;
      this.context = new Ctx();
    }
    if (this.context.state === "suspended") this.context.resume().catch(() => {});
    return this.context;
  }

  watch(key, stream, tile) {
    this.forget(key);
    if (!stream || stream.getAudioTracks().length === 0) return;
    const context = this._context();
    if (!context) return;
    const source = context.createMediaStreamSource(stream);
    const analyser = context.createAnalyser();
    analyser.fftSize = 512;
    source.connect(analyser);
    this.meters.set(key, { analyser, source, tile, data: new Float32Array(analyser.fftSize) });
    if (!this.timer) this.timer = setInterval(() => this._tick(), EVERY_MS);
  }

  forget(key) {
    const meter = this.meters.get(key);
    if (!meter) return;
    meter.source.disconnect();
    meter.tile.classList.remove("speaking");
    this.meters.delete(key);
  }

  _tick() {
    let loudest = null;
    let level = FLOOR;
    for (const [key, meter] of this.meters) {
      meter.analyser.getFloatTimeDomainData(meter.data);
      let sum = 0;
      for (const v of meter.data) sum += v * v;
      const rms = Math.sqrt(sum / meter.data.length);
      if (rms > level) {
        level = rms;
        loudest = key;
      }
    }
    for (const [key, meter] of this.meters) {
      meter.tile.classList.toggle("speaking", key === loudest);
    }
  }

  stop() {
    for (const key of [...this.meters.keys()]) this.forget(key);
    clearInterval(this.timer);
    this.timer = null;
  }
}
