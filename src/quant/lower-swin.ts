// Integer-only Swin at the PLAN level: the QDQ graph with its activation Q→DQ pairs removed (weights
// stay the file's int8 codes, folded to float exactly) is compiled by the fp32 compiler; a calibration
// plan exposes every op output so each fp32 plan tensor gets a range; then every fp32 op is rewritten:
// index_map stays (on u8/i16 codes), linear → linear_q (GELU as a 256-entry table epilogue, residual add
// → add_q on an int16 residual stream), layernorm → layernorm_q, matmul → matmul_q (q·kᵀ to int32),
// softmax → softmax_q (bias table scaled to the logit scale), reduce mean → avgpool_q, a quantize at the
// input and a dequantize at the output. Ranges are keyed by plan op index (batch-independent).
// Activation scales are re-derived from these plan ranges, not read from the file's Q/DQ scales.
import type { Graph, DT } from '../ir/graph.js';
import { numel } from '../ir/graph.js';
import { specialize } from '../passes/specialize.js';
import { fuse } from '../passes/fuse.js';
import { lower, type Lowered, type PT, type POp } from '../compile/lower.js';
import { emitPlan, aliasRoot, aliasOffset } from '../compile/plan.js';
import { rewriteLinears } from '../compile/linear-rewrites.js';
import { native, type PlanDescJS } from '../native.js';
import { simulateQdq } from './qdq-sim.js';
import { TensorObserver, type Method } from './observers.js';

/** The QDQ graph (as loaded, Q/DQ intact) with its activation Q→DQ pairs removed: readers of a
 *  DequantizeLinear output read the QuantizeLinear's input instead, so the graph fuses exactly as the
 *  float model does (an Identity left in between would stop patterns such as q·scale → matmul). */
export function stripQdq(raw: Graph): Graph {
  const qIn = new Map<string, string>();
  for (const n of raw.nodes) if (n.opType === 'QuantizeLinear' && !raw.initializers.has(n.inputs[0])) qIn.set(n.outputs[0], n.inputs[0]);
  const rename = new Map<string, string>();
  for (const n of raw.nodes) if (n.opType === 'DequantizeLinear' && qIn.has(n.inputs[0])) rename.set(n.outputs[0], qIn.get(n.inputs[0])!);
  const outputs = new Set(raw.outputs.map((o) => o.name));
  const nodes = [];
  for (const n of raw.nodes) {
    if (n.opType === 'QuantizeLinear' && qIn.has(n.outputs[0])) continue;
    if (n.opType === 'DequantizeLinear' && rename.has(n.outputs[0])) {
      // a graph output keeps its name
      if (outputs.has(n.outputs[0])) nodes.push({ name: n.name, opType: 'Identity', domain: '', inputs: [rename.get(n.outputs[0])!], outputs: [...n.outputs], attrs: {} });
      continue;
    }
    nodes.push({ ...n, inputs: n.inputs.map((i) => (outputs.has(i) ? i : rename.get(i) ?? i)) });
  }
  return simulateQdq({ ...raw, nodes });
}

export function lowerFp32(g: Graph, dims: number[]): Lowered {
  const s = specialize(g, { [g.inputs[0].name]: dims });
  return rewriteLinears(lower(s, fuse(s), g.opset));
}

const rootOf = aliasRoot;

/** Ranges of the fp32 plan's op outputs, keyed by op (planOpKeys: kind, name, occurrence — stable
 *  across batch sizes), and of the graph input. An entry is [min, max], or [min, max, lo, hi] where a
 *  calibration method other than minmax chose [lo, hi] for uint8 codes (int16/int32 use [min, max]). */
export interface PlanRanges { input: number[]; ops: Record<string, number[]> }

/** One key per plan op: kind, name and how many ops of that kind and name came before it. */
export function planOpKeys(ops: readonly POp[]): string[] {
  const seen = new Map<string, number>();
  return ops.map((o) => { const b = `${o.kind}:${o.name}`; const i = seen.get(b) ?? 0; seen.set(b, i + 1); return `${b}#${i}`; });
}

/** The ranges of every plan op output over the images (run through a plan exposing every op output);
 *  ops whose output is never stored whole (offset views: concatenation parts) get none. */
export function calibratePlanRanges(g: Graph, images: Float32Array, itemDims: number[], batch: number, threads = 1,
  method: Method = 'minmax', percentile = 99.99): PlanRanges {
  const l = lowerFp32(g, [batch, ...itemDims]);
  const T = l.tensors.map((t) => ({ ...t }));
  const outs = [...l.outputs];
  const opOut: number[] = [];
  l.ops.forEach((op) => {
    const r = rootOf(T, op.outputs[0]);
    if (T[r].kind === 'arena') {
      const offsetAlias = T.some((t, i) => t.aliasOf !== undefined && rootOf(T, i) === r && (t.aliasElemOffset ?? 0) !== 0);
      if (!offsetAlias) { T[r].kind = 'output'; T[r].index = outs.length; outs.push(r); }
    }
    opOut.push(T[r].kind === 'output' ? outs.indexOf(r) : -1);
  });
  const { stats: _s, ...desc } = emitPlan({ tensors: T, ops: l.ops, inputs: l.inputs, outputs: outs });
  const plan = native.createPlan!(desc, { threads });
  const bufs = outs.map((r) => new Float32Array(numel(T[r].dims)));
  const obs = l.ops.map(() => new TensorObserver());
  const per = numel(itemDims);
  const n = Math.floor(images.length / per / batch);
  if (n < 1) throw new Error(`calibratePlanRanges: need at least ${batch} images`);
  const pass = (visit: (o: TensorObserver, d: Float32Array, k: number) => void) => {
    for (let b = 0; b < n; b++) {
      plan.run([images.subarray(b * batch * per, (b + 1) * batch * per)], bufs);
      opOut.forEach((o, k) => { if (o >= 0) visit(obs[k], bufs[o], k); });
    }
  };
  try {
    pass((o, d, k) => o.observeRange(d, `plan op #${k} ${l.ops[k].kind}`));
    if (method !== 'minmax') pass((o, d) => o.observeHistogram(d));
  } finally { plan.release(); }
  const keys = planOpKeys(l.ops);
  const ops: Record<string, number[]> = {};
  obs.forEach((o, k) => {
    if (!(o.count > 0)) return;
    if (method === 'minmax') { ops[keys[k]] = [o.min, o.max]; return; }
    const r = o.range(method, percentile);
    ops[keys[k]] = [o.min, o.max, r.lo, r.hi];
  });
  let lo = Infinity, hi = -Infinity;
  for (let i = 0; i < n * batch * per; i++) { const v = images[i]; if (v < lo) lo = v; if (v > hi) hi = v; }
  return { input: [lo, hi], ops };
}

