// Training on the graph a model file describes: the ONNX model is specialized, fused and lowered by
// the fp32 compiler (src/passes, src/compile) for one batch size, and every plan op becomes one or
// more train ops (src/train/tape-builder.ts: one rule per plan op kind; native/train: forward and one
// backward rule per train op). Parameters are the float
// initializers the plan's constants come from: a probe run finds, for every element of every plan
// constant, which initializer element it is (scale·p[i] + offset: transposed weights, gathered
// relative-position tables, tables folded with a shift mask) so gradients flow back to the
// initializers and the trained values are written back into the same ONNX graph.
import onnxProto from 'onnx-proto';
import { native } from '../native.js';
import { loadModel } from '../onnx/load.js';
import { numel, type Graph, type Node } from '../ir/graph.js';
import type { OpDesc, Param } from './op.js';
import { buildTape, fc2Of } from './tape-builder.js';

type Reads = ReturnType<typeof native.trainReads>;

const { onnx } = onnxProto;

/** A train op over keyed tensors: native (forward/backward in native/train) or pure data movement. */
export interface TapeNode {
  name: string;
  kind: 'native' | 'concat' | 'slice';
  desc?: OpDesc;          // native
  inputs: string[];
  output: string;
  act?: string;           // act nodes: the activation's name (its ONNX output value)
  offsets?: number[];     // concat: start of each input; slice: [offset, length]
}

/** How a plan constant is made from one initializer: v[j] = s[j]·p[idx[j]] + c[j] (idx −1: c[j] alone). */
export interface ConstMap { param: string; idx: Int32Array; s: Float32Array; c: Float32Array; identity: boolean }

export interface Tape {
  batch: number;
  nodes: TapeNode[];
  input: string;
  output: string;
  /** constants: fixed values, or made from a parameter (re-made before every forward) */
  fixed: Map<string, Float32Array>;
  derived: Map<string, ConstMap>;
  /** forward index of the last node reading each activation */
  lastUse: Map<string, number>;
  /** public names → tape keys: each activation's output by its name, `block:NAME` for its block output */
  names: Map<string, string>;
}

export interface ActInfo { name: string; fn: string; hidden: number }

export interface TapeState {
  tape: Tape;
  values: Map<string, Float32Array>;
  codes: Map<string, Uint8Array>;
  sizes: Map<string, number>;
  /** high-water mark of activations + saved tensors + codes + gradients during the step (bytes) */
  peakBytes: number;
  /** bytes kept for backward at the end of forward */
  savedBytes: number;
  /** where the high-water mark was reached: 'forward NODE' or 'backward NODE' (diagnostics) */
  peakAt: string;
  live: number;
  /** per saved activation, the lowest node index whose backward reads it (freed after that rule) */
  savedUntil: Map<string, number>;
  /** memory-sharing LayerNorm: outputs of the LayerNorms whose backward runs from their output, with each row's 1/σ */
  lnShared: Map<string, Float32Array>;
  /** attention probabilities kept as 8-bit codes round(p·255) for backward (attentionProbs8bit) */
  p8: Map<string, Uint8Array>;
  /** recompute: tensors rebuilt in backward by the backward step that first reads them */
  recompute: Map<number, { key: string; chain: number[] }[]>;
}


/** Attention masks (0 and ≤ −100) are constants, not parameters. */
function maskLike(d: ArrayLike<number>): boolean {
  let low = false;
  for (let i = 0; i < d.length; i++) {
    if (d[i] === 0) continue;
    if (d[i] <= -100) { low = true; continue; }
    return false;
  }
  return low;
}



