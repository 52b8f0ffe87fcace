// Float plan → integer-only plan: one rule per plan op kind (RULES below), each a small unit that
// checks what it can take, emits integer ops and records the integer value (codes, scale, zero
// point) of its output. What a tensor is stored as (uint8 GEMM input, int16 residual stream, int32
// logits, float output) is decided first from its consumers (NEEDS). Nothing between the input
// `quantize` and the output `dequantize` is float. The plan ops come from the fp32 compiler
// (src/quant/float-plan.ts), so one rule covers every exporter's spelling of an op (see the layout
// table in docs/quantization.md). Ranges: src/quant/plan-ranges.ts; fused attention:
// src/quant/attention-match.ts.
import type { Graph, DT } from '../ir/graph.js';
import { numel } from '../ir/graph.js';
import type { Lowered, PT, POp } from '../compile/lower.js';
import type { OpName } from '../plan/ops.js';
import { emitPlan, aliasRoot, aliasOffset } from '../compile/plan.js';
import { native, type PlanDescJS } from '../native.js';
import { lowerFp32 } from './float-plan.js';
import { planOpKeys, type PlanRanges } from './plan-ranges.js';
import { matchAttention } from './attention-match.js';
import { foldRowGathers } from './row-folds.js';

const rootOf = aliasRoot;

export type IntPlanResult = { ok: true; desc: PlanDescJS; outputDims: number[] } | { ok: false; reason: string; node?: string; op?: string };
export interface IntLowerOptions {
  geluLevels?: number; actLevels?: number; attnLevels?: number; wideWeightMax?: number; fuseAttention?: boolean;
  /** false: a linear into the residual stream is linear_q + add_q (default: one linear_q with the add in its epilogue) */
  fuseResidual?: boolean;
  /** false: keep the row gathers after attention and LayerNorm ops (default: folded into their stores, row-folds.ts) */
  foldRowGathers?: boolean;
  /** per-column weight codes by float weight array and code limit, kept across the plans of one
   *  model (each batch size is a new plan; ViT-B re-quantized 85 M weights every time) */
  weightCodes?: WeakMap<object, Map<number, { codes: Float64Array; scales: Float64Array }>>;
}

/** A plan op the integer lowering cannot take (caught at the top, reported with the op). */
class Blocked extends Error { constructor(readonly op: POp | undefined, why: string) { super(why); } }
const fail = (op: POp | undefined, why: string): never => { throw new Blocked(op, why); };

const gelu = (x: number) => 0.5 * x * (1 + erf(x / Math.SQRT2));
const geluTanh = (x: number) => 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x * x * x)));
function erf(x: number): number {
  // Numerical Recipes erfc (Chebyshev), |error| < 1.2e-7
  const t = 1 / (1 + 0.5 * Math.abs(x));
  const y = 1 - t * Math.exp(-x * x - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806 +
    t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))));
  return x >= 0 ? y : -y;
}

/** [min, max] of a constant (a loop: spreading 150k elements into Math.min overflows the stack) */
function minMax(v: ArrayLike<number>): number[] {
  let lo = Infinity, hi = -Infinity;
  for (let i = 0; i < v.length; i++) { if (v[i] < lo) lo = v[i]; if (v[i] > hi) hi = v[i]; }
  return [lo, hi];
}
const absMax = (r: number[]) => Math.max(Math.abs(r[0]), Math.abs(r[1]));

/** A softmax bias (relative position, shift mask) as int32 codes at the logit scale; −inf masks and
 *  anything beyond int32 saturate (≤ −2^30 is a mask for softmax_q and attention_q). */
function biasCodes(bias: ArrayLike<number>, logitScale: number): number[] {
  return Array.from(bias, (v) => Math.max(-(2 ** 31) + 1, Math.min(2 ** 31 - 1, Math.round(v / logitScale))));
}

/** An integer value: its tensor in the new plan, storage type, scale and zero point (codes ≤ max). */
interface Q { id: number; dtype: DT; scale: number; zp: number; max?: number; attn?: boolean }

/** State of one lowering: the float plan (l, T), the integer plan being built (NT, NO), the integer
 *  value of each float root tensor (values), the ranges, and the helpers the rules share. */
class Lowering {
  readonly T: PT[];
  readonly NT: PT[] = [];
  readonly NO: POp[] = [];
  readonly values = new Map<number, Q>();
  readonly skip = new Set<number>();
  outDims: number[] = [];
  readonly G: number;   // GELU outputs (fc2 inputs) use codes [0, G]: G = 127 proves fc2's fast u8×s8 kernel safe
  readonly A: number;   // other uint8 GEMM inputs (LayerNorm outputs, q/k/v) likewise use codes [0, A]
  readonly keys: string[];
  private readonly producer = new Map<number, number>();
  private readonly copiesInto = new Map<number, POp[]>();
  private readonly partOf = new Map<number, number>();
  private readonly bounds = new Map<number, number[] | undefined>();
  private readonly need = new Map<number, Set<string>>();
  readonly consumers = new Map<number, number[]>();

