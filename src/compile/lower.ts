// Lowering: fused nodes → plan ops. Data movement never runs on its own: a movement node makes a
// *view* (sources + an index map composed over the whole chain), and the view is materialized as one
// index_map op only when a compute op (or a graph output) needs it — or aliased when the composed map
// is the identity (reshape-only chains).
import { attrFloat, attrInt, attrInts, attrString, makeConst, numel, type ConstTensor, type DT, type Node } from '../ir/graph.js';
import { BinaryOp, ReduceOp, UnaryOp, type OpName } from '../plan/ops.js';
import {
  allocMap, broadcastDims, broadcastStrides, expand as expandMove, stridedMap, type Move,
} from '../passes/movement.js';
import { matmulDims, MOVE_OPS, movesOf, reduceAxes, type Specialized, type VInfo } from '../passes/specialize.js';

export type TKind = 'arena' | 'const' | 'input' | 'output';
export interface PT {
  dtype: DT;
  dims: number[];
  kind: TKind;
  index?: number;            // input/output index
  data?: ConstTensor;        // const
  aliasOf?: number;          // same storage as that tensor, at aliasElemOffset elements
  aliasElemOffset?: number;
  values?: string[];         // the ONNX values this tensor holds (for ranges keyed by value name)
}
export interface POp { kind: OpName; inputs: number[]; outputs: number[]; ints: number[]; floats: number[]; name: string }
export interface Lowered { tensors: PT[]; ops: POp[]; inputs: number[]; outputs: number[] }

interface View { srcs: number[]; map: Int32Array | null; dims: number[]; dtype: DT }
type State = { k: 'tensor'; t: number } | { k: 'view'; v: View };

const where = (n: Node) => `node '${n.name}' (${n.domain ? n.domain + '.' : ''}${n.opType})`;

function gcd(a: number, b: number): number {
  while (b) [a, b] = [b, a % b];
  return a;
}

/** Chooses block (longest contiguous run that tiles every row) and items (per-item periodicity). */
export function compressMap(map: Int32Array, X: number): { block: number; items: number; xItem: number; yItem: number; idx: Int32Array } {
  const Y = map.length;
  let B = Y;
  for (let k = 1; k < Y && B > 1; k++) {
    const a = map[k - 1];
    const b = map[k];
    const cont = a < 0 ? b < 0 : b === a + 1;
    if (!cont) B = gcd(B, k);
  }
  if (Y === 0) B = 1;
  // the largest item count T (T | X, T | Y/B) for which the map repeats per item
  const G = gcd(X, Y / B);
  const divs: number[] = [];
  for (let d = 1; d * d <= G; d++) if (G % d === 0) { divs.push(d); if (d * d !== G) divs.push(G / d); }
  divs.sort((p, q) => q - p);
  let T = 1;
  for (const cand of divs) {
    if (cand === 1) break;
    const xi = X / cand;
    const yi = Y / cand;
    let ok = true;
    for (let k = yi; k < Y && ok; k++) {
      const a = map[k - yi];
      const b = map[k];
      ok = a < 0 ? b < 0 : b === a + xi;
    }
    if (ok) { T = cand; break; }
  }
  const yItem = Y / T;
  const idx = new Int32Array(yItem / B);
  for (let r = 0; r < idx.length; r++) idx[r] = map[r * B];
  return { block: B, items: T, xItem: X / T, yItem, idx };
}

/** The source element of output element e of an index_map op (ops.def), −1 for padding: the
 *  inverse of compressMap. */
export function indexMapSource(ints: readonly number[], idx: ArrayLike<number>, e: number): number {
  const [block, , xItem, yItem] = ints;
  const t = Math.floor(e / yItem), rem = e % yItem, r = Math.floor(rem / block);
  return idx[r] < 0 ? -1 : t * xItem + idx[r] + (rem % block);
}

function isIdentity(map: Int32Array): boolean {
  for (let k = 0; k < map.length; k++) if (map[k] !== k) return false;
  return true;
}