export class OnnxTrainGraph {
  readonly params = new Map<string, Param>();
  /** activation settings by name (shared by every batch's tape) */
  /** per activation: its function, few-bit bits, the teacher's function and an optional fixed table
   *  (2^bits − 1 borders, 2^bits levels) used instead of the solved one when bits > 0 */
  readonly acts = new Map<string, { fn: string; bits: number; teacherFn: string; table?: { borders: number[]; levels: number[] } }>();
  readonly input: string;
  readonly inputShape: number[];   // per sample
  readonly outputName: string;
  readonly classes: number;
  readonly metadata: Record<string, string>;
  private readonly tapes = new Map<number, Tape>();
  private readonly graph: Graph;
  /** activation order (forward) and the width of their hidden vector */
  actList: ActInfo[] = [];
  /** Memory-sharing LayerNorm (Approx-BP): a LayerNorm whose output a linear keeps anyway saves only
   *  that output and 1/σ per row, not its input; backward rebuilds x̂ = (y − β)/γ. Off by default. */
  shareLayerNorm = false;
  /** Attention probabilities (a softmax output that a matmul multiplies with V) kept for backward as
   *  8-bit codes round(p·255) instead of fp32; both the softmax and the P·V backward read the decoded
   *  values (an approximation: |Δp| ≤ 1/510). Off by default. */
  attentionProbs8bit = false;
  /** Cheap activations are not kept for backward but recomputed there, by the backward step that
   *  first reads them, from tensors backward holds anyway: attention probabilities from q and k
   *  (q·kᵀ, bias, softmax) and LayerNorm outputs (and gathers of them, e.g. window partitions) from
   *  the LayerNorm input. The same native ops on the same inputs, so the values are bit-identical.
   *  Costs one extra q·kᵀ + softmax per attention and one LayerNorm per norm in backward. On by
   *  default; probabilities kept in 8 bits and memory-sharing LayerNorms are left as they are. */
  recompute = true;
  /** Quantization-aware finishing: a `fakequant` op after each of these tensors (tape key → op),
   *  every reader reading the quantized value; set with setFakeQuant. */
  private fakeQuant: Map<string, OpDesc> | null = null;
  private readonly fqTapes = new Map<number, Tape>();
  /** Quantization-aware finishing: linear weights rounded to int8 per output column (max|w|/127) in
   *  forward; their gradients go to the float parameters unchanged (straight-through). */
  quantizeWeights = false;
  /** per activation, the name of the tensor its MLP adds back to the residual stream (block output) */
  blockOut = new Map<string, string>();

  constructor(readonly bytes: Uint8Array, readonly source: string) {
    this.graph = cubesAsPow(loadModel(bytes));
    const g = this.graph;
    this.metadata = g.metadata ?? {};
    if (g.inputs.length !== 1) throw new Error(`${source}: training needs one graph input, the model has ${g.inputs.length}`);
    const inp = g.inputs[0];
    this.input = inp.name;
    const rest = inp.dims.slice(1);
    if (rest.some((d) => typeof d !== 'number' || d <= 0)) throw new Error(`${source}: input '${inp.name}' needs fixed dims after the batch, got [${inp.dims.join(', ')}]`);
    this.inputShape = rest as number[];
    const out = g.outputs.find((o) => o.dtype === 'float32');
    if (!out) throw new Error(`${source}: no float32 graph output to train`);
    this.outputName = out.name;
    for (const [name, c] of g.initializers) {
      if (c.dtype !== 'float32' || c.data.length < 2 || maskLike(c.data)) continue;
      this.params.set(name, { name, shape: [...c.dims], data: Float32Array.from(c.data), trainable: true, decay: false });
    }
    const t = this.tape(1);
    // initializers no plan constant reads are not parameters
    const used = new Set<string>();
    for (const m of t.derived.values()) used.add(m.param);
    for (const k of [...this.params.keys()]) if (!used.has(k)) this.params.delete(k);
    this.classes = this.predict(new Float32Array(numel(this.inputShape)), 1).length;
  }

  /** Fake quantization after the given tensors (quantization-aware finishing), or none (null). */
  setFakeQuant(points: Map<string, OpDesc> | null): void {
    for (const [k, d] of points ?? []) if (d.op !== 'fakequant') throw new Error(`setFakeQuant: '${k}': op must be fakequant, got '${d.op}'`);
    this.fakeQuant = points && points.size ? points : null;
    this.fqTapes.clear();
  }

  /** The tape for one batch size (compiled on first use), with the fake quantization if set. */
  tape(batch: number): Tape {
    if (this.fakeQuant) {
      let q = this.fqTapes.get(batch);
      if (!q) { q = withFakeQuant(this.plainTape(batch), this.fakeQuant); this.fqTapes.set(batch, q); }
      return q;
    }
    return this.plainTape(batch);
  }

  private plainTape(batch: number): Tape {
    let t = this.tapes.get(batch);
    if (!t) {
      t = this.build(batch);
      this.tapes.set(batch, t);
    }
    return t;
  }

  private build(batch: number): Tape {
    const t = buildTape(this.graph, this.params, this.input, this.inputShape, this.outputName, batch, this.source);
    const kept = t.nodes;
    if (this.actList.length === 0) {
      // activations in forward order, with their hidden width (the next linear's K)
      for (const n of kept) {
        if (!n.act) continue;
        const fc2 = fc2Of(kept, n);
        this.actList.push({ name: n.act, fn: n.desc!.fn!, hidden: fc2 ? fc2.desc!.K! : 0 });
        if (!this.acts.has(n.act)) this.acts.set(n.act, { fn: n.desc!.fn!, bits: 0, teacherFn: n.desc!.fn! });
        if (fc2) this.blockOut.set(n.act, `block:${n.act}`);
      }
    }
    for (const n of kept) if (n.act && !this.acts.has(n.act)) throw new Error(`internal: activation '${n.act}' differs between batch sizes`);
    // weights of linear/matmul/conv decay (AdamW); biases, norms, tables, embeddings do not
    for (const n of kept) {
      if (n.kind !== 'native' || n.desc!.op !== 'linear') continue;
      const w = t.derived.get(n.inputs[1]);
      if (w) this.params.get(w.param)!.decay = true;
    }
    return t;
  }

