// Specialization for concrete input shapes: one walk over the graph infers every value's dtype and
// dims and folds every node whose inputs are all constant (shape sub-graphs, masks, index tables) with
// a small evaluator. What is left is the dynamic part: nodes that depend on a graph input.
import {
  attrFloat, attrInt, attrInts, attrString, castValue, isFloat, makeConst, MAX_ELEMENTS, numel, ONNX_DTYPE,
  type ConstTensor, type DT, type Graph, type Node,
} from '../ir/graph.js';
import {
  broadcastDims, broadcastStrides, concat, expand, gather, normAxis, pad, reshapeDims, slice, stridedMap,
  tile, transpose, type Move,
} from './movement.js';

export interface VInfo { dtype: DT; dims: number[]; const?: ConstTensor }

export interface Specialized {
  source: string;
  values: Map<string, VInfo>;
  /** Nodes with at least one dynamic output, in topological order. */
  nodes: Node[];
  inputs: string[];
  outputs: string[];
  onnxNodes: number;
  opset: number;
  /** Index maps of the data-movement nodes, computed once during specialization. */
  moves: Map<Node, { data: number[]; moves: Move[] }>;
}

const where = (n: Node) => `node '${n.name}' (${n.opType})`;

export const BINARY_OPS = new Set(['Add', 'Sub', 'Mul', 'Div', 'Pow', 'Mod', 'Equal', 'Less', 'LessOrEqual', 'Greater',
  'GreaterOrEqual', 'And', 'Or', 'Xor', 'Max', 'Min', 'Sum', 'Mean', 'BitShift']);
const COMPARE = new Set(['Equal', 'Less', 'LessOrEqual', 'Greater', 'GreaterOrEqual', 'And', 'Or', 'Xor', 'Not']);
export const UNARY_OPS = new Set(['Relu', 'Gelu', 'Erf', 'Sigmoid', 'Tanh', 'Exp', 'Log', 'Sqrt', 'Neg', 'Abs', 'Reciprocal',
  'Clip', 'LeakyRelu', 'HardSwish', 'HardSigmoid', 'Softplus', 'Elu', 'Floor', 'Ceil', 'Round', 'Not', 'Sign', 'Sin',
  'Cos', 'Mish', 'Selu', 'Celu', 'Softsign']);
export const MOVE_OPS = new Set(['Reshape', 'Flatten', 'Squeeze', 'Unsqueeze', 'Transpose', 'Slice', 'Concat', 'Gather',
  'Split', 'Pad', 'Expand', 'Tile', 'Identity', 'Dropout']);
// The other compute ops: the keys of EVAL_RULES below (their shape inference and constant folding).

// Inputs an op cannot do without (ONNX's required inputs); every other supported op needs its first.
const VARIADIC = new Set(['Sum', 'Mean', 'Max', 'Min']);
const MIN_INPUTS: Record<string, number> = {
  MatMul: 2, Gemm: 2, Conv: 2, Reshape: 2, Gather: 2, Expand: 2, Tile: 2, CastLike: 2, LayerNormalization: 2,
  Where: 3, Range: 3, ScatterND: 3,
};
function minInputs(op: string): number {
  return MIN_INPUTS[op] ?? (BINARY_OPS.has(op) && !VARIADIC.has(op) ? 2 : 1);
}

export function isSupportedOp(op: string): boolean {
  return BINARY_OPS.has(op) || UNARY_OPS.has(op) || MOVE_OPS.has(op) || Object.hasOwn(EVAL_RULES, op);
}

/** Reads a constant input as plain numbers, or throws naming the node and input. */
export function constInput(n: Node, ins: (VInfo | undefined)[], i: number, what: string): number[] | undefined {
  const v = ins[i];
  if (!n.inputs[i] || !v) return undefined;
  if (!v.const) throw new Error(`${where(n)}: input '${what}' must be constant after specialization`);
  return Array.from(v.const.data);
}

/** The index map (per output) of a data-movement node, and which inputs are data. */
/** moveOf, reusing what specialization computed. */
export function movesOf(s: Specialized, n: Node): { data: number[]; moves: Move[] } {
  const hit = s.moves.get(n);
  if (hit) return hit;
  const r = moveOf(n, n.inputs.map((i) => (i ? s.values.get(i) : undefined)), s.opset);
  s.moves.set(n, r);
  return r;
}

