// Data movement as index maps. Every op here maps each output element to one element of its data
// inputs (laid end to end: input 0 first, then input 1, …) or to -1 (padding). The same maps fold
// constants (apply to the data) and, composed over whole chains, become one `index_map` plan op.
import { numel } from '../ir/graph.js';

export interface Move {
  dims: number[];
  /** null: the flat layout is unchanged (reshape-like) — the output aliases the input. */
  map: Int32Array | null;
  /** pad modes other than constant 0 fill -1 entries with this value (constants only). */
  padValue?: number;
}

export function stridesOf(dims: readonly number[]): number[] {
  const s = new Array<number>(dims.length);
  let acc = 1;
  for (let i = dims.length - 1; i >= 0; i--) {
    s[i] = acc;
    acc *= dims[i];
  }
  return s;
}

const MAX_MAP = 2 ** 31 - 1;
/** Allocates an index map for dims, refusing hostile sizes before touching memory. */
export function allocMap(dims: readonly number[]): Int32Array {
  const n = numel(dims);
  if (!(n <= MAX_MAP)) throw new Error(`output [${dims.join(',')}] has ${n} elements, more than the limit ${MAX_MAP}`);
  return new Int32Array(n);
}

/** map[out] = base + Σ idx_d · strides[d] over the output's multi-index. */
export function stridedMap(dims0: readonly number[], strides0: readonly number[], base: number): Int32Array {
  const n = numel(dims0);
  const map = allocMap(dims0);
  // drop size-1 dims and merge dims that stay contiguous: fewer, longer inner loops
  const outDims: number[] = [];
  const strides: number[] = [];
  for (let i = 0; i < dims0.length; i++) {
    if (dims0[i] === 1) continue;
    const L = outDims.length - 1;
    if (L >= 0 && strides[L] === strides0[i] * dims0[i]) {
      outDims[L] *= dims0[i];
      strides[L] = strides0[i];
    } else {
      outDims.push(dims0[i]);
      strides.push(strides0[i]);
    }
  }
  const r = outDims.length;
  if (n === 0) return map;
  if (r === 0) {
    map[0] = base;
    return map;
  }
  const idx = new Array<number>(r).fill(0);
  const last = r - 1;
  const dl = outDims[last];
  const sl = strides[last];
  let off = base;
  for (let i = 0; i < n; i += dl) {
    for (let j = 0; j < dl; j++) map[i + j] = off + j * sl;
    // advance the outer counter
    for (let d = last - 1; d >= 0; d--) {
      idx[d]++;
      off += strides[d];
      if (idx[d] < outDims[d]) break;
      off -= strides[d] * outDims[d];
      idx[d] = 0;
    }
  }
  return map;
}

export function normAxis(axis: number, rank: number, what: string): number {
  const a = axis < 0 ? axis + rank : axis;
  if (!Number.isInteger(a) || a < 0 || a >= rank) throw new Error(`${what}: axis ${axis} is out of range for rank ${rank}`);
  return a;
}

export function reshapeDims(inDims: readonly number[], shape: readonly number[], allowZero: boolean, what: string): number[] {
  const out = shape.map((d, i) => (d === 0 && !allowZero ? (i < inDims.length ? inDims[i] : NaN) : d));
  const total = numel(inDims);
  const neg = out.filter((d) => d === -1).length;
  if (neg > 1 || out.some((d) => Number.isNaN(d) || d < -1 || !Number.isInteger(d))) {
    throw new Error(`${what}: invalid target shape [${shape.join(',')}] for input [${inDims.join(',')}]`);
  }
  if (neg === 1) {
    const rest = numel(out.filter((d) => d !== -1));
    if (rest === 0 || total % rest !== 0) throw new Error(`${what}: cannot reshape [${inDims.join(',')}] to [${shape.join(',')}]`);
    out[out.indexOf(-1)] = total / rest;
  }
  if (numel(out) !== total) throw new Error(`${what}: cannot reshape [${inDims.join(',')}] (${total} elements) to [${out.join(',')}]`);
  return out;
}