  /** What a node's backward rule reads (native train::reads, the rule's own statement) for the
   *  gradients `need` asks for; fromOutput: a memory-sharing LayerNorm. Cached per node and setting. */
  private reads(n: TapeNode, need: boolean[], fromOutput: boolean): Reads {
    let m = this.readsCache.get(n);
    if (!m) { m = new Map(); this.readsCache.set(n, m); }
    const d = this.descOf(n);
    const key = `${d.bits ?? 0}|${fromOutput ? 1 : 0}|${need.map((x) => (x ? 1 : 0)).join('')}`;
    let r = m.get(key);
    if (!r) { r = native.trainReads(d, need, fromOutput); m.set(key, r); }
    return r;
  }
  private readonly readsCache = new WeakMap<TapeNode, Map<string, Reads>>();

  /** Keys a node's backward rule reads for the gradients this tape wants (tensors kept as 8-bit
   *  attention codes are not among them: backward decodes those). */
  private savedBy(n: TapeNode, st: TapeState): string[] {
    if (n.kind !== 'native') return [];
    const r = this.reads(n, this.needOf(n, st.tape), st.lnShared.has(n.output));
    const keys = n.inputs.filter((_, j) => r.inputs[j]);
    if (r.output) keys.push(n.output);
    return keys.filter((k) => !st.p8.has(k));
  }

  private needOf(n: TapeNode, t: Tape): boolean[] {
    const needs = this.needsGrad(t);
    return n.inputs.map((k) => needs.has(k));
  }

  /** When an operand's last reader is this node and the gradients wanted split into those that read
   *  it (taken first, with those that read nothing) and those that do not (e.g. linear: dW reads x,
   *  dx does not), the trainer takes the first, frees the operand, then the rest: the operand and the
   *  second gradients are never alive together (the peak of a step is often at such a node). */
  private twoPhase(n: TapeNode, need: boolean[], freeable: (k: string) => boolean): { first: boolean[]; second: boolean[]; free: string } | null {
    if (need.filter((x) => x).length < 2) return null;
    const one = need.map((x, q) => (x ? this.reads(n, need.map((_, j) => j === q), false) : null));
    for (let j = 0; j < n.inputs.length; j++) {
      const k = n.inputs[j];
      if (!freeable(k) || n.inputs.indexOf(k) !== n.inputs.lastIndexOf(k)) continue;
      const first = one.map((r) => !!r && (r.inputs[j] || (!r.output && !r.codes && r.inputs.every((x) => !x))));
      const second = one.map((r, q) => !!r && !first[q]);
      if (first.some((x) => x) && second.some((x) => x) && one.some((r) => r?.inputs[j])) return { first, second, free: k };
    }
    return null;
  }

  /** recompute: every saved softmax / LayerNorm / gather output whose inputs go back (through at
   *  most 4 cheap ops) to constants and to tensors backward still holds when it first needs the
   *  output is dropped from the saved set and scheduled for recomputation (GEMMs other than q·kᵀ
   *  and activations are never re-run). */
  private planRecompute(st: TapeState, saved: Set<string>): void {
    const t = st.tape;
    const producer = new Map(t.nodes.map((n, i) => [n.output, i]));
    const isConst = (k: string) => t.fixed.has(k) || t.derived.has(k);
    const roots = new Set(['softmax', 'layernorm', 'gather']);
    const cheap = new Set(['matmul', 'add_bcast', 'add', 'binary', 'scale_shift', 'softmax', 'layernorm', 'gather']);
    const readers = new Map<string, number>();  // highest node index whose backward rule reads each tensor
    t.nodes.forEach((m, j) => { for (const k of this.savedBy(m, st)) readers.set(k, j); });
    t.nodes.forEach((n, si) => {
      if (n.kind !== 'native' || !roots.has(n.desc!.op) || !saved.has(n.output) || st.p8.has(n.output) || st.lnShared.has(n.output)) return;
      const at = readers.get(n.output) ?? -1;
      const chain: number[] = [];
      const visit = (i: number): boolean => {
        const m = t.nodes[i];
        if (chain.includes(i)) return true;
        if (m.kind !== 'native' || !cheap.has(m.desc!.op) || chain.length >= 4 || st.lnShared.has(m.output)) return false;
        chain.push(i);
        return m.inputs.every((k) => {
          if (isConst(k)) return true;
          if (saved.has(k) && k !== n.output) return st.savedUntil.get(k)! < at;  // still held at step `at`
          if (k === 'input') return false;  // released after its last forward reader
          const p = producer.get(k);
          return p !== undefined && visit(p);
        });
      };
      if (at <= si || !visit(si)) return;
      saved.delete(n.output);
      const list = st.recompute.get(at) ?? [];
      list.push({ key: n.output, chain: chain.sort((a, b) => a - b) });
      st.recompute.set(at, list);
    });
  }