  constructor(readonly l: Lowered, readonly R: PlanRanges, readonly opts: IntLowerOptions) {
    this.T = l.tensors;
    this.G = opts.geluLevels ?? 127;
    this.A = opts.actLevels ?? 127;
    this.keys = planOpKeys(l.ops);
    const T = this.T;
    l.ops.forEach((op, k) => {
      this.producer.set(rootOf(T, op.outputs[0]), k);
      op.inputs.forEach((t) => { if (t >= 0) { const r = rootOf(T, t); this.consumers.set(r, [...(this.consumers.get(r) ?? []), k]); } });
    });
    // tensors assembled by copies (concatenations: class token + patch tokens) take the union of
    // their parts' ranges; every part is stored at the whole tensor's scale
    for (const op of l.ops) if (op.kind === 'copy') { const r = rootOf(T, op.outputs[0]); this.copiesInto.set(r, [...(this.copiesInto.get(r) ?? []), op]); }
    for (const [r, cs] of this.copiesInto) for (const c of cs) if (T[c.inputs[0]].kind !== 'const') this.partOf.set(rootOf(T, c.inputs[0]), r);
    // what each root must be stored as, from its consumers (last op first)
    for (let k = l.ops.length - 1; k >= 0; k--) {
      const op = l.ops[k];
      const o = rootOf(T, op.outputs[0]);
      if (T[o].kind === 'output') this.use(o, 'out');
      const needs = NEEDS[op.kind];
      if (!needs) fail(op, 'no integer counterpart');
      needs!(this, op, [...(this.need.get(o) ?? [])]);
    }
  }

  use(t: number, w: string): void { const r = rootOf(this.T, t); if (!this.need.has(r)) this.need.set(r, new Set()); this.need.get(r)!.add(w); }

  /** The storage type a float tensor's consumers need (or a reason string when they disagree). */
  dtypeFor(t: number, op: POp): DT | string {
    const s = new Set(this.need.get(rootOf(this.T, t)) ?? []);
    s.delete('any');
    if (s.size === 0) return 'uint8';
    if (s.size > 1) return `consumers need ${[...s].join(' and ')}`;
    const w = [...s][0];
    return w === 'u8' ? 'uint8' : w === 'i16' ? 'int16' : w === 'i32' ? 'int32' : w === 'out' ? 'float32' : `unknown need ${w} (${op.name})`;
  }

  /** Range of a float tensor: calibrated, the union of a concatenation's parts, or an interval bound. */
  rangeOf(t: number): number[] {
    const T = this.T;
    const r = rootOf(T, t);
    if (T[r].kind === 'input') return this.R.input;
    const k = this.producer.get(r);
    const v = k === undefined ? undefined : this.R.ops[this.keys[k]];
    if (v) return v;
    const cs = this.copiesInto.get(r);
    if (cs) {
      let lo = 0, hi = 0;
      for (const c of cs) {
        const src = T[c.inputs[0]];
        const rg = src.kind === 'const' && src.data ? minMax(src.data.data) : this.rangeOf(c.inputs[0]);
        lo = Math.min(lo, rg[0]); hi = Math.max(hi, rg[1]);
      }
      return [lo, hi];
    }
    const b = k === undefined ? undefined : this.boundRange(k);
    if (b) return b;
    return fail(k === undefined ? undefined : this.l.ops[k], 'no calibrated range for its output (re-run swinq calibrate on the model)');
  }

  // Without a calibrated range (a QDQ file that quantizes only GEMM inputs), an op output's range is
  // bounded from its inputs' ranges and its constants: |x·W + b| ≤ max_n Σ_k |w_kn|·max|x| + |b_n|, a sum's
  // bound is the sum of the bounds, |LayerNorm| ≤ |γ|·√D + |β|, a gather or mean keeps its input's.
  // Loose (a few bits of an int16 code), never clipping; used only where the file has no scale.
  private boundRange(k: number): number[] | undefined {
    if (this.bounds.has(k)) return this.bounds.get(k);
    this.bounds.set(k, undefined); // cycles: none in a plan, but never loop
    const op = this.l.ops[k], T = this.T;
    const cdata = (t: number) => (t >= 0 && T[t].kind === 'const' ? T[t].data?.data : undefined);
    let r: number[] | undefined;
    if (op.kind === 'linear' && op.ints[3] === 0) {
      const [, K, N] = op.ints;
      const w = cdata(op.inputs[1]), bias = cdata(op.inputs[2]);
      if (w) {
        const xm = absMax(this.rangeOf(op.inputs[0]));
        let m = 0;
        for (let n = 0; n < N; n++) {
          let a = 0;
          for (let kk = 0; kk < K; kk++) a += Math.abs(w[kk * N + n]);
          m = Math.max(m, a * xm + (bias ? Math.abs(bias[n]) : 0));
        }
        if (op.inputs[3] >= 0) m += absMax(this.rangeOf(op.inputs[3]));
        r = [-m, m];
      }
    } else if (op.kind === 'binary' && op.ints[0] === 0) {
      const m = op.inputs.reduce((acc, t) => { const c = cdata(t); return acc + absMax(c ? minMax(c) : this.rangeOf(t)); }, 0);
      r = [-m, m];
    } else if (op.kind === 'layernorm') {
      const D = op.ints[1], gm = cdata(op.inputs[1]), bt = cdata(op.inputs[2]);
      let m = 0;
      for (let d = 0; d < D; d++) m = Math.max(m, (gm ? Math.abs(gm[d]) : 1) * Math.sqrt(D) + (bt ? Math.abs(bt[d]) : 0));
      r = [-m, m];
    } else if (op.kind === 'index_map' || (op.kind === 'reduce' && op.ints[3] === 0)) {
      r = this.rangeOf(op.inputs[0]);
    }
    this.bounds.set(k, r);
    return r;
  }

