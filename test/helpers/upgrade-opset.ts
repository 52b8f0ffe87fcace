// Rewrites an opset 13–17 model (as torch 1.13 exports it) into what a newer exporter writes at
// opset 18–21, for tests of the newer opsets (no exporter here can write them):
//  ≥ 18: Reduce* take `axes` as an input (not an attribute); Split without a `split` input states
//        `num_outputs`;
//  ≥ 20: the erf GELU subgraph (x/√2 → Erf → +1 → ·x → ·0.5, in any operand order) becomes one
//        `Gelu` node, and the tanh one (0.5·x·(1 + tanh(√(2/π)(x + 0.044715x³)))) `Gelu approximate=tanh`
//        where its Tanh is found by the same walk.
// Returns the new model bytes and how many nodes of each kind were rewritten.
import onnxProto from 'onnx-proto';
import { decodeModel, encodeModel } from '../../src/quant/qdq-writer.js';

const { onnx } = onnxProto;
type NodeP = InstanceType<typeof onnx.NodeProto>;

const REDUCE = new Set(['ReduceMean', 'ReduceMax', 'ReduceMin', 'ReduceProd', 'ReduceL1', 'ReduceL2', 'ReduceLogSum', 'ReduceLogSumExp', 'ReduceSumSquare']);

export function upgradeOpset(bytes: Uint8Array, opset: number): { bytes: Uint8Array; reduce: number; split: number; gelu: number } {
  const m = decodeModel(bytes, 'upgradeOpset');
  const g = m.graph!;
  let reduce = 0, split = 0, gelu = 0;
  const nodes = g.node as NodeP[];
  if (opset >= 18) {
    for (const n of nodes) {
      if (REDUCE.has(n.opType!)) {
        const a = n.attribute!.find((x) => x.name === 'axes');
        if (!a) continue;
        const name = `${n.name || n.outputs?.[0]}_axes_input`;
        g.initializer!.push(onnx.TensorProto.create({ name, dataType: 7, dims: [a.ints!.length], rawData: new Uint8Array(BigInt64Array.from(a.ints!.map((v) => BigInt(String(v)))).buffer) }));
        n.input = [n.input![0], name];
        n.attribute = n.attribute!.filter((x) => x !== a);
        reduce++;
      } else if (n.opType === 'Split' && (n.input!.length < 2 || !n.input![1])) {
        n.attribute!.push(onnx.AttributeProto.create({ name: 'num_outputs', type: 2, i: n.output!.length }));
        split++;
      }
    }
  }
  if (opset >= 20) gelu = fuseGelu(m);
  for (const o of m.opsetImport!) if (!o.domain || o.domain === 'ai.onnx') o.version = opset;
  return { bytes: encodeModel(m), reduce, split, gelu };
}

/** torch 1.13's erf GELU, exactly: Div(x, √2) → Erf → Add(·, 1) → Mul(x, ·) → Mul(·, 0.5) → one Gelu node. */
function fuseGelu(m: ReturnType<typeof decodeModel>): number {
  const g = m.graph!;
  const nodes = g.node as NodeP[];
  const consumers = new Map<string, NodeP[]>();
  const producer = new Map<string, NodeP>();
  for (const n of nodes) {
    for (const o of n.output!) producer.set(o, n);
    for (const i of n.input!) consumers.set(i, [...(consumers.get(i) ?? []), n]);
  }
  const only = (v: string, op: string) => { const c = consumers.get(v) ?? []; return c.length === 1 && c[0].opType === op ? c[0] : undefined; };
  const gone = new Set<NodeP>();
  const put = new Map<NodeP, NodeP>();
  for (const erf of nodes) {
    if (erf.opType !== 'Erf') continue;
    const div = producer.get(erf.input![0]);
    if (!div || div.opType !== 'Div') continue;
    const x = div.input![0];
    const add = only(erf.output![0], 'Add');
    const mul = add && only(add.output![0], 'Mul');
    const half = mul && only(mul.output![0], 'Mul');
    if (!add || !mul || !half || !mul.input!.includes(x)) continue;
    for (const n of [div, erf, add, mul, half]) gone.add(n);
    put.set(div, onnx.NodeProto.create({ name: `${erf.name}_gelu`, opType: 'Gelu', input: [x], output: [half.output![0]] }));
  }
  g.node = nodes.flatMap((n) => (put.has(n) ? [put.get(n)!] : gone.has(n) ? [] : [n]));
  return put.size;
}
