// Graph IR → PlanDescJS for concrete input dims: specialize, fuse, lower, allocate.
// Batch scaling: when every symbolic input dim takes one value B, the lowered plan is usually affine
// in B (op sizes grow, index tables and bias tables repeat per item). Probes B = 2, 3, 4 are compiled
// once (4, 6, 8 … when the batch must be a multiple of 2 …); if extrapolating 2, 3 → 4 reproduces
// the real batch-4 plan exactly, larger batches are extrapolated and only arena allocation runs, so
// compile time does not grow with batch.
import type { Graph } from '../ir/graph.js';
import { fuse } from '../passes/fuse.js';
import { specialize } from '../passes/specialize.js';
import { lower, type Lowered } from './lower.js';
import { rewriteLinears } from './linear-rewrites.js';
import { emitPlan, type CompileStats } from './plan.js';
import type { PlanDescJS } from '../native.js';
import { OP_NAMES } from '../plan/ops.js';

export interface Compiled {
  desc: PlanDescJS;
  outputDims: number[][];
  outputTypes: string[];
  stats: CompileStats & { onnxNodes: number; planOps: number; opCounts: Record<string, number>; extrapolated: boolean };
}

interface LoweredGraph { l: Lowered; outputDims: number[][]; outputTypes: string[]; onnxNodes: number }

function lowerGraph(g: Graph, inputDims: Record<string, number[]>): LoweredGraph {
  const s = specialize(g, inputDims);
  const nodes = fuse(s);
  const l = rewriteLinears(lower(s, nodes, g.opset));
  return {
    l,
    outputDims: s.outputs.map((o) => [...s.values.get(o)!.dims]),
    outputTypes: s.outputs.map((o) => s.values.get(o)!.dtype),
    onnxNodes: s.onnxNodes,
  };
}

function finish(lg: LoweredGraph, extrapolated: boolean): Compiled {
  const { stats, ...desc } = emitPlan(lg.l);
  const opCounts: Record<string, number> = {};
  for (const op of desc.ops) opCounts[OP_NAMES[op.kind]] = (opCounts[OP_NAMES[op.kind]] ?? 0) + 1;
  return {
    desc,
    outputDims: lg.outputDims,
    outputTypes: lg.outputTypes,
    stats: { ...stats, onnxNodes: lg.onnxNodes, planOps: desc.ops.length, opCounts, extrapolated },
  };
}

export function compileGraph(g: Graph, inputDims: Record<string, number[]>): Compiled {
  return finish(lowerGraph(g, inputDims), false);
}

// ---- batch extrapolation ----

const aff = (a: number, b: number, B: number) => a + (B - 2) * (b - a);
const affArr = (a: readonly number[], b: readonly number[], B: number) => a.map((x, i) => aff(x, b[i], B));

function sameNums(a: ArrayLike<number> | undefined, b: ArrayLike<number> | undefined): boolean {
  if (a === b) return true;
  if (!a || !b || a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i] && !(Number.isNaN(a[i]) && Number.isNaN(b[i]))) return false;
  return true;
}

/** The plan for batch B from the plans at batch 2 and 3, or undefined when they differ in structure. */
function extrapolate(p2: LoweredGraph, p3: LoweredGraph, B: number): LoweredGraph | undefined {
  const a = p2.l;
  const b = p3.l;
  if (a.tensors.length !== b.tensors.length || a.ops.length !== b.ops.length || a.inputs.join() !== b.inputs.join() || a.outputs.join() !== b.outputs.join()) return undefined;
  const tensors = [];
  for (let i = 0; i < a.tensors.length; i++) {
    const x = a.tensors[i];
    const y = b.tensors[i];
    if (x.dtype !== y.dtype || x.kind !== y.kind || x.index !== y.index || x.aliasOf !== y.aliasOf || x.dims.length !== y.dims.length) return undefined;
    if ((x.aliasElemOffset === undefined) !== (y.aliasElemOffset === undefined)) return undefined;
    if (x.kind === 'const' && x.aliasOf === undefined && (!sameNums(x.data!.data, y.data!.data) || !sameNums(x.dims, y.dims))) return undefined;
    const dims = affArr(x.dims, y.dims, B);
    if (dims.some((d) => !Number.isSafeInteger(d) || d < 0)) return undefined;
    const t = { ...x, dims };
    if (x.aliasElemOffset !== undefined) t.aliasElemOffset = aff(x.aliasElemOffset, y.aliasElemOffset!, B);
    tensors.push(t);
  }
  const ops = [];
  for (let i = 0; i < a.ops.length; i++) {
    const x = a.ops[i];
    const y = b.ops[i];
    if (x.kind !== y.kind || x.name !== y.name || x.inputs.join() !== y.inputs.join() || x.outputs.join() !== y.outputs.join() ||
        x.ints.length !== y.ints.length || !sameNums(x.floats, y.floats)) return undefined;
    const ints = affArr(x.ints, y.ints, B);
    if (ints.some((v) => !Number.isSafeInteger(v))) return undefined;
    ops.push({ ...x, ints });
  }
  if (p2.outputDims.some((d, i) => d.length !== p3.outputDims[i].length)) return undefined;
  return {
    l: { tensors, ops, inputs: a.inputs, outputs: a.outputs },
    outputDims: p2.outputDims.map((d, i) => affArr(d, p3.outputDims[i], B)),
    outputTypes: p2.outputTypes,
    onnxNodes: p2.onnxNodes,
  };
}

