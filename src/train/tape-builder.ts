// The imported graph → a training tape. The model is compiled as for inference (specialize, fuse,
// lower); each plan op then becomes train ops by one rule per plan op kind (TRAIN_RULES), and each
// plan constant is traced to the initializer it is made from (ConstProbe), so the initializers are the
// trained parameters. Parameters, activation settings and the trainer's state stay in OnnxTrainGraph.
import { numel, type ConstTensor, type Graph, type Node } from '../ir/graph.js';
import { specialize } from '../passes/specialize.js';
import { fuse } from '../passes/fuse.js';
import { lower, type Lowered, type POp } from '../compile/lower.js';
import { BinaryOp, ReduceOp, UnaryOp, type OpName } from '../plan/ops.js';
import { mulberry32 } from '../util/random.js';
import type { OpDesc, Param } from './op.js';
import type { ConstMap, Tape, TapeNode } from './onnx-graph.js';

const ACT_FN: Record<number, string> = { [UnaryOp.relu]: 'relu', [UnaryOp.gelu_erf]: 'gelu', [UnaryOp.gelu_tanh]: 'gelu_tanh', [UnaryOp.sigmoid]: 'sigmoid', [UnaryOp.tanh]: 'tanh', [UnaryOp.silu]: 'silu' };
const LINEAR_ACT: Record<number, string> = { 1: 'relu', 2: 'gelu', 3: 'gelu_tanh' };
const CODE_MOD = 2048;

export function lowerWith(g: Graph, inits: Map<string, ConstTensor>, dims: Record<string, number[]>): { l: Lowered; nodes: Node[] } {
  const s = specialize({ ...g, initializers: inits }, dims);
  const nodes = fuse(s);
  return { l: lower(s, nodes, g.opset), nodes };
}

function sameStructure(a: Lowered, b: Lowered): boolean {
  if (a.tensors.length !== b.tensors.length || a.ops.length !== b.ops.length) return false;
  for (let i = 0; i < a.tensors.length; i++) if (a.tensors[i].kind !== b.tensors[i].kind || a.tensors[i].dims.join() !== b.tensors[i].dims.join()) return false;
  for (let i = 0; i < a.ops.length; i++) if (a.ops[i].kind !== b.ops[i].kind || a.ops[i].inputs.join() !== b.ops[i].inputs.join()) return false;
  return true;
}

/**
 * Which initializer element each plan-constant element is made from, by compiling the graph again with
 * the parameters replaced by probe values (random, +1, element index codes): a constant element whose
 * value moves affinely with exactly one parameter element is v = s·p[idx] + c (a ConstMap); anything
 * else is a fixed constant.
 */
class ConstProbe {
  readonly fixed = new Map<string, Float32Array>();
  readonly derived = new Map<string, ConstMap>();
  private readonly names: string[];
  private readonly lengths: number[] = [];
  private readonly base: number[] = [];
  private readonly total: number;
  private readonly rA: Float32Array;
  private readonly rE: Float32Array;
  private readonly probes: Lowered[];

  constructor(private readonly g: Graph, private readonly l: Lowered, params: Map<string, Param>, dims: Record<string, number[]>, source: string) {
    this.names = [...params.keys()];
    let total = 0;
    for (const n of this.names) { this.base.push(total); this.lengths.push(params.get(n)!.data.length); total += params.get(n)!.data.length; }
    this.total = total;
    this.rA = new Float32Array(total);
    this.rE = new Float32Array(total);
    const rnd = mulberry32(12345);
    for (let i = 0; i < total; i++) { this.rA[i] = 0.5 + rnd(); this.rE[i] = 0.5 + rnd(); }
    const probe = (f: (gi: number) => number): Lowered => {
      const m = new Map(g.initializers);
      this.names.forEach((n, k) => {
        const c = g.initializers.get(n)!;
        const d = new Float32Array(c.data.length);
        for (let i = 0; i < d.length; i++) d[i] = f(this.base[k] + i);
        m.set(n, { dtype: 'float32', dims: c.dims, data: d });
      });
      const r = lowerWith(g, m, dims).l;
      if (!sameStructure(r, l)) throw new Error(`${source}: the compiled graph changes with the parameter values; cannot train it`);
      return r;
    };
    const rA = this.rA, rE = this.rE;
    // A: random; B: A + 1 (the slope); C, D: A + element-index codes (which element); E: other random (checks)
    this.probes = [probe((i) => rA[i]), probe((i) => rA[i] + 1), probe((i) => rA[i] + (i % CODE_MOD) + 1),
      probe((i) => rA[i] + Math.floor(i / CODE_MOD) + 1), probe((i) => rE[i])];
  }

