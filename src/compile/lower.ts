// Lowering: fused nodes → plan ops. Data movement never runs on its own: a movement node makes a
// *view* (sources + an index map composed over the whole chain), and the view is materialized as one
// index_map op only when a compute op (or a graph output) needs it — or aliased when the composed map
// is the identity (reshape-only chains).
// The op-specific rules (one per ONNX op or fused node) live in lower-rules.ts; this file holds the
// context they share (tensors, views, materialization) and the graph-output binding.
import { makeConst, numel, type ConstTensor, type DT, type Node } from '../ir/graph.js';
import { BinaryOp, UnaryOp, type OpName } from '../plan/ops.js';
import { allocMap, broadcastDims, broadcastStrides, type Move } from '../passes/movement.js';
import { MOVE_OPS, movesOf, type Specialized, type VInfo } from '../passes/specialize.js';
import { LOWER_RULES } from './lower-rules.js';

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

/** A value not yet in memory: sources + an index map (null = identity) composed over a movement chain. */
export interface View { srcs: number[]; map: Int32Array | null; dims: number[]; dtype: DT }
type State = { k: 'tensor'; t: number } | { k: 'view'; v: View };

export const where = (n: Node) => `node '${n.name}' (${n.domain ? n.domain + '.' : ''}${n.opType})`;

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

export function isIdentity(map: Int32Array): boolean {
  for (let k = 0; k < map.length; k++) if (map[k] !== k) return false;
  return true;
}

/** What the lowering rules share: the tensors and ops made so far and each value's state. */
export class Lowerer {
  readonly tensors: PT[] = [];
  readonly ops: POp[] = [];
  private readonly state = new Map<string, State>();
  private readonly constIds = new Map<ConstTensor, number>();
  readonly inputIds: number[];

  constructor(readonly s: Specialized, readonly opset: number) {
    this.inputIds = s.inputs.map((name, i) => {
      const v = this.info(name);
      const id = this.addT({ dtype: v.dtype, dims: [...v.dims], kind: 'input', index: i });
      this.setT(name, id);
      return id;
    });
  }

  info(v: string): VInfo { return this.s.values.get(v)!; }
  addT(t: PT): number { return this.tensors.push(t) - 1; }
  newArena(dtype: DT, dims: number[]): number { return this.addT({ dtype, dims: [...dims], kind: 'arena' }); }
  /** An arena tensor shaped as node n's first output. */
  out0(n: Node): number { const v = this.info(n.outputs[0]); return this.newArena(v.dtype, v.dims); }
  constT(c: ConstTensor): number {
    let id = this.constIds.get(c);
    if (id === undefined) {
      id = this.addT({ dtype: c.dtype, dims: [...c.dims], kind: 'const', data: c });
      this.constIds.set(c, id);
    }
    return id;
  }
  emit(kind: OpName, inputs: number[], outputs: number[], ints: number[], floats: number[], name: string): void {
    this.ops.push({ kind, inputs, outputs, ints, floats, name });
  }
  root(t: number): number { let r = t; while (this.tensors[r].aliasOf !== undefined) r = this.tensors[r].aliasOf!; return r; }
  setT(v: string, t: number): void { this.state.set(v, { k: 'tensor', t }); }
  setView(v: string, view: View): void { this.state.set(v, { k: 'view', v: view }); }
  /** The tensor value v already is, if it is one (not a view). */
  tensorIf(v: string): number | undefined { const st = this.state.get(v); return st?.k === 'tensor' ? st.t : undefined; }

  f32(n: Node, v: string, what: string): void {
    if (this.info(v).dtype !== 'float32') throw new Error(`${where(n)}: ${what} is ${this.info(v).dtype}; only float32 is supported at run time`);
  }

  viewOf(v: string): View {
    const st = this.state.get(v);
    const vi = this.info(v);
    if (!st) {
      if (vi.const) return { srcs: [this.constT(vi.const)], map: null, dims: vi.dims, dtype: vi.dtype };
      throw new Error(`internal: value '${v}' has no state`);
    }
    if (st.k === 'view') return st.v;
    return { srcs: [st.t], map: null, dims: this.tensors[st.t].dims, dtype: this.tensors[st.t].dtype };
  }

  private aliasT(src: number, dims: number[]): number {
    const t = this.tensors[src];
    if (t.dims.join() === dims.join()) return src;
    return this.addT({ dtype: t.dtype, dims: [...dims], kind: t.kind, index: t.index, data: t.data, aliasOf: src, aliasElemOffset: 0 });
  }

