/* AudioWorklet: the microphone's float samples (any rate, any channels) -> 16 kHz mono int16, posted to the
   page in blocks of 100 ms. Each output sample is the mean of the input samples it covers (a box filter
   against aliasing). `sampleRate` is the AudioContext's rate, a global of the worklet scope. */
class Pcm16k extends AudioWorkletProcessor {
  constructor() {
    super();
    this.ratio = sampleRate / 16000;
    this.pos = 0; this.acc = 0; this.n = 0;
    this.block = new Int16Array(1600); this.k = 0;
  }
  process(inputs) {
    const input = inputs[0];
    if (!input || !input.length) return true;
    const channels = input.length, frames = input[0].length;
    for (let i = 0; i < frames; i++) {
      let v = 0;
      for (let c = 0; c < channels; c++) v += input[c][i];
      this.acc += v / channels; this.n++; this.pos += 1;
      if (this.pos >= this.ratio) {
        this.pos -= this.ratio;
        const s = Math.max(-1, Math.min(1, this.acc / this.n));
        this.acc = 0; this.n = 0;
        this.block[this.k++] = s < 0 ? Math.round(s * 32768) : Math.round(s * 32767);
        if (this.k === this.block.length) {
          this.port.postMessage(this.block.buffer, [this.block.buffer]);
          this.block = new Int16Array(1600); this.k = 0;
        }
      }
    }
    return true;
  }
}
registerProcessor("pcm16k", Pcm16k);