  private ownerOf(gi: number): number {
    let lo = 0, hi = this.base.length - 1;
    while (lo < hi) { const m = (lo + hi + 1) >> 1; if (this.base[m] <= gi) lo = m; else hi = m - 1; }
    return lo;
  }

  /** The key of plan constant `id` (made once): in `fixed` or `derived`. */
  key(id: number): string {
    const k = `c${id}`;
    if (this.fixed.has(k) || this.derived.has(k)) return k;
    const t = this.l.tensors[id];
    if (t.dtype !== 'float32') throw new Error(`internal: constant ${id} is ${t.dtype}`);
    const m = this.trace(id);
    if (!m) {
      this.fixed.set(k, t.data!.data instanceof Float32Array ? t.data!.data : Float32Array.from(t.data!.data));
      return k;
    }
    const n = t.data!.data.length;
    let identity = n === this.lengths[m.owner];
    for (let j = 0; j < n && identity; j++) identity = m.idx[j] === j && m.s[j] === 1 && m.c[j] === 0;
    this.derived.set(k, { param: m.param, idx: m.idx, s: m.s, c: m.c, identity });
    return k;
  }

  private trace(id: number): (Omit<ConstMap, 'identity'> & { owner: number }) | undefined {
    const t = this.l.tensors[id];
    const n = t.data!.data.length;
    const [a, b, c3, d4, e5] = this.probes.map((p) => p.tensors[id].data!.data);
    const { rA, rE, total } = this;
    let owner = -1;
    const idx = new Int32Array(n), s = new Float32Array(n), c = new Float32Array(n);
    for (let j = 0; j < n; j++) {
      const sj = b[j] - a[j];
      if (Math.abs(sj) < 1e-6 && Math.abs(c3[j] - a[j]) < 1e-6 && Math.abs(e5[j] - a[j]) < 1e-6) { idx[j] = -1; c[j] = t.data!.data[j]; continue; }
      const lo = Math.round((c3[j] - a[j]) / sj) - 1, hi = Math.round((d4[j] - a[j]) / sj) - 1;
      const gi = hi * CODE_MOD + lo;
      if (!(sj !== 0 && lo >= 0 && lo < CODE_MOD && gi >= 0 && gi < total)) return undefined;
      const o = this.ownerOf(gi);
      if (owner === -1) owner = o;
      else if (owner !== o) return undefined;
      const cj = a[j] - sj * rA[gi];
      if (Math.abs(sj * rE[gi] + cj - e5[j]) > 1e-4 * (1 + Math.abs(e5[j]) + Math.abs(cj))) return undefined;
      // (r + 1) − r is 1 only up to float rounding: snap the plain-copy case
      const one = Math.abs(sj - 1) < 1e-5;
      idx[j] = gi - this.base[o]; s[j] = one ? 1 : sj; c[j] = one && Math.abs(cj) < 1e-5 * (1 + Math.abs(a[j])) ? 0 : cj;
    }
    if (owner === -1) return undefined;
    return { param: this.names[owner], owner, idx, s, c };
  }
}

/** The tape under construction: train nodes over keys, and how plan tensors map to keys. */
export class TapeBuilder {
  readonly nodes: TapeNode[] = [];
  readonly rename = new Map<string, string>();          // key → the key holding its value
  private readonly parts = new Map<number, { off: number; len: number; key: string }[]>();
  private readonly sliceCache = new Map<string, string>();
  private fills = 0;

  constructor(readonly l: Lowered, readonly consts: ConstProbe, private readonly fusedByName: Map<string, Node>, readonly source: string) {}

