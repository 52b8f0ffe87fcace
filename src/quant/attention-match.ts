// The fused-attention pattern in a float plan: q·kᵀ matmul → softmax → P·V matmul whose operands
// are gathers of one [W, N, 3C] tensor (timm, torchvision and — after the linear rewrites — Hugging
// Face and nn.MultiheadAttention layouts; W = windows for Swin, batch for global ViT attention).
import { numel } from '../ir/graph.js';
import { indexMapSource, type Lowered, type POp } from '../compile/lower.js';
import { aliasRoot, aliasOffset } from '../compile/plan.js';

const rootOf = aliasRoot;

export interface AttentionMatch { qkv: number; softmax: number; pv: number; W: number; N: number; H: number; dh: number; qFactor: number; kFactor: number; vFactor: number }

/** The fused-attention pattern at plan op k (a q·kᵀ matmul): matmul → softmax → matmul whose three
 *  operands are gathers (index_map, possibly through a p0·x scale) of one [W, N, 3C] tensor — q, k
 *  and v of each (window, head) — verified element by element against that layout. */
export function matchAttention(l: Lowered, k: number, consumers: Map<number, number[]>): AttentionMatch | undefined {
  const T = l.tensors;
  const ops = l.ops;
  const op = ops[k];
  const only = (t: number): number | undefined => { const c = consumers.get(rootOf(T, t)) ?? []; return c.length === 1 ? c[0] : undefined; };
  // a tensor that is its root, or a whole-tensor view of it (alias offset 0, same element count)
  const whole = (t: number): boolean => aliasOffset(T, t) === 0 && numel(T[t].dims) === numel(T[rootOf(T, t)].dims);
  const ks = only(op.outputs[0]);
  if (ks === undefined || ops[ks].kind !== 'softmax' || rootOf(T, ops[ks].inputs[0]) !== rootOf(T, op.outputs[0]) || !whole(ops[ks].inputs[0])) return undefined;
  const kp = only(ops[ks].outputs[0]);
  if (kp === undefined || ops[kp].kind !== 'matmul' || rootOf(T, ops[kp].inputs[0]) !== rootOf(T, ops[ks].outputs[0]) || !whole(ops[kp].inputs[0])) return undefined;
  const producer = (t: number) => ops.findIndex((o) => rootOf(T, o.outputs[0]) === rootOf(T, t));
  // the gather behind an operand (through a positive p0·x scale, returned as factor)
  const gather = (t: number): { g: POp; factor: number } | undefined => {
    let p = producer(t);
    let factor = 1;
    if (p >= 0 && ops[p].kind === 'unary' && ops[p].ints[0] === 23 && ops[p].floats[0] > 0 && ops[p].floats[1] === 0) {
      if (!whole(ops[p].inputs[0])) return undefined;  // a scale of a slice is not the gather's layout
      factor = ops[p].floats[0];
      p = producer(ops[p].inputs[0]);
    }
    return p >= 0 && ops[p].kind === 'index_map' && rootOf(T, ops[p].inputs[0]) === ops[p].inputs[0] ? { g: ops[p], factor } : undefined;
  };
  const fq = gather(op.inputs[0]), fk = gather(op.inputs[1]), fv = gather(ops[kp].inputs[1]);
  if (!fq || !fk || !fv) return undefined;
  const gq = fq.g, gk = fk.g, gv = fv.g;
  if (gq.inputs[0] !== gk.inputs[0] || gq.inputs[0] !== gv.inputs[0]) return undefined;
  const R = gq.inputs[0];
  const [batch, N, dh, N2, tb1, as1, bs1] = op.ints;
  const [batch2, M2, K2, dh2, tb2, as2, bs2] = ops[kp].ints;
  if (N2 !== N || batch2 !== batch || M2 !== N || K2 !== N || dh2 !== dh || tb2 !== 0 || as2 !== N * N) return undefined;
  const [smRows, smD] = ops[ks].ints;
  if (smRows !== batch * N || smD !== N) return undefined;
  const total = numel(T[R].dims);
  if (total !== batch * N * 3 * dh || [op.inputs[0], op.inputs[1], ops[kp].inputs[1]].some((t) => rootOf(T, t) !== t)) return undefined;
  // source offset in R of element e of a gather's output (−1: padding)
  const src = (g: POp, e: number): number => indexMapSource(g.ints, T[g.inputs[1]].data!.data, e);
  for (let H = 1; H <= batch; H++) {
    if (batch % H) continue;
    const C = H * dh, ld = 3 * C;
    const at = (t: number, tok: number, col: number) => Math.floor(t / H) * N * ld + tok * ld + col + (t % H) * dh;
    // A gather repeats its index list per item (ops.def index_map): when every gather's item is k
    // whole windows (x_item = k·N·3C, y_item = k·H·N·dh), the first k windows and the last window
    // prove every element; otherwise every batch item is checked.
    const W = batch / H;
    const per = [gq, gk, gv].map((g) => g.ints[3] / (H * N * dh));
    const periodic = as1 === N * dh && bs1 === N * dh && bs2 === N * dh &&
      per.every((k, i) => Number.isInteger(k) && k >= 1 && [gq, gk, gv][i].ints[2] === k * N * ld && W % k === 0);
    const items = periodic ? [...Array(Math.max(...per) * H).keys(), ...Array.from({ length: H }, (_, h) => batch - H + h)] : [...Array(batch).keys()];
    // cheap probe first (element 1 of batch item 1), then the items above
    const ok = (full: boolean): boolean => {
      for (const t of full ? items : [Math.min(1, batch - 1)]) {
        for (let i = 0; i < N; i++) for (let d = 0; d < dh; d++) {
          if (src(gq, t * as1 + i * dh + d) !== at(t, i, d)) return false;
          if (src(gk, t * bs1 + (tb1 ? i * dh + d : d * N + i)) !== at(t, i, C + d)) return false;
          if (src(gv, t * bs2 + i * dh + d) !== at(t, i, 2 * C + d)) return false;
        }
      }
      return true;
    };
    if (ok(false) && ok(true)) return { qkv: R, softmax: ks, pv: kp, W: batch / H, N, H, dh, qFactor: fq.factor, kFactor: fk.factor, vFactor: fv.factor };
  }
  return undefined;
}

