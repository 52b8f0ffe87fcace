// Calibration observers: each tensor gets a MinMax pass (global min/max), then a second pass that
// fills a 2048-bin signed histogram over [min, max] and a 2048-bin |x| histogram over [0, max|x|].
// The range [lo, hi] that becomes the uint8 scale/zero point is chosen from those by one of four
// methods. lo ≤ 0 ≤ hi always (zero must be exactly representable, as ONNX requires).

export type Method = 'minmax' | 'percentile' | 'entropy' | 'mse';
export const METHODS: readonly Method[] = ['minmax', 'percentile', 'entropy', 'mse'];
export const NUM_BINS = 2048;

export interface Range { lo: number; hi: number }
export interface QParams { scale: number; zeroPoint: number }

export class TensorObserver {
  min = Infinity;
  max = -Infinity;
  count = 0;
  zeros = 0;                              // exact zeros seen by the histogram pass (ReLU outputs)
  hist: Float64Array | null = null;      // signed, NUM_BINS over [min, max]
  absHist: Float64Array | null = null;   // |x|, NUM_BINS over [0, absMax]

  /** Pass 1: global min/max. NaN/Inf are refused (they would poison every method). */
  observeRange(x: ArrayLike<number>, what: string): void {
    let mn = this.min, mx = this.max;
    for (let i = 0; i < x.length; i++) {
      const v = x[i];
      if (!Number.isFinite(v)) throw new Error(`calibration: tensor '${what}' has a non-finite value (${v})`);
      if (v < mn) mn = v;
      if (v > mx) mx = v;
    }
    this.min = mn;
    this.max = mx;
    this.count += x.length;
  }

  get absMax(): number { return Math.max(Math.abs(this.min), Math.abs(this.max)); }

  /** Pass 2: histograms over the ranges found by pass 1 (values outside are clamped into the end bins). */
  observeHistogram(x: ArrayLike<number>): void {
    if (!this.hist) { this.hist = new Float64Array(NUM_BINS); this.absHist = new Float64Array(NUM_BINS); }
    const h = this.hist, a = this.absHist!;
    const lo = this.min, w = this.max - this.min, am = this.absMax;
    const k = w > 0 ? NUM_BINS / w : 0, ka = am > 0 ? NUM_BINS / am : 0;
    for (let i = 0; i < x.length; i++) {
      const v = x[i];
      let b = Math.floor((v - lo) * k); if (b >= NUM_BINS) b = NUM_BINS - 1; else if (b < 0) b = 0;
      h[b]++;
      let c = Math.floor(Math.abs(v) * ka); if (c >= NUM_BINS) c = NUM_BINS - 1;
      a[c]++;
      if (v === 0) this.zeros++;
    }
  }

  /** The |x| below which a fraction q of the values lies (from the |x| histogram; bin upper edge). */
  absQuantile(q: number): number {
    if (!this.absHist) throw new Error('calibration: the |x| quantile needs the histogram pass');
    const total = this.absHist.reduce((a, b) => a + b, 0);
    let acc = 0;
    for (let b = 0; b < NUM_BINS; b++) {
      acc += this.absHist[b];
      if (acc >= q * total) return ((b + 1) / NUM_BINS) * this.absMax;
    }
    return this.absMax;
  }

  /** The range for `method` (percentile in percent, e.g. 99.99). */
  range(method: Method, percentile = 99.99): Range {
    if (!(this.count > 0)) throw new Error('calibration: observer saw no data');
    const mm = { lo: Math.min(this.min, 0), hi: Math.max(this.max, 0) };
    if (method === 'minmax' || this.max === this.min) return mm;
    if (!this.hist) throw new Error(`calibration: method '${method}' needs the histogram pass`);
    let r: Range;
    if (method === 'percentile') r = percentileRange(this.hist, this.min, this.max, percentile);
    else if (method === 'entropy') {
      // exact zeros are exact in any range (0 is a code): left in bin 0 they pull KL toward tight
      // ranges — a distilled ReLU micro-Swin lost 2.7 pp (onnxruntime) / 0.8 pp (swinq) that way
      const h = Float64Array.from(this.absHist!);
      h[0] -= this.zeros;
      r = entropyRange(h, this.absMax, this.min, this.max);
    }
    else r = mseRange(this.hist, this.min, this.max);
    return { lo: Math.min(r.lo, 0), hi: Math.max(r.hi, 0) };
  }
}

