// A training graph: a flat list of train ops over named tensors. Parameters (trainable or
// constant, e.g. the shift mask) are batch-independent; every other tensor is a per-sample size
// times the batch. The native ops (native/train) do the work; this file keeps the tape.
import { native, type TrainBackwardArgs } from '../native.js';

export type OpKind = 'linear' | 'layernorm' | 'matmul' | 'softmax' | 'add' | 'add_bcast' | 'gather' | 'act' | 'mean_pool' | 'fakequant' | 'binary' | 'scale_shift';

export interface OpDesc {
  op: OpKind;
  M?: number; K?: number; N?: number; D?: number; L?: number; C?: number;
  transB?: boolean; alpha?: number; eps?: number;
  dims?: [number, number, number]; bdims?: [number, number, number];
  xItem?: number; block?: number; idx?: Int32Array;
  fn?: string; bits?: number; tableBorders?: number[]; tableLevels?: number[];  // act (a fixed few-bit table: tableBorders/tableLevels)
  scale?: number; zp?: number; qmin?: number; qmax?: number;  // fakequant
  bop?: number; odims?: number[]; sa?: number[]; sb?: number[];  // binary: 0 add, 1 sub, 2 mul, 3 div, broadcast strides
  shift?: number;                                                // scale_shift: alpha·x + shift
}

export interface TrainNode { name: string; desc: OpDesc; inputs: string[]; output: string }

export interface Param {
  name: string;
  shape: number[];
  data: Float32Array;
  trainable: boolean;
  /** AdamW weight decay applies (not to biases, norms and position tables). */
  decay: boolean;
}

/** Output element count from input element counts (mirrors native output_size; throws naming the node). */
export function outSize(n: TrainNode, s: number[]): number {
  const d = n.desc;
  const div = (a: number, b: number, what: string) => {
    if (a % b !== 0) throw new Error(`train node '${n.name}' (${d.op}): ${what} has ${a} elements, not a multiple of ${b}`);
    return a / b;
  };
  switch (d.op) {
    case 'linear': return div(s[0], d.K!, 'x') * d.N!;
    case 'matmul': return div(s[0], d.M! * d.K!, 'a') * d.M! * d.N!;
    case 'gather': return div(s[0], d.xItem!, 'x') * d.idx!.length * (d.block ?? 1);
    case 'mean_pool': return div(s[0], d.L! * d.C!, 'x') * d.C!;
    default: return s[0];
  }
}

export interface ForwardState {
  batch: number;
  values: Map<string, Float32Array>;
  codes: Map<string, Uint8Array>;
  /** bytes kept for backward (inputs/outputs the backward rules read, or few-bit codes) */
  savedBytes: number;
}

export class TrainGraph {
  readonly params = new Map<string, Param>();
  readonly nodes: TrainNode[] = [];
  /** per-sample element count of every non-parameter tensor */
  readonly perSample = new Map<string, number>();

  constructor(readonly input: string, readonly inputShape: number[], public output = '') {
    this.perSample.set(input, inputShape.reduce((a, b) => a * b, 1));
  }

  addParam(p: Param): string {
    if (this.params.has(p.name)) throw new Error(`train graph: duplicate parameter '${p.name}'`);
    const n = p.shape.reduce((a, b) => a * b, 1);
    if (p.data.length !== n) throw new Error(`train graph: parameter '${p.name}' has ${p.data.length} values, shape [${p.shape}] needs ${n}`);
    this.params.set(p.name, p);
    return p.name;
  }

  size(name: string, batch: number): number {
    const p = this.params.get(name);
    if (p) return p.data.length;
    const ps = this.paramSizes.get(name);
    if (ps !== undefined) return ps;
    const s = this.perSample.get(name);
    if (s === undefined) throw new Error(`train graph: unknown tensor '${name}'`);
    return s * batch;
  }

  /** Appends a node; returns its output name (per-sample size inferred; param-only nodes count as parameters' size). */
  add(name: string, desc: OpDesc, inputs: string[]): string {
    const isParam = (i: string) => this.params.has(i) || this.paramSizes.has(i);
    for (const i of inputs) if (!isParam(i) && !this.perSample.has(i)) throw new Error(`train node '${name}': unknown input '${i}'`);
    if (this.perSample.has(name) || isParam(name)) throw new Error(`train graph: duplicate tensor '${name}'`);
    const node: TrainNode = { name, desc, inputs, output: name };
    const allParams = inputs.every(isParam);
    if (allParams) throw new Error(`train node '${name}': needs at least one batch tensor input (use a gather with T = 1 via paramGather)`);
    this.perSample.set(name, outSize(node, inputs.map((i) => this.size(i, 1))));
    this.nodes.push(node);
    return name;
  }

