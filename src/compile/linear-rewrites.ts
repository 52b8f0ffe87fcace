// Plan-level rewrites around linear ops, exact (the same sums in the same order per output element):
//  1. A row gather in front of a linear is moved behind it: torchvision's nn.MultiheadAttention
//     transposes tokens to [N, B, C] before its in_proj GEMM; the GEMM now reads [B, N, C] and the
//     readers of its output (gathers) take the row permutation into their index maps, so q/k/v are
//     read from a [B, N, 3C] tensor as in timm — the layout the fused attention op reads.
//  2. Sibling linears → one linear. Hugging Face's attention (and any model with separate query/key/value
// Linear layers) runs three GEMMs on the same input; this pass concatenates their weights and biases
// into one [K, ΣN] GEMM, so the plan has one wider GEMM (better tile use at batch 1) and the three
// outputs become column blocks of one tensor — the [tokens, 3C] layout the fused attention op reads
// (src/quant/attention-match.ts), the same as timm's and torchvision's fused qkv.
// Readers of a sibling's output that are gathers (index_map) are re-pointed at the merged tensor
// (their index maps composed with the column offset); any other reader gets the sibling's block
// back through one extracting gather. Exact: the same sums in the same order per output element.
import { numel, makeConst } from '../ir/graph.js';
import { compressMap, indexMapSource, type Lowered, type POp, type PT } from './lower.js';

/** Output element → source element of an index_map (−1: padding). */
function fullMap(op: POp, idx: ArrayLike<number>): Int32Array {
  const out = new Int32Array(op.ints[1] * op.ints[3]);
  for (let e = 0; e < out.length; e++) out[e] = indexMapSource(op.ints, idx, e);
  return out;
}

/** Both rewrites, in order. */
export function rewriteLinears(l: Lowered): Lowered {
  return mergeSiblingLinears(commuteRowGathers(l));
}

/** Index of every reader op of each tensor id. */
function readersOf(ops: readonly POp[]): Map<number, number[]> {
  const r = new Map<number, number[]>();
  ops.forEach((op, k) => op.inputs.forEach((t) => { if (t >= 0) r.set(t, [...(r.get(t) ?? []), k]); }));
  return r;
}

/** perm(r) = (r mod Q)·P + ⌊r / Q⌋ for some P·Q = M, P, Q > 1: a transpose of a [P, Q] row grid. */
function isRowAxisSwap(perm: Int32Array): boolean {
  const M = perm.length;
  if (M < 2 || perm[0] !== 0) return false;
  const P = perm[1]; // r = 1 → (1 mod Q)·P
  if (P < 2 || M % P) return false;
  const Q = M / P;
  if (Q < 2) return false;
  for (let r = 0; r < M; r++) if (perm[r] !== (r % Q) * P + Math.floor(r / Q)) return false;
  return true;
}

/** Rewrite 1: index_map (a permutation of whole K-element rows) → linear, with every reader of the
 *  linear's output a gather, becomes linear on the un-permuted rows with the permutation composed
 *  into those gathers. */
export function commuteRowGathers(l: Lowered): Lowered {
  const T: PT[] = l.tensors.map((t) => ({ ...t }));
  const ops = l.ops.map((o) => ({ ...o }));
  const readers = readersOf(ops);
  const aliased = new Set<number>();
  for (const t of T) if (t.aliasOf !== undefined) aliased.add(t.aliasOf);
  const drop = new Set<number>();
  ops.forEach((g, gk) => {
    if (g.kind !== 'index_map') return;
    const y = g.outputs[0], x = g.inputs[0];
    const rs = readers.get(y) ?? [];
    if (rs.length !== 1 || aliased.has(y) || T[y].kind !== 'arena' || T[y].aliasOf !== undefined) return;
    const L = ops[rs[0]];
    if (L.kind !== 'linear' || L.inputs[0] !== y || L.inputs[3] >= 0) return;
    const [M, K, N] = L.ints;
    if (numel(T[x].dims) !== M * K || numel(T[y].dims) !== M * K) return;
    const map = fullMap(g, T[g.inputs[1]].data!.data);
    const perm = new Int32Array(M);
    const hit = new Uint8Array(M);
    for (let r = 0; r < M; r++) {
      const s0 = map[r * K];
      if (s0 < 0 || s0 % K) return;
      for (let c = 1; c < K; c++) if (map[r * K + c] !== s0 + c) return;
      const p = s0 / K;
      if (hit[p]) return;
      hit[p] = 1;
      perm[r] = p;
    }
    // only a swap of two row axes ([N, B] ↔ [B, N], as nn.MultiheadAttention's seq-first layout):
    // a window partition (Swin) must stay in front, where it gives the fused attention its
    // [windows, tokens, 3C] layout
    if (!isRowAxisSwap(perm)) return;
    const t = L.outputs[0];
    const tr = readers.get(t) ?? [];
    if (aliased.has(t) || T[t].kind !== 'arena' || T[t].aliasOf !== undefined || !tr.length) return;
    if (!tr.every((k) => ops[k].kind === 'index_map' && ops[k].inputs[0] === t)) return;
    const remap = (j: number) => (j < 0 ? -1 : perm[Math.floor(j / N)] * N + (j % N));
    for (const k of tr) {
      const c = compressMap(fullMap(ops[k], T[ops[k].inputs[1]].data!.data).map(remap), M * N);
      T.push({ dtype: 'int32', dims: [c.idx.length], kind: 'const', data: makeConst('int32', [c.idx.length], c.idx) });
      ops[k] = { ...ops[k], inputs: [t, T.length - 1], ints: [c.block, c.items, c.xItem, c.yItem] };
    }
    ops[rs[0]] = { ...L, inputs: [x, ...L.inputs.slice(1)] };
    drop.add(gk);
  });
  if (!drop.size) return l;
  return { tensors: T, ops: ops.filter((_, k) => !drop.has(k)), inputs: l.inputs, outputs: l.outputs };
}

