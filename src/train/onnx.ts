// Writes a model as ONNX (opset 17, dynamic batch) from a small vocabulary of train ops: the Swin
// writer (swin.ts) describes its architecture with these and gets a model file that then trains
// through OnnxTrainGraph like any imported model. Each op maps to a fixed small ONNX pattern over
// [-1, per-sample] reshapes:
//   linear → MatMul (+ Add), layernorm → LayerNormalization, matmul → MatMul (+ Transpose, Mul α),
//   softmax → Softmax, add / add_bcast → Add, gather → Gather(axis 1) on [-1, X/block, block],
//   act → Relu / Erf-GELU / Sigmoid / Tanh…, mean_pool → ReduceMean.
// A tensor made from parameters only (e.g. a relative-position bias gathered from its table) leads
// with 1 instead of the batch.
import onnxProto from 'onnx-proto';
import type { OpDesc } from './op.js';

const { onnx } = onnxProto;
const FLOAT = 1, INT64 = 7;

function tensor(name: string, dims: number[], data: Float32Array | number[], int64 = false) {
  const raw = int64 ? new Uint8Array(BigInt64Array.from(Array.from(data, (v) => BigInt(v))).buffer)
    : new Uint8Array(Float32Array.from(data).buffer);
  return onnx.TensorProto.create({ name, dims, dataType: int64 ? INT64 : FLOAT, rawData: raw });
}

/** Output element count from input element counts (throws naming the node). */
function outSize(name: string, d: OpDesc, s: number[]): number {
  const div = (a: number, b: number, what: string) => {
    if (a % b !== 0) throw new Error(`model op '${name}' (${d.op}): ${what} has ${a} elements, not a multiple of ${b}`);
    return a / b;
  };
  switch (d.op) {
    case 'linear': return div(s[0], d.K!, 'x') * d.N!;
    case 'matmul': return div(s[0], d.M! * d.K!, 'a') * d.M! * d.N!;
    case 'gather': return div(s[0], d.xItem!, 'x') * d.idx!.length * (d.block ?? 1);
    case 'mean_pool': return div(s[0], d.L! * d.C!, 'x') * d.C!;
    default: return s[0];
  }
}

export class OnnxModelBuilder {
  private readonly nodes: object[] = [];
  private readonly inits: object[] = [];
  /** per-sample element count of every batch tensor; element count of every parameter-made one */
  private readonly perSample = new Map<string, number>();
  private readonly paramSize = new Map<string, number>();
  private k = 0;

  constructor(readonly input: string, readonly inputShape: number[]) {
    this.perSample.set(input, inputShape.reduce((a, b) => a * b, 1));
  }

  /** A float initializer (a parameter, or a constant such as a shift mask). */
  param(name: string, shape: number[], data: Float32Array): string {
    const n = shape.reduce((a, b) => a * b, 1);
    if (data.length !== n) throw new Error(`model: parameter '${name}' has ${data.length} values, shape [${shape}] needs ${n}`);
    this.fresh(name);
    this.paramSize.set(name, n);
    this.inits.push(tensor(name, shape, data));
    return name;
  }

  /** Appends one op writing tensor `name`; a linear without a third input has no bias. */
  add(name: string, d: OpDesc, inputs: string[]): string {
    for (const i of inputs) if (!this.paramSize.has(i) && !this.perSample.has(i)) throw new Error(`model op '${name}': unknown input '${i}'`);
    this.fresh(name);
    const size = outSize(name, d, inputs.map((i) => this.paramSize.get(i) ?? this.perSample.get(i)!));
    this.emit(name, d, inputs);
    if (inputs.every((i) => this.paramSize.has(i))) this.paramSize.set(name, size); else this.perSample.set(name, size);
    return name;
  }

  /** The model with `output` as its [batch, classes] output 'logits' and the given metadata. */
  finish(output: string, metadata: Record<string, string>): Uint8Array {
    const per = this.perSample.get(output);
    if (per === undefined) throw new Error(`model: output '${output}' is not a batch tensor`);
    this.node('Reshape', [output, this.constI([-1, per])], [], 'logits');
    const dims = (ds: (number | string)[]) => ({ dim: ds.map((v) => (typeof v === 'string' ? { dimParam: v } : { dimValue: v })) });
    const model = onnx.ModelProto.create({
      irVersion: 8,
      producerName: 'swinq-train',
      opsetImport: [{ domain: '', version: 17 }],
      graph: {
        name: 'swin',
        node: this.nodes,
        initializer: this.inits,
        input: [{ name: this.input, type: { tensorType: { elemType: FLOAT, shape: dims(['batch', ...this.inputShape]) } } }],
        output: [{ name: 'logits', type: { tensorType: { elemType: FLOAT, shape: dims(['batch', per]) } } }],
      },
      metadataProps: Object.entries(metadata).map(([key, value]) => ({ key, value })),
    });
    return onnx.ModelProto.encode(model).finish();
  }