  where(o: { name: string }): string { return `${this.source}: node '${o.name}'`; }
  resolved(k: string): string { let x = k; while (this.rename.has(x)) x = this.rename.get(x)!; return x; }

  private root(t: number): { r: number; off: number } {
    let r = t, off = 0;
    while (this.l.tensors[r].aliasOf !== undefined) { off += this.l.tensors[r].aliasElemOffset ?? 0; r = this.l.tensors[r].aliasOf!; }
    return { r, off };
  }

  /** The key of a root tensor; a staging buffer written in parts becomes one concat node when first read. */
  private rootKey(r: number): string {
    const t = this.l.tensors[r];
    if (t.kind === 'input') return 'input';
    if (t.kind === 'const') return this.consts.key(r);
    const ps = this.parts.get(r);
    if (ps && ps.length) {
      ps.sort((p, q) => p.off - q.off);
      let at = 0;
      for (const p of ps) { if (p.off !== at) throw new Error(`${this.source}: staging buffer ${r} is not written contiguously`); at += p.len; }
      if (at !== numel(t.dims)) throw new Error(`${this.source}: staging buffer ${r} is only partly written`);
      this.nodes.push({ name: `concat${r}`, kind: 'concat', inputs: ps.map((p) => this.resolved(p.key)), output: `t${r}`, offsets: ps.map((p) => p.off) });
      this.parts.delete(r);
    }
    return this.resolved(`t${r}`);
  }

  /** The key holding plan tensor t's value (a slice node for a range of a larger tensor). */
  read(t: number): string {
    if (t < 0) throw new Error('internal: missing input');
    const { r, off } = this.root(t);
    const rk = this.rootKey(r);
    const n = numel(this.l.tensors[t].dims), rn = numel(this.l.tensors[r].dims);
    if (off === 0 && n === rn) return rk;
    const ck = `${rk}@${off}+${n}`;
    let k = this.sliceCache.get(ck);
    if (!k) {
      k = `s${this.sliceCache.size}_${rk}`;
      this.nodes.push({ name: k, kind: 'slice', inputs: [rk], output: k, offsets: [off, n] });
      this.sliceCache.set(ck, k);
    }
    return k;
  }

  /** The key to write plan tensor t to (a part of its staging buffer when t is a range of it). */
  write(t: number): string {
    const { r, off } = this.root(t);
    const n = numel(this.l.tensors[t].dims), rn = numel(this.l.tensors[r].dims);
    if (off === 0 && n === rn) return `t${r}`;
    const k = `p${t}`;
    const ps = this.parts.get(r) ?? [];
    ps.push({ off, len: n, key: k });
    this.parts.set(r, ps);
    return k;
  }

  /** A fixed constant of n values v. */
  fill(n: number, v: number): string {
    const k = `f${this.fills++}`;
    this.consts.fixed.set(k, new Float32Array(n).fill(v));
    return k;
  }

  /** The activation's public name: the ONNX value the fused GELU/ReLU node wrote. */
  actName(opName: string, fallback: string): string {
    const f = this.fusedByName.get(opName);
    return f ? f.outputs[0] : fallback;
  }

  nat(op: POp, desc: OpDesc, inputs: string[], output: string, act?: string): void {
    this.nodes.push({ name: `${op.name}#${this.nodes.length}`, kind: 'native', desc, inputs, output, act });
  }
}

type TrainRule = (b: TapeBuilder, op: POp) => void;

function linearRule(b: TapeBuilder, op: POp): void {
  const [, K, N, act] = op.ints;
  const bias = op.inputs[2] >= 0 ? b.read(op.inputs[2]) : b.fill(N, 0);
  const out = b.write(op.outputs[0]);
  const res = op.inputs[3] >= 0 ? b.read(op.inputs[3]) : '';
  let y = act || res ? `${out}.lin` : out;
  b.nat(op, { op: 'linear', K, N }, [b.read(op.inputs[0]), b.read(op.inputs[1]), bias], y);
  if (act) {
    const fn = LINEAR_ACT[act];
    if (!fn) throw new Error(`${b.where(op)}: unknown fused activation ${act}`);
    const y2 = res ? `${out}.act` : out;
    b.nat(op, { op: 'act', fn }, [y], y2, b.actName(op.name, `${op.name}.act`));
    y = y2;
  }
  if (res) b.nat(op, { op: 'add' }, [y, res], out);
}

