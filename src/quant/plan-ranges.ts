// Activation ranges of a plan, keyed by plan op so they hold at every batch size: measured by
// `swinq calibrate` on the float plan (stored in the file as swinq.int.ranges metadata), or derived
// from a file's own Q/DQ scales (src/runtime/model-compiler.ts).
import type { Graph } from '../ir/graph.js';
import { numel } from '../ir/graph.js';
import type { Lowered, POp } from '../compile/lower.js';
import { emitPlan, aliasRoot } from '../compile/plan.js';
import { native } from '../native.js';
import { TensorObserver, type Method } from './observers.js';
import { lowerFp32 } from './float-plan.js';

const rootOf = aliasRoot;

/** metadata key of the plan ranges */
export const INT_RANGES_KEY = 'swinq.int.ranges';

/** Ranges of the fp32 plan's op outputs, keyed by op (planOpKeys: kind, name, occurrence — stable
 *  across batch sizes), and of the graph input. An entry is [min, max], or [min, max, lo, hi] where a
 *  calibration method other than minmax chose [lo, hi] for uint8 codes (int16/int32 use [min, max]). */
export interface PlanRanges {
  input: number[]; ops: Record<string, number[]>;
  /** calibrate --sparsify: per MLP hidden layer (linear with a fused activation), the |y| below which
   *  its outputs become exactly zero in the integer plan (CATS-style thresholded sparsity) */
  thresholds?: Record<string, number>;
}

/** One key per plan op: kind, name and how many ops of that kind and name came before it. */
export function planOpKeys(ops: readonly POp[]): string[] {
  const seen = new Map<string, number>();
  return ops.map((o) => { const b = `${o.kind}:${o.name}`; const i = seen.get(b) ?? 0; seen.set(b, i + 1); return `${b}#${i}`; });
}

/** The ranges of every plan op output over the images (run through a plan exposing every op output);
 *  ops whose output is never stored whole (offset views: concatenation parts) get none. */
export function calibratePlanRanges(g: Graph, images: Float32Array, itemDims: number[], batch: number, threads = 1,
  method: Method = 'minmax', percentile = 99.99, sparsify?: number): PlanRanges {
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
    if (method !== 'minmax' || sparsify !== undefined) pass((o, d) => o.observeHistogram(d));
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
  if (sparsify === undefined || sparsify >= 1) return { input: [lo, hi], ops };
  // the MLP hidden layers: linears with a fused activation (GELU/ReLU); keep the top `sparsify` of |y|
  const thresholds: Record<string, number> = {};
  l.ops.forEach((op, k) => { if (op.kind === 'linear' && op.ints[3] >= 1 && op.ints[3] <= 3 && obs[k].count > 0) thresholds[keys[k]] = obs[k].absQuantile(1 - sparsify); });
  return { input: [lo, hi], ops, thresholds };
}

/** swinq.int.ranges as stored: {"format": 2, "input": […], "ops": {key: […]}} (float32-rounded). */
export function encodePlanRanges(r: PlanRanges): string {
  const f = (v: number[]) => v.map((x) => Math.fround(x));
  return JSON.stringify({ format: 2, input: f(r.input), ops: Object.fromEntries(Object.entries(r.ops).map(([k, v]) => [k, f(v)])), ...(r.thresholds ? { thresholds: r.thresholds } : {}) });
}

/** Parses swinq.int.ranges: the keyed form, or the older list (one entry per plan op, the graph input
 *  last), which only fits a plan with exactly that many ops. */
export function decodePlanRanges(meta: string, l: Lowered): PlanRanges {
  let v: unknown;
  try { v = JSON.parse(meta); } catch { throw new Error(`metadata ${INT_RANGES_KEY} is not valid JSON`); }
  const isRange = (x: unknown) => Array.isArray(x) && (x.length === 2 || x.length === 4) && x.every((y) => typeof y === 'number');
  if (Array.isArray(v)) {
    if (!v.every(isRange)) throw new Error(`metadata ${INT_RANGES_KEY}: every entry must be [min, max] or [min, max, lo, hi]`);
    if (v.length !== l.ops.length + 1) throw new Error(`metadata ${INT_RANGES_KEY} has ranges for ${v.length - 1} plan ops, this plan has ${l.ops.length} (re-run swinq calibrate)`);
    const keys = planOpKeys(l.ops);
    return { input: v[v.length - 1] as number[], ops: Object.fromEntries(keys.map((k, i) => [k, v[i] as number[]])) };
  }
  const o = v as { format?: unknown; input?: unknown; ops?: unknown; thresholds?: unknown };
  if (!o || o.format !== 2 || !isRange(o.input) || typeof o.ops !== 'object' || o.ops === null) throw new Error(`metadata ${INT_RANGES_KEY} must be {"format": 2, "input": [min, max], "ops": {…}}`);
  for (const [k, r] of Object.entries(o.ops as object)) if (!isRange(r)) throw new Error(`metadata ${INT_RANGES_KEY}: ops["${k}"] must be [min, max] or [min, max, lo, hi]`);
  if (o.thresholds !== undefined && (typeof o.thresholds !== 'object' || o.thresholds === null || Object.values(o.thresholds).some((t) => typeof t !== 'number' || !(t >= 0)))) {
    throw new Error(`metadata ${INT_RANGES_KEY}: thresholds must map plan ops to numbers ≥ 0`);
  }
  return { input: o.input as number[], ops: o.ops as Record<string, number[]>, ...(o.thresholds ? { thresholds: o.thresholds as Record<string, number> } : {}) };
}