  private fresh(name: string): void {
    if (this.perSample.has(name) || this.paramSize.has(name)) throw new Error(`model: duplicate tensor '${name}'`);
  }

  private uniq(s: string): string { return `${s}__${this.k++}`; }

  private constI(vals: number[]): string {
    const n = this.uniq('const');
    this.inits.push(tensor(n, [vals.length], vals, true));
    return n;
  }

  private constF(what: string, v: number): string {
    const n = this.uniq(what);
    this.inits.push(tensor(n, [], [v]));
    return n;
  }

  private node(op: string, inputs: string[], attrs: object[] = [], out?: string): string {
    const o = out ?? this.uniq(op);
    this.nodes.push({ name: this.uniq(`${op}_node`), opType: op, input: inputs, output: [o], attribute: attrs });
    return o;
  }

  // shape of a tensor as [lead, ...rest]: batch tensors lead with -1, parameter-made ones with 1
  private reshape(t: string, rest: number[]): string {
    return this.node('Reshape', [t, this.constI([this.paramSize.has(t) ? 1 : -1, ...rest])]);
  }

  private emit(out: string, d: OpDesc, [a, b, c]: string[]): string {
    const A = onnx.AttributeProto.AttributeType;
    const f = (name: string, v: number) => ({ name, type: A.FLOAT, f: v });
    const i = (name: string, v: number) => ({ name, type: A.INT, i: v });
    const ints = (name: string, v: number[]) => ({ name, type: A.INTS, ints: v });
    switch (d.op) {
      case 'linear': {
        if (!c) return this.node('MatMul', [this.reshape(a, [d.K!]), b], [], out);
        return this.node('Add', [this.node('MatMul', [this.reshape(a, [d.K!]), b]), c], [], out);
      }
      case 'layernorm':
        return this.node('LayerNormalization', [this.reshape(a, [d.D!]), b, c], [i('axis', -1), f('epsilon', d.eps ?? 1e-5)], out);
      case 'matmul': {
        let bb = this.reshape(b, d.transB ? [d.N!, d.K!] : [d.K!, d.N!]);
        if (d.transB) bb = this.node('Transpose', [bb], [ints('perm', [0, 2, 1])]);
        const scaled = d.alpha !== undefined && d.alpha !== 1;
        const mm = this.node('MatMul', [this.reshape(a, [d.M!, d.K!]), bb], [], scaled ? undefined : out);
        return scaled ? this.node('Mul', [mm, this.constF('alpha', d.alpha!)], [], out) : mm;
      }
      case 'softmax': return this.node('Softmax', [this.reshape(a, [d.D!])], [i('axis', -1)], out);
      case 'add': {
        const per = this.perSample.get(a)!;
        return this.node('Add', [this.reshape(a, [per]), this.reshape(b, [per])], [], out);
      }
      case 'add_bcast': return this.node('Add', [this.reshape(a, d.dims!), this.reshape(b, d.bdims!)], [], out);
      case 'gather': {
        const B = d.block ?? 1;
        const idx = Array.from(d.idx!, (v) => {
          if (v < 0 || v % B) throw new Error(`model: gather '${out}' has padding or unaligned indices (not exportable)`);
          return v / B;
        });
        const ix = this.uniq(`${out}.indices`);
        this.inits.push(tensor(ix, [idx.length], idx, true));
        return this.node('Gather', [this.reshape(a, [d.xItem! / B, B]), ix], [i('axis', 1)], out);
      }
      case 'act': return this.act(out, d.fn!, a);
      case 'mean_pool':
        return this.node('ReduceMean', [this.reshape(a, [d.L!, d.C!])], [ints('axes', [1]), i('keepdims', 0)], out);
      default: throw new Error(`model: op '${d.op}' has no ONNX pattern here`);
    }
  }

  private act(out: string, fn: string, a: string): string {
    if (fn === 'relu') return this.node('Relu', [a], [], out);
    if (fn === 'sigmoid') return this.node('Sigmoid', [a], [], out);
    if (fn === 'tanh') return this.node('Tanh', [a], [], out);
    if (fn === 'silu') return this.node('Mul', [a, this.node('Sigmoid', [a])], [], out);
    if (fn === 'gelu') {
      const e = this.node('Erf', [this.node('Div', [a, this.constF('sqrt2', Math.SQRT2)])]);
      return this.node('Mul', [this.node('Mul', [a, this.node('Add', [e, this.constF('one', 1)])]), this.constF('half', 0.5)], [], out);
    }
    throw new Error(`model: activation '${fn}' has no ONNX mapping yet (use gelu, relu, silu, sigmoid or tanh)`);
  }
}
