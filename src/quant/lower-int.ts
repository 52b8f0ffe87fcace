// QDQ → integer-only plan, for chain models (MLP heads, ReLU MLPs): the graph input is quantized
// once (`quantize`), every MatMul/Gemm whose inputs are a Q→DQ activation and a DQ'd int8 constant
// becomes `linear_q` — bias folded to int32 at s_x·s_w[n], ReLU fused into the epilogue, requantized
// per output channel straight to the next QuantizeLinear's uint8 scale (dyadic multipliers from the
// native quantize_multiplier) — and the last GEMM's int32 accumulators are dequantized with the
// per-channel scales s_x·s_w[n]. Nothing in between is float. Reshape/Flatten/Identity/Dropout are
// free (element order unchanged). It reads the file's own scales and zero points (any QDQ writer).
// Anything else returns { ok: false, reason } naming the node; transformer graphs go through the
// plan-level lowering (src/quant/integer-lowering.ts) instead (src/runtime/model-compiler.ts tries both).
import { native, type PlanDescJS, type PlanOpDesc, type PlanTensorDesc } from '../native.js';
import { DType, OpKind, Storage } from '../plan/ops.js';
import type { ConstTensor, Graph, Node } from '../ir/graph.js';
import { loadModel } from '../onnx/load.js';

export type IntLowering = { ok: true; desc: PlanDescJS; outputDims: number[] } | { ok: false; reason: string; node?: string; op?: string };

interface Init { dims: number[]; dtype: string; data: ArrayLike<number> }
const initOf = (c: ConstTensor): Init => ({ dims: c.dims, dtype: c.dtype, data: c.data });

const align = (n: number) => Math.ceil(n / 64) * 64;

type U8 = { kind: 'u8'; id: number; dims: number[]; scale: number; zp: number };
type Acc = { kind: 'acc'; x: U8; w: Int8Array; ws: ArrayLike<number>; K: number; N: number; M: number; bias: Float64Array; relu: boolean; name: string; dims: number[] };
// value state: f32 graph input, u8 codes (scale, zp), or a pending GEMM (int32 accumulators)
type Val = { kind: 'f32'; id: number; dims: number[] } | U8 | Acc;
type Step = { ok: true } | Extract<IntLowering, { ok: false }>;
const OK: Step = { ok: true };

const attrNum = (n: Node, k: string, d: number): number => { const a = n.attrs[k]; return a ? (a.value as number) : d; };

/** The plan being built: tensors, ops, the constant region and the value states of the chain. */
class ChainLowering {
  readonly tensors: PlanTensorDesc[] = [];
  readonly ops: PlanOpDesc[] = [];
  private readonly chunks: { off: number; bytes: Uint8Array }[] = [];
  private cbytes = 0;
  private abytes = 0;
  readonly inits = new Map<string, Init>();
  readonly vals = new Map<string, Val>();
  // weights: DequantizeLinear of an int8 constant, per-channel or per-tensor, zero point 0
  private readonly weights = new Map<string, { q: Init; scales: ArrayLike<number>; axis: number }>();
  finished = false;

  constructor(readonly g: Graph, inputDims: number[]) {
    for (const [k, c] of g.initializers) this.inits.set(k, initOf(c));
    this.tensors.push({ dtype: DType.f32, dims: [...inputDims], storage: Storage.input, offset: 0 });
    this.vals.set(g.inputs[0].name, { kind: 'f32', id: 0, dims: [...inputDims] });
  }

  fail(n: Node | undefined, why: string): Extract<IntLowering, { ok: false }> {
    return { ok: false, reason: `${this.g.source}: ${n ? `node '${n.name}' (${n.opType}): ` : ''}${why}`, node: n?.name, op: n?.opType };
  }

  constant(dtype: number, dims: number[], bytes: Uint8Array): number {
    const off = align(this.cbytes);
    this.chunks.push({ off, bytes });
    this.cbytes = off + bytes.length;
    this.tensors.push({ dtype, dims, storage: Storage.constant, offset: off });
    return this.tensors.length - 1;
  }