  /** the range that sets a tensor's scale: a concatenation part takes the whole tensor's */
  scaleRangeOf(t: number): number[] { return this.rangeOf(this.partOf.get(rootOf(this.T, t)) ?? t); }
  /** uint8 codes use the calibration method's range when the file has one ([min, max, lo, hi]) */
  clipOf(t: number): number[] { const r = this.rangeOf(t); return r.length === 4 ? [r[2], r[3]] : r; }

  add(t: PT): number { this.NT.push(t); return this.NT.length - 1; }
  cnst(dtype: DT, dims: number[], vals: ArrayLike<number>): number {
    // a Float64Array is taken as it is (weight codes are built as one; copying ViT-B's took seconds)
    const data = vals instanceof Float64Array ? vals : new Float64Array(vals as ArrayLike<number>);
    return this.add({ dtype, dims, kind: 'const', data: { dtype, dims, data } });
  }
  /** A new arena tensor shaped like float tensor t. */
  arena(t: number, dtype: DT): number { return this.add({ dtype, dims: [...this.T[t].dims], kind: 'arena' }); }
  set(t: number, q: Q): void { this.values.set(rootOf(this.T, t), q); }
  emit(op: POp): void { this.NO.push(op); }

  /** The integer value of float tensor t (a view of its root's, at offset 0). */
  qOf(t: number): Q | undefined {
    const T = this.T;
    const r = rootOf(T, t);
    const q = this.values.get(r);
    if (!q) return undefined;
    if (r === t) return q;
    if (aliasOffset(T, t) !== 0) return undefined;
    return { ...q, id: this.add({ dtype: q.dtype, dims: [...T[t].dims], kind: 'arena', aliasOf: q.id, aliasElemOffset: 0 }) };
  }

  u8Params(rg: number[], L = 255): { scale: number; zp: number } {
    const lo = Math.min(rg[0], 0), hi = Math.max(rg[1], 0);
    const scale = Math.max(hi - lo, 1e-8) / L;
    return { scale, zp: Math.max(0, Math.min(L, Math.round(-lo / scale))) };
  }
  i16Scale(rg: number[]): number { return Math.max(Math.abs(rg[0]), Math.abs(rg[1]), 1e-6) * 2 / 32767; }
  /** Dyadic (multiplier, shift) constants for each ratio. */
  mulShift(ratios: number[]): number[] {
    const m = ratios.map((r) => native.qQuantizeMultiplier(r));
    return [this.cnst('int32', [m.length], m.map((x) => x.mult)), this.cnst('int32', [m.length], m.map((x) => x.shift))];
  }
}

type Rule = (c: Lowering, op: POp, k: number) => void;
type Needs = (c: Lowering, op: POp, outNeeds: string[]) => void;

/** What each plan op needs its inputs stored as (the consumer side of the storage decision). */
const NEEDS: Partial<Record<OpName, Needs>> = {
  linear: (c, op) => { c.use(op.inputs[0], 'u8'); if (op.inputs[3] >= 0) c.use(op.inputs[3], 'i16'); },
  layernorm: (c, op) => c.use(op.inputs[0], 'i16'),
  matmul: (c, op) => { c.use(op.inputs[0], 'u8'); c.use(op.inputs[1], 'u8'); },
  softmax: (c, op) => c.use(op.inputs[0], 'i32'),
  reduce: (c, op) => c.use(op.inputs[0], 'any'),
  // movement: whatever its output needs
  index_map: (c, op, out) => { for (const w of out) c.use(op.inputs[0], w); },
  copy: (c, op, out) => { for (const w of out) c.use(op.inputs[0], w); },
  binary: (c, op) => { for (const t of op.inputs) if (c.T[t].kind !== 'const') c.use(t, 'i16'); },
  unary: (c, op, out) => {
    if (!(op.ints[0] === 23 && op.floats[0] > 0 && op.floats[1] === 0)) fail(op, 'only a positive scale (p0·x) is lowered');
    for (const w of out) c.use(op.inputs[0], w);
  },
};

