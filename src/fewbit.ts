// Few-bit backward (Novikov et al., ICML 2023) as a hook for any Node training pipeline: in
// forward keep b-bit codes instead of the fp32 input of an activation; in backward multiply the
// incoming gradient by the level of each element's interval. Tables are optimal for
// J = ∫(f′ − q)² w (exact DP in native/train/fewbit.cc) and cached natively.
import { native, type FewbitNativeOptions } from './native.js';

export const FEWBIT_FUNCTIONS = [
  'gelu', 'gelu_tanh', 'silu', 'mish', 'elu', 'celu', 'selu', 'softplus', 'softsign', 'sigmoid', 'tanh',
  'tanhshrink', 'logsigmoid', 'hardswish',
  // piecewise-constant derivative: exact 1-bit codes (error 0)
  'relu', 'leaky_relu', 'relu6', 'hardtanh', 'hardsigmoid', 'threshold',
] as const;
export type FewbitFn = (typeof FEWBIT_FUNCTIONS)[number];
/** f′ is even: these may use `fold` (codes of |x|). */
export const EVEN_DERIVATIVE = ['tanh', 'sigmoid', 'softsign', 'tanhshrink'] as const;
export type FewbitBits = 1 | 2 | 3 | 4;

/** Function parameters (PyTorch names and defaults). */
export interface FewbitParams {
  alpha?: number;          // elu (1), celu (1)
  beta?: number;           // softplus (1)
  threshold?: number;      // softplus (20), threshold (0)
  value?: number;          // threshold (0): the output below the threshold
  negativeSlope?: number;  // leaky_relu (0.01)
  minVal?: number;         // hardtanh (-1)
  maxVal?: number;         // hardtanh (1)
}
const PARAM_SLOTS: Partial<Record<FewbitFn, Partial<Record<keyof FewbitParams, 'p0' | 'p1'>>>> = {
  elu: { alpha: 'p0' }, celu: { alpha: 'p0' }, softplus: { beta: 'p0', threshold: 'p1' },
  threshold: { threshold: 'p0', value: 'p1' }, leaky_relu: { negativeSlope: 'p0' },
  hardtanh: { minVal: 'p0', maxVal: 'p1' },
};

export interface FewbitHistogram { edges: ArrayLike<number>; counts: ArrayLike<number> }
export interface FewbitOptions {
  /** [lo, hi] of the objective; default [-100, 100] for uniform weight (the reference repo's), [-10, 10] for normal. */
  domain?: [number, number];
  /** w(x): 'uniform' (w ≡ 1, default), 'normal' (standard normal density) or a calibrated histogram (its edges are the domain). */
  weight?: 'uniform' | 'normal' | FewbitHistogram;
  /** DP grid cells (default 4096). */
  grid?: number;
  /** Refine borders off the grid (default true; only ever lowers J). */
  polish?: boolean;
  /** Even f′ only (tanh, sigmoid, softsign, tanhshrink): bucket |x| so all 2^bits levels serve one half-line (same bytes, ~3× lower J). */
  fold?: boolean;
  params?: FewbitParams;
}

export interface FewbitTable {
  fn: FewbitFn;
  bits: FewbitBits;
  /** Inner borders, ascending: 2^bits − 1 of them for solved tables, 1–2 for exact ones. */
  borders: number[];
  /** code(x) = Σ steps[i]·[x > borders[i]]; all +1 except the band end of exact band tables. */
  steps: number[];
  /** 2^bits levels indexed by code: backward is gradIn = gradOut · levels[code]. */
  levels: number[];
  /** ∫(f′ − q)² w over the domain. */
  error: number;
  domain: [number, number];
  weight: 'uniform' | 'normal' | 'histogram';
  exact: boolean;
  /** borders apply to |x| */
  fold: boolean;
  grid: number;
}

type NativeOpts = FewbitNativeOptions & { edges?: number[]; counts?: number[] };

function checkFn(fn: unknown): FewbitFn {
  if (typeof fn !== 'string' || !(FEWBIT_FUNCTIONS as readonly string[]).includes(fn)) {
    throw new TypeError(`fewbit: unknown function ${JSON.stringify(fn)} (expected one of ${FEWBIT_FUNCTIONS.join(', ')})`);
  }
  return fn as FewbitFn;
}
function checkBits(bits: unknown): FewbitBits {
  if (bits !== 1 && bits !== 2 && bits !== 3 && bits !== 4) {
    throw new TypeError(`fewbit: bits must be 1, 2, 3 or 4, got ${JSON.stringify(bits)}`);
  }
  return bits;
}
function finiteArray(a: unknown, what: string): number[] {
  if (a == null || typeof (a as ArrayLike<number>).length !== 'number') throw new TypeError(`fewbit: ${what} must be an array of numbers`);
  const out = Array.from(a as ArrayLike<number>);
  out.forEach((v, i) => {
    if (typeof v !== 'number' || !Number.isFinite(v)) throw new TypeError(`fewbit: ${what}[${i}] must be a finite number, got ${v}`);
  });
  return out;
}