function sameLowered(x: LoweredGraph, y: LoweredGraph): boolean {
  const a = x.l;
  const b = y.l;
  if (a.tensors.length !== b.tensors.length || a.ops.length !== b.ops.length) return false;
  for (let i = 0; i < a.tensors.length; i++) {
    const s = a.tensors[i];
    const t = b.tensors[i];
    if (s.dtype !== t.dtype || s.kind !== t.kind || s.index !== t.index || s.aliasOf !== t.aliasOf || s.aliasElemOffset !== t.aliasElemOffset || !sameNums(s.dims, t.dims)) return false;
    if (s.kind === 'const' && s.aliasOf === undefined && !sameNums(s.data!.data, t.data!.data)) return false;
  }
  for (let i = 0; i < a.ops.length; i++) {
    const s = a.ops[i];
    const t = b.ops[i];
    if (s.kind !== t.kind || s.name !== t.name || !sameNums(s.inputs, t.inputs) || !sameNums(s.outputs, t.outputs) || !sameNums(s.ints, t.ints) || !sameNums(s.floats, t.floats)) return false;
  }
  return x.outputDims.every((d, i) => sameNums(d, y.outputDims[i]));
}

/** Compiles plans for one graph, extrapolating large batches when that is exact (see top). */
export class BatchCompiler {
  /** Batch-2/3 plans in units of `step` (models whose batch must be a multiple of step). */
  private probe: { step: number; p2: LoweredGraph; p3: LoweredGraph } | null | undefined;
  constructor(private readonly g: Graph) {}

  /** The value B every symbolic input dim takes (fixed dims as declared), or undefined. */
  private batchOf(inputDims: Record<string, number[]>): number | undefined {
    let B: number | undefined;
    for (const d of this.g.inputs) {
      const got = inputDims[d.name];
      if (!got || got.length !== d.dims.length) return undefined;
      for (let i = 0; i < got.length; i++) {
        const decl = d.dims[i];
        if (typeof decl === 'number' && decl > 0) { if (got[i] !== decl) return undefined; continue; }
        if (B === undefined) B = got[i];
        else if (B !== got[i]) return undefined;
      }
    }
    return B;
  }

  private withBatch(B: number): Record<string, number[]> {
    const r: Record<string, number[]> = {};
    for (const d of this.g.inputs) r[d.name] = d.dims.map((x) => (typeof x === 'number' && x > 0 ? x : B));
    return r;
  }

  compile(inputDims: Record<string, number[]>): Compiled {
    const B = this.batchOf(inputDims);
    if (B === undefined || B <= 4) return compileGraph(this.g, inputDims);
    if (this.probe === undefined) {
      this.probe = null;
      for (const step of [1, 2, 4, 8]) {
        try {
          const p2 = lowerGraph(this.g, this.withBatch(2 * step));
          const p3 = lowerGraph(this.g, this.withBatch(3 * step));
          const p4 = lowerGraph(this.g, this.withBatch(4 * step));
          const e4 = extrapolate(p2, p3, 4);
          if (e4 && sameLowered(e4, p4)) this.probe = { step, p2, p3 };
          break;
        } catch {
          // this batch size is not valid for the model (e.g. must be even): try a coarser step
        }
      }
    }
    const p = this.probe;
    const e = p && B % p.step === 0 && B / p.step > 4 ? extrapolate(p.p2, p.p3, B / p.step) : undefined;
    return e ? finish(e, true) : compileGraph(this.g, inputDims);
  }
}