export function moveOf(n: Node, ins: (VInfo | undefined)[], opset: number): { data: number[]; moves: Move[] } {
  const w = where(n);
  const x = ins[0];
  if (!x) throw new Error(`${w}: missing input`);
  const d = x.dims;
  switch (n.opType) {
    case 'Identity': case 'Dropout':
      return { data: [0], moves: [{ dims: [...d], map: null }] };
    case 'Reshape': {
      const shape = constInput(n, ins, 1, 'shape');
      if (!shape) throw new Error(`${w}: missing shape input`);
      return { data: [0], moves: [{ dims: reshapeDims(d, shape, attrInt(n, 'allowzero', 0) === 1, w), map: null }] };
    }
    case 'Flatten': {
      const a = attrInt(n, 'axis', 1);
      const ax = a < 0 ? a + d.length : a;
      if (ax < 0 || ax > d.length) throw new Error(`${w}: axis ${a} out of range for rank ${d.length}`);
      return { data: [0], moves: [{ dims: [numel(d.slice(0, ax)), numel(d.slice(ax))], map: null }] };
    }
    case 'Squeeze': {
      const axes = opset >= 13 ? constInput(n, ins, 1, 'axes') : attrInts(n, 'axes');
      const set = new Set((axes ?? d.map((v, i) => (v === 1 ? i : -1)).filter((i) => i >= 0)).map((a) => normAxis(a, d.length, w)));
      for (const a of set) if (d[a] !== 1) throw new Error(`${w}: cannot squeeze axis ${a} of size ${d[a]}`);
      return { data: [0], moves: [{ dims: d.filter((_, i) => !set.has(i)), map: null }] };
    }
    case 'Unsqueeze': {
      const axes = opset >= 13 ? constInput(n, ins, 1, 'axes') : attrInts(n, 'axes');
      if (!axes) throw new Error(`${w}: missing axes`);
      const r = d.length + axes.length;
      const set = new Set(axes.map((a) => normAxis(a, r, w)));
      if (set.size !== axes.length) throw new Error(`${w}: repeated axes`);
      const out: number[] = [];
      let j = 0;
      for (let i = 0; i < r; i++) out.push(set.has(i) ? 1 : d[j++]);
      return { data: [0], moves: [{ dims: out, map: null }] };
    }
    case 'Transpose':
      return { data: [0], moves: [transpose(d, attrInts(n, 'perm'), w)] };
    case 'Slice': {
      const starts = constInput(n, ins, 1, 'starts');
      const ends = constInput(n, ins, 2, 'ends');
      if (!starts || !ends) throw new Error(`${w}: missing starts/ends`);
      return { data: [0], moves: [slice(d, starts, ends, constInput(n, ins, 3, 'axes'), constInput(n, ins, 4, 'steps'), w)] };
    }
    case 'Concat': {
      const present = n.inputs.map((s, i) => (s ? i : -1)).filter((i) => i >= 0);
      const nonEmpty = present.filter((i) => numel(ins[i]!.dims) > 0 || ins[i]!.dims.length === d.length);
      return { data: nonEmpty, moves: [concat(nonEmpty.map((i) => ins[i]!.dims), attrInt(n, 'axis'), w)] };
    }
    case 'Gather': {
      const idx = ins[1];
      if (!idx?.const) throw new Error(`${w}: indices must be constant (gather with dynamic indices is not supported)`);
      return { data: [0], moves: [gather(d, idx.const.data, idx.dims, attrInt(n, 'axis', 0), w)] };
    }
    case 'Split': {
      const axis = normAxis(attrInt(n, 'axis', 0), d.length, w);
      let split = opset >= 13 ? constInput(n, ins, 1, 'split') : attrInts(n, 'split');
      const k = n.outputs.length;
      if (!split && n.attrs.num_outputs !== undefined) {
        if (attrInt(n, 'num_outputs') !== k) throw new Error(`${w}: num_outputs ${attrInt(n, 'num_outputs')} but the node has ${k} outputs`);
        // opset 18: chunks of ceil(size / k), the last one smaller when it does not divide
        const c = Math.ceil(d[axis] / k);
        split = Array.from({ length: k }, (_, j) => Math.max(0, Math.min(c, d[axis] - j * c)));
      }
      if (!split) {
        if (d[axis] % k !== 0) throw new Error(`${w}: axis size ${d[axis]} does not split into ${k} equal parts`);
        split = new Array(k).fill(d[axis] / k);
      }
      if (split.length !== k || split.reduce((a, b) => a + b, 0) !== d[axis]) {
        throw new Error(`${w}: split [${split.join(',')}] does not match ${k} outputs summing to ${d[axis]}`);
      }
      let s = 0;
      const moves = split.map((len) => {
        const m = slice(d, [s], [s + len], [axis], undefined, w);
        s += len;
        return m;
      });
      return { data: [0], moves };
    }
    case 'Pad': {
      const pads = constInput(n, ins, 1, 'pads');
      if (!pads) throw new Error(`${w}: missing pads`);
      const mode = attrString(n, 'mode', 'constant');
      const cv = constInput(n, ins, 2, 'constant_value');
      let p = pads;
      const axes = constInput(n, ins, 3, 'axes');
      if (axes) {
        p = new Array(2 * d.length).fill(0);
        axes.forEach((a, i) => {
          const ax = normAxis(a, d.length, w);
          p[ax] = pads[i];
          p[ax + d.length] = pads[i + axes.length];
        });
      }
      const m = pad(d, p, mode, w);
      if (cv && cv[0] !== 0) m.padValue = cv[0];
      return { data: [0], moves: [m] };
    }
    case 'Expand': {
      const shape = constInput(n, ins, 1, 'shape');
      if (!shape) throw new Error(`${w}: missing shape`);
      return { data: [0], moves: [expand(d, shape, w)] };
    }
    case 'Tile': {
      const rep = constInput(n, ins, 1, 'repeats');
      if (!rep) throw new Error(`${w}: missing repeats`);
      return { data: [0], moves: [tile(d, rep, w)] };
    }
  }
  throw new Error(`internal: ${w} is not a data-movement op`);
}

