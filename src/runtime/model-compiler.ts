// Which plan a model runs, decided in one place and always reported:
//   fp32          a float model, compiled by src/compile.
//   integer-only  a QDQ model lowered to integer ops (no float between the input quantize and the
//                 output dequantize): the chain lowering (src/quant/lower-int.ts, the file's own
//                 scales) or the plan-level lowering (src/quant/integer-lowering.ts) with activation ranges
//                 from the file's swinq.int.ranges metadata (swinq calibrate) or, without it, from
//                 the file's own QuantizeLinear scales and zero points (onnxruntime's quantize_static).
//   qdq-simulated the QDQ file on the fp32 engine, every Q→DQ pair simulated in float
//                 (src/quant/qdq-sim.ts), when no integer lowering takes it: `blockedBy` says why.
import type { Graph } from '../ir/graph.js';
import { BatchCompiler, type Compiled } from '../compile/index.js';
import type { Lowered } from '../compile/lower.js';
import { aliasRoot } from '../compile/plan.js';
import { OP_NAMES } from '../plan/ops.js';
import { lowerQdqToIntPlan } from '../quant/lower-int.js';
import { decodePlanRanges, INT_RANGES_KEY, planOpKeys, type PlanRanges } from '../quant/plan-ranges.js';
import { lowerIntegerPlan } from '../quant/integer-lowering.js';
import { stripQdq } from '../quant/float-plan.js';
import { hasQdq, simulateQdq } from '../quant/qdq-sim.js';

export type PlanKind = 'integer-only' | 'fp32' | 'qdq-simulated';
export const PLAN_KINDS: readonly PlanKind[] = ['integer-only', 'fp32', 'qdq-simulated'];
/** Why a QDQ model does not run integer-only: the ONNX node (or plan op) and op that stopped it. */
export interface BlockedBy { node: string; op: string; reason: string }
export interface PlanChoice { compiled: Compiled; plan: PlanKind; blockedBy?: BlockedBy }

/** Activation ranges from the file's own QuantizeLinear nodes: a value quantized with scale s and
 *  zero point z has the range of its codes, [(qmin − z)·s, (qmax − z)·s]. Keyed by value name. */
function qdqValueRanges(raw: Graph): Map<string, number[]> {
  const ranges = new Map<string, number[]>();
  const qout = new Map<string, number[]>();
  for (const n of raw.nodes) {
    if (n.opType !== 'QuantizeLinear' || raw.initializers.has(n.inputs[0])) continue;
    const s = raw.initializers.get(n.inputs[1]);
    const z = n.inputs[2] ? raw.initializers.get(n.inputs[2]) : undefined;
    if (!s || s.data.length !== 1 || (z && z.data.length !== 1)) continue;
    const zp = z ? z.data[0] : 0;
    const [qmin, qmax] = z?.dtype === 'int8' ? [-128, 127] : z?.dtype === 'int16' ? [-32768, 32767] : [0, 255];
    const r = [(qmin - zp) * s.data[0], (qmax - zp) * s.data[0]];
    ranges.set(n.inputs[0], r);
    qout.set(n.outputs[0], r);
  }
  for (const n of raw.nodes) if (n.opType === 'DequantizeLinear' && qout.has(n.inputs[0])) ranges.set(n.outputs[0], qout.get(n.inputs[0])!);
  return ranges;
}

/** PlanRanges for a lowered plan from value-name ranges (the union where one tensor holds several).
 *  A gather moves values without changing them, so a range known at its output is also its input's
 *  (files quantize the reshaped attention output that the projection reads, not the P·V product). */
function rangesByValue(byValue: Map<string, number[]>, l: Lowered, inputName: string): PlanRanges {
  const input = byValue.get(inputName);
  if (!input) throw new Error(`graph input '${inputName}' has no QuantizeLinear (no input scale)`);
  const T = l.tensors;
  const root = (t: number) => aliasRoot(T, t);
  const byRoot = new Map<number, number[]>();
  T.forEach((t, i) => {
    let lo = Infinity, hi = -Infinity;
    for (const v of t.values ?? []) { const r = byValue.get(v) ?? byValue.get(v.split('#')[0]); if (r) { lo = Math.min(lo, r[0]); hi = Math.max(hi, r[1]); } }
    if (lo <= hi) { const r = root(i), o = byRoot.get(r); byRoot.set(r, o ? [Math.min(o[0], lo), Math.max(o[1], hi)] : [lo, hi]); }
  });
  for (let k = l.ops.length - 1; k >= 0; k--) {
    const op = l.ops[k];
    if (op.kind !== 'index_map') continue;
    const out = byRoot.get(root(op.outputs[0])), x = root(op.inputs[0]);
    if (out && !byRoot.has(x) && T[x].kind === 'arena') byRoot.set(x, out);
  }
  const keys = planOpKeys(l.ops);
  const ops: Record<string, number[]> = {};
  l.ops.forEach((op, k) => { const r = byRoot.get(root(op.outputs[0])); if (r) ops[keys[k]] = r; });
  return { input, ops };
}

