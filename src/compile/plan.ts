// Compile to a PlanDescJS: liveness-based arena allocation (64-byte aligned offsets), the constant
// blob (64-byte aligned), tensor and op tables in the executor's wire form.
import type { PlanDescJS } from '../native.js';
import { numel, type ConstTensor, type DT } from '../ir/graph.js';
import { OpKind } from '../plan/ops.js';
import type { Lowered, POp } from './lower.js';

const ALIGN = 64;
const align = (n: number) => Math.ceil(n / ALIGN) * ALIGN;

export const PLAN_DTYPE: Partial<Record<DT, number>> = { float32: 0, int32: 1, int8: 2, uint8: 3, bool: 3, int16: 4, int64: 5 };
const SIZE = [4, 4, 1, 1, 2, 8];

function planDtype(dt: DT, what: string): number {
  const d = PLAN_DTYPE[dt];
  if (d === undefined) throw new Error(`${what}: dtype ${dt} is not supported at run time`);
  return d;
}

function encode(c: ConstTensor, dt: number): Uint8Array {
  const n = c.data.length;
  switch (dt) {
    case 0: return new Uint8Array(Float32Array.from(c.data).buffer);
    case 1: return new Uint8Array(Int32Array.from(c.data).buffer);
    case 2: return new Uint8Array(Int8Array.from(c.data).buffer);
    case 3: return Uint8Array.from(c.data);
    case 4: return new Uint8Array(Int16Array.from(c.data).buffer);
    default: { const b = new BigInt64Array(n); for (let i = 0; i < n; i++) b[i] = BigInt(c.data[i]); return new Uint8Array(b.buffer); }
  }
}

export interface CompileStats { arenaBytes: number; constantBytes: number }

/** The tensor an alias chain ends at, and the element offset of `t` inside it. */
export function aliasRoot(T: readonly { aliasOf?: number }[], t: number): number {
  let r = t;
  while (T[r].aliasOf !== undefined) r = T[r].aliasOf!;
  return r;
}
export function aliasOffset(T: readonly { aliasOf?: number; aliasElemOffset?: number }[], t: number): number {
  let o = 0, r = t;
  while (T[r].aliasOf !== undefined) { o += T[r].aliasElemOffset ?? 0; r = T[r].aliasOf!; }
  return o;
}

/** Per op, the last op of its row region: consecutive row-local integer ops on the same row count,
 *  which the executor runs as one pool job, each thread taking its rows through all of them
 *  (native RowSplit: linear_q with weights up to 256 KiB; layernorm_q; attention_q with merged
 *  heads, which starts a region when it has one window; an op that scatters its rows through
 *  y_rows ends a region). A buffer read or written in a region is
 *  not reused before the region ends: one thread can be an op ahead of the other. The executor
 *  checks the same overlaps and ends a region early where they fail. */
export function rowRegionEnds(ops: readonly POp[]): number[] {
  const split = (op: POp): { rows: number; scatters: boolean; readsAll?: boolean } => {
    // weights up to 256 KiB (native q::kGemmRowSplitMaxWeightBytes): larger ones are split by columns
    if (op.kind === 'linear_q') return { rows: op.ints[1] * op.ints[2] <= 256 * 1024 ? op.ints[0] : 0, scatters: false };
    if (op.kind === 'layernorm_q') return { rows: op.ints[0], scatters: (op.inputs[3] ?? -1) >= 0 };
    // merged heads: several windows split as whole windows; one window by query rows, reading every
    // key row, so it only starts a region
    if (op.kind === 'attention_q' && op.ints.length === 9 && op.ints[8] === 1)
      return { rows: op.ints[0] * op.ints[1], scatters: (op.inputs[4] ?? -1) >= 0, readsAll: op.ints[0] === 1 };
    return { rows: 0, scatters: false };
  };
  const end = ops.map((_, k) => k);
  let begin = -1, rows = 0;
  ops.forEach((op, k) => {
    const s = split(op);
    if (begin >= 0 && s.rows > 0 && s.rows === rows && !s.readsAll) { for (let i = begin; i <= k; i++) end[i] = k; }
    else { begin = k; rows = s.rows; }
    if (s.rows === 0 || s.scatters) begin = -1;
  });
  return end;
}

