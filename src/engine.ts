// The CLI's view of an inference engine: swinq's InferenceSession, or onnxruntime-node (for the
// same-process comparisons in bench/eval and as a reference with --engine onnxruntime).
// Both take and return tensors shaped { type, data, dims }.
import path from 'node:path';
import { formatDims } from './io/model-info.js';
import type { InferenceSession } from './session.js';
import { mulberry32 } from './util/random.js';
import { native, type IsaName, type IsaOption } from './native.js';

export interface PlainTensor { type: string; data: ArrayLike<number | bigint> & ArrayBufferView; dims: readonly number[] }
export type EngineKind = 'swinq' | 'onnxruntime';

export interface Engine {
  kind: EngineKind;
  inputNames: readonly string[];
  outputNames: readonly string[];
  metadata: Record<string, string>;
  run(feeds: Record<string, PlainTensor>): Promise<Record<string, PlainTensor>>;
  /** Compiles (and caches) the plan for these input dims without running it, where the engine can. */
  prepare(dims: Record<string, readonly number[]>): void;
  /** Which plan runs for these dims: swinq's 'integer-only' | 'fp32' | 'qdq-simulated' (with what
   *  blocked the integer plan, and the kernel set it runs on), or 'onnxruntime' for the reference engine. */
  planFor(dims?: Record<string, readonly number[]>): { plan: string; blockedBy?: { node: string; op: string; reason: string }; isa?: IsaName };
  /** The swinq session itself (for profiling and plan stats); undefined for onnxruntime. */
  raw?: InferenceSession;
  release(): void;
}

export interface EngineOptions {
  threads: number; isa?: IsaOption; profile?: boolean;
  /** a QDQ model without an integer-only plan is an error, not a fallback */
  requireInteger?: boolean;
  /** one-line notes from the session (which plan runs and why) */
  logger?: (line: string) => void;
  /** swinq: compile new shapes on a worker thread (SessionOptions.compileInBackground) */
  compileInBackground?: boolean;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
let ortModule: any;
/** onnxruntime-node, loaded on demand; a clear error when it is not installed. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function loadOnnxruntime(purpose: string): Promise<any> {
  if (ortModule) return ortModule;
  // SWINQ_ONNXRUNTIME: another specifier or path for the module (default onnxruntime-node).
  const spec = process.env.SWINQ_ONNXRUNTIME || 'onnxruntime-node';
  try {
    const m = await import(spec);
    ortModule = m.default ?? m;
    if (!ortModule.InferenceSession) ortModule = m;
    return ortModule;
  } catch (e) {
    throw new Error(`onnxruntime-node is not installed (needed ${purpose}); install it with \`npm install onnxruntime-node\` (import '${spec}': ${(e as Error).message.split('\n')[0]})`);
  }
}

async function openSwinq(model: string, opts: EngineOptions): Promise<Engine> {
  // Imported lazily so commands that fail on their flags never load the addon.
  const [{ InferenceSession }, { Tensor }] = await Promise.all([import('./session.js'), import('./tensor.js')]);
  const s = await InferenceSession.create(model, { threads: opts.threads, isa: opts.isa, profile: !!opts.profile, requireInteger: opts.requireInteger, logger: opts.logger, compileInBackground: opts.compileInBackground });
  return {
    kind: 'swinq',
    inputNames: s.inputNames,
    outputNames: s.outputNames,
    metadata: s.metadata ?? {},
    raw: s,
    async run(feeds) {
      const f: Record<string, InstanceType<typeof Tensor>> = {};
      for (const [k, t] of Object.entries(feeds)) {
        // eslint-disable-next-line @typescript-eslint/no-explicit-any
        f[k] = t instanceof Tensor ? t : new Tensor(t.type as any, t.data as any, t.dims);
      }
      return s.run(f) as unknown as Promise<Record<string, PlainTensor>>;
    },
    prepare(dims) {
      s.planStats(dims);
    },
    planFor: (dims) => ({ ...s.planInfo(dims), isa: native.activeIsa() }),
    release: () => s.release(),
  };
}

async function openOrt(model: string, opts: EngineOptions): Promise<Engine> {
  const ort = await loadOnnxruntime('to run onnxruntime in the same process');
  let s;
  try {
    s = await ort.InferenceSession.create(path.resolve(model), {
      intraOpNumThreads: opts.threads,
      interOpNumThreads: 1,
      executionMode: 'sequential',
      graphOptimizationLevel: 'all',
    });
  } catch (e) {
    throw new Error(`onnxruntime could not load ${model}: ${(e as Error).message.split('\n')[0]}`);
  }
  return {
    kind: 'onnxruntime',
    inputNames: s.inputNames,
    outputNames: s.outputNames,
    metadata: {},
    async run(feeds) {
      const f: Record<string, unknown> = {};
      for (const [k, t] of Object.entries(feeds)) f[k] = new ort.Tensor(t.type, t.data, t.dims);
      return s.run(f);
    },
    prepare() { /* onnxruntime plans per run */ },
    planFor: () => ({ plan: 'onnxruntime' }),
    release: () => { void s.release(); },
  };
}