/** [lo, hi] holding percentile% of the mass on each side ((100 − p)% below lo, (100 − p)% above hi). */
export function percentileRange(hist: Float64Array, min: number, max: number, p: number): Range {
  if (!(p > 50 && p <= 100)) throw new Error(`--percentile must be in (50, 100], got ${p}`);
  const total = hist.reduce((s, v) => s + v, 0);
  const tail = total * (1 - p / 100);
  const bw = (max - min) / hist.length;
  let acc = 0, loBin = 0;
  for (; loBin < hist.length; loBin++) { if (acc + hist[loBin] > tail) break; acc += hist[loBin]; }
  acc = 0;
  let hiBin = hist.length - 1;
  for (; hiBin >= 0; hiBin--) { if (acc + hist[hiBin] > tail) break; acc += hist[hiBin]; }
  return { lo: min + loBin * bw, hi: min + (hiBin + 1) * bw };
}

/**
 * TensorRT's entropy calibration on the |x| histogram: for each candidate threshold bin i, the
 * reference P is hist[0, i) with the clipped tail folded into its last bin, Q is P merged into the
 * number of uint8 levels the range [max(min, −t), min(max, t)] gives [0, t], expanded back over P's
 * non-empty bins; pick the i of least KL(P‖Q).
 */
export function entropyRange(absHist: Float64Array, absMax: number, min: number, max: number): Range {
  const n = absHist.length;
  const bw = absMax / n;
  let best = n, bestKl = Infinity;
  const p = new Float64Array(n);
  const q = new Float64Array(n);
  for (let i = 128; i <= n; i++) {
    const t = i * bw;
    const width = Math.min(max, t) - Math.max(min, -t);
    const nq = Math.max(8, Math.min(i, Math.round((255 * t) / Math.max(width, 1e-30))));
    let outliers = 0;
    for (let j = i; j < n; j++) outliers += absHist[j];
    let psum = 0;
    for (let j = 0; j < i; j++) { p[j] = absHist[j]; psum += p[j]; }
    p[i - 1] += outliers;
    psum += outliers;
    if (psum === 0) continue;
    // merge hist[0,i) into nq bins, spread each merged bin over its non-empty source bins
    for (let b = 0; b < nq; b++) {
      const s = Math.floor((b * i) / nq), e = Math.floor(((b + 1) * i) / nq);
      let sum = 0, nz = 0;
      for (let j = s; j < e; j++) { sum += absHist[j]; if (absHist[j] > 0) nz++; }
      for (let j = s; j < e; j++) q[j] = absHist[j] > 0 ? sum / nz : 0;
    }
    let qsum = 0;
    for (let j = 0; j < i; j++) qsum += q[j];
    if (qsum === 0) continue;
    let kl = 0;
    for (let j = 0; j < i; j++) {
      if (p[j] === 0) continue;
      const pj = p[j] / psum;
      const qj = q[j] / qsum;
      kl += qj > 0 ? pj * Math.log(pj / qj) : pj * Math.log(pj / 1e-12);  // empty Q where P has mass: heavy penalty
    }
    if (kl < bestKl) { bestKl = kl; best = i; }
  }
  const t = best * bw;
  return { lo: Math.max(min, -t), hi: Math.min(max, t) };
}

/**
 * The range of least expected squared error for uint8 codes: inside [lo, hi] rounding noise
 * step²/12 per value, outside the clipping error measured from bin centres. lo and hi shrink
 * independently (asymmetric uint8), 48 × 48 candidates.
 */
