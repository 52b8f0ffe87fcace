// The float plan a QDQ file's integer plan is lowered from: the graph with its activation Q→DQ
// pairs removed and its weight DequantizeLinear folded, compiled by the fp32 compiler (specialize,
// fuse, lower, the linear rewrites). Calibration (src/quant/plan-ranges.ts) and the integer lowering
// (src/quant/integer-lowering.ts) both start here, so their plan ops match one to one.
import type { Graph } from '../ir/graph.js';
import { specialize } from '../passes/specialize.js';
import { fuse } from '../passes/fuse.js';
import { lower, type Lowered } from '../compile/lower.js';
import { rewriteLinears } from '../compile/linear-rewrites.js';
import { simulateQdq } from './qdq-sim.js';

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

/** The fused fp32 plan of g for one input shape. */
export function lowerFp32(g: Graph, dims: number[]): Lowered {
  const s = specialize(g, { [g.inputs[0].name]: dims });
  return rewriteLinears(lower(s, fuse(s), g.opset));
}