export async function openEngine(kind: EngineKind, model: string, opts: EngineOptions): Promise<Engine> {
  return kind === 'onnxruntime' ? openOrt(model, opts) : openSwinq(model, opts);
}

/** Index of the largest value in each row of a [rows, cols] block (first one on ties, like argmax). */
export function argmaxRows(data: ArrayLike<number>, rows: number, cols: number): Int32Array {
  const out = new Int32Array(rows);
  for (let r = 0; r < rows; r++) {
    let best = 0;
    let bv = data[r * cols];
    for (let c = 1; c < cols; c++) {
      const v = data[r * cols + c];
      if (v > bv || (Number.isNaN(bv) && !Number.isNaN(v))) { bv = v; best = c; }
    }
    out[r] = best;
  }
  return out;
}

/** Deterministic pseudo-random numbers, so benchmark inputs are reproducible. */
export const rng = mulberry32;

/**
 * Random feeds for every graph input: the first dim (the batch) set to `batch`, other dims fixed by
 * the model. float inputs ~ N(0,1)-ish, integer inputs in [0, 10).
 */
export function randomFeeds(
  inputs: readonly { name: string; dtype: string; dims: readonly (number | string)[] | null }[],
  batch: number,
  seed = 1234,
): Record<string, PlainTensor> {
  const next = rng(seed);
  const feeds: Record<string, PlainTensor> = {};
  for (const inp of inputs) {
    if (!inp.dims) throw new Error(`input '${inp.name}' has no shape in the model; cannot make a random input for it`);
    const dims = inp.dims.map((d, axis) => {
      if (axis === 0) {
        if (typeof d === 'number' && d !== batch) throw new Error(`input '${inp.name}' has a fixed batch of ${d} ${formatDims(inp.dims)}; cannot run batch ${batch}`);
        return batch;
      }
      if (typeof d === 'number') return d;
      throw new Error(`input '${inp.name}' has a symbolic dim '${d || '?'}' at axis ${axis}; only the batch (axis 0) may be symbolic for a random input`);
    });
    const n = dims.reduce((a, b) => a * b, 1);
    let data: PlainTensor['data'];
    switch (inp.dtype) {
      case 'float32': {
        const a = new Float32Array(n);
        for (let k = 0; k < n; k++) a[k] = next() + next() + next() - 1.5; // var 1/4, zero mean
        data = a;
        break;
      }
      case 'int64': data = BigInt64Array.from({ length: n }, () => BigInt(Math.floor(next() * 10))); break;
      case 'int32': data = Int32Array.from({ length: n }, () => Math.floor(next() * 10)); break;
      case 'uint8': data = Uint8Array.from({ length: n }, () => Math.floor(next() * 256)); break;
      case 'int8': data = Int8Array.from({ length: n }, () => Math.floor(next() * 256) - 128); break;
      default: throw new Error(`input '${inp.name}' has dtype ${inp.dtype}; random inputs support float32, int64, int32, uint8, int8`);
    }
    feeds[inp.name] = { type: inp.dtype, data, dims };
  }
  return feeds;
}

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}
