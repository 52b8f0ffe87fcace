// Finds what to quantize in an fp32 ONNX model and writes the standard QDQ form:
//   activation x → QuantizeLinear(x, s, zp:uint8) → DequantizeLinear → the quantized op's input,
//   weight W (initializer) → int8 initializer + DequantizeLinear(W_q, s[C], zp[C], axis).
// Only the inputs of MatMul / Gemm / Conv are quantized (that is where the integer GEMMs are);
// opset stays ≥ 13 with uint8/int8 only, so no com.microsoft domain is needed.
import onnxProto from 'onnx-proto';
import type { QParams } from './observers.js';

const { onnx } = onnxProto;
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type ModelProto = any;
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type NodeProto = any;

export const QUANT_OPS = new Set(['MatMul', 'Gemm', 'Conv']);
/** Ops a softmax output may pass through on its way to attn·V and stay exactly the softmax (swinq's
 *  own exports reshape it first: without Reshape here, entropy clipped those probabilities to 5.5 dB). */
const PASS_THROUGH = new Set(['Dropout', 'Identity', 'Reshape', 'Transpose', 'Flatten', 'Squeeze', 'Unsqueeze']);

export interface ActTarget { name: string; softmax: boolean; isGraphInput: boolean }
export interface WeightTarget { name: string; axis: number; dims: number[]; node: string }
export interface Targets { activations: ActTarget[]; weights: WeightTarget[] }

function toNum(v: unknown): number {
  return typeof v === 'number' ? v : v && typeof (v as { toNumber?: unknown }).toNumber === 'function' ? (v as { toNumber(): number }).toNumber() : Number(v ?? 0);
}

function attrI(n: NodeProto, name: string, def: number): number {
  const a = (n.attribute ?? []).find((x: NodeProto) => x.name === name);
  return a ? toNum(a.i) : def;
}

export function decodeModel(bytes: Uint8Array, source: string): ModelProto {
  let m: ModelProto;
  try {
    m = onnx.ModelProto.decode(bytes);
  } catch (e) {
    throw new Error(`${source}: not a valid ONNX model (${(e as Error).message})`);
  }
  if (!m.graph || !m.graph.node?.length) throw new Error(`${source}: not a valid ONNX model (no graph nodes)`);
  return m;
}

export function encodeModel(m: ModelProto): Uint8Array {
  return onnx.ModelProto.encode(m).finish();
}

export function defaultOpset(m: ModelProto): number {
  for (const o of m.opsetImport ?? []) if (!o.domain || o.domain === 'ai.onnx') return toNum(o.version);
  return -1;
}

/** The activation and weight tensors to quantize: the data inputs of every MatMul/Gemm/Conv. */
export function findTargets(m: ModelProto, source: string): Targets {
  const g = m.graph;
  const inits = new Map<string, NodeProto>();
  for (const t of g.initializer ?? []) inits.set(t.name, t);
  const producer = new Map<string, NodeProto>();
  for (const n of g.node) for (const o of n.output ?? []) producer.set(o, n);
  const graphInputs = new Set((g.input ?? []).map((v: NodeProto) => v.name));
  const acts = new Map<string, ActTarget>();
  const weights = new Map<string, WeightTarget>();
  const isSoftmax = (name: string): boolean => {
    let p = producer.get(name);
    while (p && PASS_THROUGH.has(p.opType)) p = producer.get(p.input[0]);
    return !!p && p.opType === 'Softmax';
  };
  for (const n of g.node) {
    if (!QUANT_OPS.has(n.opType) || (n.domain && n.domain !== 'ai.onnx')) continue;
    const where = `${source}: node '${n.name}' (${n.opType})`;
    for (let i = 0; i < 2; i++) {
      const name = n.input[i];
      if (!name) continue;
      const init = inits.get(name);
      if (init) {
        if (i === 0) continue; // constant first operand: rare, left in float
        const dims = (init.dims ?? []).map(toNum);
        let axis: number;
        if (n.opType === 'Conv') axis = 0;
        else if (n.opType === 'Gemm') axis = attrI(n, 'transB', 0) ? 0 : 1;
        else axis = dims.length - 1;
        if (dims.length < 1 || (n.opType === 'MatMul' && dims.length !== 2) || (n.opType === 'Gemm' && dims.length !== 2)) {
          throw new Error(`${where}: weight '${name}' has dims [${dims.join(',')}], expected a 2-D matrix (4-D for Conv)`);
        }
        if (init.dataType !== 1) throw new Error(`${where}: weight '${name}' is not float32 (data type ${init.dataType}); is the model already quantized?`);
        const prev = weights.get(name);
        if (prev && prev.axis !== axis) throw new Error(`${where}: weight '${name}' is shared with node '${prev.node}' along a different channel axis`);
        if (!prev) weights.set(name, { name, axis, dims, node: n.name });
      } else if (!acts.has(name)) {
        acts.set(name, { name, softmax: isSoftmax(name), isGraphInput: graphInputs.has(name) });
      }
    }
  }
  if (acts.size === 0 && weights.size === 0) throw new Error(`${source}: no MatMul/Gemm/Conv inputs to quantize`);
  return { activations: [...acts.values()], weights: [...weights.values()] };
}