export function transpose(inDims: readonly number[], perm: readonly number[] | undefined, what: string): Move {
  const r = inDims.length;
  const p = perm ?? [...Array(r).keys()].reverse();
  if (p.length !== r || [...p].sort((a, b) => a - b).some((v, i) => v !== i)) {
    throw new Error(`${what}: perm [${p.join(',')}] is not a permutation of rank ${r}`);
  }
  const inS = stridesOf(inDims);
  const dims = p.map((a) => inDims[a]);
  // a permutation that only moves size-1 dims keeps the layout
  const kept = p.filter((a) => inDims[a] !== 1);
  if (kept.every((a, i) => i === 0 || kept[i - 1] < a)) return { dims, map: null };
  return { dims, map: stridedMap(dims, p.map((a) => inS[a]), 0) };
}

export function slice(inDims: readonly number[], starts: number[], ends: number[], axes: number[] | undefined, steps: number[] | undefined, what: string): Move {
  const r = inDims.length;
  const ax = axes ?? starts.map((_, i) => i);
  if (starts.length !== ends.length || ax.length !== starts.length || (steps && steps.length !== starts.length)) {
    throw new Error(`${what}: starts/ends/axes/steps must have the same length`);
  }
  const st = new Array<number>(r).fill(0);
  const step = new Array<number>(r).fill(1);
  const dims = [...inDims];
  const seen = new Set<number>();
  for (let i = 0; i < ax.length; i++) {
    const a = normAxis(ax[i], r, what);
    if (seen.has(a)) throw new Error(`${what}: axis ${ax[i]} repeated`);
    seen.add(a);
    const d = inDims[a];
    const s = steps ? steps[i] : 1;
    if (s === 0 || !Number.isFinite(s)) throw new Error(`${what}: step must be non-zero`);
    let b = starts[i];
    let e = ends[i];
    if (b < 0) b += d;
    if (e < 0) e += d;
    if (s > 0) {
      b = Math.min(Math.max(b, 0), d);
      e = Math.min(Math.max(e, 0), d);
      dims[a] = Math.max(0, Math.ceil((e - b) / s));
    } else {
      b = Math.min(Math.max(b, 0), d - 1);
      e = Math.min(Math.max(e, -1), d - 1);
      dims[a] = Math.max(0, Math.ceil((e - b) / s));
    }
    st[a] = b;
    step[a] = s;
  }
  const inS = stridesOf(inDims);
  if (dims.every((d, i) => d === inDims[i]) && step.every((s) => s === 1)) return { dims, map: null };
  const base = st.reduce((acc, b, i) => acc + (dims[i] > 0 ? b * inS[i] : 0), 0);
  return { dims, map: stridedMap(dims, inS.map((s, i) => s * step[i]), base) };
}

export function concat(inDims: readonly (readonly number[])[], axis: number, what: string): Move {
  const r = inDims[0].length;
  const a = normAxis(axis, r, what);
  for (const d of inDims) {
    if (d.length !== r || d.some((v, i) => i !== a && v !== inDims[0][i])) {
      throw new Error(`${what}: inputs [${inDims.map((x) => `[${x.join(',')}]`).join(' ')}] differ outside axis ${axis}`);
    }
  }
  const dims = [...inDims[0]];
  dims[a] = inDims.reduce((s, d) => s + d[a], 0);
  const outer = numel(dims.slice(0, a));
  const inner = numel(dims.slice(a + 1));
  const map = allocMap(dims);
  let k = 0;
  for (let o = 0; o < outer; o++) {
    let base = 0;
    for (const d of inDims) {
      const len = d[a] * inner;
      const src = base + o * len;
      for (let j = 0; j < len; j++) map[k++] = src + j;
      base += numel(d);
    }
  }
  return { dims, map: inDims.length === 1 ? null : map };
}

export function gather(inDims: readonly number[], indices: ArrayLike<number>, idxDims: readonly number[], axis: number, what: string): Move {
  const r = inDims.length;
  const a = normAxis(axis, r, what);
  const d = inDims[a];
  const dims = [...inDims.slice(0, a), ...idxDims, ...inDims.slice(a + 1)];
  const outer = numel(inDims.slice(0, a));
  const inner = numel(inDims.slice(a + 1));
  const ni = indices.length;
  const map = allocMap(dims);
  let k = 0;
  for (let o = 0; o < outer; o++) {
    for (let i = 0; i < ni; i++) {
      let ix = indices[i];
      if (ix < 0) ix += d;
      if (!(ix >= 0 && ix < d)) throw new Error(`${what}: index ${indices[i]} is out of range for axis ${axis} of size ${d}`);
      const src = (o * d + ix) * inner;
      for (let j = 0; j < inner; j++) map[k++] = src + j;
    }
  }
  return { dims, map };
}

