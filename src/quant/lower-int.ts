// QDQ → integer-only plan, for chain models (MLP heads, ReLU MLPs): the graph input is quantized
// once (`quantize`), every MatMul/Gemm whose inputs are a Q→DQ activation and a DQ'd int8 constant
// becomes `linear_q` — bias folded to int32 at s_x·s_w[n], ReLU fused into the epilogue, requantized
// per output channel straight to the next QuantizeLinear's uint8 scale (dyadic multipliers from the
// native quantize_multiplier) — and the last GEMM's int32 accumulators are dequantized with the
// per-channel scales s_x·s_w[n]. Nothing in between is float. Reshape/Flatten/Identity/Dropout are
// free (element order unchanged). Anything else returns { ok: false, reason } naming the node, so the
// caller can fall back (Swin's attention/LayerNorm/residual lowering is not done: docs/quantization.md).
import fs from 'node:fs';
import { native, type PlanDescJS, type PlanOpDesc, type PlanTensorDesc } from '../native.js';
import { DType, OP_NAMES, OpKind, Storage } from '../plan/ops.js';
import { qdqSourceOf, rawQdqGraphOf } from './qdq-sim.js';
import { lowerSwinInt, stripQdq, SWIN_RANGES_KEY } from './lower-swin.js';
import type { Graph } from '../ir/graph.js';
import { decodeModel, type ModelProto } from './qdq-writer.js';

export type IntLowering = { ok: true; desc: PlanDescJS; outputDims: number[] } | { ok: false; reason: string };

interface Init { dims: number[]; type: number; data: Float64Array }

function toNum(v: unknown): number {
  return typeof v === 'number' ? v : v && typeof (v as { toNumber?: unknown }).toNumber === 'function' ? (v as { toNumber(): number }).toNumber() : Number(v ?? 0);
}

function decodeInit(t: ModelProto): Init | undefined {
  const dims = (t.dims ?? []).map(toNum);
  const n = dims.reduce((a: number, b: number) => a * b, 1);
  const raw: Uint8Array | undefined = t.rawData && t.rawData.length ? Uint8Array.from(t.rawData) : undefined;
  const type = t.dataType;
  let vals: ArrayLike<number> | undefined;
  if (raw) {
    const b = raw.buffer;
    vals = type === 1 ? new Float32Array(b) : type === 2 ? new Uint8Array(b) : type === 3 ? new Int8Array(b) : type === 6 ? new Int32Array(b)
      : type === 7 ? Array.from(new BigInt64Array(b), Number) : undefined;
  } else if (type === 1) vals = t.floatData;
  else if (type === 7) vals = (t.int64Data ?? []).map(toNum);
  else vals = t.int32Data;
  if (!vals || vals.length !== n) return undefined;
  return { dims, type, data: Float64Array.from(vals) };
}

const align = (n: number) => Math.ceil(n / 64) * 64;

