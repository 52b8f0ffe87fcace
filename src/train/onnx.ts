// ONNX export of a training graph (opset 17, dynamic batch) and import of its parameters.
// Each train op maps to a fixed small ONNX pattern over [-1, per-sample] reshapes:
//   linear → MatMul + Add, layernorm → LayerNormalization, matmul → MatMul (+ Transpose, Mul α),
//   softmax → Softmax, add / add_bcast → Add, gather → Gather(axis 1) on [-1, X/block, block],
//   act → Relu / Erf-GELU / Sigmoid / Tanh…, mean_pool → ReduceMean, so outputs equal the trainer's.
// The config travels in metadata_props (swinq.train.config), so `swinq train` needs only the file.
import onnxProto from 'onnx-proto';
import type { TrainGraph, TrainNode } from './graph.js';
import { checkConfig, type SwinConfig } from './swin.js';

const { onnx } = onnxProto;
export const CONFIG_KEY = 'swinq.train.config';
const FLOAT = 1, INT64 = 7;

function tensor(name: string, dims: number[], data: Float32Array | number[], int64 = false) {
  const raw = int64 ? new Uint8Array(BigInt64Array.from(Array.from(data, (v) => BigInt(v))).buffer)
    : new Uint8Array(Float32Array.from(data).buffer);
  return onnx.TensorProto.create({ name, dims, dataType: int64 ? INT64 : FLOAT, rawData: raw });
}

export function exportOnnx(g: TrainGraph, cfg: SwinConfig, metadata: Record<string, string> = {}): Uint8Array {
  const nodes: object[] = [];
  const inits: object[] = [];
  const A = onnx.AttributeProto.AttributeType;
  let k = 0;
  const uniq = (s: string) => `${s}__${k++}`;
  const constI = (vals: number[]) => {
    const n = uniq('const');
    inits.push(tensor(n, [vals.length], vals, true));
    return n;
  };
  const node = (op: string, inputs: string[], attrs: object[] = [], out?: string) => {
    const o = out ?? uniq(op);
    nodes.push({ name: uniq(`${op}_node`), opType: op, input: inputs, output: [o], attribute: attrs });
    return o;
  };
  const isParam = (t: string) => g.params.has(t) || g.paramSizes.has(t);
  // shape of a tensor as [lead, ...rest]: batch tensors lead with -1, parameter tensors with 1
  const reshape = (t: string, rest: number[]) => node('Reshape', [t, constI([isParam(t) ? 1 : -1, ...rest])]);
  const f = (name: string, v: number) => ({ name, type: A.FLOAT, f: v });
  const i = (name: string, v: number) => ({ name, type: A.INT, i: v });
  const ints = (name: string, v: number[]) => ({ name, type: A.INTS, ints: v });
  for (const [name, p] of g.params) inits.push(tensor(name, p.shape, p.data));

  const emit = (n: TrainNode, out: string) => {
    const d = n.desc;
    const [a, b, c] = n.inputs;
    switch (d.op) {
      case 'linear': {
        const mm = node('MatMul', [reshape(a, [d.K!]), b]);
        return node('Add', [mm, c], [], out);
      }
      case 'layernorm':
        return node('LayerNormalization', [reshape(a, [d.D!]), b, c], [i('axis', -1), f('epsilon', d.eps ?? 1e-5)], out);
      case 'matmul': {
        let bb = reshape(b, d.transB ? [d.N!, d.K!] : [d.K!, d.N!]);
        if (d.transB) bb = node('Transpose', [bb], [ints('perm', [0, 2, 1])]);
        const mm = node('MatMul', [reshape(a, [d.M!, d.K!]), bb], [], d.alpha !== undefined && d.alpha !== 1 ? undefined : out);
        if (d.alpha === undefined || d.alpha === 1) return mm;
        const al = uniq('alpha');
        inits.push(tensor(al, [], [d.alpha]));
        return node('Mul', [mm, al], [], out);
      }
      case 'softmax': return node('Softmax', [reshape(a, [d.D!])], [i('axis', -1)], out);
      case 'add': {
        const per = g.perSample.get(a)!;
        return node('Add', [reshape(a, [per]), reshape(b, [per])], [], out);
      }
      case 'add_bcast': return node('Add', [reshape(a, d.dims!), reshape(b, d.bdims!)], [], out);
      case 'gather': {
        const B = d.block ?? 1;
        const idx = Array.from(d.idx!, (v) => {
          if (v < 0 || v % B) throw new Error(`export: gather '${n.name}' has padding or unaligned indices (not exportable)`);
          return v / B;
        });
        const ix = uniq(`${n.name}.indices`);
        inits.push(tensor(ix, [idx.length], idx, true));
        return node('Gather', [reshape(a, [d.xItem! / B, B]), ix], [i('axis', 1)], out);
      }
      case 'act': {
        if (d.fn === 'relu') return node('Relu', [a], [], out);
        if (d.fn === 'sigmoid') return node('Sigmoid', [a], [], out);
        if (d.fn === 'tanh') return node('Tanh', [a], [], out);
        if (d.fn === 'silu') return node('Mul', [a, node('Sigmoid', [a])], [], out);
        if (d.fn === 'gelu') {
          const s2 = uniq('sqrt2'), one = uniq('one'), half = uniq('half');
          inits.push(tensor(s2, [], [Math.SQRT2]), tensor(one, [], [1]), tensor(half, [], [0.5]));
          const e = node('Erf', [node('Div', [a, s2])]);
          return node('Mul', [node('Mul', [a, node('Add', [e, one])]), half], [], out);
        }
        throw new Error(`export: activation '${d.fn}' has no ONNX mapping yet (use gelu, relu, silu, sigmoid or tanh)`);
      }
      case 'mean_pool':
        return node('ReduceMean', [reshape(a, [d.L!, d.C!])], [ints('axes', [1]), i('keepdims', 0)], out);
    }
  };
  for (const n of [...g.paramNodes, ...g.nodes]) emit(n, n.output === g.output ? 'logits_raw' : n.output);
  node('Reshape', ['logits_raw', constI([-1, g.perSample.get(g.output)!])], [], 'logits');

  const dims = (ds: (number | string)[]) => ({ dim: ds.map((v) => (typeof v === 'string' ? { dimParam: v } : { dimValue: v })) });
  const model = onnx.ModelProto.create({
    irVersion: 8,
    producerName: 'swinq-train',
    opsetImport: [{ domain: '', version: 17 }],
    graph: {
      name: 'swin',
      node: nodes,
      initializer: inits,
      input: [{ name: g.input, type: { tensorType: { elemType: FLOAT, shape: dims(['batch', ...g.inputShape]) } } }],
      output: [{ name: 'logits', type: { tensorType: { elemType: FLOAT, shape: dims(['batch', g.perSample.get(g.output)!]) } } }],
    },
    metadataProps: Object.entries({ ...metadata, [CONFIG_KEY]: JSON.stringify(cfg) }).map(([key, value]) => ({ key, value })),
  });
  return onnx.ModelProto.encode(model).finish();
}