/** max_k |w[k, n]| per column of a row-major [K, N] matrix. */
function columnAbsMax(w: ArrayLike<number>, K: number, N: number): Float64Array {
  const m = new Float64Array(N);
  for (let k = 0, i = 0; k < K; k++) {
    for (let n = 0; n < N; n++, i++) { const a = w[i] < 0 ? -w[i] : w[i]; if (a > m[n]) m[n] = a; }
  }
  return m;
}

/** round(w[k, n] / s[n]) clamped to [−W, W] (ViT-B: 85 M weights, so plain loops, no Math.min/max). */
function columnCodes(w: ArrayLike<number>, s: Float64Array, K: number, N: number, W: number): Float64Array {
  const q = new Float64Array(K * N);
  for (let k = 0, i = 0; k < K; k++) {
    for (let n = 0; n < N; n++, i++) {
      const v = Math.round(w[i] / s[n]);
      q[i] = v > W ? W : v < -W ? -W : v;
    }
  }
  return q;
}

/** The input of an op that reads one integer value first. */
function input(c: Lowering, op: POp): Q {
  const x = c.qOf(op.inputs[0]);
  return x ?? fail(op, 'input has no integer value (or is an offset view)');
}

/** Window or global attention (matmul → softmax → matmul over gathers of one qkv tensor) → one
 *  attention_q; returns false when the pattern or its storage does not fit (the ops lower one by one). */
function attention(c: Lowering, op: POp, k: number): boolean {
  if (c.opts.fuseAttention === false) return false;
  const at = matchAttention(c.l, k, c.consumers);
  if (!at) return false;
  // q, k, v are gathers of R: its codes, zero point and scale (q, k times their p0·x factors)
  const R = c.qOf(at.qkv);
  const sm = c.l.ops[at.softmax];
  const yo = c.l.ops[at.pv].outputs[0];
  if (!R || R.dtype !== 'uint8' || c.dtypeFor(yo, c.l.ops[at.pv]) !== 'uint8') return false;
  const logit = op.floats[0] * R.scale * at.qFactor * R.scale * at.kFactor;
  const table = sm.inputs[1] >= 0 ? c.cnst('int32', [sm.ints[2], at.N], biasCodes(c.T[sm.inputs[1]].data!.data, logit)) : -1;
  // 8-bit attention outputs: 7-bit ones cost 0.25 pp (2,000 test images) for a small GEMM (proj)
  const AO = c.opts.attnLevels ?? 255;
  const p = c.u8Params(c.clipOf(yo), AO);
  const y = c.arena(yo, 'uint8');
  c.emit({ kind: 'attention_q', inputs: [R.id, table, ...c.mulShift([c.l.ops[at.pv].floats[0] * R.scale * at.vFactor / 256 / p.scale])], outputs: [y],
    ints: [at.W, at.N, at.H, at.dh, R.zp, p.zp, AO, table >= 0 ? sm.ints[2] : 0], floats: [logit], name: `${op.name} (attention)` });
  c.set(yo, { id: y, dtype: 'uint8', ...p, max: AO, attn: true });
  c.skip.add(at.softmax);
  c.skip.add(at.pv);
  return true;
}

/** Linear (MatMul/Gemm + bias, Conv patch embeddings, fused activation and residual) → linear_q with
 *  per-channel int8 weights and an int32 bias at s_x·s_w; into uint8 (GELU as a 256-entry table, ReLU
 *  in the epilogue), into the int16 residual stream (a residual added in the epilogue), or int32 → dequantize at the
 *  float output. */