/** swinq.int.ranges as stored: {"format": 2, "input": […], "ops": {key: […]}} (float32-rounded). */
export function encodePlanRanges(r: PlanRanges): string {
  const f = (v: number[]) => v.map((x) => Math.fround(x));
  return JSON.stringify({ format: 2, input: f(r.input), ops: Object.fromEntries(Object.entries(r.ops).map(([k, v]) => [k, f(v)])) });
}

/** Parses swinq.int.ranges: the keyed form, or the older list (one entry per plan op, the graph input
 *  last), which only fits a plan with exactly that many ops. */
export function decodePlanRanges(meta: string, l: Lowered): PlanRanges {
  let v: unknown;
  try { v = JSON.parse(meta); } catch { throw new Error(`metadata ${SWIN_RANGES_KEY} is not valid JSON`); }
  const isRange = (x: unknown) => Array.isArray(x) && (x.length === 2 || x.length === 4) && x.every((y) => typeof y === 'number');
  if (Array.isArray(v)) {
    if (!v.every(isRange)) throw new Error(`metadata ${SWIN_RANGES_KEY}: every entry must be [min, max] or [min, max, lo, hi]`);
    if (v.length !== l.ops.length + 1) throw new Error(`metadata ${SWIN_RANGES_KEY} has ranges for ${v.length - 1} plan ops, this plan has ${l.ops.length} (re-run swinq calibrate)`);
    const keys = planOpKeys(l.ops);
    return { input: v[v.length - 1] as number[], ops: Object.fromEntries(keys.map((k, i) => [k, v[i] as number[]])) };
  }
  const o = v as { format?: unknown; input?: unknown; ops?: unknown };
  if (!o || o.format !== 2 || !isRange(o.input) || typeof o.ops !== 'object' || o.ops === null) throw new Error(`metadata ${SWIN_RANGES_KEY} must be {"format": 2, "input": [min, max], "ops": {…}}`);
  for (const [k, r] of Object.entries(o.ops as object)) if (!isRange(r)) throw new Error(`metadata ${SWIN_RANGES_KEY}: ops["${k}"] must be [min, max] or [min, max, lo, hi]`);
  return { input: o.input as number[], ops: o.ops as Record<string, number[]> };
}

/** [min, max] of a constant (a loop: spreading 150k elements into Math.min overflows the stack) */
function minMax(v: ArrayLike<number>): number[] {
  let lo = Infinity, hi = -Infinity;
  for (let i = 0; i < v.length; i++) { if (v[i] < lo) lo = v[i]; if (v[i] > hi) hi = v[i]; }
  return [lo, hi];
}

/** metadata key of the per-plan-op ranges (JSON [[min, max], …], last entry the graph input) */
export const SWIN_RANGES_KEY = 'swinq.int.ranges';

export type SwinIntResult = { ok: true; desc: PlanDescJS; outputDims: number[] } | { ok: false; reason: string; node?: string; op?: string };

/** A plan op the integer lowering cannot take (caught at the top, reported with the op). */
class Blocked extends Error { constructor(readonly op: POp | undefined, why: string) { super(why); } }

const gelu = (x: number) => 0.5 * x * (1 + erf(x / Math.SQRT2));
const geluTanh = (x: number) => 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x * x * x)));
function erf(x: number): number {
  // Abramowitz–Stegun 7.1.26 is too coarse at 1e-7; use a series/continued fraction via Math
  const t = 1 / (1 + 0.5 * Math.abs(x));
  const y = 1 - t * Math.exp(-x * x - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806 +
    t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))));
  return x >= 0 ? y : -y;
}

/** Rewrites the fp32 Swin plan (for inputDims) into integer ops using the per-op ranges. */
export interface IntLowerOptions { geluLevels?: number; actLevels?: number; attnLevels?: number; wideWeightMax?: number; fuseAttention?: boolean }

/** Rewrites the fp32 plan of g (for inputDims) into integer ops, with activation ranges from
 *  `ranges` (or a function of the fp32 plan that finds them, e.g. metadata or the file's Q/DQ scales). */