// ---- constant evaluation ----

function erf(x: number): number {
  // Abramowitz–Stegun 7.1.26 is too coarse; use the series / continued fraction split (≈1e-15).
  const ax = Math.abs(x);
  if (ax < 2.5) {
    let sum = x;
    let term = x;
    const x2 = x * x;
    for (let k = 1; k < 100; k++) {
      term *= -x2 / k;
      const t = term / (2 * k + 1);
      sum += t;
      if (Math.abs(t) < 1e-17 * Math.abs(sum)) break;
    }
    return (2 / Math.sqrt(Math.PI)) * sum;
  }
  // erfc continued fraction (Lentz)
  const z = ax;
  let f = z;
  let c = z;
  let dd = 0;
  for (let k = 1; k < 200; k++) {
    const a = k / 2;
    dd = z + a * dd;
    c = z + a / c;
    dd = 1 / dd;
    const delta = c * dd;
    f *= delta;
    if (Math.abs(delta - 1) < 1e-16) break;
  }
  const erfc = Math.exp(-z * z) / (f * Math.sqrt(Math.PI));
  return x > 0 ? 1 - erfc : erfc - 1;
}
export { erf as erfNumber };

function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** ONNX Gelu's (opset 20) `approximate`: 'none' (erf) or 'tanh'; anything else is an error naming the node. */
export function geluApproximate(n: Node): 'none' | 'tanh' {
  const a = attrString(n, 'approximate', 'none');
  if (a !== 'none' && a !== 'tanh') throw new Error(`${where(n)}: Gelu approximate must be 'none' or 'tanh', got '${a.slice(0, 40)}'`);
  return a;
}

function unaryFn(n: Node): (x: number) => number {
  switch (n.opType) {
    case 'Relu': return (x) => (x > 0 ? x : 0);
    case 'Erf': return erf;
    case 'Gelu': return geluApproximate(n) === 'tanh'
      ? (x) => 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x * x * x)))
      : (x) => 0.5 * x * (1 + erf(x / Math.SQRT2));
    case 'Sigmoid': return (x) => 1 / (1 + Math.exp(-x));
    case 'Tanh': return Math.tanh;
    case 'Exp': return Math.exp;
    case 'Log': return Math.log;
    case 'Sqrt': return Math.sqrt;
    case 'Neg': return (x) => -x;
    case 'Abs': return Math.abs;
    case 'Reciprocal': return (x) => 1 / x;
    case 'Floor': return Math.floor;
    case 'Ceil': return Math.ceil;
    case 'Round': return roundHalfEven;
    case 'Not': return (x) => (x ? 0 : 1);
    case 'Sign': return Math.sign;
    case 'Sin': return Math.sin;
    case 'Cos': return Math.cos;
    case 'Softplus': return (x) => Math.log1p(Math.exp(x));
    case 'Softsign': return (x) => x / (1 + Math.abs(x));
    case 'LeakyRelu': { const a = attrFloat(n, 'alpha', 0.01); return (x) => (x < 0 ? a * x : x); }
    case 'Elu': { const a = attrFloat(n, 'alpha', 1); return (x) => (x < 0 ? a * (Math.exp(x) - 1) : x); }
    case 'HardSigmoid': { const a = attrFloat(n, 'alpha', 0.2); const b = attrFloat(n, 'beta', 0.5); return (x) => Math.max(0, Math.min(1, a * x + b)); }
    case 'HardSwish': return (x) => x * Math.max(0, Math.min(1, x / 6 + 0.5));
    case 'Mish': return (x) => x * Math.tanh(Math.log1p(Math.exp(x)));
  }
  throw new Error(`${where(n)}: no constant evaluator`);
}