/** Tries to lower a QDQ chain model for the given input dims. */
export function lowerQdqToIntPlan(src: string | Uint8Array, inputDims: number[], label?: string): IntLowering {
  const source = label ?? (typeof src === 'string' ? src : '<buffer>');
  const m = decodeModel(typeof src === 'string' ? fs.readFileSync(src) : src, source);
  const g = m.graph;
  const fail = (n: ModelProto | undefined, why: string): IntLowering =>
    ({ ok: false, reason: `${source}: ${n ? `node '${n.name}' (${n.opType}): ` : ''}${why}` });
  const inits = new Map<string, Init>();
  for (const t of g.initializer ?? []) { const d = decodeInit(t); if (d) inits.set(t.name, d); }
  const graphInputs = (g.input ?? []).filter((v: ModelProto) => !inits.has(v.name));
  if (graphInputs.length !== 1 || (g.output ?? []).length !== 1) return fail(undefined, 'needs one input and one output');
  const uses = new Map<string, number>();
  for (const n of g.node) for (const i of n.input ?? []) if (i) uses.set(i, (uses.get(i) ?? 0) + 1);
  const outName: string = g.output[0].name;

  const tensors: PlanTensorDesc[] = [];
  const ops: PlanOpDesc[] = [];
  const chunks: { off: number; bytes: Uint8Array }[] = [];
  let cbytes = 0, abytes = 0;
  const constant = (dtype: number, dims: number[], bytes: Uint8Array): number => {
    const off = align(cbytes);
    chunks.push({ off, bytes });
    cbytes = off + bytes.length;
    tensors.push({ dtype, dims, storage: Storage.constant, offset: off });
    return tensors.length - 1;
  };
  const arena = (dtype: number, dims: number[], size: number): number => {
    const off = align(abytes);
    abytes = off + dims.reduce((a, b) => a * b, 1) * size;
    tensors.push({ dtype, dims, storage: Storage.arena, offset: off });
    return tensors.length - 1;
  };
  tensors.push({ dtype: DType.f32, dims: [...inputDims], storage: Storage.input, offset: 0 });

  // value state: f32 graph input, u8 codes (scale, zp), or a pending GEMM (int32 accumulators)
  type Val =
    | { kind: 'f32'; id: number; dims: number[] }
    | { kind: 'u8'; id: number; dims: number[]; scale: number; zp: number }
    | { kind: 'acc'; x: Extract<Val, { kind: 'u8' }>; w: Int8Array; ws: Float64Array; K: number; N: number; M: number; bias: Float64Array; relu: boolean; name: string; dims: number[] };
  const vals = new Map<string, Val>();
  vals.set(graphInputs[0].name, { kind: 'f32', id: 0, dims: [...inputDims] });
  const qparams = (n: ModelProto): { s: number; zp: number; zpType: number } | undefined => {
    const s = inits.get(n.input[1]);
    const z = n.input[2] ? inits.get(n.input[2]) : undefined;
    if (!s || s.data.length !== 1 || (n.input[2] && (!z || z.data.length !== 1))) return undefined;
    return { s: s.data[0], zp: z ? z.data[0] : 0, zpType: z ? z.type : 2 };
  };
  // weights: DequantizeLinear of an int8 constant, per-channel or per-tensor, zero point 0
  const weights = new Map<string, { q: Init; scales: Float64Array; axis: number }>();
  const emitLinear = (a: Extract<Val, { kind: 'acc' }>, y: { scale: number; zp: number } | null): Val => {
    const { x, K, N, M } = a;
    const ratio = (n: number) => x.scale * a.ws[a.ws.length === 1 ? 0 : n];
    const bias = new Int32Array(N);
    for (let n = 0; n < N; n++) bias[n] = Math.round(a.bias[n] / ratio(n));
    const ins = [x.id, constant(DType.i8, [K, N], new Uint8Array(a.w.buffer)), constant(DType.i32, [N], new Uint8Array(bias.buffer))];
    if (y) {
      const mult = new Int32Array(N), shift = new Int32Array(N);
      for (let n = 0; n < N; n++) {
        const r = native.qQuantizeMultiplier(ratio(n) / y.scale);
        mult[n] = r.mult;
        shift[n] = r.shift;
      }
      ins.push(constant(DType.i32, [N], new Uint8Array(mult.buffer)), constant(DType.i32, [N], new Uint8Array(shift.buffer)));
      const out = arena(DType.u8, [M, N], 1);
      ops.push({ kind: OpKind.linear_q, inputs: ins, outputs: [out], ints: [M, K, N, x.zp, 0, y.zp, a.relu ? 1 : 0, 255], floats: [], name: a.name });
      return { kind: 'u8', id: out, dims: [...a.dims], scale: y.scale, zp: y.zp };
    }
    if (a.relu) return { kind: 'f32', id: -1, dims: [] }; // not reached: checked by the caller
    const out = arena(DType.i32, [M, N], 4);
    ops.push({ kind: OpKind.linear_q, inputs: ins, outputs: [out], ints: [M, K, N, x.zp, 0, 0, 0, 255], floats: [], name: a.name });
    const sc = new Float32Array(N);
    for (let n = 0; n < N; n++) sc[n] = ratio(n);
    const y32 = tensors.length;
    tensors.push({ dtype: DType.f32, dims: [...a.dims], storage: Storage.output, offset: 0 });
    ops.push({ kind: OpKind.dequantize, inputs: [out, constant(DType.f32, [N], new Uint8Array(sc.buffer))], outputs: [y32], ints: [0], floats: [1], name: `${a.name} (dequantize)` });
    return { kind: 'f32', id: y32, dims: [...a.dims] };
  };

  let finished = false;
  for (const n of g.node) {
    const op: string = n.opType;
    if (n.domain && n.domain !== 'ai.onnx') return fail(n, `domain '${n.domain}' is not supported`);
    if (op === 'DequantizeLinear' && inits.has(n.input[0])) {
      const q = inits.get(n.input[0])!;
      const s = inits.get(n.input[1]);
      const z = n.input[2] ? inits.get(n.input[2]) : undefined;
      const axisAttr = (n.attribute ?? []).find((a: ModelProto) => a.name === 'axis');
      let axis = axisAttr ? toNum(axisAttr.i) : 1;
      if (axis < 0) axis += q.dims.length;
      if (!s) return fail(n, 'scale must be a constant');
      if (q.type !== 3) {
        // int32 biases (onnxruntime quantize_static): a float constant for the Add that follows
        const C = s.data.length;
        const inner = C === 1 ? 1 : q.dims.slice(axis + 1).reduce((a, b) => a * b, 1);
        const data = Float64Array.from(q.data, (v, i) => { const c = C === 1 ? 0 : Math.floor(i / inner) % C; return (v - (z ? z.data[c] : 0)) * s.data[c]; });
        inits.set(n.output[0], { dims: q.dims, type: 1, data });
        continue;
      }
      if (z && z.data.some((v) => v !== 0)) return fail(n, 'int8 weights must have zero point 0');
      weights.set(n.output[0], { q, scales: s.data, axis });
      continue;
    }
    const x = vals.get(n.input[0]);
    if (!x) return fail(n, `input '${n.input[0]}' is not an integer value of the chain`);
    if ((uses.get(n.input[0]) ?? 0) > 1 && x.kind !== 'u8') return fail(n, `'${n.input[0]}' has more than one consumer`);
    const out: string = n.output[0];
    if (op === 'Flatten' || op === 'Reshape' || op === 'Identity' || op === 'Dropout') {
      if (x.kind === 'acc') return fail(n, 'movement between a GEMM and its bias/ReLU/quantize');
      let dims = x.dims;
      if (op === 'Flatten') {
        const ax = toNum((n.attribute ?? []).find((a: ModelProto) => a.name === 'axis')?.i ?? 1);
        dims = [x.dims.slice(0, ax).reduce((a, b) => a * b, 1), x.dims.slice(ax).reduce((a, b) => a * b, 1)];
      } else if (op === 'Reshape') {
        const sh = inits.get(n.input[1]);
        if (!sh) return fail(n, 'shape must be a constant');
        const total = x.dims.reduce((a, b) => a * b, 1);
        const d = Array.from(sh.data, (v, i) => (v === 0 ? x.dims[i] : v));
        const known = d.filter((v) => v !== -1).reduce((a, b) => a * b, 1);
        dims = d.map((v) => (v === -1 ? total / known : v));
      }
      vals.set(out, { ...x, dims } as Val);
      continue;
    }
    if (op === 'QuantizeLinear') {
      const p = qparams(n);
      if (!p || p.zpType !== 2) return fail(n, 'activations must be uint8 per tensor');
      if (x.kind === 'f32') {
        if (x.id !== 0) return fail(n, 'only the graph input is quantized from float');
        const y = arena(DType.u8, [...x.dims], 1);
        ops.push({ kind: OpKind.quantize, inputs: [0], outputs: [y], ints: [p.zp], floats: [p.s], name: n.name });
        vals.set(out, { kind: 'u8', id: y, dims: [...x.dims], scale: p.s, zp: p.zp });
      } else if (x.kind === 'acc') {
        vals.set(out, emitLinear(x, { scale: p.s, zp: p.zp }));
      } else return fail(n, 'requantizing uint8 → uint8 is not supported');
      continue;
    }
    if (op === 'DequantizeLinear') {
      const p = qparams(n);
      if (x.kind !== 'u8' || !p || p.s !== x.scale || p.zp !== x.zp) return fail(n, 'must undo the QuantizeLinear before it (same scale and zero point)');
      vals.set(out, x);
      continue;
    }
    if (op === 'MatMul' || op === 'Gemm') {
      const w = weights.get(n.input[1]);
      if (x.kind !== 'u8' || !w) return fail(n, 'needs a Q→DQ activation and DequantizeLinear int8 weights');
      const attr = (k: string, d: number) => { const a = (n.attribute ?? []).find((a: ModelProto) => a.name === k); return a ? (a.type === 1 ? a.f : toNum(a.i)) : d; };
      const transB = op === 'Gemm' ? attr('transB', 0) : 0;
      if (op === 'Gemm' && (attr('transA', 0) || attr('alpha', 1) !== 1 || attr('beta', 1) !== 1)) return fail(n, 'Gemm with transA/alpha/beta is not supported');
      if (w.q.dims.length !== 2) return fail(n, 'weights must be 2-D');
      const [K, N] = transB ? [w.q.dims[1], w.q.dims[0]] : w.q.dims;
      const chanAxis = transB ? 0 : 1;
      if (w.scales.length !== 1 && (w.scales.length !== N || w.axis !== chanAxis)) return fail(n, 'weight scales must be per tensor or per output channel');
      const xk = x.dims[x.dims.length - 1];
      if (xk !== K) return fail(n, `input has ${xk} features, weights expect ${K}`);
      const M = x.dims.reduce((a, b) => a * b, 1) / K;
      const wk = new Int8Array(K * N);
      for (let k = 0; k < K; k++) for (let j = 0; j < N; j++) wk[k * N + j] = w.q.data[transB ? j * K + k : k * N + j];
      const bias = new Float64Array(N);
      if (op === 'Gemm' && n.input[2]) {
        const c = inits.get(n.input[2]);
        if (!c || c.data.length !== N) return fail(n, 'bias must be a constant [N]');
        bias.set(c.data);
      }
      vals.set(out, { kind: 'acc', x, w: wk, ws: w.scales, K, N, M, bias, relu: false, name: n.name, dims: [...x.dims.slice(0, -1), N] });
      if (out === outName) { emitLinear(vals.get(out) as Extract<Val, { kind: 'acc' }>, null); finished = true; }
      continue;
    }
    if (op === 'Add' && x.kind === 'acc' && !x.relu) {
      const c = inits.get(n.input[1]);
      if (!c || c.data.length !== x.N) return fail(n, 'only a constant [N] bias can follow a GEMM');
      const bias = Float64Array.from(x.bias, (v, i) => v + c.data[i]);
      vals.set(out, { ...x, bias });
      if (out === outName) { emitLinear(vals.get(out) as Extract<Val, { kind: 'acc' }>, null); finished = true; }
      continue;
    }
    if (op === 'Relu' && x.kind === 'acc') {
      if (out === outName) return fail(n, 'a ReLU on the float output is not supported');
      vals.set(out, { ...x, relu: true });
      continue;
    }
    return fail(n, 'not supported by the integer-only chain lowering');
  }
  if (!finished) return fail(undefined, `output '${outName}' is not produced by a quantized GEMM`);
  const constants = new Uint8Array(align(cbytes));
  for (const c of chunks) constants.set(c.bytes, c.off);
  const outT = tensors.find((t) => t.storage === Storage.output)!;
  return {
    ok: true,
    desc: { tensors, ops, constants, arenaBytes: align(abytes), inputs: [0], outputs: [tensors.indexOf(outT)] },
    outputDims: outT.dims,
  };
}