function linearRule(c: Lowering, op: POp, k: number): void {
  const T = c.T, o = op.outputs[0];
  const x = input(c, op);
  const want = c.dtypeFor(o, op);
  const [M, K, N, act] = op.ints;
  if (x.dtype !== 'uint8') fail(op, `x is ${x.dtype}, needs uint8`);
  const xmax = x.max ?? 255;
  if (act < 0 || act > 3) fail(op, `activation ${act} is not lowered`);
  const w = T[op.inputs[1]].data!.data;
  // weight codes in [−W, W]. proj reads the 8-bit attention output: W = 63 keeps every vpmaddubsw
  // pair below 2^15, so it runs the fast kernel instead of the exact int16 one (0.55–0.77× its
  // speed; proj is 1/12 of a block's GEMM work; micro-Swin 10k entropy 0.8537 → 0.8535). The image
  // and pooled-feature GEMMs keep 8-bit weights (7-bit there cost 0.11 pp) and the exact kernel;
  // every other layer keeps the file's int8 codes.
  const W = xmax > 127 && x.attn ? (c.opts.wideWeightMax ?? 63) : 127;
  const cache = c.opts.weightCodes;
  let q = cache?.get(w)?.get(W);
  if (!q) {
    const scales = columnAbsMax(w, K, N);
    for (let n = 0; n < N; n++) scales[n] = scales[n] > 0 ? scales[n] / W : 1;
    q = { codes: columnCodes(w, scales, K, N, W), scales };
    if (cache) { if (!cache.has(w)) cache.set(w, new Map()); cache.get(w)!.set(W, q); }
  }
  const ws = q.scales, wq = q.codes;
  const acc = Array.from(ws, (s) => s * x.scale);
  const b = op.inputs[2] >= 0 ? T[op.inputs[2]].data!.data : new Float64Array(N);
  const bias = Array.from(acc, (s, n) => Math.max(-(2 ** 31) + 1, Math.min(2 ** 31 - 1, Math.round(b[n] / s))));
  const ins = [x.id, c.cnst('int8', [K, N], wq), c.cnst('int32', [N], bias)];
  const res = op.inputs[3] >= 0 ? c.qOf(op.inputs[3]) : undefined;
  if (op.inputs[3] >= 0 && (!res || res.dtype !== 'int16')) fail(op, 'residual is not on the int16 stream');
  const linear_q = (inputs: number[], y: number, ints: number[]) => c.emit({ kind: 'linear_q', inputs, outputs: [y], ints: [M, K, N, x.zp, 0, ...ints], floats: [], name: op.name });
  if (want === 'float32') {
    if (act !== 0 || res) fail(op, 'activation/residual on the float output');
    const acc32 = c.arena(o, 'int32');
    linear_q(ins, acc32, [0, 0, xmax]);
    const y = c.add({ dtype: 'float32', dims: [...T[o].dims], kind: 'output', index: 0 });
    c.emit({ kind: 'dequantize', inputs: [acc32, c.cnst('float32', [N], acc)], outputs: [y], ints: [0], floats: [1], name: `${op.name} (dequantize)` });
    c.outDims = [...T[o].dims];
    return;
  }
  // calibrate --sparsify: outputs with |y| below the threshold become exactly zero (a table entry)
  const thr = act !== 0 ? c.R.thresholds?.[c.keys[k]] : undefined;
  if (want === 'uint8') {
    if (res) fail(op, 'residual output must be int16');
    if (act === 2 || act === 3 || thr !== undefined) {
      // GELU (or a thresholded ReLU): requantize the pre-activation to uint8, a table maps each code
      // to the output's code. ReLU's pre-activation range starts at 0: negatives saturate to code 0.
      const cg = c.clipOf(o);
      const hi = Math.max(cg[1], 1e-3);
      const pre = c.u8Params([act === 1 ? 0 : -Math.min(4, hi), hi]);
      const post = c.u8Params(cg, c.G);
      const f = act === 3 ? geluTanh : act === 2 ? gelu : (v: number) => Math.max(v, 0);
      const cut = (v: number) => (thr !== undefined && Math.abs(v) < thr ? 0 : v);
      const table = Array.from({ length: 256 }, (_, v) => Math.max(0, Math.min(c.G, Math.round(cut(f((v - pre.zp) * pre.scale)) / post.scale) + post.zp)));
      const y = c.arena(o, 'uint8');
      linear_q([...ins, ...c.mulShift(acc.map((s) => s / pre.scale)), c.cnst('uint8', [256], table)], y, [pre.zp, 0, xmax]);
      c.set(o, { id: y, dtype: 'uint8', scale: post.scale, zp: post.zp, max: c.G });
      return;
    }
    const p = c.u8Params(c.clipOf(o), c.A);
    const y = c.arena(o, 'uint8');
    linear_q([...ins, ...c.mulShift(acc.map((s) => s / p.scale))], y, [p.zp, act === 1 ? 1 : 0, xmax, c.A]);
    c.set(o, { id: y, dtype: 'uint8', ...p, max: c.A });
    return;
  }
  if (want !== 'int16') fail(op, String(want));
  if (act !== 0) fail(op, 'activation into the int16 stream');
  const s = c.i16Scale(c.scaleRangeOf(o));
  const rq = [...ins, ...c.mulShift(acc.map((a) => a / s))];
  const y = c.arena(o, 'int16');
  c.set(o, { id: y, dtype: 'int16', scale: s, zp: 0 });
  if (!res) { linear_q(rq, y, [0, 0, xmax]); return; }
  // the residual add in the GEMM's epilogue, each tile while in cache (ops.def linear_q): the same
  // integers as linear_q + add_q, one op (and one thread hand-off) fewer per residual
  if (c.opts.fuseResidual !== false) {
    c.emit({ kind: 'linear_q', inputs: [...rq, -1, res.id], outputs: [y], ints: [M, K, N, x.zp, 0, 0, 0, xmax], floats: [res.scale, s, s], name: op.name });
    return;
  }
  const lin = c.arena(o, 'int16');
  linear_q(rq, lin, [0, 0, xmax]);
  c.emit({ kind: 'add_q', inputs: [res.id, lin], outputs: [y], ints: [0, 0, 0], floats: [res.scale, s, s], name: `${op.name} (residual)` });
}