export function mseRange(hist: Float64Array, min: number, max: number): Range {
  const n = hist.length;
  const bw = (max - min) / n;
  const centre = (j: number) => min + (j + 0.5) * bw;
  const steps = 48;
  let best: Range = { lo: min, hi: max }, bestErr = Infinity;
  const total = hist.reduce((s, v) => s + v, 0);
  for (let a = 1; a <= steps; a++) {
    const lo = Math.min(0, (min * a) / steps);
    for (let b = 1; b <= steps; b++) {
      const hi = Math.max(0, (max * b) / steps);
      if (hi - lo <= 0) continue;
      const step = (hi - lo) / 255;
      let err = 0, inside = 0;
      for (let j = 0; j < n; j++) {
        const c = hist[j];
        if (c === 0) continue;
        const x = centre(j);
        if (x < lo) err += c * (x - lo) * (x - lo);
        else if (x > hi) err += c * (x - hi) * (x - hi);
        else inside += c;
      }
      err += (inside * step * step) / 12;
      if (err < bestErr) { bestErr = err; best = { lo, hi }; }
    }
  }
  void total;
  return best;
}

/** uint8 asymmetric parameters for [lo, hi] (lo ≤ 0 ≤ hi): zero is exact. */
export function uint8Params(r: Range): QParams {
  const lo = Math.min(r.lo, 0), hi = Math.max(r.hi, 0);
  if (!(hi - lo > 0)) return { scale: 1, zeroPoint: 0 };
  const scale = Math.fround((hi - lo) / 255);
  const zeroPoint = Math.min(255, Math.max(0, Math.round(-lo / scale)));
  return { scale, zeroPoint };
}

/** ONNX QuantizeLinear→DequantizeLinear on one value (round half to even, saturate). */
export function fakeQuant(x: number, q: QParams, qmin: number, qmax: number): number {
  let v = roundHalfEven(x / q.scale) + q.zeroPoint;
  if (v < qmin) v = qmin; else if (v > qmax) v = qmax;
  return (v - q.zeroPoint) * q.scale;
}

export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** Signal-to-quantization-noise ratio in dB of x against its fake-quantized copy. */
export class Sqnr {
  signal = 0;
  noise = 0;
  add(x: ArrayLike<number>, q: QParams, qmin: number, qmax: number): void {
    for (let i = 0; i < x.length; i++) {
      const v = x[i];
      const d = v - fakeQuant(v, q, qmin, qmax);
      this.signal += v * v;
      this.noise += d * d;
    }
  }
  get db(): number { return this.noise === 0 ? Infinity : 10 * Math.log10(this.signal / this.noise); }
}

export interface PerChannel { data: Int8Array; scales: Float32Array; sqnrDb: number }

/**
 * int8 symmetric per-channel weights: channel c along `axis` gets scale max|w_c|/127 and codes in
 * [−127, 127] (zero point 0; −128 unused so |code| ≤ 127 for the u8·s8 GEMM's pair bound).
 */
export function quantizeWeightsPerChannel(w: ArrayLike<number>, dims: readonly number[], axis: number): PerChannel {
  if (axis < 0 || axis >= dims.length) throw new Error(`per-channel axis ${axis} out of range for dims [${dims.join(',')}]`);
  const C = dims[axis];
  const inner = dims.slice(axis + 1).reduce((a, b) => a * b, 1);
  const n = dims.reduce((a, b) => a * b, 1);
  if (w.length !== n) throw new Error(`weights have ${w.length} values, dims [${dims.join(',')}] need ${n}`);
  const chan = (i: number) => Math.floor(i / inner) % C;
  const amax = new Float64Array(C);
  for (let i = 0; i < n; i++) { const c = chan(i); const a = Math.abs(w[i]); if (a > amax[c]) amax[c] = a; }
  const scales = new Float32Array(C);
  for (let c = 0; c < C; c++) scales[c] = amax[c] > 0 ? Math.fround(amax[c] / 127) : 1;
  const data = new Int8Array(n);
  let sig = 0, noise = 0;
  for (let i = 0; i < n; i++) {
    const s = scales[chan(i)];
    const q = Math.max(-127, Math.min(127, roundHalfEven(w[i] / s)));
    data[i] = q;
    const d = w[i] - q * s;
    sig += w[i] * w[i];
    noise += d * d;
  }
  return { data, scales, sqnrDb: noise === 0 ? Infinity : 10 * Math.log10(sig / noise) };
}
