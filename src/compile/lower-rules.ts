// One lowering rule per op: how a fused node (domain 'swinq', from src/passes/fuse.ts) or an ONNX
// compute op becomes plan ops (src/plan/ops.ts). Movement ops never reach here — the Lowerer turns
// them into views (src/compile/lower.ts). Adding an op: a rule here, keyed `domain:opType`.
import { attrFloat, attrInt, attrInts, attrString, makeConst, numel, type ConstTensor, type Node } from '../ir/graph.js';
import { BinaryOp, ReduceOp, UnaryOp } from '../plan/ops.js';
import { allocMap, expand as expandMove, stridedMap } from '../passes/movement.js';
import { matmulDims, reduceAxes } from '../passes/specialize.js';
import { isIdentity, where, type Lowerer, type View } from './lower.js';

export type LowerRule = (L: Lowerer, n: Node) => void;

const cst = (n: Node, k: string) => n.attrs[k]?.value as ConstTensor | undefined;

/** swinq Linear: y = act(x·w + bias) + residual. */
function linearRule(L: Lowerer, n: Node): void {
  const wt = cst(n, 'w')!;
  const [K, N] = wt.dims;
  const x = L.tensorOf(n.inputs[0], n.name);
  const M = numel(L.tensors[x].dims) / K;
  if (!Number.isInteger(M)) throw new Error(`${where(n)}: input [${L.tensors[x].dims}] is not a multiple of K = ${K}`);
  const bias = n.attrs.bias ? L.constT(cst(n, 'bias')!) : -1;
  const res = n.inputs[1] ? L.tensorOf(n.inputs[1], n.name) : -1;
  const y = L.out0(n);
  L.emit('linear', [x, L.constT(wt), bias, res], [y], [M, K, N, attrInt(n, 'act')], [], n.name);
  L.setT(n.outputs[0], y);
}

function layerNormRule(L: Lowerer, n: Node): void {
  const D = attrInt(n, 'D');
  const x = L.tensorOf(n.inputs[0], n.name);
  const y = L.out0(n);
  const g = n.attrs.gamma ? L.constT(cst(n, 'gamma')!) : -1;
  const b = n.attrs.beta ? L.constT(cst(n, 'beta')!) : -1;
  L.emit('layernorm', [x, g, b], [y], [numel(L.info(n.outputs[0]).dims) / D, D], [attrFloat(n, 'eps')], n.name);
  L.setT(n.outputs[0], y);
}

function geluRule(L: Lowerer, n: Node): void {
  const y = L.out0(n);
  L.emit('unary', [L.tensorOf(n.inputs[0], n.name)], [y], [attrInt(n, 'approx') ? UnaryOp.gelu_tanh : UnaryOp.gelu_erf], [0, 0], n.name);
  L.setT(n.outputs[0], y);
}

/** swinq Softmax: softmax over the last dim after adding a constant bias table (attention masks). */
function fusedSoftmaxRule(L: Lowerer, n: Node): void {
  const od = L.info(n.outputs[0]).dims;
  const D = od[od.length - 1];
  const bias = cst(n, 'bias')!;
  const y = L.out0(n);
  L.emit('softmax', [L.tensorOf(n.inputs[0], n.name), L.constT(bias)], [y], [numel(od) / D, D, bias.dims[0]], [], n.name);
  L.setT(n.outputs[0], y);
}

/** swinq RowMap: whole rows of K elements, permuted (a movement: stays a view and composes). */
function rowMapRule(L: Lowerer, n: Node): void {
  const perm = cst(n, 'perm')!.data;
  const K = attrInt(n, 'K');
  const map = allocMap([perm.length, K]);
  for (let r = 0; r < perm.length; r++) for (let j = 0; j < K; j++) map[r * K + j] = perm[r] * K + j;
  L.setView(n.outputs[0], L.applyMove(n, [n.inputs[0]], { dims: L.info(n.outputs[0]).dims, map }));
}

