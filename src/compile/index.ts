// Graph IR → PlanDescJS for concrete input dims: specialize, fuse, lower, allocate.
import type { Graph } from '../ir/graph.js';
import { fuse } from '../passes/fuse.js';
import { specialize } from '../passes/specialize.js';
import { lower } from './lower.js';
import { emitPlan, type CompileStats } from './plan.js';
import type { PlanDescJS } from '../native.js';
import { OP_NAMES } from '../plan/ops.js';

export interface Compiled {
  desc: PlanDescJS;
  outputDims: number[][];
  outputTypes: string[];
  stats: CompileStats & { onnxNodes: number; planOps: number; opCounts: Record<string, number> };
}

export function compileGraph(g: Graph, inputDims: Record<string, number[]>): Compiled {
  const s = specialize(g, inputDims);
  const nodes = fuse(s);
  const l = lower(s, nodes, g.opset);
  const { stats, ...desc } = emitPlan(l);
  const opCounts: Record<string, number> = {};
  for (const op of desc.ops) opCounts[OP_NAMES[op.kind]] = (opCounts[OP_NAMES[op.kind]] ?? 0) + 1;
  return {
    desc,
    outputDims: s.outputs.map((o) => [...s.values.get(o)!.dims]),
    outputTypes: s.outputs.map((o) => s.values.get(o)!.dtype),
    stats: { ...stats, onnxNodes: s.onnxNodes, planOps: desc.ops.length, opCounts },
  };
}