export function lower(s: Specialized, nodes: Node[], opset: number): Lowered {
  const tensors: PT[] = [];
  const ops: POp[] = [];
  const state = new Map<string, State>();
  const constIds = new Map<ConstTensor, number>();
  const info = (v: string): VInfo => s.values.get(v)!;
  const addT = (t: PT) => tensors.push(t) - 1;
  const newArena = (dtype: DT, dims: number[]) => addT({ dtype, dims: [...dims], kind: 'arena' });
  const constT = (c: ConstTensor): number => {
    let id = constIds.get(c);
    if (id === undefined) {
      id = addT({ dtype: c.dtype, dims: [...c.dims], kind: 'const', data: c });
      constIds.set(c, id);
    }
    return id;
  };
  const emit = (kind: OpName, inputs: number[], outputs: number[], ints: number[], floats: number[], name: string) =>
    ops.push({ kind, inputs, outputs, ints, floats, name });
  const root = (t: number): number => { let r = t; while (tensors[r].aliasOf !== undefined) r = tensors[r].aliasOf!; return r; };

  const inputIds = s.inputs.map((name, i) => {
    const v = info(name);
    const id = addT({ dtype: v.dtype, dims: [...v.dims], kind: 'input', index: i });
    state.set(name, { k: 'tensor', t: id });
    return id;
  });

  const viewOf = (v: string): View => {
    const st = state.get(v);
    const vi = info(v);
    if (!st) {
      if (vi.const) return { srcs: [constT(vi.const)], map: null, dims: vi.dims, dtype: vi.dtype };
      throw new Error(`internal: value '${v}' has no state`);
    }
    if (st.k === 'view') return st.v;
    return { srcs: [st.t], map: null, dims: tensors[st.t].dims, dtype: tensors[st.t].dtype };
  };

  const aliasT = (src: number, dims: number[]): number => {
    const t = tensors[src];
    if (t.dims.join() === dims.join()) return src;
    return addT({ dtype: t.dtype, dims: [...dims], kind: t.kind, index: t.index, data: t.data, aliasOf: src, aliasElemOffset: 0 });
  };

  /** Makes a tensor of the view (alias, or one index_map op; several sources are staged first). */
  const materialize = (view: View, name: string, target?: number): number => {
    let src: number;
    let map = view.map;
    if (view.srcs.length === 1) src = view.srcs[0];
    else {
      const total = view.srcs.reduce((a, t) => a + numel(tensors[t].dims), 0);
      src = newArena(view.dtype, [total]);
      let off = 0;
      for (const t of view.srcs) {
        const part = addT({ dtype: view.dtype, dims: [numel(tensors[t].dims)], kind: 'arena', aliasOf: src, aliasElemOffset: off });
        emit('copy', [t], [part], [], [], name);
        off += numel(tensors[t].dims);
      }
    }
    const X = numel(tensors[src].dims);
    if (map && map.length === X && isIdentity(map)) map = null;
    if (!map) {
      if (target === undefined) return aliasT(src, view.dims);
      emit('copy', [src], [target], [], [], name);
      return target;
    }
    const out = target ?? newArena(view.dtype, view.dims);
    const c = compressMap(map, X);
    const idx = constT(makeConst('int32', [c.idx.length], c.idx));
    emit('index_map', [src, idx], [out], [c.block, c.items, c.xItem, c.yItem], [], name);
    return out;
  };
  const tensorOf = (v: string, name: string): number => {
    const st = state.get(v);
    if (st?.k === 'tensor') return st.t;
    const t = materialize(viewOf(v), name);
    state.set(v, { k: 'tensor', t });
    return t;
  };
  const f32 = (n: Node, v: string, what: string) => {
    if (info(v).dtype !== 'float32') throw new Error(`${where(n)}: ${what} is ${info(v).dtype}; only float32 is supported at run time`);
  };

  /** Applies a movement to views (composing maps over the sources). */
  const applyMove = (n: Node, data: string[], m: Move): View => {
    const views = data.map(viewOf);
    const dtype = views[0].dtype;
    if (m.padValue !== undefined && m.padValue !== 0) throw new Error(`${where(n)}: non-zero pad value on run-time data is not supported`);
    if (m.map === null && views.length === 1) return { ...views[0], dims: m.dims };
    const srcs: number[] = [];
    const srcOff = new Map<number, number>();
    let total = 0;
    for (const v of views) for (const t of v.srcs) if (!srcOff.has(t)) { srcOff.set(t, total); srcs.push(t); total += numel(tensors[t].dims); }
    const outN = numel(m.dims);
    const map = allocMap(m.dims);
    if (views.length === 1 && views[0].srcs.length === 1) {
      // one source: a plain gather through the inner map
      const inner = views[0].map;
      const mm = m.map!;
      if (inner) for (let k = 0; k < outN; k++) { const j = mm[k]; map[k] = j < 0 ? -1 : inner[j]; }
      else map.set(mm);
      return { srcs, map, dims: m.dims, dtype };
    }
    // several inputs: lay their maps (into the union of sources) end to end, then gather
    const virt = allocMap([views.reduce((a, v) => a + numel(v.dims), 0)]);
    let off = 0;
    for (const v of views) {
      const n = numel(v.dims);
      const offs: number[] = [];
      let a2 = 0;
      for (const t of v.srcs) { offs.push(a2); a2 += numel(tensors[t].dims); }
      if (v.srcs.length === 1) {
        const add = srcOff.get(v.srcs[0])!;
        const vm = v.map;
        if (vm) for (let q = 0; q < n; q++) { const inner = vm[q]; virt[off + q] = inner < 0 ? -1 : inner + add; }
        else for (let q = 0; q < n; q++) virt[off + q] = q + add;
      } else {
        const base = v.srcs.map((t, z) => srcOff.get(t)! - offs[z]);
        for (let q = 0; q < n; q++) {
          const inner = v.map ? v.map[q] : q;
          if (inner < 0) { virt[off + q] = -1; continue; }
          let z = offs.length - 1;
          while (z > 0 && offs[z] > inner) z--;
          virt[off + q] = base[z] + inner;
        }
      }
      off += n;
    }
    if (m.map) for (let k = 0; k < outN; k++) { const j = m.map[k]; map[k] = j < 0 ? -1 : virt[j]; }
    else map.set(virt.subarray(0, outN));
    return { srcs, map, dims: m.dims, dtype };
  };

  const setT = (v: string, t: number) => state.set(v, { k: 'tensor', t });
  const out0 = (n: Node) => newArena(info(n.outputs[0]).dtype, info(n.outputs[0]).dims);

  const binary = (n: Node, op: number, a: string, b: string): number => {
    f32(n, a, 'input A');
    f32(n, b, 'input B');
    const ai = info(a);
    const bi = info(b);
    const dims = broadcastDims(ai.dims, bi.dims, where(n));
    const out = newArena('float32', dims);
    // a scalar constant operand: one fused scale/shift (add, sub, mul) instead of a broadcast binary
    const sc = (v: VInfo) => (v.const && v.const.data.length === 1 ? v.const.data[0] : undefined);
    const ka = sc(ai);
    const kb = sc(bi);
    if (kb !== undefined && numel(ai.dims) === numel(dims) && (op === BinaryOp.add || op === BinaryOp.sub || op === BinaryOp.mul)) {
      const p = op === BinaryOp.add ? [1, kb] : op === BinaryOp.sub ? [1, -kb] : [kb, 0];
      emit('unary', [tensorOf(a, n.name)], [out], [UnaryOp.scale_shift], p, n.name);
      return out;
    }
    if (ka !== undefined && numel(bi.dims) === numel(dims) && (op === BinaryOp.add || op === BinaryOp.sub || op === BinaryOp.mul)) {
      const p = op === BinaryOp.add ? [1, ka] : op === BinaryOp.sub ? [-1, ka] : [ka, 0];
      emit('unary', [tensorOf(b, n.name)], [out], [UnaryOp.scale_shift], p, n.name);
      return out;
    }
    let sa = broadcastStrides(ai.dims, dims);
    let sb = broadcastStrides(bi.dims, dims);
    // collapse dims whose strides stay contiguous in both operands
    let d = [...dims];
    const cd: number[] = [];
    const ca: number[] = [];
    const cb: number[] = [];
    for (let i = d.length - 1; i >= 0; i--) {
      if (d[i] === 1) continue;
      const L = cd.length - 1;
      if (L >= 0 && sa[i] === ca[L] * cd[L] && sb[i] === cb[L] * cd[L]) cd[L] *= d[i];
      else { cd.push(d[i]); ca.push(sa[i]); cb.push(sb[i]); }
    }
    d = cd.reverse();
    sa = ca.reverse();
    sb = cb.reverse();
    if (d.length === 0) { d = [1]; sa = [0]; sb = [0]; }
    if (d.length > 8) throw new Error(`${where(n)}: broadcast of rank ${d.length} is too high`);
    emit('binary', [tensorOf(a, n.name), tensorOf(b, n.name)], [out], [op, d.length, ...d, ...sa, ...sb], [], n.name);
    return out;
  };

  const isRange = (map: Int32Array): boolean => {
    const b = map[0];
    if (b < 0) return false;
    for (let k = 1; k < map.length; k++) if (map[k] !== b + k) return false;
    return true;
  };

  for (const n of nodes) {
    const w = where(n);
    const ins = n.inputs.map((v) => (v ? info(v) : undefined));
    if (n.domain === '' && MOVE_OPS.has(n.opType)) {
      const { data, moves } = movesOf(s, n);
      moves.forEach((m, i) => {
        const out = n.outputs[i];
        if (!out || info(out).const) return;
        // a contiguous range of a real tensor (Split/Slice/Gather along the leading axis) is an alias,
        // not a copy. (Materializing a shared *view* once to alias ranges of it would save ops for
        // q/k/v, but its map then has the 3 outermost and stops repeating per batch item.)
        const src = n.inputs[data[0]];
        const st = state.get(src);
        if (data.length === 1 && m.map && m.map.length > 0 && st?.k === 'tensor' && tensors[root(st.t)].kind === 'arena' && isRange(m.map)) {
          state.set(out, { k: 'tensor', t: addT({ dtype: tensors[st.t].dtype, dims: [...m.dims], kind: 'arena', aliasOf: st.t, aliasElemOffset: m.map[0] }) });
          return;
        }
        state.set(out, { k: 'view', v: applyMove(n, data.map((j) => n.inputs[j]), m) });
      });
      continue;
    }
    const o = n.outputs[0];
    const od = info(o).dims;
    if (n.domain === 'swinq') {
      switch (n.opType) {
        case 'Linear': {
          const wt = n.attrs.w.value as ConstTensor;
          const [K, N] = wt.dims;
          const x = tensorOf(n.inputs[0], n.name);
          const M = numel(tensors[x].dims) / K;
          if (!Number.isInteger(M)) throw new Error(`${w}: input [${tensors[x].dims}] is not a multiple of K = ${K}`);
          const bias = n.attrs.bias ? constT(n.attrs.bias.value as ConstTensor) : -1;
          const res = n.inputs[1] ? tensorOf(n.inputs[1], n.name) : -1;
          const y = out0(n);
          emit('linear', [x, constT(wt), bias, res], [y], [M, K, N, attrInt(n, 'act')], [], n.name);
          setT(o, y);
          break;
        }
        case 'LayerNorm': {
          const D = attrInt(n, 'D');
          const x = tensorOf(n.inputs[0], n.name);
          const y = out0(n);
          const g = n.attrs.gamma ? constT(n.attrs.gamma.value as ConstTensor) : -1;
          const b = n.attrs.beta ? constT(n.attrs.beta.value as ConstTensor) : -1;
          emit('layernorm', [x, g, b], [y], [numel(od) / D, D], [attrFloat(n, 'eps')], n.name);
          setT(o, y);
          break;
        }
        case 'Gelu': {
          const y = out0(n);
          emit('unary', [tensorOf(n.inputs[0], n.name)], [y], [attrInt(n, 'approx') ? UnaryOp.gelu_tanh : UnaryOp.gelu_erf], [0, 0], n.name);
          setT(o, y);
          break;
        }
        case 'Softmax': {
          const D = od[od.length - 1];
          const bias = n.attrs.bias.value as ConstTensor;
          const y = out0(n);
          emit('softmax', [tensorOf(n.inputs[0], n.name), constT(bias)], [y], [numel(od) / D, D, bias.dims[0]], [], n.name);
          setT(o, y);
          break;
        }
        case 'MatMul':
          setT(o, matmul(n, n.inputs[0], n.inputs[1], attrFloat(n, 'alpha'), attrInt(n, 'transB')));
          break;
        case 'RowMap': {
          // whole rows of K elements, permuted (a movement: stays a view and composes)
          const perm = (n.attrs.perm.value as ConstTensor).data;
          const K = attrInt(n, 'K');
          const map = allocMap([perm.length, K]);
          for (let r = 0; r < perm.length; r++) for (let j = 0; j < K; j++) map[r * K + j] = perm[r] * K + j;
          state.set(o, { k: 'view', v: applyMove(n, [n.inputs[0]], { dims: od, map }) });
          break;
        }
        default: throw new Error(`internal: ${w} unknown fused op`);
      }
      continue;
    }
    const op = n.opType;
    if (op === 'Add' || op === 'Sub' || op === 'Mul' || op === 'Div' || op === 'Pow' || op === 'Max' || op === 'Min' || op === 'Sum') {
      const code = { Add: BinaryOp.add, Sub: BinaryOp.sub, Mul: BinaryOp.mul, Div: BinaryOp.div, Pow: BinaryOp.pow, Max: BinaryOp.max, Min: BinaryOp.min, Sum: BinaryOp.add }[op];
      const present = n.inputs.filter((v) => v);
      if (present.length === 1) { state.set(o, { k: 'view', v: viewOf(present[0]) }); continue; }
      let acc = present[0];
      let t = -1;
      for (let i = 1; i < present.length; i++) {
        t = binary(n, code, acc, present[i]);
        if (i < present.length - 1) {
          // intermediate result of a variadic op: give it a synthetic value
          const nm = `${o}#${i}`;
          s.values.set(nm, { dtype: 'float32', dims: tensors[t].dims });
          setT(nm, t);
          acc = nm;
        }
      }
      setT(o, t);
      continue;
    }
    const UN: Record<string, number> = {
      Relu: UnaryOp.relu, Erf: UnaryOp.erf, Sigmoid: UnaryOp.sigmoid, Tanh: UnaryOp.tanh, Exp: UnaryOp.exp, Log: UnaryOp.log,
      Sqrt: UnaryOp.sqrt, Neg: UnaryOp.neg, Abs: UnaryOp.abs, Reciprocal: UnaryOp.reciprocal, Clip: UnaryOp.clip,
      LeakyRelu: UnaryOp.leaky_relu, HardSwish: UnaryOp.hardswish, HardSigmoid: UnaryOp.hardsigmoid, Softplus: UnaryOp.softplus,
      Elu: UnaryOp.elu, Floor: UnaryOp.floor, Ceil: UnaryOp.ceil, Round: UnaryOp.round, Mish: UnaryOp.mish,
    };
    if (op in UN) {
      f32(n, n.inputs[0], 'input');
      let p = [0, 0];
      if (op === 'Clip') {
        const lo = n.inputs[1] ? ins[1]!.const?.data[0] : -Infinity;
        const hi = n.inputs[2] ? ins[2]!.const?.data[0] : Infinity;
        if (lo === undefined || hi === undefined) throw new Error(`${w}: min/max must be constant`);
        p = [Math.max(lo, -3.4e38), Math.min(hi, 3.4e38)];
      } else if (op === 'LeakyRelu') p = [attrFloat(n, 'alpha', 0.01), 0];
      else if (op === 'Elu') p = [attrFloat(n, 'alpha', 1), 0];
      else if (op === 'HardSigmoid') p = [attrFloat(n, 'alpha', 0.2), attrFloat(n, 'beta', 0.5)];
      const y = out0(n);
      emit('unary', [tensorOf(n.inputs[0], n.name)], [y], [UN[op]], p, n.name);
      setT(o, y);
      continue;
    }
    switch (op) {
      case 'MatMul': case 'Gemm': {
        if (op === 'Gemm') throw new Error(`${w}: Gemm is only supported with a constant B and a per-column C`);
        setT(o, matmul(n, n.inputs[0], n.inputs[1], 1, 0));
        continue;
      }
      case 'Softmax': case 'LayerNormalization': {
        const x = ins[0]!;
        f32(n, n.inputs[0], 'input');
        const r = x.dims.length;
        const axis = attrInt(n, 'axis', -1);
        const a = axis < 0 ? axis + r : axis;
        if (op === 'Softmax' && x.dims.slice(a + 1).some((d) => d !== 1)) throw new Error(`${w}: softmax over axis ${axis} that is not the last is not supported`);
        const D = op === 'Softmax' ? x.dims[a] : numel(x.dims.slice(a));
        const y = out0(n);
        if (op === 'Softmax') emit('softmax', [tensorOf(n.inputs[0], n.name), -1], [y], [numel(x.dims) / D, D, 1], [], n.name);
        else throw new Error(`${w}: LayerNormalization needs constant per-channel scale/bias`);
        setT(o, y);
        continue;
      }
      case 'ReduceMean': case 'ReduceSum': case 'ReduceMax': case 'ReduceMin': case 'GlobalAveragePool': case 'GlobalMaxPool': {
        const x = ins[0]!;
        f32(n, n.inputs[0], 'input');
        const axes = op.startsWith('Global') ? x.dims.map((_, i) => i).slice(2) : reduceAxes(n, ins, opset)!;
        if (axes.length === 0) { state.set(o, { k: 'view', v: { ...viewOf(n.inputs[0]), dims: od } }); continue; }
        const real = axes.filter((a) => x.dims[a] !== 1);
        const lo = real.length ? Math.min(...real) : axes[0];
        const hi = real.length ? Math.max(...real) : axes[0];
        for (let a = lo; a <= hi; a++) if (!axes.includes(a) && x.dims[a] !== 1) throw new Error(`${w}: reduction over non-adjacent axes [${axes}] is not supported`);
        const kind = op === 'ReduceMean' || op === 'GlobalAveragePool' ? ReduceOp.mean : op === 'ReduceSum' ? ReduceOp.sum : op === 'ReduceMax' || op === 'GlobalMaxPool' ? ReduceOp.max : ReduceOp.min;
        const O = numel(x.dims.slice(0, lo));
        const R = numel(x.dims.slice(lo, hi + 1));
        const I = numel(x.dims.slice(hi + 1));
        const src = reduceThroughView(viewOf(n.inputs[0]), O, R, I);
        if (src) {
          // reduce the source in its own layout; the (small) result is permuted by a view if needed
          const red = newArena('float32', [src.O * src.I]);
          emit('reduce', [src.t], [red], [src.O, R, src.I, kind], [], n.name);
          state.set(o, { k: 'view', v: { srcs: [red], map: src.outMap, dims: od, dtype: 'float32' } });
          continue;
        }
        const y = out0(n);
        emit('reduce', [tensorOf(n.inputs[0], n.name)], [y], [O, R, I, kind], [], n.name);
        setT(o, y);
        continue;
      }
      case 'ArgMax': {
        const x = ins[0]!;
        f32(n, n.inputs[0], 'input');
        const a = attrInt(n, 'axis', 0);
        const ax = a < 0 ? a + x.dims.length : a;
        if (attrInt(n, 'select_last_index', 0)) throw new Error(`${w}: select_last_index=1 is not supported`);
        if (x.dims.slice(ax + 1).some((d) => d !== 1)) throw new Error(`${w}: argmax over axis ${a} that is not the last is not supported`);
        const y = out0(n);
        emit('argmax', [tensorOf(n.inputs[0], n.name)], [y], [numel(x.dims) / x.dims[ax], x.dims[ax]], [], n.name);
        setT(o, y);
        continue;
      }
      case 'Cast': case 'CastLike': {
        if (info(o).dtype === 'bool') throw new Error(`${w}: cast to bool on run-time data is not supported`);
        const y = out0(n);
        emit('cast', [tensorOf(n.inputs[0], n.name)], [y], [], [], n.name);
        setT(o, y);
        continue;
      }
      case 'Conv': {
        f32(n, n.inputs[0], 'input');
        const x = ins[0]!;
        const wt = ins[1]?.const;
        if (!wt || wt.dtype !== 'float32') throw new Error(`${w}: the weight must be a float32 constant`);
        if (x.dims.length !== 4) throw new Error(`${w}: only 2-D convolution is supported (input rank ${x.dims.length})`);
        if (attrInt(n, 'group', 1) !== 1) throw new Error(`${w}: grouped convolution (group=${attrInt(n, 'group', 1)}) is not supported`);
        const [Nb, C, H, W] = x.dims;
        const [O, Cw, kh, kw] = wt.dims;
        if (Cw !== C) throw new Error(`${w}: weight has ${Cw} input channels, input has ${C}`);
        const [, , OH, OW] = od;
        const st = attrInts(n, 'strides') ?? [1, 1];
        const dl = attrInts(n, 'dilations') ?? [1, 1];
        let pads = attrInts(n, 'pads') ?? [0, 0, 0, 0];
        const ap = attrString(n, 'auto_pad', 'NOTSET');
        if (ap === 'SAME_UPPER' || ap === 'SAME_LOWER') {
          const tot = [0, 1].map((i) => Math.max(0, (od[2 + i] - 1) * st[i] + (wt.dims[2 + i] - 1) * dl[i] + 1 - x.dims[2 + i]));
          pads = ap === 'SAME_UPPER' ? [tot[0] >> 1, tot[1] >> 1, tot[0] - (tot[0] >> 1), tot[1] - (tot[1] >> 1)] : [tot[0] - (tot[0] >> 1), tot[1] - (tot[1] >> 1), tot[0] >> 1, tot[1] >> 1];
        } else if (ap === 'VALID') pads = [0, 0, 0, 0];
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
        const cols = materialize(applyMove(n, [n.inputs[0]], { dims: [Nb * OH * OW, K], map }), n.name);
        const wk = makeConst('float32', [K, O]);
        for (let oc = 0; oc < O; oc++) for (let k = 0; k < K; k++) wk.data[k * O + oc] = wt.data[oc * K + k];
        const bias = n.inputs[2] ? ins[2]?.const : undefined;
        if (n.inputs[2] && !bias) throw new Error(`${w}: the bias must be constant`);
        const y = newArena('float32', [Nb * OH * OW, O]);
        emit('linear', [cols, constT(wk), bias ? constT(bias) : -1, -1], [y], [Nb * OH * OW, K, O, 0], [], n.name);
        // [N, OH, OW, O] → NCHW as a view (a following NHWC permute composes to an alias)
        state.set(o, { k: 'view', v: { srcs: [y], map: stridedMap(od, [OH * OW * O, 1, OW * O, O], 0), dims: od, dtype: 'float32' } });
        continue;
      }
    }
    throw new Error(`${w}: not supported on run-time data (only constant inputs can be folded)`);
  }

  /**
   * A reduction of a permuted view is a reduction of its source with other (outer, inner) sizes when
   * every output's inputs form one stride-I' run there; returns that and the output permutation.
   */
  function reduceThroughView(v: View, O: number, R: number, I: number): { t: number; O: number; I: number; outMap: Int32Array | null } | undefined {
    if (!v.map || v.srcs.length !== 1 || R < 2) return undefined;
    const X = numel(tensors[v.srcs[0]].dims);
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

  function matmul(n: Node, a: string, b: string, alpha: number, transB: number): number {
    const w = where(n);
    f32(n, a, 'A');
    f32(n, b, 'B');
    const ai = info(a);
    const bi = info(b);
    const bd = transB ? [...bi.dims.slice(0, -2), bi.dims[bi.dims.length - 1], bi.dims[bi.dims.length - 2]] : bi.dims;
    const { M, K, N, batch } = matmulDims(ai.dims, bd, w);
    const B = numel(batch);
    const aD = ai.dims.length === 1 ? [1, ai.dims[0]] : ai.dims;
    const bD = bi.dims.length === 1 ? [bi.dims[0], 1] : bi.dims;
    const operand = (v: string, dims: number[]): { t: number; stride: number } => {
      const bt = dims.slice(0, -2);
      const mk = numel(dims.slice(-2));
      if (numel(bt) === 1) return { t: tensorOf(v, n.name), stride: 0 };
      if (numel(bt) === B) return { t: tensorOf(v, n.name), stride: mk };
      // partial broadcast: materialize the expanded operand
      const m = expandMove(dims, [...batch, ...dims.slice(-2)], w);
      const ex = applyMove(n, [v], m);
      return { t: materialize(ex, n.name), stride: mk };
    };
    const A = operand(a, aD);
    const Bo = operand(b, bD);
    const y = out0(n);
    if (info(n.outputs[0]).dims.length === 0 || numel(tensors[y].dims) !== B * M * N) throw new Error(`${w}: internal matmul size mismatch`);
    emit('matmul', [A.t, Bo.t], [y], [B, M, K, N, transB, A.stride, Bo.stride], [alpha], n.name);
    return y;
  }

  // graph outputs: write straight into output storage when the producer is ours alone, else copy
  const outputIds = s.outputs.map((name, i) => {
    const v = info(name);
    let st = state.get(name);
    if (st?.k === 'view' && st.v.srcs.length === 1) {
      setT(name, tensorOf(name, name));
      st = state.get(name);
    }
    if (st?.k === 'tensor') {
      const r = root(st.t);
      const rt = tensors[r];
      const offsetViews = tensors.some((t, k) => t.aliasOf !== undefined && (t.aliasElemOffset ?? 0) !== 0 && root(k) === r);
      if (rt.kind === 'arena' && rt.aliasElemOffset === undefined && !offsetViews && numel(rt.dims) === numel(v.dims)) {
        rt.kind = 'output';
        rt.index = i;
        // every alias of this root is now a view of the output
        for (const t of tensors) if (t.aliasOf !== undefined && root(tensors.indexOf(t)) === r) { t.kind = 'output'; t.index = i; }
        if (st.t === r) { rt.dims = [...v.dims]; return r; }
        const id = addT({ dtype: v.dtype, dims: [...v.dims], kind: 'output', index: i, aliasOf: r, aliasElemOffset: 0 });
        return id;
      }
    }
    const target = addT({ dtype: v.dtype, dims: [...v.dims], kind: 'output', index: i });
    materialize(viewOf(name), name, target);
    return target;
  });
  for (const [v, st] of state) if (st.k === 'tensor') (tensors[st.t].values ??= []).push(v);
  return { tensors, ops, inputs: inputIds, outputs: outputIds };
}