function nativeOptions(fn: FewbitFn, opts: FewbitOptions | undefined): NativeOpts {
  const o: NativeOpts = {};
  if (opts == null) return o;
  if (typeof opts !== 'object') throw new TypeError('fewbit: options must be an object');
  const known = new Set(['domain', 'weight', 'grid', 'polish', 'fold', 'params']);
  for (const k of Object.keys(opts)) if (!known.has(k)) throw new TypeError(`fewbit: unknown option '${k}' (expected ${[...known].join(', ')})`);
  if (opts.domain !== undefined) {
    const d = opts.domain;
    if (!Array.isArray(d) || d.length !== 2 || !d.every((v) => typeof v === 'number' && Number.isFinite(v)) || !(d[0] < d[1])) {
      throw new TypeError(`fewbit: options.domain must be [lo, hi] with finite lo < hi, got ${JSON.stringify(d)}`);
    }
    o.lo = d[0];
    o.hi = d[1];
  }
  const w = opts.weight;
  if (w === undefined || w === 'uniform' || w === 'normal') {
    if (w) o.weight = w;
  } else if (typeof w === 'object' && w !== null && 'edges' in w && 'counts' in w) {
    if (opts.domain) throw new TypeError('fewbit: options.domain and a histogram weight are exclusive (the histogram edges are the domain)');
    const edges = finiteArray(w.edges, 'options.weight.edges');
    const counts = finiteArray(w.counts, 'options.weight.counts');
    if (edges.length < 2) throw new TypeError('fewbit: options.weight.edges needs at least 2 values');
    if (counts.length !== edges.length - 1) {
      throw new TypeError(`fewbit: options.weight.counts must have edges.length − 1 = ${edges.length - 1} values, got ${counts.length}`);
    }
    for (let i = 1; i < edges.length; i++) if (!(edges[i] > edges[i - 1])) throw new TypeError(`fewbit: options.weight.edges must be strictly ascending (index ${i})`);
    counts.forEach((c, i) => { if (c < 0) throw new TypeError(`fewbit: options.weight.counts[${i}] must be ≥ 0`); });
    if (!(counts.reduce((a, b) => a + b, 0) > 0)) throw new TypeError('fewbit: options.weight.counts sum to 0');
    o.weight = 'histogram';
    o.edges = edges;
    o.counts = counts;
  } else {
    throw new TypeError(`fewbit: options.weight must be 'uniform', 'normal' or { edges, counts }, got ${JSON.stringify(w)}`);
  }
  if (opts.grid !== undefined) {
    if (!Number.isInteger(opts.grid) || opts.grid < 16 || opts.grid > 16384) {
      throw new TypeError(`fewbit: options.grid must be an integer 16..16384, got ${opts.grid}`);
    }
    o.grid = opts.grid;
  }
  if (opts.polish !== undefined) {
    if (typeof opts.polish !== 'boolean') throw new TypeError('fewbit: options.polish must be a boolean');
    o.polish = opts.polish;
  }
  if (opts.fold !== undefined) {
    if (typeof opts.fold !== 'boolean') throw new TypeError('fewbit: options.fold must be a boolean');
    if (opts.fold && !(EVEN_DERIVATIVE as readonly string[]).includes(fn)) {
      throw new TypeError(`fewbit: options.fold needs an even derivative (${EVEN_DERIVATIVE.join(', ')}), not ${fn}`);
    }
    o.fold = opts.fold;
  }
  if (opts.params !== undefined) {
    const slots = PARAM_SLOTS[fn] ?? {};
    for (const [k, v] of Object.entries(opts.params)) {
      const slot = slots[k as keyof FewbitParams];
      if (!slot) {
        const ok = Object.keys(slots);
        throw new TypeError(`fewbit: ${fn} has no parameter '${k}'${ok.length ? ` (it has ${ok.join(', ')})` : ''}`);
      }
      if (typeof v !== 'number' || !Number.isFinite(v)) throw new TypeError(`fewbit: options.params.${k} must be a finite number`);
      o[slot] = v;
    }
  }
  return o;
}

function toF32(a: unknown, what: string): Float32Array {
  if (a instanceof Float32Array) return a;
  if (Array.isArray(a) || ArrayBuffer.isView(a)) return Float32Array.from(a as ArrayLike<number>);
  throw new TypeError(`fewbit: ${what} must be a Float32Array (or an array of numbers)`);
}

/** Bytes the codes of n elements take at `bits` bits: ceil(n·bits/8). */
/** Approx-BP's fixed 2-bit tables (Yang et al., ICML 2024): q(x) = Σᵢ aᵢ·[x > cᵢ], constants from
 *  github.com/yyyyychen/LowMemoryBP lomem/csrc/activation_cuda.cu (ReGELU2_a/_c, ReSiLU2_a/_c);
 *  levels are the running sums of a. For comparison with the solved tables (docs/fewbit.md). */