  arena(dtype: number, dims: number[], size: number): number {
    const off = align(this.abytes);
    this.abytes = off + dims.reduce((a, b) => a * b, 1) * size;
    this.tensors.push({ dtype, dims, storage: Storage.arena, offset: off });
    return this.tensors.length - 1;
  }

  qparams(n: Node): { s: number; zp: number; zpType: string } | undefined {
    const s = this.inits.get(n.inputs[1]);
    const z = n.inputs[2] ? this.inits.get(n.inputs[2]) : undefined;
    if (!s || s.data.length !== 1 || (n.inputs[2] && (!z || z.data.length !== 1))) return undefined;
    return { s: s.data[0], zp: z ? z.data[0] : 0, zpType: z ? z.dtype : 'uint8' };
  }

  /** A pending GEMM as linear_q: requantized to y's u8 scale, or (y null, the output) int32 then dequantized. */
  emitLinear(a: Acc, y: { scale: number; zp: number } | null): Val {
    const { x, K, N, M } = a;
    const ratio = (n: number) => x.scale * a.ws[a.ws.length === 1 ? 0 : n];
    const bias = new Int32Array(N);
    for (let n = 0; n < N; n++) bias[n] = Math.round(a.bias[n] / ratio(n));
    const ins = [x.id, this.constant(DType.i8, [K, N], new Uint8Array(a.w.buffer)), this.constant(DType.i32, [N], new Uint8Array(bias.buffer))];
    if (y) {
      const mult = new Int32Array(N), shift = new Int32Array(N);
      for (let n = 0; n < N; n++) {
        const r = native.qQuantizeMultiplier(ratio(n) / y.scale);
        mult[n] = r.mult;
        shift[n] = r.shift;
      }
      ins.push(this.constant(DType.i32, [N], new Uint8Array(mult.buffer)), this.constant(DType.i32, [N], new Uint8Array(shift.buffer)));
      const out = this.arena(DType.u8, [M, N], 1);
      this.ops.push({ kind: OpKind.linear_q, inputs: ins, outputs: [out], ints: [M, K, N, x.zp, 0, y.zp, a.relu ? 1 : 0, 255], floats: [], name: a.name });
      return { kind: 'u8', id: out, dims: [...a.dims], scale: y.scale, zp: y.zp };
    }
    const out = this.arena(DType.i32, [M, N], 4);
    this.ops.push({ kind: OpKind.linear_q, inputs: ins, outputs: [out], ints: [M, K, N, x.zp, 0, 0, 0, 255], floats: [], name: a.name });
    const sc = new Float32Array(N);
    for (let n = 0; n < N; n++) sc[n] = ratio(n);
    const y32 = this.tensors.length;
    this.tensors.push({ dtype: DType.f32, dims: [...a.dims], storage: Storage.output, offset: 0 });
    this.ops.push({ kind: OpKind.dequantize, inputs: [out, this.constant(DType.f32, [N], new Uint8Array(sc.buffer))], outputs: [y32], ints: [0], floats: [1], name: `${a.name} (dequantize)` });
    return { kind: 'f32', id: y32, dims: [...a.dims] };
  }

  /** A DequantizeLinear of a constant: int8 weights (kept for the GEMM) or an int32 bias (folded to float). */
  weight(n: Node): Step {
    const q = this.inits.get(n.inputs[0])!;
    const s = this.inits.get(n.inputs[1]);
    const z = n.inputs[2] ? this.inits.get(n.inputs[2]) : undefined;
    let axis = attrNum(n, 'axis', 1);
    if (axis < 0) axis += q.dims.length;
    if (!s) return this.fail(n, 'scale must be a constant');
    if (q.dtype !== 'int8') {
      // int32 biases (onnxruntime quantize_static): a float constant for the Add that follows
      const C = s.data.length;
      const inner = C === 1 ? 1 : q.dims.slice(axis + 1).reduce((a, b) => a * b, 1);
      const data = Float64Array.from(q.data, (v, i) => { const c = C === 1 ? 0 : Math.floor(i / inner) % C; return (v - (z ? z.data[c] : 0)) * s.data[c]; });
      this.inits.set(n.outputs[0], { dims: q.dims, dtype: 'float32', data });
      return OK;
    }
    if (z && Array.from(z.data).some((v) => v !== 0)) return this.fail(n, 'int8 weights must have zero point 0');
    this.weights.set(n.outputs[0], { q, scales: s.data, axis });
    return OK;
  }