  /** Makes a tensor of the view (alias, or one index_map op; several sources are staged first). */
  materialize(view: View, name: string, target?: number): number {
    let src: number;
    let map = view.map;
    if (view.srcs.length === 1) src = view.srcs[0];
    else {
      const total = view.srcs.reduce((a, t) => a + numel(this.tensors[t].dims), 0);
      src = this.newArena(view.dtype, [total]);
      let off = 0;
      for (const t of view.srcs) {
        const part = this.addT({ dtype: view.dtype, dims: [numel(this.tensors[t].dims)], kind: 'arena', aliasOf: src, aliasElemOffset: off });
        this.emit('copy', [t], [part], [], [], name);
        off += numel(this.tensors[t].dims);
      }
    }
    const X = numel(this.tensors[src].dims);
    if (map && map.length === X && isIdentity(map)) map = null;
    if (!map) {
      if (target === undefined) return this.aliasT(src, view.dims);
      this.emit('copy', [src], [target], [], [], name);
      return target;
    }
    const out = target ?? this.newArena(view.dtype, view.dims);
    const c = compressMap(map, X);
    const idx = this.constT(makeConst('int32', [c.idx.length], c.idx));
    this.emit('index_map', [src, idx], [out], [c.block, c.items, c.xItem, c.yItem], [], name);
    return out;
  }

  /** Value v as a tensor in memory (materializing its view once). */
  tensorOf(v: string, name: string): number {
    const st = this.state.get(v);
    if (st?.k === 'tensor') return st.t;
    const t = this.materialize(this.viewOf(v), name);
    this.setT(v, t);
    return t;
  }

  /** Applies a movement to views (composing maps over the sources). */
  applyMove(n: Node, data: string[], m: Move): View {
    const views = data.map((v) => this.viewOf(v));
    const dtype = views[0].dtype;
    if (m.padValue !== undefined && m.padValue !== 0) throw new Error(`${where(n)}: non-zero pad value on run-time data is not supported`);
    if (m.map === null && views.length === 1) return { ...views[0], dims: m.dims };
    const srcs: number[] = [];
    const srcOff = new Map<number, number>();
    let total = 0;
    for (const v of views) for (const t of v.srcs) if (!srcOff.has(t)) { srcOff.set(t, total); srcs.push(t); total += numel(this.tensors[t].dims); }
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
    const virt = this.concatMaps(views, srcOff);
    if (m.map) for (let k = 0; k < outN; k++) { const j = m.map[k]; map[k] = j < 0 ? -1 : virt[j]; }
    else map.set(virt.subarray(0, outN));
    return { srcs, map, dims: m.dims, dtype };
  }