export function lowerIntegerPlan(g: Graph, inputDims: number[], ranges: PlanRanges | ((l: Lowered) => PlanRanges), opts: IntLowerOptions = {}): SwinIntResult {
  let l: Lowered;
  try { l = lowerFp32(g, inputDims); } catch (e) { return { ok: false, reason: `${g.source}: ${(e as Error).message}` }; }
  const fail = (op: POp | undefined, why: string): SwinIntResult => {
    // the first ONNX node behind the plan op, by name (fused ops join names with '+')
    const first = op?.name.split(/\+| & /)[0];
    const node = first !== undefined ? g.nodes.find((n) => n.name === first) : undefined;
    return { ok: false, reason: `${g.source}: ${op ? `plan op '${op.kind}' (${op.name}): ` : ''}${why}`, node: node?.name ?? op?.name, op: node?.opType ?? op?.kind };
  };
  let R: PlanRanges;
  try { R = typeof ranges === 'function' ? ranges(l) : ranges; } catch (e) { return fail(undefined, (e as Error).message); }
  try { return lowerWith(g, l, R, opts); } catch (e) { if (e instanceof Blocked) return fail(e.op, e.message); throw e; }
}

function lowerWith(g: Graph, l: Lowered, R: PlanRanges, opts: IntLowerOptions): SwinIntResult {
  const T = l.tensors;
  const fail = (op: POp | undefined, why: string): never => { throw new Blocked(op, why); };
  const keys = planOpKeys(l.ops);
  if (l.inputs.length !== 1 || l.outputs.length !== 1) return fail(undefined, 'needs one input and one output');
  const producer = new Map<number, number>();
  l.ops.forEach((op, k) => producer.set(rootOf(T, op.outputs[0]), k));
  // tensors assembled by copies (concatenations: class token + patch tokens) take the union of
  // their parts' ranges; every part is stored at the whole tensor's scale
  const copiesInto = new Map<number, POp[]>();
  for (const op of l.ops) if (op.kind === 'copy') { const r = rootOf(T, op.outputs[0]); copiesInto.set(r, [...(copiesInto.get(r) ?? []), op]); }
  const partOf = new Map<number, number>();
  for (const [r, cs] of copiesInto) for (const c of cs) if (T[c.inputs[0]].kind !== 'const') partOf.set(rootOf(T, c.inputs[0]), r);
  const rangeOf = (t: number): number[] => {
    const r = rootOf(T, t);
    if (T[r].kind === 'input') return R.input;
    const k = producer.get(r);
    const v = k === undefined ? undefined : R.ops[keys[k]];
    if (v) return v;
    const cs = copiesInto.get(r);
    if (cs) {
      let lo = 0, hi = 0;
      for (const c of cs) {
        const src = T[c.inputs[0]];
        const rg = src.kind === 'const' && src.data ? minMax(src.data.data) : rangeOf(c.inputs[0]);
        lo = Math.min(lo, rg[0]); hi = Math.max(hi, rg[1]);
      }
      return [lo, hi];
    }
    const b = k === undefined ? undefined : boundRange(k);
    if (b) return b;
    return fail(k === undefined ? undefined : l.ops[k], 'no calibrated range for its output (re-run swinq calibrate on the model)');
  };
  // Without a calibrated range (a QDQ file that quantizes only GEMM inputs), an op output's range is
  // bounded from its inputs' ranges and its constants: |x·W + b| ≤ max_n Σ_k |w_kn|·max|x| + |b_n|, a sum's
  // bound is the sum of the bounds, a gather or mean keeps its input's. Loose (a few bits of an int16
  // code), never clipping; used only where the file has no scale (int16 tensors: the residual stream).
  const bounds = new Map<number, number[] | undefined>();
  const absMax = (r: number[]) => Math.max(Math.abs(r[0]), Math.abs(r[1]));
  function boundRange(k: number): number[] | undefined {
    if (bounds.has(k)) return bounds.get(k);
    bounds.set(k, undefined); // cycles: none in a plan, but never loop
    const op = l.ops[k];
    const cdata = (t: number) => (t >= 0 && T[t].kind === 'const' ? T[t].data?.data : undefined);
    let r: number[] | undefined;
    if (op.kind === 'linear' && op.ints[3] === 0) {
      const [, K, N] = op.ints;
      const w = cdata(op.inputs[1]), bias = cdata(op.inputs[2]);
      if (w) {
        const xm = absMax(rangeOf(op.inputs[0]));
        let m = 0;
        for (let n = 0; n < N; n++) {
          let a = 0;
          for (let kk = 0; kk < K; kk++) a += Math.abs(w[kk * N + n]);
          m = Math.max(m, a * xm + (bias ? Math.abs(bias[n]) : 0));
        }
        if (op.inputs[3] >= 0) m += absMax(rangeOf(op.inputs[3]));
        r = [-m, m];
      }
    } else if (op.kind === 'binary' && op.ints[0] === 0) {
      const m = op.inputs.reduce((acc, t) => { const c = cdata(t); return acc + absMax(c ? minMax(c) : rangeOf(t)); }, 0);
      r = [-m, m];
    } else if (op.kind === 'layernorm') {
      // Σ_d x̂_d² = D, so |x̂_d| ≤ √D: |y_d| ≤ |γ_d|·√D + |β_d|
      const D = op.ints[1], gm = cdata(op.inputs[1]), bt = cdata(op.inputs[2]);
      let m = 0;
      for (let d = 0; d < D; d++) m = Math.max(m, (gm ? Math.abs(gm[d]) : 1) * Math.sqrt(D) + (bt ? Math.abs(bt[d]) : 0));
      r = [-m, m];
    } else if (op.kind === 'index_map' || (op.kind === 'reduce' && op.ints[3] === 0)) {
      r = rangeOf(op.inputs[0]);
    }
    bounds.set(k, r);
    return r;
  }
  /** the range that sets a tensor's scale: a concatenation part takes the whole tensor's */
  const scaleRangeOf = (t: number): number[] => rangeOf(partOf.get(rootOf(T, t)) ?? t);
  // uint8 codes use the calibration method's range when the file has one ([min, max, lo, hi])
  const clipOf = (t: number): number[] => { const r = rangeOf(t); return r.length === 4 ? [r[2], r[3]] : r; };
  // what each root must be stored as, from its consumers (through index_map)
  const need = new Map<number, Set<string>>();
  const use = (t: number, w: string) => { const r = rootOf(T, t); if (!need.has(r)) need.set(r, new Set()); need.get(r)!.add(w); };
  for (let k = l.ops.length - 1; k >= 0; k--) {
    const op = l.ops[k];
    const o = rootOf(T, op.outputs[0]);
    if (T[o].kind === 'output') use(o, 'out');
    switch (op.kind) {
      case 'linear': use(op.inputs[0], 'u8'); if (op.inputs[3] >= 0) use(op.inputs[3], 'i16'); break;
      case 'layernorm': use(op.inputs[0], 'i16'); break;
      case 'matmul': use(op.inputs[0], 'u8'); use(op.inputs[1], 'u8'); break;
      case 'softmax': use(op.inputs[0], 'i32'); break;
      case 'reduce': use(op.inputs[0], 'any'); break;
      case 'index_map': case 'copy': for (const w of need.get(o) ?? []) use(op.inputs[0], w); break;
      case 'binary': for (const t of op.inputs) if (T[t].kind !== 'const') use(t, 'i16'); break;
      case 'unary': if (op.ints[0] === 23 && op.floats[0] > 0 && op.floats[1] === 0) { for (const w of need.get(o) ?? []) use(op.inputs[0], w); break; }
        return fail(op, 'only a positive scale (p0·x) is lowered');
      default: return fail(op, 'no integer counterpart');
    }
  }
  const dtypeFor = (t: number, op: POp): DT | string => {
    const s = new Set(need.get(rootOf(T, t)) ?? []);
    s.delete('any');
    if (s.size === 0) return 'uint8';
    if (s.size > 1) return `consumers need ${[...s].join(' and ')}`;
    const w = [...s][0];
    return w === 'u8' ? 'uint8' : w === 'i16' ? 'int16' : w === 'i32' ? 'int32' : w === 'out' ? 'float32' : `unknown need ${w} (${op.name})`;
  };

  interface Q { id: number; dtype: DT; scale: number; zp: number; max?: number; attn?: boolean }
  const NT: PT[] = [];
  const NO: POp[] = [];
  const map = new Map<number, Q>();
  const add = (t: PT) => { NT.push(t); return NT.length - 1; };
  const cnst = (dtype: DT, dims: number[], vals: ArrayLike<number>) => add({ dtype, dims, kind: 'const', data: { dtype, dims, data: Float64Array.from(vals) } });
  const qOf = (t: number): Q | undefined => {
    const r = rootOf(T, t);
    const q = map.get(r);
    if (!q) return undefined;
    if (r === t) return q;
    if (aliasOffset(T, t) !== 0) return undefined;
    return { ...q, id: add({ dtype: q.dtype, dims: [...T[t].dims], kind: 'arena', aliasOf: q.id, aliasElemOffset: 0 }) };
  };
  // GELU outputs (fc2 inputs) use codes [0, G]: the table caps them, so G = 127 lets fc2's linear_q
  // prove its fast u8×s8 kernel safe (x_max ≤ 127); other uint8 codes may saturate at 255
  const G = opts.geluLevels ?? 127;
  // other uint8 GEMM inputs (LayerNorm outputs, q/k/v, attention outputs) likewise use codes [0, A]
  const A = opts.actLevels ?? 127;
  const u8Params = (rg: number[], L = 255) => {
    const lo = Math.min(rg[0], 0), hi = Math.max(rg[1], 0);
    const scale = Math.max(hi - lo, 1e-8) / L;
    return { scale, zp: Math.max(0, Math.min(L, Math.round(-lo / scale))) };
  };
  const i16Scale = (rg: number[]) => Math.max(Math.abs(rg[0]), Math.abs(rg[1]), 1e-6) * 2 / 32767;
  const mulShift = (ratios: number[]) => {
    const m = ratios.map((r) => native.qQuantizeMultiplier(r));
    return [cnst('int32', [m.length], m.map((x) => x.mult)), cnst('int32', [m.length], m.map((x) => x.shift))];
  };

  // input: quantize to uint8
  const inT = l.inputs[0];
  const inId = add({ dtype: 'float32', dims: [...T[inT].dims], kind: 'input', index: 0 });
  {
    const p = u8Params(R.input);
    const y = add({ dtype: 'uint8', dims: [...T[inT].dims], kind: 'arena' });
    NO.push({ kind: 'quantize', inputs: [inId], outputs: [y], ints: [p.zp], floats: [p.scale], name: 'input (quantize)' });
    map.set(rootOf(T, inT), { id: y, dtype: 'uint8', scale: p.scale, zp: p.zp });
  }
  let outDims: number[] = [];
  const consumers = new Map<number, number[]>();
  l.ops.forEach((op, k) => op.inputs.forEach((t) => { if (t >= 0) { const r = rootOf(T, t); consumers.set(r, [...(consumers.get(r) ?? []), k]); } }));
  const skip = new Set<number>();
  for (let k = 0; k < l.ops.length; k++) {
    if (skip.has(k)) continue;
    const op = l.ops[k];
    const o = op.outputs[0];
    if (op.kind === 'matmul' && opts.fuseAttention !== false) {
      const at = matchAttention(l, k, consumers);
      if (at) {
        // q, k, v are gathers of R: its codes, zero point and scale (q, k times their p0·x factors)
        const R = qOf(at.qkv);
        const sm = l.ops[at.softmax];
        const yo = l.ops[at.pv].outputs[0];
        if (R && R.dtype === 'uint8' && dtypeFor(yo, l.ops[at.pv]) === 'uint8') {
          const logit = op.floats[0] * R.scale * at.qFactor * R.scale * at.kFactor;
          const vb = { scale: R.scale * at.vFactor };
          let table = -1;
          if (sm.inputs[1] >= 0) {
            const bias = T[sm.inputs[1]].data!.data;
            table = cnst('int32', [sm.ints[2], at.N], biasCodes(bias, logit));
          }
          // 8-bit attention outputs: 7-bit ones cost 0.25 pp (2,000 test images) for a small GEMM (proj)
          const AO = opts.attnLevels ?? 255;
          const p = u8Params(clipOf(yo), AO);
          const y = add({ dtype: 'uint8', dims: [...T[yo].dims], kind: 'arena' });
          NO.push({ kind: 'attention_q', inputs: [R.id, table, ...mulShift([l.ops[at.pv].floats[0] * vb.scale / 256 / p.scale])], outputs: [y],
            ints: [at.W, at.N, at.H, at.dh, R.zp, p.zp, AO, table >= 0 ? sm.ints[2] : 0], floats: [logit], name: `${op.name} (attention)` });
          map.set(rootOf(T, yo), { id: y, dtype: 'uint8', ...p, max: AO, attn: true });
          skip.add(at.softmax); skip.add(at.pv);
          continue;
        }
      }
    }
    const want = dtypeFor(o, op);
    const arena = (dtype: DT) => add({ dtype, dims: [...T[o].dims], kind: 'arena' });
    if (op.kind === 'copy') {
      // a part of a concatenation: codes at the whole tensor's scale, written into its slice
      const r = rootOf(T, o);
      let q = map.get(r);
      if (!q) {
        if (want !== 'int16') return fail(op, `concatenations are lowered on the int16 stream, consumers need ${want}`);
        q = { id: add({ dtype: 'int16', dims: [...T[r].dims], kind: 'arena' }), dtype: 'int16', scale: i16Scale(rangeOf(r)), zp: 0 };
        map.set(r, q);
      }
      const dst = add({ dtype: q.dtype, dims: [...T[o].dims], kind: 'arena', aliasOf: q.id, aliasElemOffset: aliasOffset(T, o) });
      const src = T[op.inputs[0]];
      let from: number;
      if (src.kind === 'const' && src.data) {
        from = cnst('int16', [...src.dims], Array.from(src.data.data, (v) => Math.max(-32767, Math.min(32767, Math.round(v / q!.scale)))));
      } else {
        const xq = qOf(op.inputs[0]);
        if (!xq || xq.dtype !== q.dtype || xq.scale !== q.scale || xq.zp !== q.zp) return fail(op, 'a concatenated part is not at the whole tensor\'s int16 scale');
        from = xq.id;
      }
      NO.push({ kind: 'copy', inputs: [from], outputs: [dst], ints: [], floats: [], name: op.name });
      continue;
    }
    const x = qOf(op.inputs[0]);
    if (!x) return fail(op, 'input has no integer value (or is an offset view)');
    if (op.kind === 'index_map') {
      const idx = T[op.inputs[1]];
      if (x.zp !== 0 && Array.from(idx.data!.data).some((v) => v < 0)) return fail(op, 'padding (negative index) on codes with a nonzero zero point');
      const y = arena(x.dtype);
      NO.push({ ...op, inputs: [x.id, cnst('int32', [...idx.dims], idx.data!.data)], outputs: [y] });
      map.set(rootOf(T, o), { ...x, id: y });
      continue;
    }
    if (op.kind === 'unary') {
      // p0·x: the same codes at scale p0·s (checked in the consumer analysis)
      map.set(rootOf(T, o), { ...x, scale: x.scale * op.floats[0] });
      continue;
    }
    if (op.kind === 'linear') {
      const [M, K, N, act] = op.ints;
      if (x.dtype !== 'uint8') return fail(op, `x is ${x.dtype}, needs uint8`);
      const xmax = x.max ?? 255;
      if (act < 0 || act > 3) return fail(op, `activation ${act} is not lowered`);
      const w = T[op.inputs[1]].data!.data;
      const ws = new Float64Array(N);
      for (let k = 0; k < K; k++) for (let n = 0; n < N; n++) ws[n] = Math.max(ws[n], Math.abs(w[k * N + n]));
      // weight codes in [−W, W]. proj reads the 8-bit attention output: W = 63 keeps every vpmaddubsw
      // pair below 2^15, so it runs the fast kernel instead of the exact int16 one (0.55–0.77× its
      // speed; proj is 1/12 of a block's GEMM work; micro-Swin 10k entropy 0.8537 → 0.8535). The image
      // and pooled-feature GEMMs keep 8-bit weights (7-bit there cost 0.11 pp) and the exact kernel;
      // every other layer keeps the file's int8 codes.
      const W = xmax > 127 && x.attn ? (opts.wideWeightMax ?? 63) : 127;
      for (let n = 0; n < N; n++) ws[n] = ws[n] > 0 ? ws[n] / W : 1;
      const wq = new Float64Array(K * N);
      for (let k = 0; k < K; k++) for (let n = 0; n < N; n++) wq[k * N + n] = Math.max(-W, Math.min(W, Math.round(w[k * N + n] / ws[n])));
      const acc = Array.from(ws, (s) => s * x.scale);
      const b = op.inputs[2] >= 0 ? T[op.inputs[2]].data!.data : new Float64Array(N);
      const bias = Array.from(acc, (s, n) => Math.max(-(2 ** 31) + 1, Math.min(2 ** 31 - 1, Math.round(b[n] / s))));
      const ins = [x.id, cnst('int8', [K, N], wq), cnst('int32', [N], bias)];
      const rg = rangeOf(o);
      const res = op.inputs[3] >= 0 ? qOf(op.inputs[3]) : undefined;
      if (op.inputs[3] >= 0 && (!res || res.dtype !== 'int16')) return fail(op, 'residual is not on the int16 stream');
      if (want === 'float32') {
        if (act !== 0 || res) return fail(op, 'activation/residual on the float output');
        const acc32 = arena('int32');
        NO.push({ kind: 'linear_q', inputs: ins, outputs: [acc32], ints: [M, K, N, x.zp, 0, 0, 0, xmax], floats: [], name: op.name });
        const y = add({ dtype: 'float32', dims: [...T[o].dims], kind: 'output', index: 0 });
        NO.push({ kind: 'dequantize', inputs: [acc32, cnst('float32', [N], acc)], outputs: [y], ints: [0], floats: [1], name: `${op.name} (dequantize)` });
        outDims = [...T[o].dims];
        continue;
      }
      if (want === 'uint8') {
        if (res) return fail(op, 'residual output must be int16');
        if (act === 2 || act === 3) {
          // GELU: requantize the pre-activation to uint8, a table maps each code to the output's code
          const cg = clipOf(o);
          const hi = Math.max(cg[1], 1e-3);
          const pre = u8Params([-Math.min(4, hi), hi]);
          const post = u8Params(cg, G);
          const f = act === 3 ? geluTanh : gelu;
          const table = Array.from({ length: 256 }, (_, c) => Math.max(0, Math.min(G, Math.round(f((c - pre.zp) * pre.scale) / post.scale) + post.zp)));
          const y = arena('uint8');
          NO.push({ kind: 'linear_q', inputs: [...ins, ...mulShift(acc.map((s) => s / pre.scale)), cnst('uint8', [256], table)], outputs: [y], ints: [M, K, N, x.zp, 0, pre.zp, 0, xmax], floats: [], name: op.name });
          map.set(rootOf(T, o), { id: y, dtype: 'uint8', scale: post.scale, zp: post.zp, max: G });
          continue;
        }
        const p = u8Params(clipOf(o), A);
        const y = arena('uint8');
        NO.push({ kind: 'linear_q', inputs: [...ins, ...mulShift(acc.map((s) => s / p.scale))], outputs: [y], ints: [M, K, N, x.zp, 0, p.zp, act === 1 ? 1 : 0, xmax, A], floats: [], name: op.name });
        map.set(rootOf(T, o), { id: y, dtype: 'uint8', ...p, max: A });
        continue;
      }
      if (want !== 'int16') return fail(op, String(want));
      if (act !== 0) return fail(op, 'activation into the int16 stream');
      const s = i16Scale(scaleRangeOf(o));
      const lin = arena('int16');
      NO.push({ kind: 'linear_q', inputs: [...ins, ...mulShift(acc.map((a) => a / s))], outputs: [lin], ints: [M, K, N, x.zp, 0, 0, 0, xmax], floats: [], name: op.name });
      if (!res) { map.set(rootOf(T, o), { id: lin, dtype: 'int16', scale: s, zp: 0 }); continue; }
      const y = arena('int16');
      NO.push({ kind: 'add_q', inputs: [res.id, lin], outputs: [y], ints: [0, 0, 0], floats: [res.scale, s, s], name: `${op.name} (residual)` });
      map.set(rootOf(T, o), { id: y, dtype: 'int16', scale: s, zp: 0 });
      continue;
    }
    if (op.kind === 'layernorm') {
      const [rows, D] = op.ints;
      if (x.dtype !== 'int16' && x.dtype !== 'int8') return fail(op, `x is ${x.dtype}, needs int8/int16`);
      const gm = op.inputs[1] >= 0 ? cnst('float32', [D], T[op.inputs[1]].data!.data) : -1;
      const bt = op.inputs[2] >= 0 ? cnst('float32', [D], T[op.inputs[2]].data!.data) : -1;
      const rg = rangeOf(o);
      let q: Q;
      if (want === 'uint8') { const p = u8Params(clipOf(o), A); q = { id: arena('uint8'), dtype: 'uint8', ...p, max: A }; }
      else if (want === 'int16') q = { id: arena('int16'), dtype: 'int16', scale: i16Scale(rg), zp: 0 };
      else return fail(op, String(want));
      NO.push({ kind: 'layernorm_q', inputs: [x.id, gm, bt], outputs: [q.id], ints: q.dtype === 'uint8' ? [rows, D, q.zp, A] : [rows, D, q.zp], floats: [q.scale], name: op.name });
      map.set(rootOf(T, o), q);
      continue;
    }
    if (op.kind === 'matmul') {
      const b = qOf(op.inputs[1]);
      if (!b || x.dtype !== 'uint8' || b.dtype !== 'uint8') return fail(op, 'operands must be uint8');
      const alpha = op.floats[0];
      const ints = op.ints.slice(0, 7);
      if (want === 'int32') {
        const y = arena('int32');
        NO.push({ kind: 'matmul_q', inputs: [x.id, b.id, -1, -1], outputs: [y], ints: [...ints, x.zp, b.zp, 0], floats: [], name: op.name });
        map.set(rootOf(T, o), { id: y, dtype: 'int32', scale: alpha * x.scale * b.scale, zp: 0 });
        continue;
      }
      if (want !== 'uint8') return fail(op, String(want));
      const p = u8Params(clipOf(o));
      const y = arena('uint8');
      NO.push({ kind: 'matmul_q', inputs: [x.id, b.id, ...mulShift([alpha * x.scale * b.scale / p.scale])], outputs: [y], ints: [...ints, x.zp, b.zp, p.zp], floats: [], name: op.name });
      map.set(rootOf(T, o), { id: y, dtype: 'uint8', ...p });
      continue;
    }
    if (op.kind === 'softmax') {
      const [rows, D, brows] = op.ints;
      if (x.dtype !== 'int32') return fail(op, 'logits must be int32 (from matmul_q)');
      let table = -1;
      if (op.inputs[1] >= 0) {
        const bias = T[op.inputs[1]].data!.data;
        table = cnst('int32', [brows, D], biasCodes(bias, x.scale));
      }
      const y = arena('uint8');
      NO.push({ kind: 'softmax_q', inputs: [x.id, table], outputs: [y], ints: [rows, D, table >= 0 ? brows : 0], floats: [x.scale], name: op.name });
      map.set(rootOf(T, o), { id: y, dtype: 'uint8', scale: 1 / 256, zp: 0 });
      continue;
    }
    if (op.kind === 'reduce') {
      const [outer, red, inner, rop] = op.ints;
      if (rop !== 0) return fail(op, 'only mean is lowered');
      if (x.dtype === 'int16' && x.zp !== 0) return fail(op, 'int16 input needs zero point 0');
      if (want !== 'uint8') return fail(op, String(want));
      const p = u8Params(clipOf(o));
      const y = arena('uint8');
      NO.push({ kind: 'avgpool_q', inputs: [x.id], outputs: [y], ints: [outer, red, inner, x.zp, p.zp], floats: [x.scale, p.scale], name: op.name });
      map.set(rootOf(T, o), { id: y, dtype: 'uint8', ...p });
      continue;
    }
    if (op.kind === 'binary') {
      const [bop, rank] = op.ints;
      const dims = op.ints.slice(2, 2 + rank);
      if (bop !== 0) return fail(op, 'only Add is lowered');
      if (want !== 'int16') return fail(op, `output must be int16, consumers need ${want}`);
      const total = numel(T[o].dims);
      // an operand in the output's layout: a tensor with contiguous strides, or a constant expanded to it
      const operand = (j: number): Q => {
        const t = op.inputs[j];
        const st = op.ints.slice(2 + rank * (j + 1), 2 + rank * (j + 2));
        if (T[t].kind === 'const' && T[t].data) {
          const v = T[t].data!.data;
          const s = i16Scale(minMax(v));
          const codes = new Float64Array(total);
          for (let e = 0; e < total; e++) {
            let rem = e, src = 0;
            for (let d = rank - 1; d >= 0; d--) { src += (rem % dims[d]) * st[d]; rem = Math.floor(rem / dims[d]); }
            codes[e] = Math.max(-32767, Math.min(32767, Math.round(v[src] / s)));
          }
          return { id: cnst('int16', [...T[o].dims], codes), dtype: 'int16', scale: s, zp: 0 };
        }
        let stride = 1;
        for (let d = rank - 1; d >= 0; d--) { if (dims[d] > 1 && st[d] !== stride) return fail(op, `operand ${j} is broadcast or strided`); stride *= dims[d]; }
        const q = qOf(t);
        if (!q || q.dtype !== 'int16') return fail(op, `operand ${j} is not on the int16 stream`);
        return q;
      };
      const a = operand(0), b = operand(1);
      const y = { id: arena('int16'), dtype: 'int16' as DT, scale: i16Scale(rangeOf(o)), zp: 0 };
      NO.push({ kind: 'add_q', inputs: [a.id, b.id], outputs: [y.id], ints: [a.zp, b.zp, 0], floats: [a.scale, b.scale, y.scale], name: op.name });
      map.set(rootOf(T, o), y);
      continue;
    }
    return fail(op, 'no integer counterpart');
  }
  if (!outDims.length) return fail(undefined, 'the output is not produced by a quantized linear');
  const outId = NT.findIndex((t) => t.kind === 'output');
  const dead = deadCodeEliminated(NT, NO, [inId], [outId]);
  const { stats: _s, ...desc } = emitPlan(dead);
  return { ok: true, desc, outputDims: outDims };
}