  /** Flatten/Reshape/Identity/Dropout: element order unchanged, only the dims. */
  move(n: Node, x: Val): Step {
    if (x.kind === 'acc') return this.fail(n, 'movement between a GEMM and its bias/ReLU/quantize');
    let dims = x.dims;
    if (n.opType === 'Flatten') {
      const ax = attrNum(n, 'axis', 1);
      dims = [x.dims.slice(0, ax).reduce((a, b) => a * b, 1), x.dims.slice(ax).reduce((a, b) => a * b, 1)];
    } else if (n.opType === 'Reshape') {
      const sh = this.inits.get(n.inputs[1]);
      if (!sh) return this.fail(n, 'shape must be a constant');
      const total = x.dims.reduce((a, b) => a * b, 1);
      const d = Array.from(sh.data, (v, i) => (v === 0 ? x.dims[i] : v));
      const known = d.filter((v) => v !== -1).reduce((a, b) => a * b, 1);
      dims = d.map((v) => (v === -1 ? total / known : v));
    }
    this.vals.set(n.outputs[0], { ...x, dims } as Val);
    return OK;
  }

  quantize(n: Node, x: Val): Step {
    const p = this.qparams(n);
    if (!p || p.zpType !== 'uint8') return this.fail(n, 'activations must be uint8 per tensor');
    if (x.kind === 'f32') {
      if (x.id !== 0) return this.fail(n, 'only the graph input is quantized from float');
      const y = this.arena(DType.u8, [...x.dims], 1);
      this.ops.push({ kind: OpKind.quantize, inputs: [0], outputs: [y], ints: [p.zp], floats: [p.s], name: n.name });
      this.vals.set(n.outputs[0], { kind: 'u8', id: y, dims: [...x.dims], scale: p.s, zp: p.zp });
      return OK;
    }
    if (x.kind === 'acc') { this.vals.set(n.outputs[0], this.emitLinear(x, { scale: p.s, zp: p.zp })); return OK; }
    return this.fail(n, 'requantizing uint8 → uint8 is not supported');
  }

  dequantize(n: Node, x: Val): Step {
    const p = this.qparams(n);
    if (x.kind !== 'u8' || !p || p.s !== x.scale || p.zp !== x.zp) return this.fail(n, 'must undo the QuantizeLinear before it (same scale and zero point)');
    this.vals.set(n.outputs[0], x);
    return OK;
  }

  gemm(n: Node, x: Val): Step {
    const op = n.opType;
    const w = this.weights.get(n.inputs[1]);
    if (x.kind !== 'u8' || !w) return this.fail(n, 'needs a Q→DQ activation and DequantizeLinear int8 weights');
    const attr = (k: string, d: number) => attrNum(n, k, d);
    const transB = op === 'Gemm' ? attr('transB', 0) : 0;
    if (op === 'Gemm' && (attr('transA', 0) || attr('alpha', 1) !== 1 || attr('beta', 1) !== 1)) return this.fail(n, 'Gemm with transA/alpha/beta is not supported');
    if (w.q.dims.length !== 2) return this.fail(n, 'weights must be 2-D');
    const [K, N] = transB ? [w.q.dims[1], w.q.dims[0]] : w.q.dims;
    const chanAxis = transB ? 0 : 1;
    if (w.scales.length !== 1 && (w.scales.length !== N || w.axis !== chanAxis)) return this.fail(n, 'weight scales must be per tensor or per output channel');
    const xk = x.dims[x.dims.length - 1];
    if (xk !== K) return this.fail(n, `input has ${xk} features, weights expect ${K}`);
    const M = x.dims.reduce((a, b) => a * b, 1) / K;
    const wk = new Int8Array(K * N);
    for (let k = 0; k < K; k++) for (let j = 0; j < N; j++) wk[k * N + j] = w.q.data[transB ? j * K + k : k * N + j];
    const bias = new Float64Array(N);
    if (op === 'Gemm' && n.inputs[2]) {
      const c = this.inits.get(n.inputs[2]);
      if (!c || c.data.length !== N) return this.fail(n, 'bias must be a constant [N]');
      bias.set(c.data);
    }
    this.setAcc(n.outputs[0], { kind: 'acc', x, w: wk, ws: w.scales, K, N, M, bias, relu: false, name: n.name, dims: [...x.dims.slice(0, -1), N] });
    return OK;
  }