export const APPROX_BP_TABLES: Record<'regelu2' | 'resilu2', { fn: FewbitFn; borders: number[]; levels: number[] }> = {
  regelu2: { fn: 'gelu', borders: [-3.1858810036855245, -0.001178821281161997, 3.190832613414926],
    levels: runningSums([-0.04922261145617846, 1.0979632065417297, -0.048740595085551286]) },
  resilu2: { fn: 'silu', borders: [-6.3050461001646445, -0.0008684942046214787, 6.325815242089708],
    levels: runningSums([-0.04060357190528599, 1.080925428529668, -0.040321856624382146]) },
};
function runningSums(a: number[]): number[] {
  const out = [0];
  for (const v of a) out.push(out[out.length - 1] + v);
  return out;
}

export function packedBytes(n: number, bits: number): number {
  return Math.ceil((n * checkBits(bits)) / 8);
}

/** The optimal (cached) table of fn at `bits` bits. */
export function table(fn: FewbitFn, bits: FewbitBits, opts?: FewbitOptions): FewbitTable {
  const f = checkFn(fn);
  const b = checkBits(bits);
  const t = native.fewbitTable(f, b, nativeOptions(f, opts));
  return {
    fn: f, bits: b, borders: Array.from(t.borders as Float64Array), steps: t.steps, levels: Array.from(t.levels as Float64Array),
    error: t.error, domain: [t.lo, t.hi], weight: t.weight, exact: t.exact, fold: t.fold, grid: t.grid,
  };
}

/** Forward: y = f(x) and the packed b-bit codes to keep for backward (x itself need not be kept). */
export function forward(fn: FewbitFn, x: Float32Array | ArrayLike<number>, bits: FewbitBits, opts?: FewbitOptions): { y: Float32Array; codes: Uint8Array } {
  const f = checkFn(fn);
  return native.fewbitForward(f, toF32(x, 'x'), checkBits(bits), nativeOptions(f, opts), true);
}

/** Codes only (when y is computed elsewhere, e.g. fused into a GEMM epilogue). */
export function encode(fn: FewbitFn, x: Float32Array | ArrayLike<number>, bits: FewbitBits, opts?: FewbitOptions): Uint8Array {
  const f = checkFn(fn);
  return native.fewbitForward(f, toF32(x, 'x'), checkBits(bits), nativeOptions(f, opts), false).codes;
}

/** Backward: gradIn = gradOut · levels[code]; `codes` is what forward returned for the same element count. */
export function backward(fn: FewbitFn, codes: Uint8Array, gradOut: Float32Array | ArrayLike<number>, bits: FewbitBits, opts?: FewbitOptions, gradIn?: Float32Array): Float32Array {
  const f = checkFn(fn);
  const b = checkBits(bits);
  if (!(codes instanceof Uint8Array)) throw new TypeError('fewbit: codes must be the Uint8Array returned by forward');
  const g = toF32(gradOut, 'gradOut');
  const need = packedBytes(g.length, b);
  if (codes.length !== need) {
    throw new RangeError(`fewbit: codes has ${codes.length} bytes but gradOut has ${g.length} elements, which at ${b} bits need ${need}`);
  }
  if (gradIn !== undefined && (!(gradIn instanceof Float32Array) || gradIn.length !== g.length)) {
    throw new RangeError(`fewbit: gradIn must be a Float32Array of ${g.length} elements`);
  }
  return native.fewbitBackward(f, codes, g, b, nativeOptions(f, opts), gradIn);
}

/** J = ∫(f′ − q)² w of any table given as inner borders and one level per interval (same quadrature as the solver). */
export function objective(fn: FewbitFn, borders: ArrayLike<number>, levels: ArrayLike<number>, opts?: FewbitOptions): number {
  const f = checkFn(fn);
  const b = finiteArray(borders, 'borders');
  const l = finiteArray(levels, 'levels');
  if (l.length !== b.length + 1) throw new TypeError(`fewbit: levels must have borders.length + 1 = ${b.length + 1} values, got ${l.length}`);
  return native.fewbitObjective(f, b, l, nativeOptions(f, opts));
}

/** Optimal levels for fixed borders and their J. */
export function fitLevels(fn: FewbitFn, borders: ArrayLike<number>, opts?: FewbitOptions): { levels: number[]; error: number } {
  const f = checkFn(fn);
  const r = native.fewbitFitLevels(f, finiteArray(borders, 'borders'), nativeOptions(f, opts));
  return { levels: Array.from(r.levels as Float64Array), error: r.error };
}

/** A drop-in activation for a training loop: resolves the table once. */
export function activation(fn: FewbitFn, bits: FewbitBits, opts?: FewbitOptions) {
  const t = table(fn, bits, opts);
  return {
    table: t,
    /** bytes kept for backward per element */
    bytesPerElement: bits / 8,
    forward: (x: Float32Array | ArrayLike<number>) => forward(fn, x, bits, opts),
    backward: (codes: Uint8Array, gradOut: Float32Array | ArrayLike<number>, gradIn?: Float32Array) => backward(fn, codes, gradOut, bits, opts, gradIn),
  };
}

export const fewbit = {
  functions: FEWBIT_FUNCTIONS,
  table, forward, encode, backward, objective, fitLevels, activation, packedBytes,
};