  /** Re-runs a recompute chain in backward; only its last output stays (counted in live bytes).
   *  An intermediate that is live already (recomputed for another reader) is used, not replaced. */
  private rerun(st: TapeState, chain: number[], bump: (b: number) => void): void {
    const t = st.tape;
    const made: string[] = [];
    for (const i of chain) {
      const n = t.nodes[i];
      if (st.values.has(n.output)) continue;
      const r = native.trainForward(this.descOf(n), n.inputs.map((k) => st.values.get(k)!));
      st.values.set(n.output, r.y);
      bump(r.y.byteLength);
      made.push(n.output);
    }
    const last = t.nodes[chain[chain.length - 1]].output;
    for (const k of made) if (k !== last) { st.live -= st.values.get(k)!.byteLength; st.values.delete(k); }
  }

  /** Parameter-made constants of a tape, from the current parameter values. */
  private constValues(t: Tape, values: Map<string, Float32Array>): void {
    for (const [k, v] of t.fixed) values.set(k, v);
    for (const [k, m] of t.derived) {
      const p = this.params.get(m.param)!.data;
      if (m.identity) { values.set(k, p); continue; }
      const v = new Float32Array(m.idx.length);
      for (let j = 0; j < v.length; j++) v[j] = m.idx[j] < 0 ? m.c[j] : m.s[j] * p[m.idx[j]] + m.c[j];
      values.set(k, v);
    }
    if (!this.quantizeWeights) return;
    for (const n of t.nodes) {
      if (n.kind !== 'native' || n.desc!.op !== 'linear' || !t.derived.has(n.inputs[1])) continue;
      const w = Float32Array.from(values.get(n.inputs[1])!);  // a copy: an identity map is the parameter itself
      const N = n.desc!.N!, K = w.length / N;
      for (let c = 0; c < N; c++) {
        let mx = 0;
        for (let q = 0; q < K; q++) mx = Math.max(mx, Math.abs(w[q * N + c]));
        const sc = mx > 0 ? mx / 127 : 1;
        for (let q = 0; q < K; q++) w[q * N + c] = Math.round(w[q * N + c] / sc) * sc;
      }
      values.set(n.inputs[1], w);
    }
  }

  private descOf(n: TapeNode): OpDesc {
    const d = n.desc!;
    if (d.op !== 'act' || !n.act) return d;
    const a = this.acts.get(n.act)!;
    if (a.table && a.bits > 0) return { ...d, fn: a.fn, bits: a.bits, tableBorders: a.table.borders, tableLevels: a.table.levels };
    return { ...d, fn: a.fn, bits: a.bits };
  }

