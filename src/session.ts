// InferenceSession, shaped like onnxruntime-node's: create → run(feeds) → outputs. A plan is compiled
// per distinct set of input dims (lazily, on first use) and cached; runs go through the native
// executor off the event loop.
import { loadModel } from './onnx/load.js';
import type { Compiled } from './compile/index.js';
import { ModelCompiler, type BlockedBy, type PlanKind } from './quant/qdq-plan.js';
import { isSupportedOp } from './passes/specialize.js';
import type { Graph, ValueDecl } from './ir/graph.js';
import { native, type NativePlan } from './native.js';
import { Tensor, type TensorType } from './tensor.js';

export interface SessionOptions {
  threads?: number; isa?: 'auto' | 'scalar' | 'avx2'; profile?: boolean;
  /** a QDQ model that cannot run integer-only is an error (naming node, op and reason), not a fallback */
  requireInteger?: boolean;
  /** 'simulate': run a QDQ model as its fp32 simulation (a reference for the integer plan) */
  qdq?: 'auto' | 'simulate';
  /** gets one-line notes (e.g. why a QDQ model runs as an fp32 simulation); the library never prints */
  logger?: (line: string) => void;
}
export type { PlanKind, BlockedBy };
export interface InputMetadata { name: string; isTensor: true; type: string; shape: (number | string | null)[] }
export interface PlanStats {
  onnxNodes: number; planOps: number; opCounts: Record<string, number>; arenaBytes: number; constantBytes: number;
  /** true when the plan was extrapolated from the batch-2/3 plans instead of compiled from scratch */
  extrapolated: boolean;
}

const TYPE_OF: Record<string, TensorType> = { float32: 'float32', int64: 'int64', int32: 'int32', int8: 'int8', uint8: 'uint8', int16: 'int16', bool: 'bool' };
const MAX_CACHED_PLANS = 16;

// The plan description (with its constant blob, as large as the weights) is dropped once the
// native plan holds it.
interface Entry { compiled: Omit<Compiled, 'desc'>; plan: NativePlan; kind: PlanKind; blockedBy?: BlockedBy }

export class InferenceSession {
  readonly inputNames: string[];
  readonly outputNames: string[];
  readonly inputMetadata: InputMetadata[];
  readonly outputMetadata: InputMetadata[];
  readonly metadata: Record<string, string>;
  readonly modelPath?: string;
  private readonly graph: Graph;
  private readonly threads: number;
  private readonly profile: boolean;
  private plans = new Map<string, Entry>();
  private readonly compiler: ModelCompiler;
  private readonly requireInteger: boolean;
  private readonly simulateQdq: boolean;
  private readonly logger?: (line: string) => void;
  private lastKind?: PlanKind;
  private released = false;

  private constructor(graph: Graph, modelPath: string | undefined, options: SessionOptions) {
    this.graph = graph;
    this.compiler = new ModelCompiler(graph);
    this.requireInteger = !!options.requireInteger;
    this.simulateQdq = options.qdq === 'simulate';
    if (options.qdq !== undefined && options.qdq !== 'auto' && options.qdq !== 'simulate') throw new Error(`InferenceSession: qdq must be 'auto' or 'simulate', got '${String(options.qdq).slice(0, 40)}'`);
    if (this.simulateQdq && this.requireInteger) throw new Error(`InferenceSession: qdq 'simulate' and requireInteger contradict each other`);
    this.logger = options.logger;
    this.modelPath = modelPath;
    this.inputNames = graph.inputs.map((i) => i.name);
    this.outputNames = graph.outputs.map((o) => o.name);
    const meta = (d: ValueDecl): InputMetadata => ({ name: d.name, isTensor: true, type: d.dtype, shape: [...d.dims] });
    this.inputMetadata = graph.inputs.map(meta);
    this.outputMetadata = graph.outputs.map(meta);
    this.metadata = { ...graph.metadata };
    const t = options.threads ?? 1;
    if (!Number.isInteger(t) || t < 1) throw new Error(`InferenceSession: threads must be an integer ≥ 1, got ${t}`);
    this.threads = t;
    this.profile = !!options.profile;
  }

