// InferenceSession, shaped like onnxruntime-node's: create → run(feeds) → outputs. A plan is compiled
// per distinct set of input dims (lazily, on first use) and cached; runs go through the native
// executor, off the event loop unless the plan is short (inlineBelowMs).
import { loadModel } from './onnx/load.js';
import type { Compiled } from './compile/index.js';
import { ModelCompiler, type BlockedBy, type PlanChoice, type PlanKind } from './runtime/model-compiler.js';
import { BackgroundCompiler } from './runtime/background.js';
import { isSupportedOp } from './passes/specialize.js';
import type { Graph, ValueDecl } from './ir/graph.js';
import { native, type IsaOption, type NativePlan, type PlanArray } from './native.js';
import os from 'node:os';
import { Tensor, describe, type TensorData, type TensorType } from './tensor.js';

export interface SessionOptions {
  threads?: number; isa?: IsaOption; profile?: boolean;
  /** a QDQ model that cannot run integer-only is an error (naming node, op and reason), not a fallback */
  requireInteger?: boolean;
  /** 'simulate': run a QDQ model as its fp32 simulation (a reference for the integer plan) */
  qdq?: 'auto' | 'simulate';
  /**
   * Compile the plan of a new input shape on a worker thread when `run()` meets it, so the event loop
   * stays free meanwhile (a server's other requests and health checks). Costs a second copy of the model
   * while the worker lives (it ends 30 s after its last compile). `runSync()` always compiles inline.
   */
  compileInBackground?: boolean;
  /**
   * `run()` executes on the calling thread, as onnxruntime-node's does, when this input shape's previous
   * run took less than this many ms; longer plans (and the first run of a shape) go to the libuv pool so
   * the event loop stays free. The pool hop costs 0.02–0.07 ms a run (micro-Swin integer batch 1 is
   * ≈ 0.18 ms, docs/latency.md). Default 0.5; 0 = always the pool.
   */
  inlineBelowMs?: number;
  /**
   * With threads > 1, each plan measures whether each op is faster on the thread pool or on the
   * calling thread alone (handing work to another core costs 0.3–1.5 µs an op, more than some batch-1
   * ops take) and runs it where it was faster, measuring again every 2048 runs; `threadChoiceOf()`
   * says what it chose. Outputs do not change. Default true; false: every op on the pool.
   */
  adaptThreads?: boolean;
  /**
   * With threads > 1, consecutive row-local integer ops on the same rows (a LayerNorm, the linears
   * after it, a windowed attention) run as one job on the thread pool, each thread taking its rows
   * through all of them: one hand-off instead of one per op (`threadChoiceOf().jobs`). Outputs do
   * not change. Default true; false: one pool job per op.
   */
  rowRegions?: boolean;
  /** gets one-line notes (e.g. why a QDQ model runs as an fp32 simulation); the library never prints */
  logger?: (line: string) => void;
  // onnxruntime-node's names, so its programs run unchanged (see resolveThreads / checkOrtOptions)
  /** = threads; 0 = all cores */
  intraOpNumThreads?: number;
  /** 'cpu' or { name: 'cpu' } only: swinq has no other execution provider */
  executionProviders?: readonly (string | { name: string })[];
  /** accepted; swinq always folds and fuses (docs/passes.md) */
  graphOptimizationLevel?: 'disabled' | 'basic' | 'extended' | 'layout' | 'all';
  /** accepted; the library does not log */
  logSeverityLevel?: 0 | 1 | 2 | 3 | 4;
  logVerbosityLevel?: number;
  /** accepted; plan ops run one after another, each across `threads` */
  interOpNumThreads?: number;
  executionMode?: 'sequential' | 'parallel';
}
/** onnxruntime-node's RunOptions; accepted and checked, none changes what swinq does. */
export interface RunOptions { logSeverityLevel?: 0 | 1 | 2 | 3 | 4; logVerbosityLevel?: number; tag?: string; terminate?: boolean }
/** Output names to compute, or output name → a pre-allocated Tensor to write into (null: allocate). */
export type FetchesType = readonly string[] | Record<string, Tensor | null>;
export type { PlanKind, BlockedBy };
export interface InputMetadata { name: string; isTensor: true; type: string; shape: (number | string | null)[] }
export interface PlanStats {
  onnxNodes: number; planOps: number; opCounts: Record<string, number>; arenaBytes: number; constantBytes: number;
  /** true when the plan was extrapolated from the batch-2/3 plans instead of compiled from scratch */
  extrapolated: boolean;
}