  /** Forward pass. keep: free what backward does not read as soon as its last reader ran;
   *  alsoKeep: activations kept anyway (losses on hidden states); false keeps nothing extra. */
  forward(x: Float32Array, batch: number, keep = true, alsoKeep: Iterable<string> = []): TapeState {
    const per = numel(this.inputShape);
    if (!Number.isInteger(batch) || batch < 1) throw new Error(`train: batch must be a positive integer, got ${batch}`);
    if (x.length !== per * batch) throw new Error(`train: input '${this.input}' has ${x.length} values, expected ${batch}×${per}`);
    const t = this.tape(batch);
    const values = new Map<string, Float32Array>();
    const st: TapeState = { tape: t, values, codes: new Map(), sizes: new Map(), peakBytes: 0, savedBytes: 0, peakAt: '', live: 0, savedUntil: new Map(), lnShared: new Map(), p8: new Map(), recompute: new Map() };
    this.constValues(t, values);
    values.set('input', x);
    st.sizes.set('input', x.length);
    const kept = [...alsoKeep];
    const extra = new Set(kept.map((k) => t.names.get(k) ?? k));
    const isConst = (k: string) => t.fixed.has(k) || t.derived.has(k);
    const saved = new Set<string>();
    st.savedUntil = new Map();
    if (keep && this.shareLayerNorm) {
      // LayerNorms read by a linear (which keeps their output) with no γ near 0 (x̂ = (y − β)/γ)
      const linIn = new Set(t.nodes.filter((n) => n.kind === 'native' && n.desc!.op === 'linear').map((n) => n.inputs[0]));
      for (const n of t.nodes) {
        if (n.kind !== 'native' || n.desc!.op !== 'layernorm' || !linIn.has(n.output)) continue;
        if (values.get(n.inputs[1])!.every((gm) => Math.abs(gm) >= 1e-3)) st.lnShared.set(n.output, new Float32Array(0));
      }
    }
    if (keep && this.attentionProbs8bit) {
      const pv = new Set(t.nodes.filter((n) => n.kind === 'native' && n.desc!.op === 'matmul').map((n) => n.inputs[0]));
      for (const n of t.nodes) if (n.kind === 'native' && n.desc!.op === 'softmax' && pv.has(n.output)) st.p8.set(n.output, new Uint8Array(0));
    }
    if (keep) {
      for (let i = t.nodes.length - 1; i >= 0; i--) {
        for (const k of this.savedBy(t.nodes[i], st)) if (!isConst(k)) { saved.add(k); st.savedUntil.set(k, i); }
      }
      if (this.recompute) this.planRecompute(st, saved);
    }
    let at = 'input';
    const bump = (b: number) => { st.live += b; if (st.live > st.peakBytes) { st.peakBytes = st.live; st.peakAt = at; } };
    bump(x.byteLength);
    t.nodes.forEach((n, i) => {
      at = `forward ${i} ${n.kind === 'native' ? n.desc!.op : n.kind} ${n.output}`;
      const ins = n.inputs.map((k) => {
        const v = values.get(k);
        if (!v) throw new Error(`internal: '${k}' missing at node '${n.name}'`);
        return v;
      });
      let y: Float32Array;
      if (n.kind === 'native') {
        if (st.lnShared.has(n.output)) {
          const rs = native.trainLayerNormRstd(n.desc!, ins[0]);
          st.lnShared.set(n.output, rs);
          bump(rs.byteLength);
        }
        // a few-bit act whose input nothing reads afterwards writes y over it (the codes are taken first)
        const k0 = n.inputs[0];
        const inplace = n.desc!.op === 'act' && !saved.has(k0) && t.lastUse.get(k0) === i && !isConst(k0) && k0 !== 'input' && !extra.has(k0) && k0 !== t.output;
        const r = native.trainForward(this.descOf(n), ins, inplace ? ins[0] : null);
        y = r.y;
        if (st.p8.has(n.output)) {
          const c = new Uint8Array(y.length);
          for (let j = 0; j < y.length; j++) c[j] = Math.round(y[j] * 255);
          st.p8.set(n.output, c);
          bump(c.byteLength);
        }
        if (r.codes) { st.codes.set(n.output, r.codes); bump(r.codes.byteLength); }
      } else if (n.kind === 'concat') {
        y = new Float32Array(ins.reduce((a, v) => a + v.length, 0));
        ins.forEach((v, j) => y.set(v, n.offsets![j]));
      } else {
        y = ins[0].slice(n.offsets![0], n.offsets![0] + n.offsets![1]);
      }
      values.set(n.output, y);
      st.sizes.set(n.output, y.length);
      const reused = n.inputs.some((k) => values.get(k) === y);
      if (!reused) bump(y.byteLength);
      // release inputs whose last forward reader this was, unless backward reads them
      for (const k of new Set(n.inputs)) {
        if (isConst(k) || t.lastUse.get(k) !== i || k === t.output || extra.has(k) || saved.has(k)) continue;
        const v = values.get(k);
        if (v && values.delete(k) && v !== y) st.live -= v.byteLength;
      }
    });
    st.savedBytes = st.live;
    for (const k of kept) {
      const key = t.names.get(k);
      if (key && values.has(key)) values.set(k, values.get(key)!);
    }
    return st;
  }