  static async create(pathOrBuffer: string | Uint8Array, options: SessionOptions = {}): Promise<InferenceSession> {
    if (typeof pathOrBuffer !== 'string' && !(pathOrBuffer instanceof Uint8Array)) {
      throw new TypeError('InferenceSession.create: expected a file path or a Uint8Array');
    }
    // ISA choice is process-wide in the addon (kernels are picked at run time).
    if (options.isa) native.setIsa(options.isa);
    if (!native.createPlan) throw new Error('swinq: this build of the addon has no plan executor (createPlan)');
    const g = loadModel(pathOrBuffer);
    // unsupported ops fail at create (cheap); shapes are only known per run, so compiling is lazy
    for (const n of g.nodes) {
      const qdq = (n.domain === '' || n.domain === 'com.microsoft') && (n.opType === 'QuantizeLinear' || n.opType === 'DequantizeLinear');
      if (!qdq && (n.domain !== '' || !isSupportedOp(n.opType))) {
        throw new Error(`${g.source}: unsupported op '${n.domain ? `${n.domain}.` : ''}${n.opType}' at node '${n.name}'`);
      }
    }
    const s = new InferenceSession(g, typeof pathOrBuffer === 'string' ? pathOrBuffer : undefined, options);
    // --require-integer fails at create, not at the first run: try the default-shape plan now
    if (s.requireInteger) { try { s.planInfo(); } catch (e) { s.release(); throw e; } }
    return s;
  }

  /** Which plan ran last ('integer-only' | 'fp32' | 'qdq-simulated'); before any run, the plan of the
   *  default shape (every symbolic dim 1). */
  get plan(): PlanKind { return this.lastKind ?? this.planInfo().plan; }

  /** The plan kind for these input dims (default: every symbolic dim = 1) and, for a QDQ model that
   *  falls back to the fp32 simulation, what blocked the integer-only plan. */
  planInfo(dims?: Record<string, readonly number[]>): { plan: PlanKind; blockedBy?: BlockedBy } {
    const e = this.entry(this.defaultDims(dims));
    return { plan: e.kind, ...(e.blockedBy ? { blockedBy: { ...e.blockedBy } } : {}) };
  }

  private defaultDims(dims?: Record<string, readonly number[]>): number[][] {
    return this.graph.inputs.map((d) => {
      const given = dims?.[d.name];
      if (given) return [...given];
      return d.dims.map((x) => (typeof x === 'number' && x > 0 ? x : 1));
    });
  }

  /** Checks feeds against the model's inputs; returns the concrete dims of each input in order. */
  private validate(feeds: Record<string, Tensor>): number[][] {
    if (this.released) throw new Error('InferenceSession: session was released');
    if (!feeds || typeof feeds !== 'object') throw new TypeError('run: feeds must be an object of input name → Tensor');
    for (const k of Object.keys(feeds)) {
      if (!this.inputNames.includes(k)) throw new Error(`run: unknown input '${k}' (model inputs: ${this.inputNames.join(', ')})`);
    }
    const sym = new Map<string, number>();
    return this.graph.inputs.map((decl) => {
      const t = feeds[decl.name];
      if (!t) throw new Error(`run: missing input '${decl.name}'`);
      if (!(t instanceof Tensor) && !(t && typeof t === 'object' && 'dims' in t && 'data' in t && 'type' in t)) {
        throw new TypeError(`run: input '${decl.name}' must be a Tensor`);
      }
      if (t.type !== decl.dtype) throw new Error(`run: input '${decl.name}' has type ${t.type}, expected ${decl.dtype}`);
      if (t.dims.length !== decl.dims.length) {
        throw new Error(`run: input '${decl.name}' has rank ${t.dims.length} (dims [${t.dims.join(',')}]), expected rank ${decl.dims.length} ([${decl.dims.map((d) => d ?? '?').join(',')}])`);
      }
      decl.dims.forEach((d, i) => {
        const got = t.dims[i];
        if (typeof d === 'number' && d > 0 && got !== d) {
          throw new Error(`run: input '${decl.name}' dim ${i} is ${got}, expected ${d} (expected [${decl.dims.map((x) => x ?? '?').join(',')}], got [${t.dims.join(',')}])`);
        }
        if (typeof d === 'string') {
          const prev = sym.get(d);
          if (prev !== undefined && prev !== got) throw new Error(`run: input '${decl.name}' dim ${i} ('${d}') is ${got}, but another input has '${d}' = ${prev}`);
          sym.set(d, got);
        }
      });
      const n = t.dims.reduce((a, b) => a * b, 1);
      if (t.data.length !== n) throw new Error(`run: input '${decl.name}' has ${t.data.length} elements, dims [${t.dims.join(',')}] need ${n}`);
      return [...t.dims];
    });
  }