export function emitPlan(l: Lowered): PlanDescJS & { stats: CompileStats } {
  const T = l.tensors;
  const root = (t: number): number => aliasRoot(T, t);
  const elemOff = (t: number): number => aliasOffset(T, t);
  // liveness over arena roots, a use inside a row region lasting to the region's end
  const first = new Map<number, number>();
  const last = new Map<number, number>();
  const regionEnd = rowRegionEnds(l.ops);
  l.ops.forEach((op, k) => {
    for (const t of [...op.inputs, ...op.outputs]) {
      if (t < 0) continue;
      const r = root(t);
      if (T[r].kind !== 'arena') continue;
      if (!first.has(r)) first.set(r, k);
      last.set(r, Math.max(last.get(r) ?? 0, regionEnd[k]));
    }
  });
  const arenaOff = new Map<number, number>();
  type Block = { off: number; end: number; last: number };
  const blockOf = new Map<number, Block>();
  let live: Block[] = [];
  let arenaBytes = 0;
  const bytesOf = (t: number) => numel(T[t].dims) * SIZE[planDtype(T[t].dtype, `tensor #${t}`)];
  // ops whose output may be an exact alias of one input (the executor allows it): which inputs
  const inPlace = (k: number): number[] => {
    const op = l.ops[k];
    switch (op.kind) {
      case 'unary': case 'layernorm': case 'softmax': case 'copy': return [op.inputs[0]];
      case 'linear': return op.inputs[3] >= 0 ? [op.inputs[3]] : [];
      case 'binary': return op.inputs.filter((t) => numel(T[t].dims) === numel(T[op.outputs[0]].dims));
      default: return [];
    }
  };
  const roots = [...first.keys()].sort((a, b) => first.get(a)! - first.get(b)! || a - b);
  for (const r of roots) {
    const start = first.get(r)!;
    const size = align(Math.max(1, bytesOf(r)));
    // reuse the buffer of an input that dies at this op, when the op can run in place
    const op = l.ops[start];
    if (op.outputs.length === 1 && root(op.outputs[0]) === r && op.outputs[0] === r) {
      const c = inPlace(start).find((t) => t >= 0 && t !== r && T[root(t)].kind === 'arena' && elemOff(t) === 0 &&
        last.get(root(t)) === start && bytesOf(t) === bytesOf(r) && blockOf.has(root(t)));
      if (c !== undefined) {
        const b = blockOf.get(root(c))!;
        b.last = Math.max(b.last, last.get(r)!);
        blockOf.set(r, b);
        arenaOff.set(r, b.off);
        continue;
      }
    }
    // blocks still live at `start` (their last use is at or after it) cannot be reused
    const busy = live.filter((b) => b.last >= start).sort((a, b) => a.off - b.off);
    let off = 0;
    for (const b of busy) {
      if (off + size <= b.off) break;
      off = Math.max(off, b.end);
    }
    const blk = { off, end: off + size, last: last.get(r)! };
    live = [...busy, blk];
    blockOf.set(r, blk);
    arenaOff.set(r, off);
    arenaBytes = Math.max(arenaBytes, off + size);
  }
  // constants
  const chunks: Uint8Array[] = [];
  const constOff = new Map<number, number>();
  let cBytes = 0;
  // constants no op reads (weights a pass replaced) take no bytes
  const readConst = new Set<number>();
  for (const op of l.ops) for (const t of op.inputs) if (t >= 0) readConst.add(root(t));
  T.forEach((t, i) => {
    if (t.kind !== 'const' || t.aliasOf !== undefined || !readConst.has(i)) return;
    const bytes = encode(t.data!, planDtype(t.dtype, `constant #${i}`));
    constOff.set(i, cBytes);
    chunks.push(bytes);
    cBytes = align(cBytes + bytes.length);
  });
  const constants = new Uint8Array(Math.max(cBytes, 0));
  let p = 0;
  for (const c of chunks) { constants.set(c, p); p = align(p + c.length); }
  const storage = { arena: 0, const: 1, input: 2, output: 3 } as const;
  const tensors = T.map((t, i) => {
    const dtype = planDtype(t.dtype, `tensor #${i}`);
    const r = root(i);
    const rt = T[r];
    let offset: number;
    if (rt.kind === 'input' || rt.kind === 'output') offset = rt.index!;
    else if (rt.kind === 'const') {
      if (!constOff.has(r)) return { dtype, dims: [0], storage: storage.const, offset: 0 };
      offset = constOff.get(r)! + elemOff(i) * SIZE[dtype];
    }
    else if (!arenaOff.has(r)) return { dtype, dims: [0], storage: storage.arena, offset: 0 }; // no op uses it
    else offset = arenaOff.get(r)! + elemOff(i) * SIZE[dtype];
    // the executor needs rank ≤ 8: only element counts matter to ops
    const dims = t.dims.length > 8 ? [numel(t.dims)] : t.dims;
    return { dtype, dims: [...dims], storage: storage[t.kind === 'output' || t.kind === 'input' ? t.kind : rt.kind], offset };
  });
  const ops = l.ops.map((op) => ({ kind: OpKind[op.kind], inputs: op.inputs, outputs: op.outputs, ints: op.ints, floats: op.floats, name: op.name }));
  return { tensors, ops, constants, arenaBytes, inputs: l.inputs, outputs: l.outputs, stats: { arenaBytes, constantBytes: cBytes } };
}