/** Rewrite 2: plain linears on one input, same M, K and activation → one [K, ΣN] linear. */
export function mergeSiblingLinears(l: Lowered): Lowered {
  const T: PT[] = l.tensors.map((t) => ({ ...t }));
  const readers = readersOf(l.ops);
  const aliased = new Set<number>();
  for (const t of T) if (t.aliasOf !== undefined) aliased.add(t.aliasOf);
  const isConst = (t: number) => t < 0 || (T[t].kind === 'const' && T[t].aliasOf === undefined && !!T[t].data);
  // groups: plain linears (no residual) on the same input tensor with the same M, K and activation
  const groups = new Map<string, number[]>();
  l.ops.forEach((op, k) => {
    if (op.kind !== 'linear' || op.inputs[3] >= 0 || !isConst(op.inputs[1]) || !isConst(op.inputs[2])) return;
    const o = op.outputs[0];
    if (T[o].kind !== 'arena' || T[o].aliasOf !== undefined) return;
    const key = `${op.inputs[0]}|${op.ints[0]}|${op.ints[1]}|${op.ints[3]}`;
    groups.set(key, [...(groups.get(key) ?? []), k]);
  });
  const replaced = new Map<number, POp[]>(); // op index → ops emitted in its place
  const dropped = new Set<number>();
  const rewritten = new Map<number, POp>();
  for (const members of groups.values()) {
    if (members.length < 2) continue;
    const ops = members.map((k) => l.ops[k]);
    const [M, K, , act] = ops[0].ints;
    const Ns = ops.map((o) => o.ints[2]);
    const Nt = Ns.reduce((a, b) => a + b, 0);
    const w = new Float32Array(K * Nt);
    const b = new Float32Array(Nt);
    let off = 0;
    ops.forEach((op, i) => {
      const wi = T[op.inputs[1]].data!.data, N = Ns[i];
      for (let k = 0; k < K; k++) for (let n = 0; n < N; n++) w[k * Nt + off + n] = wi[k * N + n];
      if (op.inputs[2] >= 0) b.set(T[op.inputs[2]].data!.data, off);
      off += N;
    });
    const add = (t: PT) => T.push(t) - 1;
    const wt = add({ dtype: 'float32', dims: [K, Nt], kind: 'const', data: makeConst('float32', [K, Nt], w) });
    const bt = add({ dtype: 'float32', dims: [Nt], kind: 'const', data: makeConst('float32', [Nt], b) });
    const od = T[ops[0].outputs[0]].dims;
    const y = add({ dtype: 'float32', dims: [...od.slice(0, -1), Nt], kind: 'arena', values: ops.flatMap((o) => T[o.outputs[0]].values ?? []) });
    const merged: POp = { kind: 'linear', inputs: [ops[0].inputs[0], wt, bt, -1], outputs: [y], ints: [M, K, Nt, act], floats: [...ops[0].floats], name: ops.map((o) => o.name).join(' & ') };
    const emitted: POp[] = [merged];
    off = 0;
    ops.forEach((op, i) => {
      const t = op.outputs[0], N = Ns[i], o0 = off;
      off += N;
      const remap = (j: number) => (j < 0 ? -1 : Math.floor(j / N) * Nt + o0 + (j % N));
      const rs = readers.get(t) ?? [];
      const gathersOnly = !aliased.has(t) && rs.every((k) => l.ops[k].kind === 'index_map' && l.ops[k].inputs[0] === t && !members.includes(k));
      if (gathersOnly) {
        for (const k of rs) {
          const g = rewritten.get(k) ?? l.ops[k];
          const c = compressMap(fullMap(g, T[g.inputs[1]].data!.data).map(remap), numel(T[y].dims));
          const it = add({ dtype: 'int32', dims: [c.idx.length], kind: 'const', data: makeConst('int32', [c.idx.length], c.idx) });
          rewritten.set(k, { ...g, inputs: [y, it], ints: [c.block, c.items, c.xItem, c.yItem] });
        }
        return;
      }
      // the sibling's block of columns, gathered back into its own tensor
      const idx = new Int32Array(M).map((_, m) => m * Nt + o0);
      const it = add({ dtype: 'int32', dims: [M], kind: 'const', data: makeConst('int32', [M], idx) });
      emitted.push({ kind: 'index_map', inputs: [y, it], outputs: [t], ints: [N, 1, M * Nt, M * N], floats: [], name: op.name });
    });
    replaced.set(members[0], emitted);
    for (const k of members.slice(1)) dropped.add(k);
  }
  if (!replaced.size) return l;
  const ops: POp[] = [];
  l.ops.forEach((op, k) => {
    if (dropped.has(k)) return;
    const r = replaced.get(k);
    if (r) ops.push(...r);
    else ops.push(rewritten.get(k) ?? op);
  });
  return { tensors: T, ops, inputs: l.inputs, outputs: l.outputs };
}