  private entry(dims: number[][]): Entry {
    const key = dims.map((d) => d.join('x')).join('|');
    let e = this.plans.get(key);
    if (e) {
      // keep most-recently-used last
      this.plans.delete(key);
      this.plans.set(key, e);
      return e;
    }
    const inputDims: Record<string, number[]> = {};
    this.inputNames.forEach((n, i) => (inputDims[n] = dims[i]));
    // QDQ files: integer-only when a lowering takes them, else the fp32 simulation (src/quant/qdq-plan.ts)
    const choice = this.compiler.compile(inputDims, { requireInteger: this.requireInteger, simulate: this.simulateQdq });
    const compiled = choice.compiled;
    if (choice.blockedBy && !this.plans.size) this.logger?.(`${this.graph.source}: running the fp32 simulation of the QDQ file (plan qdq-simulated): ${choice.blockedBy.reason}`);
    const plan = native.createPlan!(compiled.desc, { threads: this.threads, profile: this.profile });
    e = { compiled: { outputDims: compiled.outputDims, outputTypes: compiled.outputTypes, stats: compiled.stats }, plan, kind: choice.plan, blockedBy: choice.blockedBy };
    this.plans.set(key, e);
    if (this.plans.size > MAX_CACHED_PLANS) {
      const [oldKey, old] = this.plans.entries().next().value as [string, Entry];
      old.plan.release();
      this.plans.delete(oldKey);
    }
    return e;
  }

  private buffers(e: Entry, feeds: Record<string, Tensor>): { ins: ArrayBufferView[]; outs: Tensor[] } {
    const ins = this.inputNames.map((n) => feeds[n].data as ArrayBufferView);
    const outs = e.compiled.outputDims.map((dims, i) => {
      const type = TYPE_OF[e.compiled.outputTypes[i]];
      if (!type) throw new Error(`run: output '${this.outputNames[i]}' has unsupported type ${e.compiled.outputTypes[i]}`);
      const n = dims.reduce((a, b) => a * b, 1);
      const data = type === 'int64' ? new BigInt64Array(n) : type === 'float32' ? new Float32Array(n) : type === 'int32' ? new Int32Array(n)
        : type === 'int16' ? new Int16Array(n) : type === 'int8' ? new Int8Array(n) : new Uint8Array(n);
      return new Tensor(type, data, dims);
    });
    return { ins, outs };
  }

  private result(outs: Tensor[]): Record<string, Tensor> {
    const r: Record<string, Tensor> = {};
    this.outputNames.forEach((n, i) => (r[n] = outs[i]));
    return r;
  }

  async run(feeds: Record<string, Tensor>): Promise<Record<string, Tensor>> {
    const e = this.entry(this.validate(feeds));
    this.lastKind = e.kind;
    const { ins, outs } = this.buffers(e, feeds);
    await e.plan.runAsync(ins, outs.map((t) => t.data));
    return this.result(outs);
  }

  runSync(feeds: Record<string, Tensor>): Record<string, Tensor> {
    const e = this.entry(this.validate(feeds));
    this.lastKind = e.kind;
    const { ins, outs } = this.buffers(e, feeds);
    e.plan.run(ins, outs.map((t) => t.data));
    return this.result(outs);
  }

  /** Compile statistics for the given input dims (default: every symbolic dim = 1). */
  planStats(dims?: Record<string, readonly number[]>): PlanStats {
    const s = this.entry(this.defaultDims(dims)).compiled.stats;
    return { onnxNodes: s.onnxNodes, planOps: s.planOps, opCounts: { ...s.opCounts }, arenaBytes: s.arenaBytes, constantBytes: s.constantBytes, extrapolated: s.extrapolated };
  }

  /** Per-op times of the last run for the given input dims (needs options.profile). */
  profileOf(dims: Record<string, readonly number[]>): { op: string; name: string; ms: number }[] {
    const e = this.entry(this.graph.inputs.map((d) => [...dims[d.name]]));
    return e.plan.profile();
  }

  release(): void {
    for (const e of this.plans.values()) e.plan.release();
    this.plans.clear();
    this.released = true;
  }
}