  /** Gradients of every trainable parameter for dL/d(output) = dout (+ seeds on hidden tensors). */
  backward(st: TapeState, dout: Float32Array, seeds?: Map<string, Float32Array>): Map<string, Float32Array> {
    const t = st.tape;
    const grads = new Map<string, Float32Array>();
    let at = 'backward seeds';
    const bump = (b: number) => { st.live += b; if (st.live > st.peakBytes) { st.peakBytes = st.live; st.peakAt = at; } };
    const isConst = (k: string) => t.fixed.has(k) || t.derived.has(k);
    for (const [name, g] of seeds ?? []) {
      const k = t.names.get(name) ?? name;
      if (!st.sizes.has(k) || k === 'input') throw new Error(`backward: seed '${name}' is not an op output of this graph`);
      if (st.sizes.get(k) !== g.length) throw new Error(`backward: seed '${name}' has ${g.length} values, the tensor ${st.sizes.get(k)}`);
      const have = grads.get(k);
      if (have) for (let i = 0; i < g.length; i++) have[i] += g[i]; else { grads.set(k, Float32Array.from(g)); bump(g.byteLength); }
    }
    if (dout.length !== st.sizes.get(t.output)) throw new Error(`backward: dout has ${dout.length} values, the output ${st.sizes.get(t.output)}`);
    grads.set(t.output, dout);
    const needs = this.needsGrad(t);
    // g may be dy itself (in-place act rule): then its bytes move from the output's gradient to the input's
    let dyMoved = false;
    const accumulate = (name: string, g: Float32Array, dy: Float32Array) => {
      const have = grads.get(name);
      if (!have) {
        grads.set(name, g);
        if (g === dy) dyMoved = true; else if (!isConst(name)) bump(g.byteLength);
      } else for (let i = 0; i < g.length; i++) have[i] += g[i];
    };
    const constGrads = new Map<string, Float32Array>();
    const sizeOf = (k: string): number => st.sizes.get(k) ?? st.values.get(k)!.length;
    for (let i = t.nodes.length - 1; i >= 0; i--) {
      const n = t.nodes[i];
      at = `backward ${i} ${n.kind === 'native' ? n.desc!.op : n.kind} ${n.output}`;
      for (const r of st.recompute.get(i) ?? []) this.rerun(st, r.chain, bump);
      const dy = grads.get(n.output);
      if (dy) {
        const need = n.inputs.map((k) => needs.has(k));
        let gs: (Float32Array | null)[];
        if (n.kind === 'native') {
          const d = this.descOf(n);
          const rstd = st.lnShared.get(n.output);
          const saved = new Set(this.savedBy(n, st));
          for (const k of [n.output, ...n.inputs]) {
            const c = st.p8.get(k);
            if (!c || st.values.has(k)) continue;
            const p = new Float32Array(c.length);
            for (let j = 0; j < c.length; j++) p[j] = c[j] / 255;
            st.values.set(k, p);
            bump(p.byteLength);
          }
          const ins = n.inputs.map((k) => (saved.has(k) || isConst(k) || st.p8.has(k) ? st.values.get(k) ?? null : null));
          const sizes = n.inputs.map(sizeOf);
          const r = this.reads(n, need, !!rstd);
          const out = r.output && !rstd ? st.values.get(n.output)! : null;
          const codes = r.codes ? st.codes.get(n.output) ?? null : null;
          const phases = rstd ? null : this.twoPhase(n, need, (k) => st.savedUntil.get(k) === i && st.values.has(k) && !isConst(k) && k !== 'input' && k !== t.output);
          if (rstd && need.some((x) => x)) gs = native.trainBackward(d, [null, ins[1], ins[2]], sizes, st.values.get(n.output)!, dy, null, need, null, rstd);
          else if (phases) {
            // take the gradients that read the operand last used here, free it, then the rest
            const first = native.trainBackward(d, ins, sizes, out, dy, codes, phases.first) as (Float32Array | null)[];
            const v = st.values.get(phases.free)!;
            st.values.delete(phases.free); st.live -= v.byteLength;
            const ins2 = ins.map((x, j) => (n.inputs[j] === phases.free ? null : x));
            const second = native.trainBackward(d, ins2, sizes, out, dy, codes, phases.second) as (Float32Array | null)[];
            gs = first.map((g, j) => g ?? second[j]);
          } else if ((d.op === 'act' || d.op === 'softmax') && need[0] && n.output !== t.output) {
            // elementwise / row-wise rules: dx overwrites dy, which nothing reads after this node
            gs = native.trainBackward(d, ins, sizes, out, dy, codes, need, dy);
          } else gs = need.some((x) => x) ? native.trainBackward(d, ins, sizes, out, dy, codes, need) : [];
        } else if (n.kind === 'concat') {
          gs = n.inputs.map((k, j) => (need[j] ? dy.slice(n.offsets![j], n.offsets![j] + sizeOf(k)) : null));
        } else {
          const g = new Float32Array(sizeOf(n.inputs[0]));
          g.set(dy, n.offsets![0]);
          gs = [need[0] ? g : null];
        }
        n.inputs.forEach((k, j) => {
          const g = gs[j];
          if (!g) return;
          if (isConst(k)) {
            const have = constGrads.get(k);
            if (!have) constGrads.set(k, g); else for (let q = 0; q < g.length; q++) have[q] += g[q];
          } else accumulate(k, g, dy);
        });
        if (n.output !== t.output) { grads.delete(n.output); if (!dyMoved) st.live -= dy.byteLength; }
        dyMoved = false;
      }
      // saved tensors whose last backward reader was this node
      for (const k of this.savedBy(n, st)) {
        if (st.savedUntil.get(k) === i && k !== t.output) {
          const v = st.values.get(k);
          if (v && !isConst(k) && k !== 'input') { st.values.delete(k); st.live -= v.byteLength; }
        }
      }
      const c = st.codes.get(n.output);
      if (c) { st.codes.delete(n.output); st.live -= c.byteLength; }
      const c8 = n.kind === 'native' && n.desc!.op === 'softmax' ? st.p8.get(n.output) : undefined;
      if (c8) {
        const v = st.values.get(n.output);
        if (v) { st.values.delete(n.output); st.live -= v.byteLength; }
        st.p8.delete(n.output);
        st.live -= c8.byteLength;
      }
    }
    // constants made from parameters: scatter back (v[j] = s·p[idx[j]] + c)
    const res = new Map<string, Float32Array>();
    for (const [k, p] of this.params) if (p.trainable) res.set(k, new Float32Array(p.data.length));
    for (const [k, g] of constGrads) {
      const m = t.derived.get(k);
      if (!m) continue;
      const dst = res.get(m.param);
      if (!dst) continue;
      if (m.identity) { for (let j = 0; j < g.length; j++) dst[j] += g[j]; continue; }
      for (let j = 0; j < g.length; j++) if (m.idx[j] >= 0) dst[m.idx[j]] += m.s[j] * g[j];
    }
    return res;
  }