function binaryFn(n: Node, dt: DT): (a: number, b: number) => number {
  const intDiv = !isFloat(dt);
  switch (n.opType) {
    case 'Add': case 'Sum': return (a, b) => a + b;
    case 'Sub': return (a, b) => a - b;
    case 'Mul': return (a, b) => a * b;
    case 'Div': return intDiv ? (a, b) => (b === 0 ? 0 : Math.trunc(a / b)) : (a, b) => a / b;
    case 'Pow': return Math.pow;
    case 'Mod': {
      if (attrInt(n, 'fmod', 0) === 1) return (a, b) => a % b;
      return (a, b) => { if (b === 0) return 0; const m = a % b; return m !== 0 && (m < 0) !== (b < 0) ? m + b : m; };
    }
    case 'Equal': return (a, b) => (a === b ? 1 : 0);
    case 'Less': return (a, b) => (a < b ? 1 : 0);
    case 'LessOrEqual': return (a, b) => (a <= b ? 1 : 0);
    case 'Greater': return (a, b) => (a > b ? 1 : 0);
    case 'GreaterOrEqual': return (a, b) => (a >= b ? 1 : 0);
    case 'And': return (a, b) => (a && b ? 1 : 0);
    case 'Or': return (a, b) => (a || b ? 1 : 0);
    case 'Xor': return (a, b) => ((a ? 1 : 0) ^ (b ? 1 : 0));
    case 'Max': return Math.max;
    case 'Min': return Math.min;
  }
  throw new Error(`${where(n)}: no constant evaluator`);
}

function bcastEval(dims: number[], dt: DT, operands: ConstTensor[], f: (vals: number[]) => number): ConstTensor {
  const out = makeConst(dt, dims);
  const maps = operands.map((o) => stridedMap(dims, broadcastStrides(o.dims, dims), 0));
  const vals = new Array<number>(operands.length);
  for (let k = 0; k < out.data.length; k++) {
    for (let i = 0; i < operands.length; i++) vals[i] = operands[i].data[maps[i][k]];
    out.data[k] = castValue(f(vals), dt);
  }
  return out;
}

function reduceAxes(n: Node, ins: (VInfo | undefined)[], opset: number): number[] | undefined {
  const fromInput = n.opType === 'ReduceSum' ? opset >= 13 : opset >= 18;
  const axes = fromInput ? constInput(n, ins, 1, 'axes') : attrInts(n, 'axes');
  if ((!axes || axes.length === 0) && attrInt(n, 'noop_with_empty_axes', 0) === 1) return [];
  const r = ins[0]!.dims.length;
  return (axes && axes.length ? axes : [...Array(r).keys()]).map((a) => normAxis(a, r, where(n)));
}
export { reduceAxes };

function applyMove(m: Move, sources: ConstTensor[], dt: DT): ConstTensor {
  if (m.map === null) return { dtype: dt, dims: m.dims, data: sources[0].data };
  const flat = sources.length === 1 ? sources[0].data : (() => {
    const total = sources.reduce((s, t) => s + t.data.length, 0);
    const f = dt === 'float32' ? new Float32Array(total) : new Float64Array(total);
    let o = 0;
    for (const t of sources) { f.set(t.data, o); o += t.data.length; }
    return f;
  })();
  const out = makeConst(dt, m.dims);
  const pv = m.padValue ?? 0;
  for (let k = 0; k < m.map.length; k++) out.data[k] = m.map[k] < 0 ? pv : flat[m.map[k]];
  return out;
}