function matmulRule(b: TapeBuilder, op: POp): void {
  const [Bt, M, K, N, transB, sA, sB] = op.ints;
  const alpha = op.floats[0] ?? 1;
  const x = b.read(op.inputs[0]), w = b.read(op.inputs[1]);
  if (Bt === 1 || (sA === M * K && sB === K * N)) b.nat(op, { op: 'matmul', M, K, N, transB: !!transB, alpha }, [x, w], b.write(op.outputs[0]));
  else if (sB === 0 && sA === M * K) b.nat(op, { op: 'matmul', M: Bt * M, K, N, transB: !!transB, alpha }, [x, w], b.write(op.outputs[0]));
  else throw new Error(`${b.where(op)}: batched matmul with a broadcast A operand cannot be trained yet`);
}

function layernormRule(b: TapeBuilder, op: POp): void {
  const D = op.ints[1];
  const gm = op.inputs[1] >= 0 ? b.read(op.inputs[1]) : b.fill(D, 1);
  const bt = op.inputs[2] >= 0 ? b.read(op.inputs[2]) : b.fill(D, 0);
  b.nat(op, { op: 'layernorm', D, eps: op.floats[0] }, [b.read(op.inputs[0]), gm, bt], b.write(op.outputs[0]));
}

function softmaxRule(b: TapeBuilder, op: POp): void {
  const [, D, br] = op.ints;
  let x = b.read(op.inputs[0]);
  const out = b.write(op.outputs[0]);
  if (op.inputs[1] >= 0) {
    const y = `${out}.biased`;
    b.nat(op, { op: 'add_bcast', dims: [1, 1, br * D], bdims: [1, 1, br * D] }, [x, b.read(op.inputs[1])], y);
    x = y;
  }
  b.nat(op, { op: 'softmax', D }, [x], out);
}

function binaryRule(b: TapeBuilder, op: POp): void {
  const [code, rank] = op.ints;
  if (code !== BinaryOp.add && code !== BinaryOp.sub && code !== BinaryOp.mul && code !== BinaryOp.div) throw new Error(`${b.where(op)}: binary op ${code} (pow/max/min) cannot be trained`);
  const I = op.ints;
  const odims = I.slice(2, 2 + rank), sa = I.slice(2 + rank, 2 + 2 * rank), sb = I.slice(2 + 2 * rank, 2 + 3 * rank);
  b.nat(op, { op: 'binary', bop: code, odims, sa, sb }, [b.read(op.inputs[0]), b.read(op.inputs[1])], b.write(op.outputs[0]));
}

function unaryRule(b: TapeBuilder, op: POp): void {
  const code = op.ints[0];
  if (code === UnaryOp.scale_shift) { b.nat(op, { op: 'scale_shift', alpha: op.floats[0], shift: op.floats[1] }, [b.read(op.inputs[0])], b.write(op.outputs[0])); return; }
  const fn = ACT_FN[code];
  if (!fn) throw new Error(`${b.where(op)}: unary op ${code} cannot be trained`);
  const a = fn === 'gelu' || fn === 'gelu_tanh' || fn === 'relu' ? b.actName(op.name, `${op.name}.act`) : undefined;
  b.nat(op, { op: 'act', fn }, [b.read(op.inputs[0])], b.write(op.outputs[0]), a);
}

function reduceRule(b: TapeBuilder, op: POp): void {
  const [, R, Iin, kind] = op.ints;
  if (kind !== ReduceOp.mean && kind !== ReduceOp.sum) throw new Error(`${b.where(op)}: max/min reductions cannot be trained`);
  const out = b.write(op.outputs[0]);
  if (kind === ReduceOp.mean) { b.nat(op, { op: 'mean_pool', L: R, C: Iin }, [b.read(op.inputs[0])], out); return; }
  b.nat(op, { op: 'mean_pool', L: R, C: Iin }, [b.read(op.inputs[0])], `${out}.mean`);
  b.nat(op, { op: 'scale_shift', alpha: R, shift: 0 }, [`${out}.mean`], out);
}