  /** Inserts `desc` (one input) right after the producer of `tensor` and points every later reader of
   *  `tensor` at its output (quantization-aware training puts fake quantization there). */
  insertAfter(tensor: string, name: string, desc: OpDesc): string {
    const at = this.nodes.findIndex((n) => n.output === tensor);
    if (at < 0 && tensor !== this.input) throw new Error(`train graph: '${tensor}' is not a node output`);
    if (this.perSample.has(name)) throw new Error(`train graph: duplicate tensor '${name}'`);
    const node: TrainNode = { name, desc, inputs: [tensor], output: name };
    for (const n of this.nodes) n.inputs = n.inputs.map((i) => (i === tensor ? name : i));
    if (this.output === tensor) this.output = name;
    this.perSample.set(name, outSize(node, [this.size(tensor, 1)]));
    this.nodes.splice(at + 1, 0, node);
    this.keptCache = undefined;
    this.needsCache = undefined;
    return name;
  }

  /** Removes a one-input node inserted by insertAfter, reconnecting its readers to its input. */
  removeNode(name: string): void {
    const at = this.nodes.findIndex((n) => n.name === name);
    if (at < 0) throw new Error(`train graph: no node '${name}'`);
    const [n] = this.nodes.splice(at, 1);
    for (const m of this.nodes) m.inputs = m.inputs.map((i) => (i === n.output ? n.inputs[0] : i));
    if (this.output === n.output) this.output = n.inputs[0];
    this.perSample.delete(n.output);
    this.keptCache = undefined;
    this.needsCache = undefined;
  }

  /** A node over parameters only (e.g. the relative-position bias gathered from its table): its output is batch-independent. */
  addParamNode(name: string, desc: OpDesc, inputs: string[]): string {
    const node: TrainNode = { name, desc, inputs, output: name };
    for (const i of inputs) if (!this.params.has(i)) throw new Error(`train node '${name}': '${i}' is not a parameter`);
    this.paramNodes.push(node);
    this.paramSizes.set(name, outSize(node, inputs.map((i) => this.params.get(i)!.data.length)));
    return name;
  }
  readonly paramNodes: TrainNode[] = [];
  readonly paramSizes = new Map<string, number>();

  private sizeOf(name: string, st: ForwardState): number {
    const v = st.values.get(name);
    if (v) return v.length;
    return this.size(name, st.batch);
  }

  /** keep: drop what backward does not read (false keeps every tensor); alsoKeep: tensors kept anyway
   *  (hidden states a loss reads). */
  forward(x: Float32Array, batch: number, keep = true, alsoKeep?: Iterable<string>): ForwardState {
    const st = this.begin(x, batch);
    for (const n of [...this.paramNodes, ...this.nodes]) this.store(st, n, native.trainForward(n.desc, n.inputs.map((i) => st.values.get(i)!)));
    return this.finish(st, keep, alsoKeep);
  }

  /** forward() with every op on a libuv worker (AsyncWorker): the event loop stays free. */
  async forwardAsync(x: Float32Array, batch: number, keep = true): Promise<ForwardState> {
    const st = this.begin(x, batch);
    for (const n of [...this.paramNodes, ...this.nodes]) this.store(st, n, await native.trainForwardAsync(n.desc, n.inputs.map((i) => st.values.get(i)!)));
    return this.finish(st, keep);
  }

  private begin(x: Float32Array, batch: number): ForwardState {
    const per = this.perSample.get(this.input)!;
    if (!Number.isInteger(batch) || batch < 1) throw new Error(`train: batch must be a positive integer, got ${batch}`);
    if (x.length !== per * batch) throw new Error(`train: input '${this.input}' has ${x.length} values, expected ${batch}×${per}`);
    const st: ForwardState = { batch, values: new Map(), codes: new Map(), savedBytes: 0 };
    for (const [k, p] of this.params) st.values.set(k, p.data);
    st.values.set(this.input, x);
    return st;
  }

  private store(st: ForwardState, n: TrainNode, r: { y: Float32Array; codes?: Uint8Array }): void {
    st.values.set(n.output, r.y);
    if (r.codes) st.codes.set(n.output, r.codes);
  }

  private finish(st: ForwardState, keep: boolean, alsoKeep?: Iterable<string>): ForwardState {
    if (keep) {
      // drop what no backward rule reads (e.g. the input of a few-bit activation): memory is real
      const kept = this.keptTensors();
      const extra = new Set(alsoKeep ?? []);
      for (const k of [...st.values.keys()]) if (!kept.has(k) && !extra.has(k) && !this.params.has(k) && k !== this.output) st.values.delete(k);
      st.savedBytes = [...kept].reduce((a, k) => a + (st.values.get(k)?.byteLength ?? 0), 0);
      for (const c of st.codes.values()) st.savedBytes += c.byteLength;
    }
    return st;
  }