const TYPE_OF: Record<string, TensorType> = { float32: 'float32', int64: 'int64', int32: 'int32', int8: 'int8', uint8: 'uint8', int16: 'int16', bool: 'bool' };
const MAX_CACHED_PLANS = 16;
const CTOR_OF: Record<string, new (n: number) => TensorData> = {
  float32: Float32Array, int64: BigInt64Array, int32: Int32Array, int8: Int8Array, uint8: Uint8Array, int16: Int16Array, bool: Uint8Array,
};

/** 'Float32Array', … for a typed array of any realm (a Buffer is 'Uint8Array'); undefined otherwise. */
function arrayTag(v: unknown): string | undefined {
  return ArrayBuffer.isView(v) ? (v as unknown as { [Symbol.toStringTag]: string })[Symbol.toStringTag] : undefined;
}

function isIntIn(v: unknown, lo: number, hi: number): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= lo && v <= hi;
}

/** `threads`, or onnxruntime's `intraOpNumThreads` (0 = all cores); default 1. */
function resolveThreads(o: SessionOptions): number {
  const { threads, intraOpNumThreads: intra } = o;
  if (threads !== undefined && !isIntIn(threads, 1, 64)) throw new Error(`InferenceSession: threads must be an integer in [1, 64], got ${describe(threads)}`);
  if (intra !== undefined && !isIntIn(intra, 0, 64)) throw new Error(`InferenceSession: intraOpNumThreads must be an integer in [0, 64] (0 = all cores), got ${describe(intra)}`);
  const fromIntra = intra === undefined ? undefined : intra === 0 ? Math.min(64, os.availableParallelism()) : intra;
  if (threads !== undefined && fromIntra !== undefined && threads !== fromIntra) {
    throw new Error(`InferenceSession: threads (${threads}) and intraOpNumThreads (${intra}) disagree; give one of them`);
  }
  return threads ?? fromIntra ?? 1;
}

const GRAPH_OPT_LEVELS = ['disabled', 'basic', 'extended', 'layout', 'all'];
/** onnxruntime-node's SessionOptions that swinq accepts: checked, so a typo or an unavailable provider is an error. */
function checkOrtOptions(o: SessionOptions): void {
  const eps = o.executionProviders;
  if (eps !== undefined) {
    if (!Array.isArray(eps)) throw new Error(`InferenceSession: executionProviders must be an array, got ${describe(eps)}`);
    eps.forEach((ep, i) => {
      const name = typeof ep === 'string' ? ep : ep && typeof ep === 'object' ? (ep as { name?: unknown }).name : undefined;
      if (typeof name !== 'string') throw new Error(`InferenceSession: executionProviders[${i}] must be a name or { name }, got ${describe(ep)}`);
      if (name.toLowerCase() !== 'cpu') {
        throw new Error(`InferenceSession: execution provider ${describe(name)} is not available in swinq; only 'cpu' is (executionProviders[${i}])`);
      }
    });
  }
  if (o.graphOptimizationLevel !== undefined && !GRAPH_OPT_LEVELS.includes(o.graphOptimizationLevel)) {
    throw new Error(`InferenceSession: graphOptimizationLevel must be one of ${GRAPH_OPT_LEVELS.join(', ')}, got ${describe(o.graphOptimizationLevel)}`);
  }
  if (o.logSeverityLevel !== undefined && !isIntIn(o.logSeverityLevel, 0, 4)) {
    throw new Error(`InferenceSession: logSeverityLevel must be 0, 1, 2, 3 or 4, got ${describe(o.logSeverityLevel)}`);
  }
  if (o.logVerbosityLevel !== undefined && !isIntIn(o.logVerbosityLevel, 0, 1e9)) {
    throw new Error(`InferenceSession: logVerbosityLevel must be a non-negative integer, got ${describe(o.logVerbosityLevel)}`);
  }
  if (o.interOpNumThreads !== undefined && !isIntIn(o.interOpNumThreads, 0, 64)) {
    throw new Error(`InferenceSession: interOpNumThreads must be an integer in [0, 64], got ${describe(o.interOpNumThreads)}`);
  }
  if (o.executionMode !== undefined && o.executionMode !== 'sequential' && o.executionMode !== 'parallel') {
    throw new Error(`InferenceSession: executionMode must be 'sequential' or 'parallel', got ${describe(o.executionMode)}`);
  }
}