/** One rule per trainable plan op; the integer ops and anything else are refused by name. */
const TRAIN_RULES: Partial<Record<OpName, TrainRule>> = {
  copy: (b, op) => b.rename.set(b.write(op.outputs[0]), b.read(op.inputs[0])),
  cast: (b, op) => {
    if (b.l.tensors[op.inputs[0]].dtype !== 'float32' || b.l.tensors[op.outputs[0]].dtype !== 'float32') throw new Error(`${b.where(op)}: only float32 casts can be trained`);
    b.rename.set(b.write(op.outputs[0]), b.read(op.inputs[0]));
  },
  index_map: (b, op) => {
    const idx = Int32Array.from(b.l.tensors[op.inputs[1]].data!.data);
    b.nat(op, { op: 'gather', xItem: op.ints[2], block: op.ints[0], idx }, [b.read(op.inputs[0])], b.write(op.outputs[0]));
  },
  linear: linearRule,
  matmul: matmulRule,
  layernorm: layernormRule,
  softmax: softmaxRule,
  binary: binaryRule,
  unary: unaryRule,
  reduce: reduceRule,
  argmax: () => {},  // integer output: not part of what is trained
};

/** Drops nodes the output does not need; returns them in order, inputs resolved, with each key's last reader. */
function prune(b: TapeBuilder, output: string): { kept: TapeNode[]; lastUse: Map<string, number> } {
  const need = new Set<string>([output]);
  const kept: TapeNode[] = [];
  for (let k = b.nodes.length - 1; k >= 0; k--) {
    const n = b.nodes[k];
    if (!need.has(n.output)) continue;
    kept.push(n);
    for (const i of n.inputs) need.add(i);
  }
  kept.reverse();
  for (const n of kept) n.inputs = n.inputs.map((k) => b.resolved(k));
  const isConst = (k: string) => b.consts.fixed.has(k) || b.consts.derived.has(k);
  const lastUse = new Map<string, number>();
  kept.forEach((n, i) => { for (const x of n.inputs) if (!isConst(x)) lastUse.set(x, i); });
  return { kept, lastUse };
}

/** The fc2 linear reading activation node n's output, if any. */
export function fc2Of(kept: TapeNode[], n: TapeNode): TapeNode | undefined {
  return kept.find((m) => m.kind === 'native' && m.desc!.op === 'linear' && m.inputs[0] === n.output);
}

/** Public names: each activation's output, and `block:NAME` for its block output (fc2 and its residual add). */
function publicNames(kept: TapeNode[]): Map<string, string> {
  const pub = new Map<string, string>();
  for (const n of kept) {
    if (!n.act) continue;
    pub.set(n.act, n.output);
    const fc2 = fc2Of(kept, n);
    if (!fc2) continue;
    const add = kept.find((m) => m.kind === 'native' && (m.desc!.op === 'add' || m.desc!.op === 'binary') && m.inputs.includes(fc2.output));
    pub.set(`block:${n.act}`, add ? add.output : fc2.output);
  }
  return pub;
}

/** The training tape of graph g at this batch size, its parameters traced to `params`. */
export function buildTape(g: Graph, params: Map<string, Param>, input: string, inputShape: number[], outputName: string, batch: number, source: string): Tape {
  const dims = { [input]: [batch, ...inputShape] };
  const real = lowerWith(g, g.initializers, dims);
  const l = real.l;
  const consts = new ConstProbe(g, l, params, dims, source);
  const fusedByName = new Map<string, Node>();
  for (const n of real.nodes) fusedByName.set(n.name, n);
  const b = new TapeBuilder(l, consts, fusedByName, source);
  for (const op of l.ops) {
    const rule = TRAIN_RULES[op.kind];
    if (!rule) throw new Error(`${b.where(op)}: plan op '${op.kind}' cannot be trained`);
    rule(b, op);
  }
  const outIdx = g.outputs.findIndex((o) => o.name === outputName);
  const output = b.read(l.outputs[outIdx]);
  const { kept, lastUse } = prune(b, output);
  return { batch, nodes: kept, input: 'input', output, fixed: consts.fixed, derived: consts.derived, lastUse, names: publicNames(kept) };
}