  /** What backward reads: inputs of linear/layernorm/matmul/exact act nodes, softmax outputs (few-bit acts keep codes). */
  private keptCache?: Set<string>;
  private keptTensors(): Set<string> {
    if (this.keptCache) return this.keptCache;
    const kept = new Set<string>();
    for (const n of this.nodes) {
      const op = n.desc.op;
      if (op === 'act' && (n.desc.bits ?? 0) > 0) continue;
      if (op === 'linear' || op === 'layernorm' || op === 'matmul' || op === 'act' || op === 'fakequant') {
        for (const i of n.inputs) if (!this.params.has(i)) kept.add(i);
      }
      if (op === 'softmax') kept.add(n.output);
    }
    this.keptCache = kept;
    return kept;
  }

  /** Gradients of every trainable parameter for dL/d(output) = dout, plus dL/d(t) = seeds[t] for
   *  intermediate tensors t (losses on hidden states, e.g. a feature-distillation term). */
  backward(st: ForwardState, dout: Float32Array, seeds?: Map<string, Float32Array>): Map<string, Float32Array> {
    const it = this.backwardSteps(st, dout, seeds);
    let r = it.next();
    while (!r.done) r = it.next(native.trainBackward(...r.value));
    return r.value;
  }

  /** backward() with every op on a libuv worker. */
  async backwardAsync(st: ForwardState, dout: Float32Array, seeds?: Map<string, Float32Array>): Promise<Map<string, Float32Array>> {
    const it = this.backwardSteps(st, dout, seeds);
    let r = it.next();
    while (!r.done) r = it.next(await native.trainBackwardAsync(...r.value));
    return r.value;
  }

  // yields the argument lists of trainBackward, receives the gradients
  private *backwardSteps(st: ForwardState, dout: Float32Array, seeds?: Map<string, Float32Array>): Generator<TrainBackwardArgs, Map<string, Float32Array>, (Float32Array | null)[]> {
    const grads = new Map<string, Float32Array>();
    for (const [t, g] of seeds ?? []) {
      if (!this.nodes.some((n) => n.output === t)) throw new Error(`backward: seed '${t}' is not an op output of this graph`);
      const n = this.sizeOf(t, st);
      if (n !== g.length) throw new Error(`backward: seed '${t}' has ${g.length} values, the tensor ${n}`);
      grads.set(t, Float32Array.from(g));  // consumers' gradients are added to it
    }
    grads.set(this.output, dout);
    const needs = this.needsGrad();
    const accumulate = (name: string, g: Float32Array) => {
      const have = grads.get(name);
      if (!have) grads.set(name, g);
      else for (let i = 0; i < g.length; i++) have[i] += g[i];
    };
    const all = [...this.paramNodes, ...this.nodes];
    for (let k = all.length - 1; k >= 0; k--) {
      const n = all[k];
      const dy = grads.get(n.output);
      if (!dy) continue;
      const fewbit = n.desc.op === 'act' && (n.desc.bits ?? 0) > 0;
      const ins = n.inputs.map((i) => (fewbit ? null : st.values.get(i) ?? null));
      const sizes = n.inputs.map((i) => this.sizeOf(i, st));
      const need = n.inputs.map((i) => needs.has(i));
      const out = n.desc.op === 'softmax' ? st.values.get(n.output)! : null;
      const g = yield [n.desc, ins, sizes, out, dy, st.codes.get(n.output) ?? null, need];
      n.inputs.forEach((i, j) => { if (g[j]) accumulate(i, g[j]!); });
      if (n.output !== this.output) grads.delete(n.output);
    }
    const res = new Map<string, Float32Array>();
    for (const [k, p] of this.params) if (p.trainable) res.set(k, grads.get(k) ?? new Float32Array(p.data.length));
    return res;
  }

  private needsCache?: Set<string>;
  needsGrad(): Set<string> {
    if (this.needsCache) return this.needsCache;
    const s = new Set<string>();
    for (const [k, p] of this.params) if (p.trainable) s.add(k);
    for (const n of [...this.paramNodes, ...this.nodes]) if (n.inputs.some((i) => s.has(i))) s.add(n.output);
    this.needsCache = s;
    return s;
  }

  /** Sets few-bit bits on every activation node (0 = exact backward). */
  setFewbit(bits: number): void {
    if (!Number.isInteger(bits) || bits < 0 || bits > 4) throw new Error(`--fewbit must be 0..4, got ${bits}`);
    for (const n of this.nodes) if (n.desc.op === 'act') n.desc.bits = bits;
    this.keptCache = undefined;
  }
}