/** Add/Sub/Mul/Div/Pow/Max/Min and variadic Sum, folded left. */
function binaryRule(code: number): LowerRule {
  return (L, n) => {
    const o = n.outputs[0];
    const present = n.inputs.filter((v) => v);
    if (present.length === 1) { L.setView(o, L.viewOf(present[0])); return; }
    let acc = present[0];
    let t = -1;
    for (let i = 1; i < present.length; i++) {
      t = L.binary(n, code, acc, present[i]);
      if (i < present.length - 1) {
        // intermediate result of a variadic op: give it a synthetic value
        const nm = `${o}#${i}`;
        L.s.values.set(nm, { dtype: 'float32', dims: L.tensors[t].dims });
        L.setT(nm, t);
        acc = nm;
      }
    }
    L.setT(o, t);
  };
}

/** Elementwise unary ops; `params` reads the op's two float parameters (ops.def: unary). */
function unaryRule(code: number, params: (L: Lowerer, n: Node) => number[] = () => [0, 0]): LowerRule {
  return (L, n) => {
    L.f32(n, n.inputs[0], 'input');
    const p = params(L, n);
    const y = L.out0(n);
    L.emit('unary', [L.tensorOf(n.inputs[0], n.name)], [y], [code], p, n.name);
    L.setT(n.outputs[0], y);
  };
}

function clipParams(L: Lowerer, n: Node): number[] {
  const lo = n.inputs[1] ? L.info(n.inputs[1]).const?.data[0] : -Infinity;
  const hi = n.inputs[2] ? L.info(n.inputs[2]).const?.data[0] : Infinity;
  if (lo === undefined || hi === undefined) throw new Error(`${where(n)}: min/max must be constant`);
  return [Math.max(lo, -3.4e38), Math.min(hi, 3.4e38)];
}

/** y[t] = alpha · a[t]·op(b[t]) with numpy broadcasting of the batch dims. */
function emitMatmul(L: Lowerer, n: Node, a: string, b: string, alpha: number, transB: number): number {
  const w = where(n);
  L.f32(n, a, 'A');
  L.f32(n, b, 'B');
  const ai = L.info(a);
  const bi = L.info(b);
  const bd = transB ? [...bi.dims.slice(0, -2), bi.dims[bi.dims.length - 1], bi.dims[bi.dims.length - 2]] : bi.dims;
  const { M, K, N, batch } = matmulDims(ai.dims, bd, w);
  const B = numel(batch);
  const aD = ai.dims.length === 1 ? [1, ai.dims[0]] : ai.dims;
  const bD = bi.dims.length === 1 ? [bi.dims[0], 1] : bi.dims;
  const operand = (v: string, dims: number[]): { t: number; stride: number } => {
    const bt = dims.slice(0, -2);
    const mk = numel(dims.slice(-2));
    if (numel(bt) === 1) return { t: L.tensorOf(v, n.name), stride: 0 };
    if (numel(bt) === B) return { t: L.tensorOf(v, n.name), stride: mk };
    // partial broadcast: materialize the expanded operand
    const ex = L.applyMove(n, [v], expandMove(dims, [...batch, ...dims.slice(-2)], w));
    return { t: L.materialize(ex, n.name), stride: mk };
  };
  const A = operand(a, aD);
  const Bo = operand(b, bD);
  const y = L.out0(n);
  if (L.info(n.outputs[0]).dims.length === 0 || numel(L.tensors[y].dims) !== B * M * N) throw new Error(`${w}: internal matmul size mismatch`);
  L.emit('matmul', [A.t, Bo.t], [y], [B, M, K, N, transB, A.stride, Bo.stride], [alpha], n.name);
  return y;
}

function softmaxRule(L: Lowerer, n: Node): void {
  const x = L.info(n.inputs[0]);
  L.f32(n, n.inputs[0], 'input');
  const axis = attrInt(n, 'axis', -1);
  const a = axis < 0 ? axis + x.dims.length : axis;
  if (x.dims.slice(a + 1).some((d) => d !== 1)) throw new Error(`${where(n)}: softmax over axis ${axis} that is not the last is not supported`);
  const D = x.dims[a];
  const y = L.out0(n);
  L.emit('softmax', [L.tensorOf(n.inputs[0], n.name), -1], [y], [numel(x.dims) / D, D, 1], [], n.name);
  L.setT(n.outputs[0], y);
}