// ---- InferenceSession hook: a QDQ graph remembers its file bytes (qdq-sim), and each plan compile
// first tries the integer-only lowering; Swin-shaped graphs still fall back to the fp32 simulation.
const lastReason = new WeakMap<object, string>();
const warned = new WeakSet<object>();
const stripped = new WeakMap<object, Graph>();
function swinLowering(graph: Graph, dims: number[]): IntLowering | undefined {
  const meta = graph.metadata?.[SWIN_RANGES_KEY];
  if (!meta) return undefined;
  let ranges: number[][];
  try { ranges = JSON.parse(meta); } catch { return { ok: false, reason: `${graph.source}: metadata ${SWIN_RANGES_KEY} is not valid JSON` }; }
  if (!Array.isArray(ranges) || ranges.some((x) => !Array.isArray(x) || (x.length !== 2 && x.length !== 4) || x.some((v) => typeof v !== 'number'))) {
    return { ok: false, reason: `${graph.source}: metadata ${SWIN_RANGES_KEY} must be a list of [min, max] or [min, max, lo, hi] entries` };
  }
  try {
    let g = stripped.get(graph);
    if (!g) { const raw = rawQdqGraphOf(graph); if (!raw) return undefined; g = stripQdq(raw); stripped.set(graph, g); }
    return lowerSwinInt(g, dims, ranges);
  } catch (e) { return { ok: false, reason: `${graph.source}: ${(e as Error).message}` }; }
}
/** Why the last integer-only lowering of this graph fell back (undefined if it did not). */
export function intLoweringFallback(graph: object): string | undefined { return lastReason.get(graph); }