const RULES: Partial<Record<OpName, Rule>> = {
  /** Gathers (Reshape/Transpose/Slice/Gather/Pad/window partition, composed) stay, on the codes. */
  index_map(c, op) {
    const x = input(c, op);
    const idx = c.T[op.inputs[1]];
    if (x.zp !== 0 && Array.from(idx.data!.data).some((v) => v < 0)) fail(op, 'padding (negative index) on codes with a nonzero zero point');
    const y = c.arena(op.outputs[0], x.dtype);
    c.emit({ ...op, inputs: [x.id, c.cnst('int32', [...idx.dims], idx.data!.data)], outputs: [y] });
    c.set(op.outputs[0], { ...x, id: y });
  },
  /** A part of a concatenation (class token + patch tokens): int16 codes at the whole tensor's scale. */
  copy(c, op) {
    const T = c.T, o = op.outputs[0], r = rootOf(T, o);
    let q = c.values.get(r);
    if (!q) {
      const want = c.dtypeFor(o, op);
      if (want !== 'int16') fail(op, `concatenations are lowered on the int16 stream, consumers need ${want}`);
      q = { id: c.add({ dtype: 'int16', dims: [...T[r].dims], kind: 'arena' }), dtype: 'int16', scale: c.i16Scale(c.rangeOf(r)), zp: 0 };
      c.values.set(r, q);
    }
    const dst = c.add({ dtype: q.dtype, dims: [...T[o].dims], kind: 'arena', aliasOf: q.id, aliasElemOffset: aliasOffset(T, o) });
    const src = T[op.inputs[0]];
    let from: number;
    if (src.kind === 'const' && src.data) {
      const s = q.scale;
      from = c.cnst('int16', [...src.dims], Array.from(src.data.data, (v) => Math.max(-32767, Math.min(32767, Math.round(v / s)))));
    } else {
      const xq = c.qOf(op.inputs[0]);
      if (!xq || xq.dtype !== q.dtype || xq.scale !== q.scale || xq.zp !== q.zp) fail(op, 'a concatenated part is not at the whole tensor\'s int16 scale');
      from = xq!.id;
    }
    c.emit({ kind: 'copy', inputs: [from], outputs: [dst], ints: [], floats: [], name: op.name });
  },
  /** p0·x (q scaled before q·kᵀ): the same codes at scale p0·s (checked in NEEDS). */
  unary(c, op) {
    const x = input(c, op);
    c.set(op.outputs[0], { ...x, scale: x.scale * op.floats[0] });
  },
  linear: linearRule,
  /** LayerNorm (decomposed or LayerNormalization, any eps) → layernorm_q: int16 in, uint8 or int16 out. */
  layernorm(c, op) {
    const T = c.T, o = op.outputs[0];
    const x = input(c, op);
    const [rows, D] = op.ints;
    if (x.dtype !== 'int16' && x.dtype !== 'int8') fail(op, `x is ${x.dtype}, needs int8/int16`);
    const gm = op.inputs[1] >= 0 ? c.cnst('float32', [D], T[op.inputs[1]].data!.data) : -1;
    const bt = op.inputs[2] >= 0 ? c.cnst('float32', [D], T[op.inputs[2]].data!.data) : -1;
    const want = c.dtypeFor(o, op);
    let q: Q;
    if (want === 'uint8') { const p = c.u8Params(c.clipOf(o), c.A); q = { id: c.arena(o, 'uint8'), dtype: 'uint8', ...p, max: c.A }; }
    else if (want === 'int16') q = { id: c.arena(o, 'int16'), dtype: 'int16', scale: c.i16Scale(c.rangeOf(o)), zp: 0 };
    else return fail(op, String(want));
    c.emit({ kind: 'layernorm_q', inputs: [x.id, gm, bt], outputs: [q.id], ints: q.dtype === 'uint8' ? [rows, D, q.zp, c.A] : [rows, D, q.zp], floats: [q.scale], name: op.name });
    c.set(o, q);
  },
  /** A matmul outside the fused attention: q·kᵀ to int32 logits, or requantized uint8. */
  matmul(c, op, k) {
    if (attention(c, op, k)) return;
    const o = op.outputs[0];
    const x = input(c, op);
    const b = c.qOf(op.inputs[1]);
    if (!b || x.dtype !== 'uint8' || b.dtype !== 'uint8') fail(op, 'operands must be uint8');
    const alpha = op.floats[0];
    const ints = op.ints.slice(0, 7);
    const want = c.dtypeFor(o, op);
    if (want === 'int32') {
      const y = c.arena(o, 'int32');
      c.emit({ kind: 'matmul_q', inputs: [x.id, b!.id, -1, -1], outputs: [y], ints: [...ints, x.zp, b!.zp, 0], floats: [], name: op.name });
      c.set(o, { id: y, dtype: 'int32', scale: alpha * x.scale * b!.scale, zp: 0 });
      return;
    }
    if (want !== 'uint8') fail(op, String(want));
    const p = c.u8Params(c.clipOf(o));
    const y = c.arena(o, 'uint8');
    c.emit({ kind: 'matmul_q', inputs: [x.id, b!.id, ...c.mulShift([alpha * x.scale * b!.scale / p.scale])], outputs: [y], ints: [...ints, x.zp, b!.zp, p.zp], floats: [], name: op.name });
    c.set(o, { id: y, dtype: 'uint8', ...p });
  },
  /** Softmax over the last axis of int32 logits (bias table: relative position, shift mask) → u8 at 1/256. */
  softmax(c, op) {
    const x = input(c, op);
    const [rows, D, brows] = op.ints;
    if (x.dtype !== 'int32') fail(op, 'logits must be int32 (from matmul_q)');
    const table = op.inputs[1] >= 0 ? c.cnst('int32', [brows, D], biasCodes(c.T[op.inputs[1]].data!.data, x.scale)) : -1;
    const y = c.arena(op.outputs[0], 'uint8');
    c.emit({ kind: 'softmax_q', inputs: [x.id, table], outputs: [y], ints: [rows, D, table >= 0 ? brows : 0], floats: [x.scale], name: op.name });
    c.set(op.outputs[0], { id: y, dtype: 'uint8', scale: 1 / 256, zp: 0 });
  },
  /** Mean pooling (ReduceMean, GlobalAveragePool) → avgpool_q. */
  reduce(c, op) {
    const o = op.outputs[0];
    const x = input(c, op);
    const [outer, red, inner, rop] = op.ints;
    if (rop !== 0) fail(op, 'only mean is lowered');
    if (x.dtype === 'int16' && x.zp !== 0) fail(op, 'int16 input needs zero point 0');
    const want = c.dtypeFor(o, op);
    if (want !== 'uint8') fail(op, String(want));
    const p = c.u8Params(c.clipOf(o));
    const y = c.arena(o, 'uint8');
    c.emit({ kind: 'avgpool_q', inputs: [x.id], outputs: [y], ints: [outer, red, inner, x.zp, p.zp], floats: [x.scale, p.scale], name: op.name });
    c.set(o, { id: y, dtype: 'uint8', ...p });
  },
  /** Add of two int16 tensors or of one and a constant (position embedding) → add_q. */
  binary(c, op) {
    const T = c.T, o = op.outputs[0];
    const [bop, rank] = op.ints;
    const dims = op.ints.slice(2, 2 + rank);
    if (bop !== 0) fail(op, 'only Add is lowered');
    const want = c.dtypeFor(o, op);
    if (want !== 'int16') fail(op, `output must be int16, consumers need ${want}`);
    const total = numel(T[o].dims);
    // an operand in the output's layout: a tensor with contiguous strides, or a constant expanded to it
    const operand = (j: number): Q => {
      const t = op.inputs[j];
      const st = op.ints.slice(2 + rank * (j + 1), 2 + rank * (j + 2));
      if (T[t].kind === 'const' && T[t].data) {
        const v = T[t].data!.data;
        const s = c.i16Scale(minMax(v));
        const codes = new Float64Array(total);
        for (let e = 0; e < total; e++) {
          let rem = e, src = 0;
          for (let d = rank - 1; d >= 0; d--) { src += (rem % dims[d]) * st[d]; rem = Math.floor(rem / dims[d]); }
          codes[e] = Math.max(-32767, Math.min(32767, Math.round(v[src] / s)));
        }
        return { id: c.cnst('int16', [...T[o].dims], codes), dtype: 'int16', scale: s, zp: 0 };
      }
      let stride = 1;
      for (let d = rank - 1; d >= 0; d--) { if (dims[d] > 1 && st[d] !== stride) fail(op, `operand ${j} is broadcast or strided`); stride *= dims[d]; }
      const q = c.qOf(t);
      if (!q || q.dtype !== 'int16') fail(op, `operand ${j} is not on the int16 stream`);
      return q!;
    };
    const a = operand(0), b = operand(1);
    const y: Q = { id: c.arena(o, 'int16'), dtype: 'int16', scale: c.i16Scale(c.rangeOf(o)), zp: 0 };
    c.emit({ kind: 'add_q', inputs: [a.id, b.id], outputs: [y.id], ints: [a.zp, b.zp, 0], floats: [a.scale, b.scale, y.scale], name: op.name });
    c.set(o, y);
  },
};