/**
 * A reduction of a permuted view is a reduction of its source with other (outer, inner) sizes when
 * every output's inputs form one stride-I' run there; returns that and the output permutation.
 */
function reduceThroughView(L: Lowerer, v: View, O: number, R: number, I: number): { t: number; O: number; I: number; outMap: Int32Array | null } | undefined {
  if (!v.map || v.srcs.length !== 1 || R < 2) return undefined;
  const X = numel(L.tensors[v.srcs[0]].dims);
  const map = v.map;
  if (map.length !== X || X !== O * R * I) return undefined;
  const base0 = map[0];
  const I2 = map[I] - base0;
  if (I2 <= 0 || X % (R * I2) !== 0) return undefined;
  const O2 = X / (R * I2);
  const outMap = new Int32Array(O * I);
  for (let o = 0; o < O; o++) {
    for (let i = 0; i < I; i++) {
      const b = map[o * R * I + i];
      if (b < 0 || Math.floor(b / I2) % R !== 0) return undefined;
      for (let r = 1; r < R; r++) if (map[(o * R + r) * I + i] !== b + r * I2) return undefined;
      outMap[o * I + i] = Math.floor(b / (R * I2)) * I2 + (b % I2);
    }
  }
  return { t: v.srcs[0], O: O2, I: I2, outMap: isIdentity(outMap) ? null : outMap };
}

/** Reduce{Mean,Sum,Max,Min} and Global{Average,Max}Pool over one run of adjacent axes. */
function reduceRule(kind: number): LowerRule {
  return (L, n) => {
    const op = n.opType;
    const o = n.outputs[0];
    const od = L.info(o).dims;
    const x = L.info(n.inputs[0]);
    L.f32(n, n.inputs[0], 'input');
    const axes = op.startsWith('Global') ? x.dims.map((_, i) => i).slice(2) : reduceAxes(n, n.inputs.map((v) => (v ? L.info(v) : undefined)), L.opset)!;
    if (axes.length === 0) { L.setView(o, { ...L.viewOf(n.inputs[0]), dims: od }); return; }
    const real = axes.filter((a) => x.dims[a] !== 1);
    const lo = real.length ? Math.min(...real) : axes[0];
    const hi = real.length ? Math.max(...real) : axes[0];
    for (let a = lo; a <= hi; a++) if (!axes.includes(a) && x.dims[a] !== 1) throw new Error(`${where(n)}: reduction over non-adjacent axes [${axes}] is not supported`);
    const O = numel(x.dims.slice(0, lo));
    const R = numel(x.dims.slice(lo, hi + 1));
    const I = numel(x.dims.slice(hi + 1));
    const src = reduceThroughView(L, L.viewOf(n.inputs[0]), O, R, I);
    if (src) {
      // reduce the source in its own layout; the (small) result is permuted by a view if needed
      const red = L.newArena('float32', [src.O * src.I]);
      L.emit('reduce', [src.t], [red], [src.O, R, src.I, kind], [], n.name);
      L.setView(o, { srcs: [red], map: src.outMap, dims: od, dtype: 'float32' });
      return;
    }
    const y = L.out0(n);
    L.emit('reduce', [L.tensorOf(n.inputs[0], n.name)], [y], [O, R, I, kind], [], n.name);
    L.setT(o, y);
  };
}

function argmaxRule(L: Lowerer, n: Node): void {
  const x = L.info(n.inputs[0]);
  L.f32(n, n.inputs[0], 'input');
  const a = attrInt(n, 'axis', 0);
  const ax = a < 0 ? a + x.dims.length : a;
  if (attrInt(n, 'select_last_index', 0)) throw new Error(`${where(n)}: select_last_index=1 is not supported`);
  if (x.dims.slice(ax + 1).some((d) => d !== 1)) throw new Error(`${where(n)}: argmax over axis ${a} that is not the last is not supported`);
  const y = L.out0(n);
  L.emit('argmax', [L.tensorOf(n.inputs[0], n.name)], [y], [numel(x.dims) / x.dims[ax], x.dims[ax]], [], n.name);
  L.setT(n.outputs[0], y);
}