/** Config and named float initializers of a model written by exportOnnx (`swinq init` / `swinq train`). */
export function readOnnxModel(bytes: Uint8Array, source: string): { config: SwinConfig; params: Map<string, Float32Array>; metadata: Record<string, string> } {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  let m: any;
  try {
    m = onnx.ModelProto.decode(bytes);
  } catch (e) {
    throw new Error(`${source}: not a valid ONNX model (${(e as Error).message})`);
  }
  const metadata: Record<string, string> = {};
  for (const p of m.metadataProps ?? []) metadata[p.key] = p.value;
  const raw = metadata[CONFIG_KEY];
  if (!raw) throw new Error(`${source}: no '${CONFIG_KEY}' metadata (train models made by \`swinq init\`)`);
  let config: SwinConfig;
  try {
    config = checkConfig(JSON.parse(raw));
  } catch (e) {
    throw new Error(`${source}: bad ${CONFIG_KEY} metadata: ${(e as Error).message}`);
  }
  const params = new Map<string, Float32Array>();
  for (const t of m.graph?.initializer ?? []) {
    if (t.dataType !== FLOAT) continue;
    if (t.rawData && t.rawData.length) {
      const copy = new Uint8Array(t.rawData);
      params.set(t.name, new Float32Array(copy.buffer, 0, copy.length / 4));
    } else params.set(t.name, Float32Array.from(t.floatData ?? []));
  }
  return { config, params, metadata };
}