/** Per plan: what each output is, computed on its first run. */
const outSpecs = new WeakMap<object, { type: TensorType; Ctor: new (n: number) => TensorData; dims: readonly number[]; n: number }[]>();

function dimsText(d: unknown): string {
  if (!Array.isArray(d)) return describe(d);
  const one = (x: unknown) => (x === null || x === undefined ? '?' : typeof x === 'string' ? x.slice(0, 40) : describe(x));
  return `[${d.slice(0, 8).map(one).join(',')}${d.length > 8 ? ',…' : ''}]`;
}

// The plan description (with its constant blob, as large as the weights) is dropped once the
// native plan holds it.
interface Entry {
  compiled: Omit<Compiled, 'desc'>; plan: NativePlan; kind: PlanKind; blockedBy?: BlockedBy;
  /** the plan's own time in its last run, ms (run() chooses the calling thread or the pool by it) */
  lastMs?: number;
}

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
  private readonly inlineBelowMs: number;
  private readonly adaptThreads: boolean;
  private readonly rowRegions: boolean;
  private lastOn: 'caller' | 'pool' | undefined;
  private plans = new Map<string, Entry>();
  private readonly compiler: ModelCompiler;
  private readonly requireInteger: boolean;
  private readonly simulateQdq: boolean;
  private readonly logger?: (line: string) => void;
  private lastKind?: PlanKind;
  private released = false;
  private readonly background?: BackgroundCompiler;
  private readonly compiling = new Map<string, Promise<Entry>>();

  private constructor(graph: Graph, source: string | Uint8Array, options: SessionOptions) {
    const modelPath = typeof source === 'string' ? source : undefined;
    this.graph = graph;
    if (options.compileInBackground) this.background = new BackgroundCompiler(source);
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
    this.threads = resolveThreads(options);
    this.profile = !!options.profile;
    this.inlineBelowMs = options.inlineBelowMs ?? 0.5;
    this.adaptThreads = options.adaptThreads ?? true;
    this.rowRegions = options.rowRegions ?? true;
  }

  static async create(pathOrBuffer: string | Uint8Array, options: SessionOptions = {}): Promise<InferenceSession> {
    if (typeof pathOrBuffer !== 'string' && !(pathOrBuffer instanceof Uint8Array)) {
      throw new TypeError('InferenceSession.create: expected a file path or a Uint8Array');
    }
    if (options === null || typeof options !== 'object') throw new TypeError(`InferenceSession.create: options must be an object, got ${describe(options)}`);
    checkOrtOptions(options);
    resolveThreads(options);
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
    const ib = options.inlineBelowMs;
    if (ib !== undefined && !(typeof ib === 'number' && ib >= 0 && ib <= 1e6)) {
      throw new TypeError(`InferenceSession: inlineBelowMs must be a number of ms in [0, 1e6], got ${describe(ib)}`);
    }
    for (const k of ['adaptThreads', 'rowRegions'] as const) {
      if (options[k] !== undefined && typeof options[k] !== 'boolean') throw new TypeError(`InferenceSession: ${k} must be a boolean, got ${describe(options[k])}`);
    }
    if (options.compileInBackground !== undefined && typeof options.compileInBackground !== 'boolean') {
      throw new TypeError(`InferenceSession: compileInBackground must be a boolean, got ${describe(options.compileInBackground)}`);
    }
    const s = new InferenceSession(g, pathOrBuffer, options);
    // --require-integer fails at create, not at the first run: try the default-shape plan now
    if (s.requireInteger) { try { s.planInfo(); } catch (e) { s.release(); throw e; } }
    return s;
  }

  /** Where the last run executed: 'caller' (the calling thread: runSync, or run() of a short plan,
   *  see inlineBelowMs) or 'pool' (the libuv pool); undefined before any run. */
  get lastRunOn(): 'caller' | 'pool' | undefined { return this.lastOn; }

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
    if (!feeds || typeof feeds !== 'object') throw new TypeError(`run: feeds must be an object of input name → Tensor, got ${describe(feeds)}`);
    const decls = this.graph.inputs;
    let given = 0;
    for (const k in feeds) {
      if (!this.inputNames.includes(k)) throw new Error(`run: unknown input ${describe(k)} (model inputs: ${this.inputNames.join(', ')})`);
      given++;
    }
    const out: number[][] = new Array(decls.length);
    let sym: Map<string, number> | undefined;
    for (let j = 0; j < decls.length; j++) {
      const decl = decls[j];
      const t = feeds[decl.name];
      if (!t) throw new Error(`run: missing input '${decl.name}'${given === 0 ? ' (feeds is empty)' : ''}`);
      if (!(t instanceof Tensor) && !(typeof t === 'object' && 'dims' in t && 'data' in t && 'type' in t)) {
        throw new TypeError(`run: input '${decl.name}' must be a Tensor, got ${describe(t)}`);
      }
      // the data itself must have the plan's element type: a Float64Array labelled float32 would be read as garbage
      const Ctor = CTOR_OF[decl.dtype];
      if (t.type !== decl.dtype || !Ctor) {
        throw new Error(`run: input '${decl.name}' has type ${typeof t.type === 'string' ? t.type.slice(0, 40) : describe(t.type)}, expected ${decl.dtype}`);
      }
      if (arrayTag(t.data) !== Ctor.name) {
        throw new Error(`run: input '${decl.name}' has type ${decl.dtype} but its data is ${describe(t.data)}, expected a ${Ctor.name}`);
      }
      const td = t.dims;
      if (!Array.isArray(td) || td.length !== decl.dims.length) {
        throw new Error(`run: input '${decl.name}' has rank ${Array.isArray(td) ? td.length : '?'} (dims ${dimsText(td)}), expected rank ${decl.dims.length} (${dimsText(decl.dims)})`);
      }
      let n = 1;
      for (let i = 0; i < td.length; i++) {
        const got = td[i];
        if (!Number.isSafeInteger(got) || got < 0) throw new Error(`run: input '${decl.name}' dims must be non-negative integers, got ${dimsText(td)}`);
        n *= got;
        const d = decl.dims[i];
        if (typeof d === 'number' && d > 0 && got !== d) {
          throw new Error(`run: input '${decl.name}' dim ${i} is ${got}, expected ${d} (expected ${dimsText(decl.dims)}, got ${dimsText(td)})`);
        }
        if (typeof d === 'string') {
          sym ??= new Map();
          const prev = sym.get(d);
          if (prev !== undefined && prev !== got) throw new Error(`run: input '${decl.name}' dim ${i} ('${d}') is ${got}, but another input has '${d}' = ${prev}`);
          sym.set(d, got);
        }
      }
      if (t.data.length !== n) throw new Error(`run: input '${decl.name}' has ${t.data.length} elements, dims ${dimsText(td)} need ${n}`);
      out[j] = td.slice();
    }
    return out;
  }

  private static key(dims: number[][]): string { return dims.map((d) => d.join('x')).join('|'); }

  /** The cached plan for these dims (moved to most-recently-used), if any. */
  private cached(key: string): Entry | undefined {
    const e = this.plans.get(key);
    if (e) {
      this.plans.delete(key);
      this.plans.set(key, e);
    }
    return e;
  }

  private inputDims(dims: number[][]): Record<string, number[]> {
    const inputDims: Record<string, number[]> = {};
    this.inputNames.forEach((n, i) => (inputDims[n] = dims[i]));
    return inputDims;
  }

  private compileOptions() { return { requireInteger: this.requireInteger, simulate: this.simulateQdq }; }

  /** The plan for these dims, compiled on this thread if it is new. */
  private entry(dims: number[][]): Entry {
    const key = InferenceSession.key(dims);
    // QDQ files: integer-only when a lowering takes them, else the fp32 simulation (src/runtime/model-compiler.ts)
    return this.cached(key) ?? this.install(key, this.compiler.compile(this.inputDims(dims), this.compileOptions()));
  }

  /** The plan for these dims, compiled on the background worker if it is new (one compile per shape). */
  private entryAsync(dims: number[][]): Entry | Promise<Entry> {
    if (!this.background) return this.entry(dims);
    const key = InferenceSession.key(dims);
    const e = this.cached(key);
    if (e) return e;
    let p = this.compiling.get(key);
    if (!p) {
      p = this.background.compile(this.inputDims(dims), this.compileOptions()).then((choice) => {
        if (this.released) throw new Error('InferenceSession: session was released');
        return this.cached(key) ?? this.install(key, choice);
      }).finally(() => this.compiling.delete(key));
      this.compiling.set(key, p);
    }
    return p;
  }

  /** Creates the native plan of a compile result and caches it (least recently used out past the limit). */
  private install(key: string, choice: PlanChoice): Entry {
    const compiled = choice.compiled;
    if (choice.blockedBy && !this.plans.size) this.logger?.(`${this.graph.source}: running the fp32 simulation of the QDQ file (plan qdq-simulated): ${choice.blockedBy.reason}`);
    const plan = native.createPlan!(compiled.desc, { threads: this.threads, profile: this.profile, adaptThreads: this.adaptThreads, rowRegions: this.rowRegions });
    const e: Entry = { compiled: { outputDims: compiled.outputDims, outputTypes: compiled.outputTypes, stats: compiled.stats }, plan, kind: choice.plan, blockedBy: choice.blockedBy };
    this.plans.set(key, e);
    if (this.plans.size > MAX_CACHED_PLANS) {
      const [oldKey, old] = this.plans.entries().next().value as [string, Entry];
      old.plan.release();
      this.plans.delete(oldKey);
    }
    return e;
  }

  /**
   * Which outputs to return and where to write them: onnxruntime's run(feeds, fetches?, options?),
   * where fetches is a list of output names or an object of output name → pre-allocated Tensor | null.
   * A second argument naming no output is onnxruntime's run(feeds, options).
   */
  private fetchPlan(fetches: unknown, options: unknown): { want: boolean[] | null; given: (Tensor | null)[] | null } {
    let want: boolean[] | null = null;
    let given: (Tensor | null)[] | null = null;
    if (fetches !== undefined && fetches !== null) {
      if (Array.isArray(fetches)) {
        want = this.outputNames.map(() => false);
        for (const f of fetches) {
          const i = typeof f === 'string' ? this.outputNames.indexOf(f) : -1;
          if (i < 0) throw new Error(`run: fetches names ${describe(f)}, which is not an output (model outputs: ${this.outputNames.join(', ')})`);
          want[i] = true;
        }
      } else if (typeof fetches === 'object') {
        const keys = Object.keys(fetches);
        const named = keys.filter((k) => this.outputNames.includes(k));
        if (named.length === 0) {
          if (options !== undefined) throw new Error(`run: fetches names no output (model outputs: ${this.outputNames.join(', ')}; got keys ${dimsText(keys)})`);
          options = fetches; // run(feeds, options)
        } else {
          for (const k of keys) {
            if (!named.includes(k)) throw new Error(`run: fetches names ${describe(k)}, which is not an output (model outputs: ${this.outputNames.join(', ')})`);
          }
          want = this.outputNames.map((n) => n in fetches);
          given = this.outputNames.map((n) => (fetches as Record<string, Tensor | null>)[n] ?? null);
        }
      } else {
        throw new TypeError(`run: fetches must be an array of output names or an object of output name → Tensor | null, got ${describe(fetches)}`);
      }
    }
    if (options !== undefined && (options === null || typeof options !== 'object' || Array.isArray(options))) {
      throw new TypeError(`run: options must be an object (onnxruntime RunOptions), got ${describe(options)}`);
    }
    return { want, given };
  }

  private buffers(e: Entry, feeds: Record<string, Tensor>, given: (Tensor | null)[] | null): { ins: PlanArray[]; outs: Tensor[] } {
    const ins = this.inputNames.map((n) => feeds[n].data as PlanArray); // element types checked by validate()
    let specs = outSpecs.get(e);
    if (!specs) {
      specs = e.compiled.outputDims.map((dims, i) => {
        const type = TYPE_OF[e.compiled.outputTypes[i]];
        if (!type) throw new Error(`run: output '${this.outputNames[i]}' has unsupported type ${e.compiled.outputTypes[i]}`);
        return { type, Ctor: CTOR_OF[type], dims: Object.freeze([...dims]), n: dims.reduce((a, b) => a * b, 1) };
      });
      outSpecs.set(e, specs);
    }
    const outs = specs.map(({ type, Ctor, dims, n }, i) => {
      const g = given?.[i];
      if (g) {
        const same = Array.isArray(g.dims) && g.dims.length === dims.length && dims.every((d, k) => g.dims[k] === d);
        if (g.type !== type || arrayTag(g.data) !== Ctor.name || !same || g.data.length !== n) {
          throw new Error(`run: pre-allocated output '${this.outputNames[i]}' is ${describe(g.type)} ${dimsText(g.dims)} (data ${describe(g.data)}), expected ${type} ${dimsText(dims)}`);
        }
        return g;
      }
      // a fresh array per run: the caller owns what run() returns, so nothing is reused under it
      return Tensor.trusted(type, new Ctor(n), dims, n);
    });
    return { ins, outs };
  }

  private result(outs: Tensor[], want: boolean[] | null): Record<string, Tensor> {
    const r: Record<string, Tensor> = {};
    this.outputNames.forEach((n, i) => { if (!want || want[i]) r[n] = outs[i]; });
    return r;
  }

  /**
   * Runs off the event loop on the libuv pool, or on the calling thread when this shape's previous run
   * took less than `inlineBelowMs` (default 0.5 ms: the hop would cost 10–35 % of such a run). Either
   * way the caller may reuse, resize or transfer its input buffers as soon as run() returns; outputs
   * are written when the promise settles.
   */
  async run(feeds: Record<string, Tensor>, fetches?: FetchesType | RunOptions, options?: RunOptions): Promise<Record<string, Tensor>> {
    const { want, given } = this.fetchPlan(fetches, options);
    let e = this.entryAsync(this.validate(feeds));
    if (e instanceof Promise) {
      // the inputs are the caller's again as soon as run() returns its promise: copy them across the compile
      const held: Record<string, Tensor> = {};
      for (const n of this.inputNames) { const t = feeds[n]; held[n] = Tensor.trusted(t.type as TensorType, (t.data as PlanArray).slice() as TensorData, [...t.dims], t.data.length); }
      feeds = held;
      e = await e;
    }
    this.lastKind = e.kind;
    const { ins, outs } = this.buffers(e, feeds, given);
    const arrays = outs.map((t) => t.data as PlanArray);
    if (e.lastMs !== undefined && e.lastMs < this.inlineBelowMs) {
      this.lastOn = 'caller';
      const t0 = performance.now();
      e.plan.run(ins, arrays);
      e.lastMs = performance.now() - t0;
    } else {
      this.lastOn = 'pool';
      e.lastMs = await e.plan.runAsync(ins, arrays);
    }
    return this.result(outs, want);
  }

  runSync(feeds: Record<string, Tensor>, fetches?: FetchesType | RunOptions, options?: RunOptions): Record<string, Tensor> {
    const { want, given } = this.fetchPlan(fetches, options);
    const e = this.entry(this.validate(feeds));
    this.lastKind = e.kind;
    this.lastOn = 'caller';
    const { ins, outs } = this.buffers(e, feeds, given);
    e.plan.run(ins, outs.map((t) => t.data as PlanArray));
    return this.result(outs, want);
  }

  /** Compile statistics for the given input dims (default: every symbolic dim = 1). */
  planStats(dims?: Record<string, readonly number[]>): PlanStats {
    const s = this.entry(this.defaultDims(dims)).compiled.stats;
    return { onnxNodes: s.onnxNodes, planOps: s.planOps, opCounts: { ...s.opCounts }, arenaBytes: s.arenaBytes, constantBytes: s.constantBytes, extrapolated: s.extrapolated };
  }

  /** Where the plan of these input dims runs its ops (see adaptThreads): 'pool', 'caller' (every op on
   *  the calling thread alone) or 'mixed' (callerOps of ops on the caller); choices = measurements done;
   *  jobs = pool jobs per run (fewer than ops where consecutive row-local ops form one row region). */
  threadChoiceOf(dims?: Record<string, readonly number[]>): { threads: number; adaptive: boolean; config: 'pool' | 'caller' | 'mixed'; callerOps: number; ops: number; choices: number; jobs: number } {
    return { threads: this.threads, ...this.entry(this.defaultDims(dims)).plan.threadChoice() };
  }

  /** Per-op times of the last run for the given input dims (needs options.profile). */
  profileOf(dims: Record<string, readonly number[]>): { op: string; name: string; ms: number }[] {
    const e = this.entry(this.graph.inputs.map((d) => [...dims[d.name]]));
    return e.plan.profile();
  }

  /**
   * Frees the plans now (a run in flight keeps its own until it settles); later runs throw. Returns a
   * promise, as onnxruntime-node's does, so `await session.release()` works too.
   */
  release(): Promise<void> {
    this.background?.close();
    for (const e of this.plans.values()) e.plan.release();
    this.plans.clear();
    this.released = true;
    return Promise.resolve();
  }
}