function tensor(name: string, dataType: number, dims: number[], raw: Uint8Array) {
  return onnx.TensorProto.create({ name, dataType, dims, rawData: raw });
}
function f32(name: string, vals: ArrayLike<number>, dims: number[]) {
  return tensor(name, 1, dims, new Uint8Array(Float32Array.from(vals).buffer));
}

export interface WeightQ { data: Int8Array; scales: Float32Array }

/**
 * Rewrites `m` in place into its QDQ form. Q/DQ of an activation go right before its first
 * quantized consumer (keeps the node list topologically sorted); only quantized consumers read
 * the DQ output, other consumers keep the fp32 tensor.
 */
export function writeQdq(
  m: ModelProto, t: Targets, act: Map<string, QParams>, wq: Map<string, WeightQ>, metadata: Record<string, string>,
): void {
  const g = m.graph;
  if (defaultOpset(m) < 13) throw new Error(`QDQ output needs opset ≥ 13 (per-channel DequantizeLinear); the model has opset ${defaultOpset(m)}`);
  const actNames = new Set(t.activations.map((a) => a.name));
  const wNames = new Set(t.weights.map((w) => w.name));
  const newInits: NodeProto[] = [];
  const dqWeights: NodeProto[] = [];
  // weights: replace the float initializer by int8 + scales + zero points
  const keep = (g.initializer ?? []).filter((init: NodeProto) => !wNames.has(init.name));
  for (const w of t.weights) {
    const q = wq.get(w.name);
    if (!q) throw new Error(`internal: weight '${w.name}' was not quantized`);
    const C = w.dims[w.axis];
    newInits.push(tensor(`${w.name}_quantized`, 3, w.dims, new Uint8Array(q.data.buffer, q.data.byteOffset, q.data.byteLength)));
    newInits.push(f32(`${w.name}_scale`, q.scales, [C]));
    newInits.push(tensor(`${w.name}_zero_point`, 3, [C], new Uint8Array(C)));
    dqWeights.push(onnx.NodeProto.create({
      name: `${w.name}_DequantizeLinear`, opType: 'DequantizeLinear',
      input: [`${w.name}_quantized`, `${w.name}_scale`, `${w.name}_zero_point`], output: [`${w.name}_dequantized`],
      attribute: [onnx.AttributeProto.create({ name: 'axis', type: 2, i: w.axis })],
    }));
  }
  // the graph may list initializers as inputs (old exporters): drop the replaced ones
  g.input = (g.input ?? []).filter((v: NodeProto) => !wNames.has(v.name));
  const nodes: NodeProto[] = [...dqWeights];
  const emitted = new Set<string>();
  for (const n of g.node) {
    const quantized = QUANT_OPS.has(n.opType) && (!n.domain || n.domain === 'ai.onnx');
    if (quantized) {
      for (let i = 0; i < Math.min(2, n.input.length); i++) {
        const name = n.input[i];
        if (wNames.has(name)) { n.input[i] = `${name}_dequantized`; continue; }
        if (!actNames.has(name)) continue;
        if (!emitted.has(name)) {
          const p = act.get(name);
          if (!p) throw new Error(`internal: activation '${name}' has no calibrated range`);
          newInits.push(f32(`${name}_scale`, [p.scale], []));
          newInits.push(tensor(`${name}_zero_point`, 2, [], Uint8Array.of(p.zeroPoint)));
          nodes.push(onnx.NodeProto.create({
            name: `${name}_QuantizeLinear`, opType: 'QuantizeLinear',
            input: [name, `${name}_scale`, `${name}_zero_point`], output: [`${name}_quantized`],
          }));
          nodes.push(onnx.NodeProto.create({
            name: `${name}_DequantizeLinear`, opType: 'DequantizeLinear',
            input: [`${name}_quantized`, `${name}_scale`, `${name}_zero_point`], output: [`${name}_dequantized`],
          }));
          emitted.add(name);
        }
        n.input[i] = `${name}_dequantized`;
      }
    }
    nodes.push(n);
  }
  g.node = nodes;
  g.initializer = [...keep, ...newInits];
  setMetadata(m, metadata);
  m.producerName = 'swinq calibrate';
}

/** Sets (replaces) metadata_props entries. */
export function setMetadata(m: ModelProto, metadata: Record<string, string>): void {
  const props = (m.metadataProps ?? []).filter((p: NodeProto) => !(p.key in metadata));
  for (const [key, value] of Object.entries(metadata)) props.push(onnx.StringStringEntryProto.create({ key, value }));
  m.metadataProps = props;
}