/** A softmax bias (relative position, shift mask) as int32 codes at the logit scale; −inf masks and
 *  anything beyond int32 saturate (≤ −2^30 is a mask for softmax_q and attention_q). */
function biasCodes(bias: ArrayLike<number>, logitScale: number): number[] {
  return Array.from(bias, (v) => Math.max(-(2 ** 31) + 1, Math.min(2 ** 31 - 1, Math.round(v / logitScale))));
}

/** The fused-attention pattern at plan op k (a q·kᵀ matmul): matmul → softmax → matmul whose three
 *  operands are gathers (index_map, possibly through a p0·x scale) of one [W, N, 3C] tensor — q, k
 *  and v of each (window, head) — verified element by element against that layout. */
function matchAttention(l: Lowered, k: number, consumers: Map<number, number[]>):
  { qkv: number; softmax: number; pv: number; W: number; N: number; H: number; dh: number; qFactor: number; kFactor: number; vFactor: number } | undefined {
  const T = l.tensors;
  const ops = l.ops;
  const op = ops[k];
  const only = (t: number): number | undefined => { const c = consumers.get(rootOf(T, t)) ?? []; return c.length === 1 ? c[0] : undefined; };
  // a tensor that is its root, or a whole-tensor view of it (alias offset 0, same element count)
  const whole = (t: number): boolean => aliasOffset(T, t) === 0 && numel(T[t].dims) === numel(T[rootOf(T, t)].dims);
  const ks = only(op.outputs[0]);
  if (ks === undefined || ops[ks].kind !== 'softmax' || rootOf(T, ops[ks].inputs[0]) !== rootOf(T, op.outputs[0]) || !whole(ops[ks].inputs[0])) return undefined;
  const kp = only(ops[ks].outputs[0]);
  if (kp === undefined || ops[kp].kind !== 'matmul' || rootOf(T, ops[kp].inputs[0]) !== rootOf(T, ops[ks].outputs[0]) || !whole(ops[kp].inputs[0])) return undefined;
  const producer = (t: number) => ops.findIndex((o) => rootOf(T, o.outputs[0]) === rootOf(T, t));
  // the gather behind an operand (through a positive p0·x scale, returned as factor)
  const gather = (t: number): { g: POp; factor: number } | undefined => {
    let p = producer(t);
    let factor = 1;
    if (p >= 0 && ops[p].kind === 'unary' && ops[p].ints[0] === 23 && ops[p].floats[0] > 0 && ops[p].floats[1] === 0) {
      if (!whole(ops[p].inputs[0])) return undefined;  // a scale of a slice is not the gather's layout
      factor = ops[p].floats[0];
      p = producer(ops[p].inputs[0]);
    }
    return p >= 0 && ops[p].kind === 'index_map' && rootOf(T, ops[p].inputs[0]) === ops[p].inputs[0] ? { g: ops[p], factor } : undefined;
  };
  const fq = gather(op.inputs[0]), fk = gather(op.inputs[1]), fv = gather(ops[kp].inputs[1]);
  if (!fq || !fk || !fv) return undefined;
  const gq = fq.g, gk = fk.g, gv = fv.g;
  if (gq.inputs[0] !== gk.inputs[0] || gq.inputs[0] !== gv.inputs[0]) return undefined;
  const R = gq.inputs[0];
  const [batch, N, dh, N2, tb1, as1, bs1] = op.ints;
  const [batch2, M2, K2, dh2, tb2, as2, bs2] = ops[kp].ints;
  if (N2 !== N || batch2 !== batch || M2 !== N || K2 !== N || dh2 !== dh || tb2 !== 0 || as2 !== N * N) return undefined;
  const [smRows, smD] = ops[ks].ints;
  if (smRows !== batch * N || smD !== N) return undefined;
  const total = numel(T[R].dims);
  if (total !== batch * N * 3 * dh || [op.inputs[0], op.inputs[1], ops[kp].inputs[1]].some((t) => rootOf(T, t) !== t)) return undefined;
  // source offset in R of element e of a gather's output (undefined: padding)
  const src = (g: POp, e: number): number | undefined => {
    const [block, , xItem, yItem] = g.ints;
    const idx = T[g.inputs[1]].data!.data;
    const t = Math.floor(e / yItem), rem = e % yItem, r = Math.floor(rem / block);
    return idx[r] < 0 ? undefined : t * xItem + idx[r] + (rem % block);
  };
  for (let H = 1; H <= batch; H++) {
    if (batch % H) continue;
    const C = H * dh, ld = 3 * C;
    const at = (t: number, tok: number, col: number) => Math.floor(t / H) * N * ld + tok * ld + col + (t % H) * dh;
    // A gather repeats its index list per item (ops.def index_map): when every gather's item is k
    // whole windows (x_item = k·N·3C, y_item = k·H·N·dh), the first k windows and the last window
    // prove every element; otherwise every batch item is checked.
    const W = batch / H;
    const per = [gq, gk, gv].map((g) => g.ints[3] / (H * N * dh));
    const periodic = as1 === N * dh && bs1 === N * dh && bs2 === N * dh &&
      per.every((k, i) => Number.isInteger(k) && k >= 1 && [gq, gk, gv][i].ints[2] === k * N * ld && W % k === 0);
    const items = periodic ? [...Array(Math.max(...per) * H).keys(), ...Array.from({ length: H }, (_, h) => batch - H + h)] : [...Array(batch).keys()];
    // cheap probe first (element 1 of batch item 1), then the items above
    const ok = (full: boolean): boolean => {
      for (const t of full ? items : [Math.min(1, batch - 1)]) {
        for (let i = 0; i < N; i++) for (let d = 0; d < dh; d++) {
          if (src(gq, t * as1 + i * dh + d) !== at(t, i, d)) return false;
          if (src(gk, t * bs1 + (tb1 ? i * dh + d : d * N + i)) !== at(t, i, C + d)) return false;
          if (src(gv, t * bs2 + i * dh + d) !== at(t, i, 2 * C + d)) return false;
        }
      }
      return true;
    };
    if (ok(false) && ok(true)) return { qkv: R, softmax: ks, pv: kp, W: batch / H, N, H, dh, qFactor: fq.factor, kFactor: fk.factor, vFactor: fv.factor };
  }
  return undefined;
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