function castRule(L: Lowerer, n: Node): void {
  if (L.info(n.outputs[0]).dtype === 'bool') throw new Error(`${where(n)}: cast to bool on run-time data is not supported`);
  const y = L.out0(n);
  L.emit('cast', [L.tensorOf(n.inputs[0], n.name)], [y], [], [], n.name);
  L.setT(n.outputs[0], y);
}

/** Conv pads after auto_pad (SAME_UPPER/SAME_LOWER/VALID/explicit). */
function convPads(n: Node, xd: number[], wd: number[], od: number[], st: number[], dl: number[]): number[] {
  const ap = attrString(n, 'auto_pad', 'NOTSET');
  if (ap === 'VALID') return [0, 0, 0, 0];
  if (ap !== 'SAME_UPPER' && ap !== 'SAME_LOWER') return attrInts(n, 'pads') ?? [0, 0, 0, 0];
  const tot = [0, 1].map((i) => Math.max(0, (od[2 + i] - 1) * st[i] + (wd[2 + i] - 1) * dl[i] + 1 - xd[2 + i]));
  const lo = tot.map((t) => t >> 1);
  const hi = tot.map((t) => t - (t >> 1));
  return ap === 'SAME_UPPER' ? [lo[0], lo[1], hi[0], hi[1]] : [hi[0], hi[1], lo[0], lo[1]];
}

/** 2-D Conv as im2col (one index_map) + one linear; the NCHW result is a view of its [N·OH·OW, O] rows. */
function convRule(L: Lowerer, n: Node): void {
  const w = where(n);
  L.f32(n, n.inputs[0], 'input');
  const x = L.info(n.inputs[0]);
  const wt = L.info(n.inputs[1]).const;
  const od = L.info(n.outputs[0]).dims;
  if (!wt || wt.dtype !== 'float32') throw new Error(`${w}: the weight must be a float32 constant`);
  if (x.dims.length !== 4) throw new Error(`${w}: only 2-D convolution is supported (input rank ${x.dims.length})`);
  if (attrInt(n, 'group', 1) !== 1) throw new Error(`${w}: grouped convolution (group=${attrInt(n, 'group', 1)}) is not supported`);
  const [Nb, C, H, W] = x.dims;
  const [O, Cw, kh, kw] = wt.dims;
  if (Cw !== C) throw new Error(`${w}: weight has ${Cw} input channels, input has ${C}`);
  const [, , OH, OW] = od;
  const st = attrInts(n, 'strides') ?? [1, 1];
  const dl = attrInts(n, 'dilations') ?? [1, 1];
  const pads = convPads(n, x.dims, wt.dims, od, st, dl);
  // im2col: rows (n, oh, ow), columns (c, i, j)
  const K = C * kh * kw;
  const map = allocMap([Nb * OH * OW, K]);
  let q = 0;
  for (let b = 0; b < Nb; b++) for (let y = 0; y < OH; y++) for (let xx = 0; xx < OW; xx++) {
    for (let c = 0; c < C; c++) for (let i = 0; i < kh; i++) for (let j = 0; j < kw; j++) {
      const iy = y * st[0] - pads[0] + i * dl[0];
      const ix = xx * st[1] - pads[1] + j * dl[1];
      map[q++] = iy < 0 || iy >= H || ix < 0 || ix >= W ? -1 : ((b * C + c) * H + iy) * W + ix;
    }
  }
  const cols = L.materialize(L.applyMove(n, [n.inputs[0]], { dims: [Nb * OH * OW, K], map }), n.name);
  const wk = makeConst('float32', [K, O]);
  for (let oc = 0; oc < O; oc++) for (let k = 0; k < K; k++) wk.data[k * O + oc] = wt.data[oc * K + k];
  const bias = n.inputs[2] ? L.info(n.inputs[2]).const : undefined;
  if (n.inputs[2] && !bias) throw new Error(`${w}: the bias must be constant`);
  const y = L.newArena('float32', [Nb * OH * OW, O]);
  L.emit('linear', [cols, L.constT(wk), bias ? L.constT(bias) : -1, -1], [y], [Nb * OH * OW, K, O, 0], [], n.name);
  // [N, OH, OW, O] → NCHW as a view (a following NHWC permute composes to an alias)
  L.setView(n.outputs[0], { srcs: [y], map: stridedMap(od, [OH * OW * O, 1, OW * O, O], 0), dims: od, dtype: 'float32' });
}