function matmulDims(a: number[], b: number[], w: string): { dims: number[]; M: number; K: number; N: number; batch: number[] } {
  if (a.length === 0 || b.length === 0) throw new Error(`${w}: MatMul of a scalar`);
  const aa = a.length === 1 ? [1, a[0]] : a;
  const bb = b.length === 1 ? [b[0], 1] : b;
  const M = aa[aa.length - 2];
  const K = aa[aa.length - 1];
  const K2 = bb[bb.length - 2];
  const N = bb[bb.length - 1];
  if (K !== K2) throw new Error(`${w}: inner dims differ: [${a.join(',')}] × [${b.join(',')}]`);
  const batch = broadcastDims(aa.slice(0, -2), bb.slice(0, -2), w);
  const dims = [...batch];
  if (a.length > 1) dims.push(M);
  if (b.length > 1) dims.push(N);
  return { dims, M, K, N, batch };
}
export { matmulDims };

/** What a shape/constant-folding rule sees of one node. */
interface EvalCtx { n: Node; ins: (VInfo | undefined)[]; x: VInfo; allConst: boolean; opset: number; w: string }
type EvalRule = (c: EvalCtx) => VInfo[];

/** Output infos of one node; folds it when every input is constant and it has an evaluator. */
function evalNode(n: Node, ins: (VInfo | undefined)[], opset: number, moveCache: Map<Node, { data: number[]; moves: Move[] }>): VInfo[] {
  const x = ins[0]!;
  const allConst = n.inputs.every((s, i) => !s || ins[i]?.const);
  const c: EvalCtx = { n, ins, x, allConst, opset, w: where(n) };
  if (MOVE_OPS.has(n.opType)) {
    const { data, moves } = moveOf(n, ins, opset);
    moveCache.set(n, { data, moves });
    const outs: VInfo[] = moves.map((m) => ({ dtype: x.dtype, dims: m.dims }));
    if (n.opType === 'Dropout' && n.outputs.length > 1) outs.push({ dtype: 'bool', dims: [...x.dims] });
    if (data.every((i) => ins[i]?.const) && allConst) {
      moves.forEach((m, i) => (outs[i].const = applyMove(m, data.map((j) => ins[j]!.const!), x.dtype)));
    }
    return outs;
  }
  if (BINARY_OPS.has(n.opType)) return evalBinary(c);
  if (UNARY_OPS.has(n.opType)) return evalUnary(c);
  const rule = EVAL_RULES[n.opType];
  if (!rule) throw new Error(`unsupported op '${n.opType}' at node '${n.name}'`);
  return rule(c);
}

function evalBinary({ n, ins, allConst, w }: EvalCtx): VInfo[] {
  const op = n.opType;
  const present = ins.filter((v): v is VInfo => !!v);
  if (present.length < 1 || (op !== 'Sum' && op !== 'Max' && op !== 'Min' && op !== 'Mean' && present.length !== 2)) {
    throw new Error(`${w}: expected 2 inputs, got ${present.length}`);
  }
  const dims = present.reduce((acc, v) => broadcastDims(acc, v.dims, w), present[0].dims);
  const dt: DT = COMPARE.has(op) ? 'bool' : present[0].dtype;
  if (!allConst) return [{ dtype: dt, dims }];
  if (op === 'Mean') return [{ dtype: dt, dims, const: bcastEval(dims, dt, present.map((v) => v.const!), (v) => v.reduce((a, b) => a + b, 0) / v.length) }];
  const f = binaryFn(n, present[0].dtype);
  return [{ dtype: dt, dims, const: bcastEval(dims, dt, present.map((v) => v.const!), (v) => v.reduce((a, b) => f(a, b))) }];
}

function evalUnary({ n, ins, x, allConst }: EvalCtx): VInfo[] {
  const dt: DT = n.opType === 'Not' ? 'bool' : x.dtype;
  if (!allConst) return [{ dtype: dt, dims: [...x.dims] }];
  let f: (v: number) => number;
  if (n.opType === 'Clip') {
    const lo = constInput(n, ins, 1, 'min')?.[0] ?? -Infinity;
    const hi = constInput(n, ins, 2, 'max')?.[0] ?? Infinity;
    f = (v) => Math.min(Math.max(v, lo), hi);
  } else f = unaryFn(n);
  const out = makeConst(dt, [...x.dims]);
  x.const!.data.forEach((v, i) => (out.data[i] = castValue(f(v), dt)));
  return [{ dtype: dt, dims: out.dims, const: out }];
}

