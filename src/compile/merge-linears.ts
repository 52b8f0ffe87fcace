// Sibling linears → one linear. Hugging Face's attention (and any model with separate query/key/value
// Linear layers) runs three GEMMs on the same input; this pass concatenates their weights and biases
// into one [K, ΣN] GEMM, so the plan has one wider GEMM (better tile use at batch 1) and the three
// outputs become column blocks of one tensor — the [tokens, 3C] layout the fused attention op reads
// (src/quant/lower-swin.ts matchAttention), the same as timm's and torchvision's fused qkv.
// Readers of a sibling's output that are gathers (index_map) are re-pointed at the merged tensor
// (their index maps composed with the column offset); any other reader gets the sibling's block
// back through one extracting gather. Exact: the same sums in the same order per output element.
import { numel, makeConst } from '../ir/graph.js';
import { compressMap, type Lowered, type POp, type PT } from './lower.js';

/** Output element → source element of an index_map (−1: padding). */
function fullMap(op: POp, idx: ArrayLike<number>): Int32Array {
  const [block, items, , yItem] = op.ints;
  const xItem = op.ints[2];
  const out = new Int32Array(items * yItem);
  for (let e = 0; e < out.length; e++) {
    const t = Math.floor(e / yItem), rem = e % yItem, r = Math.floor(rem / block);
    out[e] = idx[r] < 0 ? -1 : t * xItem + idx[r] + (rem % block);
  }
  return out;
}

export function mergeSiblingLinears(l: Lowered): Lowered {
  const T: PT[] = l.tensors.map((t) => ({ ...t }));
  const readers = new Map<number, number[]>();
  l.ops.forEach((op, k) => op.inputs.forEach((t) => { if (t >= 0) readers.set(t, [...(readers.get(t) ?? []), k]); }));
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