/** Rewrites the fp32 plan of g (for inputDims) into integer ops, with activation ranges from
 *  `ranges` (or a function of the fp32 plan that finds them: metadata, or the file's Q/DQ scales). */
export function lowerIntegerPlan(g: Graph, inputDims: number[], ranges: PlanRanges | ((l: Lowered) => PlanRanges), opts: IntLowerOptions = {}): IntPlanResult {
  let l: Lowered;
  try { l = lowerFp32(g, inputDims); } catch (e) { return { ok: false, reason: `${g.source}: ${(e as Error).message}` }; }
  const blocked = (op: POp | undefined, why: string): IntPlanResult => {
    // the first ONNX node behind the plan op, by name (fused ops join names with '+', merged ones with ' & ')
    const first = op?.name.split(/\+| & /)[0];
    const node = first !== undefined ? g.nodes.find((n) => n.name === first) : undefined;
    return { ok: false, reason: `${g.source}: ${op ? `plan op '${op.kind}' (${op.name}): ` : ''}${why}`, node: node?.name ?? op?.name, op: node?.opType ?? op?.kind };
  };
  let R: PlanRanges;
  try { R = typeof ranges === 'function' ? ranges(l) : ranges; } catch (e) { return blocked(undefined, (e as Error).message); } // bad metadata
  try {
    return lowerWith(l, R, opts);
  } catch (e) {
    if (e instanceof Blocked) return blocked(e.op, e.message);
    throw e;
  }
}