const UNARY: Record<string, number> = {
  Relu: UnaryOp.relu, Erf: UnaryOp.erf, Sigmoid: UnaryOp.sigmoid, Tanh: UnaryOp.tanh, Exp: UnaryOp.exp, Log: UnaryOp.log,
  Sqrt: UnaryOp.sqrt, Neg: UnaryOp.neg, Abs: UnaryOp.abs, Reciprocal: UnaryOp.reciprocal, HardSwish: UnaryOp.hardswish,
  Softplus: UnaryOp.softplus, Floor: UnaryOp.floor, Ceil: UnaryOp.ceil, Round: UnaryOp.round, Mish: UnaryOp.mish,
};
const BINARY: Record<string, number> = {
  Add: BinaryOp.add, Sub: BinaryOp.sub, Mul: BinaryOp.mul, Div: BinaryOp.div, Pow: BinaryOp.pow, Max: BinaryOp.max, Min: BinaryOp.min, Sum: BinaryOp.add,
};

export const LOWER_RULES: Record<string, LowerRule> = {
  'swinq:Linear': linearRule,
  'swinq:LayerNorm': layerNormRule,
  'swinq:Gelu': geluRule,
  'swinq:Softmax': fusedSoftmaxRule,
  'swinq:MatMul': (L, n) => L.setT(n.outputs[0], emitMatmul(L, n, n.inputs[0], n.inputs[1], attrFloat(n, 'alpha'), attrInt(n, 'transB'))),
  'swinq:RowMap': rowMapRule,
  ...Object.fromEntries(Object.entries(BINARY).map(([op, code]) => [`:${op}`, binaryRule(code)])),
  ...Object.fromEntries(Object.entries(UNARY).map(([op, code]) => [`:${op}`, unaryRule(code)])),
  ':Clip': unaryRule(UnaryOp.clip, clipParams),
  ':LeakyRelu': unaryRule(UnaryOp.leaky_relu, (_, n) => [attrFloat(n, 'alpha', 0.01), 0]),
  ':Elu': unaryRule(UnaryOp.elu, (_, n) => [attrFloat(n, 'alpha', 1), 0]),
  ':HardSigmoid': unaryRule(UnaryOp.hardsigmoid, (_, n) => [attrFloat(n, 'alpha', 0.2), attrFloat(n, 'beta', 0.5)]),
  ':MatMul': (L, n) => L.setT(n.outputs[0], emitMatmul(L, n, n.inputs[0], n.inputs[1], 1, 0)),
  ':Gemm': (_, n) => { throw new Error(`${where(n)}: Gemm is only supported with a constant B and a per-column C`); },
  ':Softmax': softmaxRule,
  ':LayerNormalization': (L, n) => { L.f32(n, n.inputs[0], 'input'); throw new Error(`${where(n)}: LayerNormalization needs constant per-channel scale/bias`); },
  ':ReduceMean': reduceRule(ReduceOp.mean),
  ':GlobalAveragePool': reduceRule(ReduceOp.mean),
  ':ReduceSum': reduceRule(ReduceOp.sum),
  ':ReduceMax': reduceRule(ReduceOp.max),
  ':GlobalMaxPool': reduceRule(ReduceOp.max),
  ':ReduceMin': reduceRule(ReduceOp.min),
  ':ArgMax': argmaxRule,
  ':Cast': castRule,
  ':CastLike': castRule,
  ':Conv': convRule,
};