  private needsCache = new Map<Tape, Set<string>>();
  private needsGrad(t: Tape): Set<string> {
    let s = this.needsCache.get(t);
    if (s) return s;
    s = new Set<string>();
    for (const [k, m] of t.derived) if (this.params.get(m.param)?.trainable) s.add(k);
    for (const n of t.nodes) if (n.inputs.some((i) => s!.has(i))) s.add(n.output);
    this.needsCache.set(t, s);
    return s;
  }

  /** Sets few-bit bits on every MLP activation (0 = exact backward). */
  setFewbit(bits: number): void {
    if (!Number.isInteger(bits) || bits < 0 || bits > 4) throw new Error(`--fewbit must be 0..4, got ${bits}`);
    for (const a of this.acts.values()) a.bits = bits;
  }

  /** Logits for a batch (nothing kept). */
  predict(x: Float32Array, batch: number): Float32Array {
    const st = this.forward(x, batch, false);
    return st.values.get(st.tape.output)!;
  }

  /** The model file with the current parameters written back and every activation swapped to ReLU
   *  where its setting says relu (the teacher's GELU subgraph becomes one Relu node). */
  exportOnnx(metadata: Record<string, string> = {}): Uint8Array {
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    const m: any = onnx.ModelProto.decode(this.bytes);
    const g = m.graph;
    const raw = (d: Float32Array) => new Uint8Array(d.buffer.slice(d.byteOffset, d.byteOffset + d.byteLength));
    const written = new Set<string>();
    for (const t of g.initializer ?? []) {
      const p = this.params.get(t.name);
      if (!p) continue;
      t.rawData = raw(p.data); t.floatData = []; t.dataLocation = 0; t.externalData = [];
      written.add(t.name);
    }
    for (const n of g.node ?? []) {
      if (n.opType !== 'Constant' || !n.output?.[0]) continue;
      const p = this.params.get(n.output[0]);
      if (!p) continue;
      // eslint-disable-next-line @typescript-eslint/no-explicit-any
      const a = (n.attribute ?? []).find((x: any) => x.name === 'value');
      if (a?.t) { a.t.rawData = raw(p.data); a.t.floatData = []; written.add(n.output[0]); }
    }
    for (const k of this.params.keys()) if (!written.has(k)) throw new Error(`export: parameter '${k}' not found in ${this.source}`);
    const swap = [...this.acts].filter(([, a]) => a.fn !== a.teacherFn).map(([name, a]) => ({ name, fn: a.fn }));
    if (swap.length) swapActivations(g, swap, this.source);
    const meta = new Map<string, string>();
    for (const p of m.metadataProps ?? []) meta.set(p.key, p.value);
    for (const [k, v] of Object.entries(metadata)) meta.set(k, v);
    m.metadataProps = [...meta].map(([key, value]) => ({ key, value }));
    return onnx.ModelProto.encode(m).finish();
  }
}

/** A copy of tape t with a fakequant node after every tensor of `points`, its readers reading the
 *  quantized value (key + '.fq'). */
function withFakeQuant(t: Tape, points: Map<string, OpDesc>): Tape {
  const nodes: TapeNode[] = [];
  const fq = (k: string) => (points.has(k) ? `${k}.fq` : k);
  const known = new Set(t.nodes.map((n) => n.output));
  for (const k of points.keys()) if (!known.has(k)) throw new Error(`fake quantization: '${k}' is not an op output of this graph`);
  for (const n of t.nodes) {
    nodes.push({ ...n, inputs: n.inputs.map(fq) });
    const d = points.get(n.output);
    if (d) nodes.push({ name: `${n.output}.fakequant`, kind: 'native', desc: d, inputs: [n.output], output: `${n.output}.fq` });
  }
  const isConst = (k: string) => t.fixed.has(k) || t.derived.has(k);
  const lastUse = new Map<string, number>();
  nodes.forEach((n, i) => { for (const x of n.inputs) if (!isConst(x)) lastUse.set(x, i); });
  return { ...t, nodes, lastUse, output: fq(t.output) };
}