export function compileQdqInt(graph: object, inputDims: Record<string, number[]>): {
  desc: PlanDescJS; outputDims: number[][]; outputTypes: string[];
  stats: { arenaBytes: number; constantBytes: number; onnxNodes: number; planOps: number; opCounts: Record<string, number>; extrapolated: boolean };
} | undefined {
  const bytes = qdqSourceOf(graph);
  if (!bytes || process.env.SWINQ_QDQ === 'simulate') return undefined;
  const dims = Object.values(inputDims);
  if (dims.length !== 1) return undefined;
  let r: IntLowering = lowerQdqToIntPlan(bytes, dims[0], (graph as { source?: string }).source);
  if (!r.ok) {
    // Swin-shaped graphs: the plan-level lowering (src/quant/lower-swin.ts), with the per-plan-op
    // ranges swinq calibrate stores in the file's metadata
    const sw = swinLowering(graph as Graph, dims[0]);
    if (!sw && !warned.has(graph)) {
      warned.add(graph);
      const src = (graph as { source?: string }).source ?? 'the QDQ file';
      process.stderr.write(`swinq: ${src}: running the fp32 simulation of the QDQ file (no integer-only plan: it has no ${SWIN_RANGES_KEY} metadata; \`swinq calibrate ${src} --data DIR --out Q.onnx\` adds it)\n`);
    }
    if (sw && !sw.ok) {
      if (!warned.has(graph)) { warned.add(graph); process.stderr.write(`swinq: no integer-only plan, running the fp32 simulation of the QDQ file: ${sw.reason}\n`); }
      r = { ok: false, reason: `${r.reason}; ${sw.reason}` };
    } else if (sw) r = sw;
  }
  if (!r.ok) { lastReason.set(graph, r.reason); return undefined; }
  lastReason.delete(graph);
  const opCounts: Record<string, number> = {};
  for (const o of r.desc.ops) opCounts[OP_NAMES[o.kind]] = (opCounts[OP_NAMES[o.kind]] ?? 0) + 1;
  return {
    desc: r.desc, outputDims: [r.outputDims], outputTypes: ['float32'],
    stats: { arenaBytes: r.desc.arenaBytes, constantBytes: r.desc.constants.length, onnxNodes: decodeModel(bytes, '<qdq>').graph.node.length, planOps: r.desc.ops.length, opCounts, extrapolated: false },
  };
}