function countOps(c: Compiled['desc']): Record<string, number> {
  const opCounts: Record<string, number> = {};
  for (const o of c.ops) opCounts[OP_NAMES[o.kind]] = (opCounts[OP_NAMES[o.kind]] ?? 0) + 1;
  return opCounts;
}

/** Compiles plans for one model (as loaded, Q/DQ nodes intact), choosing and reporting the plan kind. */
export class ModelCompiler {
  readonly isQdq: boolean;
  private fp32?: BatchCompiler;
  private stripped?: Graph;
  private readonly weightCodes = new WeakMap<object, Map<number, { codes: Float64Array; scales: Float64Array }>>();
  constructor(private readonly raw: Graph) { this.isQdq = hasQdq(raw); }

  /** The integer-only plan for these dims, or why there is none. */
  lowerInteger(inputDims: Record<string, number[]>): { ok: true; compiled: Compiled } | { ok: false; blockedBy: BlockedBy } {
    const g = this.raw;
    const dims = Object.values(inputDims);
    if (dims.length !== 1) return { ok: false, blockedBy: { node: '', op: '', reason: `${g.source}: integer-only plans take one input, the model has ${dims.length}` } };
    const chain = lowerQdqToIntPlan(g, dims[0]);
    let r = chain;
    if (!chain.ok) {
      this.stripped ??= stripQdq(g);
      const meta = g.metadata[INT_RANGES_KEY];
      const valueRanges = meta ? undefined : qdqValueRanges(g);
      const plan = lowerIntegerPlan(this.stripped, dims[0], (l) => (meta ? decodePlanRanges(meta, l) : rangesByValue(valueRanges!, l, g.inputs[0].name)), { weightCodes: this.weightCodes });
      r = plan;
    }
    if (!r.ok) return { ok: false, blockedBy: { node: r.node ?? '', op: r.op ?? '', reason: r.reason } };
    const desc = r.desc;
    return {
      ok: true,
      compiled: {
        desc, outputDims: [r.outputDims], outputTypes: ['float32'],
        stats: { arenaBytes: desc.arenaBytes, constantBytes: desc.constants.length, onnxNodes: g.nodeCount, planOps: desc.ops.length, opCounts: countOps(desc), extrapolated: false },
      },
    };
  }

  compile(inputDims: Record<string, number[]>, opts: { requireInteger?: boolean; simulate?: boolean } = {}): PlanChoice {
    if (!this.isQdq) {
      this.fp32 ??= new BatchCompiler(this.raw);
      return { compiled: this.fp32.compile(inputDims), plan: 'fp32' };
    }
    const int: ReturnType<ModelCompiler['lowerInteger']> = opts.simulate
      ? { ok: false, blockedBy: { node: '', op: '', reason: `${this.raw.source}: the fp32 simulation was asked for (qdq: 'simulate')` } }
      : this.lowerInteger(inputDims);
    if (int.ok) return { compiled: int.compiled, plan: 'integer-only' };
    if (opts.requireInteger) throw new IntegerPlanError(int.blockedBy);
    this.fp32 ??= new BatchCompiler(simulateQdq(this.raw));
    return { compiled: this.fp32.compile(inputDims), plan: 'qdq-simulated', blockedBy: int.blockedBy };
  }
}

/** Thrown when an integer-only plan was required and the model has none. */
export class IntegerPlanError extends Error {
  constructor(readonly blockedBy: BlockedBy) {
    super(`no integer-only plan${blockedBy.node ? ` (node '${blockedBy.node}', op ${blockedBy.op})` : ''}: ${blockedBy.reason}`);
    this.name = 'IntegerPlanError';
  }
}