/** x·(x·x) → Pow(x, 3): the tanh-GELU of some exporters (DeiT) then fuses like the Pow form does,
 *  so it trains as one activation (few-bit, swappable). The values are the same. */
function cubesAsPow(g: Graph): Graph {
  const uses = new Map<string, number>();
  for (const n of g.nodes) for (const i of n.inputs) if (i) uses.set(i, (uses.get(i) ?? 0) + 1);
  const byOut = new Map<string, Node>();
  for (const n of g.nodes) for (const o of n.outputs) byOut.set(o, n);
  const three = '__swinq_train_three';
  let changed = false;
  const nodes = g.nodes.map((n) => {
    if (n.opType !== 'Mul' || n.domain !== '') return n;
    for (const j of [0, 1]) {
      const x = n.inputs[j];
      const sq = byOut.get(n.inputs[1 - j]);
      if (sq && sq.opType === 'Mul' && sq.inputs[0] === x && sq.inputs[1] === x && uses.get(sq.outputs[0]) === 1) {
        changed = true;
        return { ...n, opType: 'Pow', inputs: [x, three], attrs: {} };
      }
    }
    return n;
  });
  if (!changed) return g;
  const initializers = new Map(g.initializers);
  initializers.set(three, { dtype: 'float32', dims: [], data: Float32Array.of(3) });
  return { ...g, nodes, initializers };
}

/** Replaces each activation subgraph ending in value `name` by one node (Relu) from its input: the
 *  input is the one value the subgraph reads twice or more (x in x·Φ(x)), found walking back through
 *  elementwise nodes; nodes left without readers are removed. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
function swapActivations(g: any, swaps: { name: string; fn: string }[], source: string): void {
  const ELEM = new Set(['Erf', 'Tanh', 'Div', 'Mul', 'Add', 'Pow', 'Sub', 'Sigmoid']);
  const ONNX_FN: Record<string, string> = { relu: 'Relu' };
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  const producer = new Map<string, any>();
  for (const n of g.node) for (const o of n.output) producer.set(o, n);
  const inits = new Set<string>((g.initializer ?? []).map((t: { name: string }) => t.name));
  const isConst = (v: string) => inits.has(v) || producer.get(v)?.opType === 'Constant';
  for (const { name, fn } of swaps) {
    const op = ONNX_FN[fn];
    if (!op) throw new Error(`export: activation '${fn}' has no ONNX form here (only relu)`);
    const last = producer.get(name);
    if (!last) throw new Error(`${source}: activation output '${name}' has no producer`);
    if (last.opType === 'Gelu' && (!last.domain || last.domain === 'ai.onnx')) {
      // ONNX's own Gelu (opset 20): one node, swapped in place
      g.node.splice(g.node.indexOf(last), 1, { name: `${last.name || name}_${op}`, opType: op, input: [last.input[0]], output: [name], attribute: [] });
      continue;
    }
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    const cone: any[] = [];
    const queue = [last];
    while (queue.length && cone.length < 12) {
      const n = queue.shift();
      if (cone.includes(n) || !ELEM.has(n.opType)) continue;
      cone.push(n);
      for (const i of n.input) { const p = producer.get(i); if (p && !isConst(i)) queue.push(p); }
    }
    const reads = new Map<string, number>();
    for (const n of cone) for (const i of n.input) if (i && !isConst(i)) reads.set(i, (reads.get(i) ?? 0) + 1);
    // x: read twice or more inside, produced outside the subgraph that lies between x and the output
    const cands = [...reads].filter(([v, c]) => c >= 2 && !cone.includes(producer.get(v))).map(([v]) => v);
    let x = cands[0];
    if (cands.length !== 1) {
      // GELU whose input is an elementwise node of its own (e.g. bias Add): x is read twice inside
      const inner = [...reads].filter(([, c]) => c >= 2).map(([v]) => v);
      if (inner.length !== 1) throw new Error(`${source}: cannot find the input of activation '${name}' to swap it`);
      x = inner[0];
    }
    const at = g.node.indexOf(last);
    g.node.splice(at, 1, { name: `${last.name || name}_${op}`, opType: op, input: [x], output: [name], attribute: [] });
  }
  // drop nodes whose outputs nothing reads
  const outs = new Set<string>(g.output.map((o: { name: string }) => o.name));
  for (;;) {
    const used = new Set<string>(outs);
    for (const n of g.node) for (const i of n.input) used.add(i);
    const before = g.node.length;
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    g.node = g.node.filter((n: any) => n.output.some((o: string) => o && used.has(o)));
    if (g.node.length === before) break;
  }
}
