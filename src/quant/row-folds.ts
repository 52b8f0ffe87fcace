// Row gathers folded into the op before them, which then writes each row where the gather would
// have put it (exact: the same bytes at the same places; one op and one thread hand-off fewer).
//  1. After a fused attention (ops.def attention_q heads_merged, y_rows): every layout merges the
//     heads after P·V ([W, H, N, dh] → [W·N, C]); Swin composes that with its window reverse and
//     roll. When the gather is exactly that — each output row one query row's H head slices in head
//     order, every query row placed once — the attention writes its rows there itself.
//  2. After a LayerNorm (layernorm_q y_rows): a permutation of whole rows — Swin's window partition
//     (and shift) of norm1's output.
import { makeConst, numel } from '../ir/graph.js';
import { indexMapSource, type Lowered, type POp, type PT } from '../compile/lower.js';

/** Query row w·N + i → output row, or undefined when gather g is not a head merge + row permutation. */
function rowPlacement(g: POp, idx: ArrayLike<number>, W: number, N: number, H: number, dh: number): Int32Array | undefined {
  const C = H * dh, R = W * N;
  const rows = new Int32Array(R).fill(-1);
  for (let r = 0; r < R; r++) {
    const s0 = indexMapSource(g.ints, idx, r * C);
    if (s0 < 0 || s0 % dh) return undefined;
    const t = Math.floor(s0 / (N * dh)), i = (s0 / dh) % N;
    if (t % H) return undefined;
    const q = (t / H) * N + i;
    if (rows[q] >= 0) return undefined;
    rows[q] = r;
    for (let h = 0; h < H; h++) {
      const from = ((t + h) * N + i) * dh;
      for (let d = 0; d < dh; d++) if (indexMapSource(g.ints, idx, r * C + h * dh + d) !== from + d) return undefined;
    }
  }
  return rows; // R rows placed, none twice: a permutation
}

/** Source row → output row when gather g moves whole D-element rows, each exactly once. */
function wholeRowPermutation(g: POp, idx: ArrayLike<number>, rows: number, D: number): Int32Array | undefined {
  const perm = new Int32Array(rows).fill(-1);
  for (let r = 0; r < rows; r++) {
    const s0 = indexMapSource(g.ints, idx, r * D);
    if (s0 < 0 || s0 % D) return undefined;
    const p = s0 / D;
    if (perm[p] >= 0) return undefined;
    perm[p] = r;
    for (let d = 1; d < D; d++) if (indexMapSource(g.ints, idx, r * D + d) !== s0 + d) return undefined;
  }
  return perm;
}

export function foldRowGathers(l: Lowered): Lowered {
  const T: PT[] = l.tensors.map((t) => ({ ...t }));
  const readers = new Map<number, number[]>();
  l.ops.forEach((op, k) => op.inputs.forEach((t) => { if (t >= 0) readers.set(t, [...(readers.get(t) ?? []), k]); }));
  const viewed = new Set<number>();
  for (const t of T) if (t.aliasOf !== undefined) viewed.add(t.aliasOf);
  const ops = l.ops.map((o) => ({ ...o }));
  const drop = new Set<number>();
  // the one gather that reads op a's whole output, or undefined
  const soleGather = (a: POp): { g: POp; k: number } | undefined => {
    const y = a.outputs[0];
    const rs = readers.get(y) ?? [];
    if (rs.length !== 1 || viewed.has(y) || T[y].kind !== 'arena' || T[y].aliasOf !== undefined) return undefined;
    const g = ops[rs[0]];
    if (g.kind !== 'index_map' || g.inputs[0] !== y || T[g.outputs[0]].dtype !== T[y].dtype) return undefined;
    return { g, k: rs[0] };
  };
  ops.forEach((a, k) => {
    if (a.kind === 'layernorm_q' && (a.inputs[3] ?? -1) < 0) {
      const s = soleGather(a);
      if (!s) return;
      const [rows, D] = a.ints;
      if (numel(T[s.g.outputs[0]].dims) !== rows * D) return;
      const perm = wholeRowPermutation(s.g, T[s.g.inputs[1]].data!.data, rows, D);
      if (!perm) return;
      T.push({ dtype: 'int32', dims: [rows], kind: 'const', data: makeConst('int32', [rows], perm) });
      const ins = [...a.inputs, -1, -1, -1].slice(0, 3);
      ops[k] = { ...a, inputs: [...ins, T.length - 1], outputs: [s.g.outputs[0]] };
      drop.add(s.k);
      return;
    }
    if (a.kind !== 'attention_q' || a.ints.length !== 8) return;
    const s = soleGather(a);
    if (!s) return;
    const { g } = s;
    const [W, N, H, dh] = a.ints;
    if (numel(T[g.outputs[0]].dims) !== W * N * H * dh) return;
    const rows = rowPlacement(g, T[g.inputs[1]].data!.data, W, N, H, dh);
    if (!rows) return;
    const inOrder = rows.every((r, q) => r === q);
    const inputs = a.inputs.slice(0, 4);
    if (!inOrder) {
      T.push({ dtype: 'int32', dims: [rows.length], kind: 'const', data: makeConst('int32', [rows.length], rows) });
      inputs.push(T.length - 1);
    }
    ops[k] = { ...a, inputs, outputs: [g.outputs[0]], ints: [...a.ints, 1] };
    drop.add(s.k);
  });
  if (!drop.size) return l;
  return { tensors: T, ops: ops.filter((_, k) => !drop.has(k)), inputs: l.inputs, outputs: l.outputs };
}