export function broadcastDims(a: readonly number[], b: readonly number[], what: string): number[] {
  const r = Math.max(a.length, b.length);
  const out = new Array<number>(r);
  for (let i = 0; i < r; i++) {
    const x = i - (r - a.length) >= 0 ? a[i - (r - a.length)] : 1;
    const y = i - (r - b.length) >= 0 ? b[i - (r - b.length)] : 1;
    if (x !== y && x !== 1 && y !== 1) throw new Error(`${what}: shapes [${a.join(',')}] and [${b.join(',')}] do not broadcast`);
    out[i] = x === 1 ? y : x;
  }
  return out;
}

/** Element strides of `inDims` read as `outDims` (numpy broadcasting; 0 where broadcast). */
export function broadcastStrides(inDims: readonly number[], outDims: readonly number[]): number[] {
  const s = stridesOf(inDims);
  const off = outDims.length - inDims.length;
  return outDims.map((_, i) => (i < off || inDims[i - off] === 1 ? 0 : s[i - off]));
}

export function expand(inDims: readonly number[], shape: readonly number[], what: string): Move {
  const dims = broadcastDims(inDims, shape, what);
  if (numel(dims) === numel(inDims)) return { dims, map: null };
  return { dims, map: stridedMap(dims, broadcastStrides(inDims, dims), 0) };
}

export function tile(inDims: readonly number[], repeats: readonly number[], what: string): Move {
  if (repeats.length !== inDims.length || repeats.some((r) => r < 0 || !Number.isInteger(r))) {
    throw new Error(`${what}: repeats [${repeats.join(',')}] do not match rank ${inDims.length}`);
  }
  const dims = inDims.map((d, i) => d * repeats[i]);
  const inS = stridesOf(inDims);
  const base = stridedMap(dims, new Array(dims.length).fill(0), 0);
  // index per dim = out_idx mod in_dim: build per element
  const outS = stridesOf(dims);
  for (let k = 0; k < base.length; k++) {
    let rem = k;
    let src = 0;
    for (let i = 0; i < dims.length; i++) {
      const q = Math.floor(rem / outS[i]);
      rem -= q * outS[i];
      src += (q % inDims[i]) * inS[i];
    }
    base[k] = src;
  }
  return { dims, map: base };
}

export function pad(inDims: readonly number[], pads: readonly number[], mode: string, what: string): Move {
  const r = inDims.length;
  if (pads.length !== 2 * r) throw new Error(`${what}: pads has ${pads.length} values, expected ${2 * r}`);
  const dims = inDims.map((d, i) => d + pads[i] + pads[i + r]);
  if (dims.some((d) => d < 0)) throw new Error(`${what}: pads [${pads.join(',')}] give a negative dim`);
  if (pads.every((p) => p === 0)) return { dims, map: null };
  const inS = stridesOf(inDims);
  const outS = stridesOf(dims);
  const map = allocMap(dims);
  for (let k = 0; k < map.length; k++) {
    let rem = k;
    let src = 0;
    for (let i = 0; i < r; i++) {
      const q = Math.floor(rem / outS[i]);
      rem -= q * outS[i];
      let x = q - pads[i];
      const d = inDims[i];
      if (x < 0 || x >= d) {
        if (mode === 'constant') { src = -1; break; }
        if (mode === 'edge') x = x < 0 ? 0 : d - 1;
        else if (mode === 'reflect') {
          if (d === 1) x = 0;
          else {
            const period = 2 * (d - 1);
            x = ((x % period) + period) % period;
            if (x >= d) x = period - x;
          }
        } else throw new Error(`${what}: pad mode '${mode}' is not supported`);
      }
      src += x * inS[i];
    }
    map[k] = src;
  }
  return { dims, map };
}

/** Composes: result[k] = inner[outer[k]] (keeping -1). */
export function composeMaps(outer: Int32Array, inner: Int32Array): Int32Array {
  const r = new Int32Array(outer.length);
  for (let k = 0; k < outer.length; k++) {
    const j = outer[k];
    r[k] = j < 0 ? -1 : inner[j];
  }
  return r;
}