function evalShape({ n, x }: EvalCtx): VInfo[] {
  const r = x.dims.length;
  let s = attrInt(n, 'start', 0);
  let e = n.attrs.end ? attrInt(n, 'end') : r;
  if (s < 0) s += r;
  if (e < 0) e += r;
  s = Math.min(Math.max(s, 0), r);
  e = Math.min(Math.max(e, 0), r);
  const v = x.dims.slice(s, Math.max(s, e));
  return [{ dtype: 'int64', dims: [v.length], const: makeConst('int64', [v.length], v) }];
}

function evalConstantOfShape({ n, ins, w }: EvalCtx): VInfo[] {
  const shape = constInput(n, ins, 0, 'input');
  const v = n.attrs.value ? (n.attrs.value.value as ConstTensor) : makeConst('float32', [1], [0]);
  const dims = shape ?? [];
  checkDims(dims, w);
  const c = makeConst(v.dtype, dims);
  c.data.fill(v.data[0] ?? 0);
  return [{ dtype: v.dtype, dims, const: c }];
}

function evalRange({ n, ins, x, w }: EvalCtx): VInfo[] {
  const [s, l, d] = [0, 1, 2].map((i) => constInput(n, ins, i, ['start', 'limit', 'delta'][i])![0]);
  if (d === 0) throw new Error(`${w}: delta is 0`);
  const cnt = Math.max(Math.ceil((l - s) / d), 0);
  checkDims([cnt], w);
  const c = makeConst(x.dtype, [cnt]);
  for (let i = 0; i < cnt; i++) c.data[i] = castValue(s + i * d, x.dtype);
  return [{ dtype: x.dtype, dims: [cnt], const: c }];
}

function evalCast({ n, ins, x, w }: EvalCtx): VInfo[] {
  const dt = n.opType === 'Cast' ? ONNX_DTYPE[attrInt(n, 'to')] : ins[1]!.dtype;
  if (!dt) throw new Error(`${w}: unsupported target type ${attrInt(n, 'to')}`);
  if (!x.const) return [{ dtype: dt, dims: [...x.dims] }];
  const c = makeConst(dt, [...x.dims]);
  x.const.data.forEach((v, i) => (c.data[i] = castValue(v, dt)));
  return [{ dtype: dt, dims: c.dims, const: c }];
}

function evalWhere({ ins, allConst, w }: EvalCtx): VInfo[] {
  const [c, a, b] = ins as VInfo[];
  const dims = broadcastDims(broadcastDims(c.dims, a.dims, w), b.dims, w);
  if (!allConst) return [{ dtype: a.dtype, dims }];
  return [{ dtype: a.dtype, dims, const: bcastEval(dims, a.dtype, [c.const!, a.const!, b.const!], (v) => (v[0] ? v[1] : v[2])) }];
}

function evalScatterND({ n, ins, allConst, w }: EvalCtx): VInfo[] {
  const [data, idx, upd] = ins as VInfo[];
  if (!allConst) throw new Error(`${w}: ScatterND on dynamic data is not supported`);
  if (attrString(n, 'reduction', 'none') !== 'none') throw new Error(`${w}: ScatterND reduction is not supported`);
  const c: ConstTensor = { dtype: data.dtype, dims: [...data.dims], data: data.const!.data.slice() };
  const k = idx.dims[idx.dims.length - 1];
  const nUpd = numel(idx.dims.slice(0, -1));
  const slab = numel(data.dims.slice(k));
  const st = data.dims.map((_, i) => numel(data.dims.slice(i + 1)));
  for (let u = 0; u < nUpd; u++) {
    let off = 0;
    for (let j = 0; j < k; j++) {
      let v = idx.const!.data[u * k + j];
      if (v < 0) v += data.dims[j];
      if (v < 0 || v >= data.dims[j]) throw new Error(`${w}: index ${v} out of range`);
      off += v * st[j];
    }
    for (let j = 0; j < slab; j++) c.data[off + j] = upd.const!.data[u * slab + j];
  }
  return [{ dtype: data.dtype, dims: c.dims, const: c }];
}