  /** Several views' maps (into the union of their sources, at srcOff) laid end to end. */
  private concatMaps(views: View[], srcOff: Map<number, number>): Int32Array {
    const virt = allocMap([views.reduce((a, v) => a + numel(v.dims), 0)]);
    let off = 0;
    for (const v of views) {
      const n = numel(v.dims);
      const offs: number[] = [];
      let a2 = 0;
      for (const t of v.srcs) { offs.push(a2); a2 += numel(this.tensors[t].dims); }
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
    return virt;
  }

  /** y = a op b with broadcasting; a scalar constant operand of add/sub/mul becomes one scale_shift. */
  binary(n: Node, op: number, a: string, b: string): number {
    this.f32(n, a, 'input A');
    this.f32(n, b, 'input B');
    const ai = this.info(a);
    const bi = this.info(b);
    const dims = broadcastDims(ai.dims, bi.dims, where(n));
    const out = this.newArena('float32', dims);
    const sc = (v: VInfo) => (v.const && v.const.data.length === 1 ? v.const.data[0] : undefined);
    const ka = sc(ai);
    const kb = sc(bi);
    const affine = op === BinaryOp.add || op === BinaryOp.sub || op === BinaryOp.mul;
    if (affine && kb !== undefined && numel(ai.dims) === numel(dims)) {
      const p = op === BinaryOp.add ? [1, kb] : op === BinaryOp.sub ? [1, -kb] : [kb, 0];
      this.emit('unary', [this.tensorOf(a, n.name)], [out], [UnaryOp.scale_shift], p, n.name);
      return out;
    }
    if (affine && ka !== undefined && numel(bi.dims) === numel(dims)) {
      const p = op === BinaryOp.add ? [1, ka] : op === BinaryOp.sub ? [-1, ka] : [ka, 0];
      this.emit('unary', [this.tensorOf(b, n.name)], [out], [UnaryOp.scale_shift], p, n.name);
      return out;
    }
    const { d, sa, sb } = collapseBroadcast(dims, broadcastStrides(ai.dims, dims), broadcastStrides(bi.dims, dims));
    if (d.length > 8) throw new Error(`${where(n)}: broadcast of rank ${d.length} is too high`);
    this.emit('binary', [this.tensorOf(a, n.name), this.tensorOf(b, n.name)], [out], [op, d.length, ...d, ...sa, ...sb], [], n.name);
    return out;
  }

  /** One node: movements become views (or aliases of contiguous ranges); every other op has a rule. */
  lowerNode(n: Node): void {
    if (n.domain === '' && MOVE_OPS.has(n.opType)) { this.lowerMove(n); return; }
    const rule = LOWER_RULES[`${n.domain}:${n.opType}`];
    if (!rule) {
      if (n.domain === 'swinq') throw new Error(`internal: ${where(n)} unknown fused op`);
      throw new Error(`${where(n)}: not supported on run-time data (only constant inputs can be folded)`);
    }
    rule(this, n);
  }

  private lowerMove(n: Node): void {
    const { data, moves } = movesOf(this.s, n);
    moves.forEach((m, i) => {
      const out = n.outputs[i];
      if (!out || this.info(out).const) return;
      // a contiguous range of a real tensor (Split/Slice/Gather along the leading axis) is an alias,
      // not a copy. (Materializing a shared *view* once to alias ranges of it would save ops for
      // q/k/v, but its map then has the 3 outermost and stops repeating per batch item.)
      const st = this.state.get(n.inputs[data[0]]);
      if (data.length === 1 && m.map && m.map.length > 0 && st?.k === 'tensor' && this.tensors[this.root(st.t)].kind === 'arena' && isRange(m.map)) {
        this.setT(out, this.addT({ dtype: this.tensors[st.t].dtype, dims: [...m.dims], kind: 'arena', aliasOf: st.t, aliasElemOffset: m.map[0] }));
        return;
      }
      this.setView(out, this.applyMove(n, data.map((j) => n.inputs[j]), m));
    });
  }

  /** Graph outputs: written straight into output storage when the producer is ours alone, else copied. */
  finish(): Lowered {
    const { tensors } = this;
    const outputIds = this.s.outputs.map((name, i) => {
      const v = this.info(name);
      let st = this.state.get(name);
      if (st?.k === 'view' && st.v.srcs.length === 1) {
        this.setT(name, this.tensorOf(name, name));
        st = this.state.get(name);
      }
      if (st?.k === 'tensor') {
        const r = this.root(st.t);
        const rt = tensors[r];
        const offsetViews = tensors.some((t, k) => t.aliasOf !== undefined && (t.aliasElemOffset ?? 0) !== 0 && this.root(k) === r);
        if (rt.kind === 'arena' && rt.aliasElemOffset === undefined && !offsetViews && numel(rt.dims) === numel(v.dims)) {
          rt.kind = 'output';
          rt.index = i;
          // every alias of this root is now a view of the output
          tensors.forEach((t, k) => { if (t.aliasOf !== undefined && this.root(k) === r) { t.kind = 'output'; t.index = i; } });
          if (st.t === r) { rt.dims = [...v.dims]; return r; }
          return this.addT({ dtype: v.dtype, dims: [...v.dims], kind: 'output', index: i, aliasOf: r, aliasElemOffset: 0 });
        }
      }
      const target = this.addT({ dtype: v.dtype, dims: [...v.dims], kind: 'output', index: i });
      this.materialize(this.viewOf(name), name, target);
      return target;
    });
    for (const [v, st] of this.state) if (st.k === 'tensor') (tensors[st.t].values ??= []).push(v);
    return { tensors, ops: this.ops, inputs: this.inputIds, outputs: outputIds };
  }
}

function isRange(map: Int32Array): boolean {
  const b = map[0];
  if (b < 0) return false;
  for (let k = 1; k < map.length; k++) if (map[k] !== b + k) return false;
  return true;
}

/** Drops size-1 dims and merges dims whose strides stay contiguous in both operands. */
function collapseBroadcast(dims: number[], sa0: number[], sb0: number[]): { d: number[]; sa: number[]; sb: number[] } {
  const cd: number[] = [];
  const ca: number[] = [];
  const cb: number[] = [];
  for (let i = dims.length - 1; i >= 0; i--) {
    if (dims[i] === 1) continue;
    const L = cd.length - 1;
    if (L >= 0 && sa0[i] === ca[L] * cd[L] && sb0[i] === cb[L] * cd[L]) cd[L] *= dims[i];
    else { cd.push(dims[i]); ca.push(sa0[i]); cb.push(sb0[i]); }
  }
  if (cd.length === 0) return { d: [1], sa: [0], sb: [0] };
  return { d: cd.reverse(), sa: ca.reverse(), sb: cb.reverse() };
}

export function lower(s: Specialized, nodes: Node[], opset: number): Lowered {
  const L = new Lowerer(s, opset);
  for (const n of nodes) L.lowerNode(n);
  return L.finish();
}