function lowerWith(l: Lowered, R: PlanRanges, opts: IntLowerOptions): IntPlanResult {
  if (l.inputs.length !== 1 || l.outputs.length !== 1) fail(undefined, 'needs one input and one output');
  const c = new Lowering(l, R, opts);
  // input: quantize to uint8
  const inT = l.inputs[0];
  const inId = c.add({ dtype: 'float32', dims: [...c.T[inT].dims], kind: 'input', index: 0 });
  const p = c.u8Params(R.input);
  const x = c.arena(inT, 'uint8');
  c.emit({ kind: 'quantize', inputs: [inId], outputs: [x], ints: [p.zp], floats: [p.scale], name: 'input (quantize)' });
  c.set(inT, { id: x, dtype: 'uint8', scale: p.scale, zp: p.zp });
  l.ops.forEach((op, k) => {
    if (c.skip.has(k)) return;
    const rule = RULES[op.kind];
    if (!rule) fail(op, 'no integer counterpart');
    rule!(c, op, k);
  });
  if (!c.outDims.length) fail(undefined, 'the output is not produced by a quantized linear');
  const outId = c.NT.findIndex((t) => t.kind === 'output');
  const live = deadCodeEliminated(c.NT, c.NO, [inId], [outId]);
  const { stats: _s, ...desc } = emitPlan(opts.foldRowGathers === false ? live : foldRowGathers(live));
  return { ok: true, desc, outputDims: c.outDims };
}

/** Drops ops whose outputs nothing reads (the gathers a fused attention replaced) and the tensors
 *  only they used; tensor ids are renumbered. */
function deadCodeEliminated(NT: PT[], NO: POp[], inputs: number[], outputs: number[]): Lowered {
  const root = (t: number) => rootOf(NT, t);
  const live = new Set(outputs.map(root));
  const keep: POp[] = [];
  for (let k = NO.length - 1; k >= 0; k--) {
    const op = NO[k];
    if (!op.outputs.some((t) => live.has(root(t)))) continue;
    keep.unshift(op);
    for (const t of op.inputs) if (t >= 0) live.add(root(t));
  }
  const used = new Set<number>([...inputs, ...outputs]);
  const mark = (t: number) => { for (let x = t; x >= 0 && !used.has(x); x = NT[x].aliasOf ?? -1) used.add(x); };
  for (const op of keep) for (const t of [...op.inputs, ...op.outputs]) if (t >= 0) { mark(t); let x = t; while (NT[x].aliasOf !== undefined) { x = NT[x].aliasOf!; used.add(x); } }
  const ids = [...used].sort((a, b) => a - b);
  const renum = new Map(ids.map((t, i) => [t, i]));
  const re = (t: number) => (t < 0 ? t : renum.get(t)!);
  const tensors = ids.map((t) => ({ ...NT[t], ...(NT[t].aliasOf !== undefined ? { aliasOf: re(NT[t].aliasOf!) } : {}) }));
  return { tensors, ops: keep.map((op) => ({ ...op, inputs: op.inputs.map(re), outputs: op.outputs.map(re) })), inputs: inputs.map(re), outputs: outputs.map(re) };
}