  addBias(n: Node, x: Acc): Step {
    const c = this.inits.get(n.inputs[1]);
    if (!c || c.data.length !== x.N) return this.fail(n, 'only a constant [N] bias can follow a GEMM');
    this.setAcc(n.outputs[0], { ...x, bias: Float64Array.from(x.bias, (v, i) => v + c.data[i]) });
    return OK;
  }

  /** A pending GEMM; when it is the graph output, it is emitted at once (int32 → dequantize). */
  private setAcc(out: string, a: Acc): void {
    this.vals.set(out, a);
    if (out === this.g.outputs[0].name) { this.emitLinear(a, null); this.finished = true; }
  }

  desc(): Extract<IntLowering, { ok: true }> {
    const constants = new Uint8Array(align(this.cbytes));
    for (const c of this.chunks) constants.set(c.bytes, c.off);
    const outT = this.tensors.find((t) => t.storage === Storage.output)!;
    return {
      ok: true,
      desc: { tensors: this.tensors, ops: this.ops, constants, arenaBytes: align(this.abytes), inputs: [0], outputs: [this.tensors.indexOf(outT)] },
      outputDims: outT.dims,
    };
  }
}

/** One node of the chain; a failure names it. */
function lowerChainNode(c: ChainLowering, n: Node, uses: Map<string, number>): Step {
  const op = n.opType;
  if (n.domain && n.domain !== 'ai.onnx') return c.fail(n, `domain '${n.domain}' is not supported`);
  if (op === 'DequantizeLinear' && c.inits.has(n.inputs[0])) return c.weight(n);
  const x = c.vals.get(n.inputs[0]);
  if (!x) return c.fail(n, `input '${n.inputs[0]}' is not an integer value of the chain`);
  if ((uses.get(n.inputs[0]) ?? 0) > 1 && x.kind !== 'u8') return c.fail(n, `'${n.inputs[0]}' has more than one consumer`);
  if (op === 'Flatten' || op === 'Reshape' || op === 'Identity' || op === 'Dropout') return c.move(n, x);
  if (op === 'QuantizeLinear') return c.quantize(n, x);
  if (op === 'DequantizeLinear') return c.dequantize(n, x);
  if (op === 'MatMul' || op === 'Gemm') return c.gemm(n, x);
  if (op === 'Add' && x.kind === 'acc' && !x.relu) return c.addBias(n, x);
  if (op === 'Relu' && x.kind === 'acc') {
    if (n.outputs[0] === c.g.outputs[0].name) return c.fail(n, 'a ReLU on the float output is not supported');
    c.vals.set(n.outputs[0], { ...x, relu: true });
    return OK;
  }
  return c.fail(n, 'not supported by the integer-only chain lowering');
}

/** Tries to lower a QDQ chain model (its graph as loaded, Q/DQ intact; or a file/bytes) for the given input dims. */
export function lowerQdqToIntPlan(src: Graph | string | Uint8Array, inputDims: number[]): IntLowering {
  const g = typeof src === 'string' || src instanceof Uint8Array ? loadModel(src) : src;
  const c = new ChainLowering(g, inputDims);
  if (g.inputs.length !== 1 || g.outputs.length !== 1) return c.fail(undefined, 'needs one input and one output');
  const uses = new Map<string, number>();
  for (const n of g.nodes) for (const i of n.inputs) if (i) uses.set(i, (uses.get(i) ?? 0) + 1);
  for (const n of g.nodes) {
    const r = lowerChainNode(c, n, uses);
    if (!r.ok) return r;
  }
  if (!c.finished) return c.fail(undefined, `output '${g.outputs[0].name}' is not produced by a quantized GEMM`);
  return c.desc();
}