function evalReduce({ n, ins, x, allConst, opset }: EvalCtx): VInfo[] {
  const op = n.opType;
  const axes = reduceAxes(n, ins, opset)!;
  const keep = attrInt(n, 'keepdims', 1) === 1;
  const r = x.dims.length;
  const kd = x.dims.map((d, i) => (axes.includes(i) ? 1 : d));
  const dims = keep ? kd : x.dims.filter((_, i) => !axes.includes(i));
  if (!allConst) return [{ dtype: x.dtype, dims }];
  const outN = numel(kd);
  const acc = new Float64Array(outN).fill(op === 'ReduceMax' ? -Infinity : op === 'ReduceMin' ? Infinity : op === 'ReduceProd' ? 1 : 0);
  const outS = kd.map((_, i) => numel(kd.slice(i + 1)));
  const inS = x.dims.map((_, i) => numel(x.dims.slice(i + 1)));
  const data = x.const!.data;
  for (let k = 0; k < data.length; k++) {
    let o = 0;
    for (let i = 0; i < r; i++) if (!axes.includes(i)) o += (Math.floor(k / inS[i]) % x.dims[i]) * outS[i];
    const v = data[k];
    if (op === 'ReduceMax') acc[o] = Math.max(acc[o], v);
    else if (op === 'ReduceMin') acc[o] = Math.min(acc[o], v);
    else if (op === 'ReduceProd') acc[o] *= v;
    else acc[o] += v;
  }
  const cnt = numel(x.dims) / Math.max(outN, 1);
  const c = makeConst(x.dtype, dims);
  acc.forEach((v, i) => (c.data[i] = castValue(op === 'ReduceMean' ? v / cnt : v, x.dtype)));
  return [{ dtype: x.dtype, dims, const: c }];
}

function evalMatMul({ ins, x, allConst, w }: EvalCtx): VInfo[] {
  const { dims, M, K, N, batch } = matmulDims(x.dims, ins[1]!.dims, w);
  if (!allConst || numel(dims) * K > 1e7) return [{ dtype: x.dtype, dims }];
  const a = x.const!;
  const b = ins[1]!.const!;
  const aD = a.dims.length === 1 ? [1, a.dims[0]] : a.dims;
  const bD = b.dims.length === 1 ? [b.dims[0], 1] : b.dims;
  const aMap = stridedMap(batch, broadcastStrides(aD.slice(0, -2), batch), 0);
  const bMap = stridedMap(batch, broadcastStrides(bD.slice(0, -2), batch), 0);
  const c = makeConst(x.dtype, dims);
  for (let t = 0; t < aMap.length; t++) {
    for (let i = 0; i < M; i++) {
      for (let j = 0; j < N; j++) {
        let s = 0;
        for (let k = 0; k < K; k++) s += a.data[aMap[t] * M * K + i * K + k] * b.data[bMap[t] * K * N + k * N + j];
        c.data[(t * M + i) * N + j] = castValue(s, x.dtype);
      }
    }
  }
  return [{ dtype: x.dtype, dims, const: c }];
}

function evalGemm({ n, ins, x, w }: EvalCtx): VInfo[] {
  const a = x.dims;
  const b = ins[1]!.dims;
  if (a.length !== 2 || b.length !== 2) throw new Error(`${w}: Gemm needs 2-D A and B, got [${a}] and [${b}]`);
  const M = attrInt(n, 'transA', 0) ? a[1] : a[0];
  const N = attrInt(n, 'transB', 0) ? b[0] : b[1];
  return [{ dtype: x.dtype, dims: [M, N] }];
}

function evalConv({ n, ins, x, w }: EvalCtx): VInfo[] {
  const wt = ins[1]!;
  const r = x.dims.length - 2;
  if (r < 1) throw new Error(`${w}: input rank ${x.dims.length} is too small`);
  const k = attrInts(n, 'kernel_shape') ?? wt.dims.slice(2);
  const s = attrInts(n, 'strides') ?? new Array(r).fill(1);
  const dl = attrInts(n, 'dilations') ?? new Array(r).fill(1);
  const p = attrInts(n, 'pads') ?? new Array(2 * r).fill(0);
  const ap = attrString(n, 'auto_pad', 'NOTSET');
  const sp = x.dims.slice(2).map((d, i) => {
    if (ap === 'SAME_UPPER' || ap === 'SAME_LOWER') return Math.ceil(d / s[i]);
    if (ap === 'VALID') return Math.floor((d - (k[i] - 1) * dl[i] - 1) / s[i]) + 1;
    return Math.floor((d + p[i] + p[i + r] - (k[i] - 1) * dl[i] - 1) / s[i]) + 1;
  });
  return [{ dtype: x.dtype, dims: [x.dims[0], wt.dims[0], ...sp] }];
}

function evalArgMax({ n, x, w }: EvalCtx): VInfo[] {
  const a = normAxis(attrInt(n, 'axis', 0), x.dims.length, w);
  const keep = attrInt(n, 'keepdims', 1) === 1;
  const dims = keep ? x.dims.map((d, i) => (i === a ? 1 : d)) : x.dims.filter((_, i) => i !== a);
  return [{ dtype: 'int64', dims }];
}

/** Shape inference and constant folding for the compute ops (movement, binary and unary ops above). */
const EVAL_RULES: Record<string, EvalRule> = {
  Shape: evalShape,
  Size: ({ x }) => [{ dtype: 'int64', dims: [], const: makeConst('int64', [], [numel(x.dims)]) }],
  ConstantOfShape: evalConstantOfShape,
  Range: evalRange,
  Cast: evalCast,
  CastLike: evalCast,
  Where: evalWhere,
  ScatterND: evalScatterND,
  ReduceMean: evalReduce, ReduceSum: evalReduce, ReduceMax: evalReduce, ReduceMin: evalReduce, ReduceProd: evalReduce,
  MatMul: evalMatMul,
  Gemm: evalGemm,
  Conv: evalConv,
  Softmax: ({ n, x }) => n.outputs.map((_, i) => ({ dtype: x.dtype, dims: i === 0 ? [...x.dims] : [] })),
  LayerNormalization: ({ n, x }) => n.outputs.map((_, i) => ({ dtype: x.dtype, dims: i === 0 ? [...x.dims] : [] })),
  ArgMax: evalArgMax,
  ArgMin: evalArgMax,
  GlobalAveragePool: ({ x }) => [{ dtype: x.dtype, dims: x.dims.map((d, i) => (i < 2 ? d : 1)) }],
  GlobalMaxPool: ({ x }) => [{ dtype: x.dtype, dims: x.dims.map((d, i) => (i < 2 ? d : 1)) }],
};

function checkDims(dims: number[], w: string): void {
  for (const d of dims) if (!Number.isSafeInteger(d) || d < 0) throw new Error(`${w}: invalid dim ${d} in [${dims.join(',')}]`);
  if (numel(dims) > MAX_ELEMENTS) throw new Error(`${w}: output [${dims.join(',')}] has ${numel(dims)} elements, more than the limit ${MAX_ELEMENTS}`);
}

export function specialize(g: Graph, inputDims: Record<string, number[]>): Specialized {
  const values = new Map<string, VInfo>();
  for (const [name, c] of g.initializers) values.set(name, { dtype: c.dtype, dims: c.dims, const: c });
  for (const inp of g.inputs) {
    const dims = inputDims[inp.name];
    if (!dims) throw new Error(`input '${inp.name}': no dims given`);
    checkDims(dims, `input '${inp.name}'`);
    values.set(inp.name, { dtype: inp.dtype, dims: [...dims] });
  }
  const nodes: Node[] = [];
  const moves = new Map<Node, { data: number[]; moves: Move[] }>();
  for (const n of g.nodes) {
    if (n.domain !== '') throw new Error(`unsupported op '${n.domain}.${n.opType}' at node '${n.name}'`);
    if (!isSupportedOp(n.opType)) throw new Error(`unsupported op '${n.opType}' at node '${n.name}'`);
    const ins = n.inputs.map((s) => {
      if (!s) return undefined;
      const v = values.get(s);
      if (!v) throw new Error(`${where(n)}: input '${s}' is not produced before this node (graph not topologically sorted?)`);
      return v;
    });
    for (let k = 0; k < minInputs(n.opType); k++) {
      if (!ins[k]) throw new Error(`${where(n)}: required input ${k} is missing (${n.opType} needs ${minInputs(n.opType)})`);
    }
    let outs: VInfo[];
    try {
      outs = evalNode(n, ins, g.opset, moves);
    } catch (e) {
      const msg = (e as Error).message;
      throw msg.includes(n.name) ? e : new Error(`${where(n)}: ${msg}`);
    }
    let dynamic = false;
    n.outputs.forEach((o, i) => {
      if (!o || !outs[i]) return;
      checkDims(outs[i].dims, where(n));
      values.set(o, outs[i]);
      if (!outs[i].const) dynamic = true;
    });
    if (dynamic) nodes.push(n);
  }
  for (const o of g.outputs) if (!values.has(o.name)) throw new Error(`${g.source}: graph output '${o.name}' is not produced by any node`);
  return { source: g.source, values, nodes, inputs: g.inputs.map((i) => i.name), outputs: g.outputs.map((o) => o.name), onnxNodes: g.nodeCount, opset: g.opset, moves };
}
