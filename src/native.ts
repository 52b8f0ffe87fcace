// Loads the addon and types what it exports. The only TypeScript file that touches the binding
// directly; everything else imports `native` from here.
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
// src/ (vitest) and dist/ (the package) are both one level below the package root.
export const packageRoot = path.resolve(here, '..');

export interface CpuFeatures {
  os_ymm: boolean; os_zmm: boolean;  // the OS saves ymm / zmm state (xgetbv); features need it
  avx2: boolean; fma: boolean; f16c: boolean;
  avx512f: boolean; avx512bw: boolean; avx512vl: boolean; avx512vnni: boolean; avx512vbmi: boolean; avxvnni: boolean;
}

/** A register-only peak loop (native/bench/peak.cc): gops = int8 or fp32 ops/s / 1e9, 1 core. */
export interface PeakLoop { name: string; sequence: string; available: boolean; reason?: string; gops: number }
/** min / median wall ms of a benchmark's timed runs. */
export interface BenchTiming { minMs: number; medianMs: number }

/** A tensor of a compiled plan (see native/include/swinq/plan.h). */
export interface PlanTensorDesc {
  dtype: number;      // DType
  dims: number[];
  storage: number;    // Storage: arena | constant | input | output
  offset: number;     // byte offset (arena, constant) or input/output index
}
/** An op of a compiled plan (see native/include/swinq/ops.def for each op's ints/floats). */
export interface PlanOpDesc {
  kind: number;       // OpKind
  inputs: number[];   // tensor ids, -1 = absent optional input
  outputs: number[];
  ints: number[];
  floats: number[];
  name: string;       // ONNX node name(s) this op came from
}
export interface PlanDescJS {
  tensors: PlanTensorDesc[];
  ops: PlanOpDesc[];
  constants: Uint8Array;  // constant region; every constant offset is 64-byte aligned
  arenaBytes: number;
  inputs: number[];       // tensor ids of graph inputs, in order
  outputs: number[];      // tensor ids of graph outputs, in order
}
/** The typed arrays that hold plan tensors (bool is Uint8Array). */
export type PlanArray = Float32Array | Int32Array | Int8Array | Uint8Array | Int16Array | BigInt64Array;
/** A validated plan living in native memory. Runs on one plan are serialised (it owns one arena). */
export interface NativePlan {
  /**
   * Runs on the calling thread. `inputs`/`outputs` are typed arrays in plan order, of the plan's element
   * types (float32 ↔ Float32Array, int64 ↔ BigInt64Array, …) and exactly its byte sizes (TypeError naming the index).
   */
  run(inputs: PlanArray[], outputs: PlanArray[]): void;
  /**
   * Runs on a libuv worker (AsyncWorker) over a copy of the inputs; the outputs are filled on the JS
   * thread when it settles (rejects if one was detached or resized meanwhile). Bad arguments reject.
   * Resolves with the plan's own time on the worker, in ms (no queueing or copies).
   */
  runAsync(inputs: PlanArray[], outputs: PlanArray[]): Promise<number>;
  /** Per-op wall time of the last run, in ms, in op order (empty unless profiling was on). */
  profile(): { op: string; name: string; ms: number }[];
  /** Where the plan's ops run at > 1 thread (native/include/swinq/thread_choice.h): the pool, the caller
   *  alone, or each op where it measured faster ('mixed'); `callerOps` of `ops` on the caller. */
  threadChoice(): { adaptive: boolean; config: 'pool' | 'caller' | 'mixed'; callerOps: number; ops: number; choices: number; jobs: number };
  setThreads(n: number): void;
  release(): void;
}

/** An integer code array of one of the kernel types. */
export type QArray = Int8Array | Uint8Array | Int16Array | Int32Array;
export type QType = 's8' | 'u8' | 's16' | 's32';
/** Kernel sets (native/core/cpu.cc): scalar; avx2; above it avxvnni (the int8 GEMM on VEX vpdpbusd ymm,
 * for AVX-VNNI CPUs without AVX-512) and avx512vnni (the int8 GEMM, attention and LayerNorm on AVX-512). */
export type IsaName = 'scalar' | 'avx2' | 'avxvnni' | 'avx512vnni';
/** A kernel set or 'auto' (the best the CPU has). */
export type IsaOption = IsaName | 'auto';
export const ISA_OPTIONS: readonly IsaOption[] = ['auto', 'scalar', 'avx2', 'avxvnni', 'avx512vnni'];
/** Dyadic requantization: y = clamp((v·mult + 2^(shift−1)) >> shift + zeroPoint), per channel or one. */
export interface QRequant { mult: Int32Array; shift: Int32Array; zeroPoint?: number; qmin?: number; qmax?: number }

/** Thin entry points of the integer kernels, for tests (native/binding/qkernels.cc). */
export interface KernelTestBinding {
  qQuantizeMultiplier(ratio: number): { mult: number; shift: number };
  qRequantize(x: Int32Array, rows: number, cols: number, rq: QRequant, out: QType, isa?: IsaName): QArray;
  qGemm(spec: {
    a: Uint8Array; w: Int8Array; M: number; K: number; N: number; bias?: Int32Array; aZeroPoint?: number; wZeroPoint?: number;
    aMax?: number; forcePath?: number; relu?: boolean; out?: QType; rq?: QRequant; table?: Uint8Array; threads?: number; transposed?: boolean;
  }, isa?: IsaName): { y: QArray; maddubsSafe: boolean; unsafePairs: number };
  qSoftmax(x: Int32Array, rows: number, D: number, scale: number, table?: Int32Array | null, tableRows?: number, isa?: IsaName): Uint8Array;
  qLayerNorm(x: Int8Array | Int16Array, rows: number, D: number, gamma: Float32Array | null, beta: Float32Array | null,
    outScale: number, outZeroPoint: number, out: QType, isa?: IsaName): QArray;
  qGelu(x: Int8Array, scale: number, isa?: IsaName): { y: Int32Array; outScale: number };
  qGeluTable(inScale: number, inZeroPoint: number, inType: QType, outScale: number, outZeroPoint: number, outType: QType): Uint8Array;
  qLookup<T extends Uint8Array | Int8Array>(x: T, table: Uint8Array, isa?: IsaName): T;
  qAdd(a: Int8Array | Uint8Array | Int16Array, b: Int8Array | Uint8Array | Int16Array,
    p: { sa: number; za: number; sb: number; zb: number; sy: number; zy: number }, out: QType, isa?: IsaName): QArray;
  qArgmax(x: QArray, rows: number, D: number, isa?: IsaName): Int32Array;
  qIsqrt(v: bigint): bigint;
}

/** Options of the few-bit solver as the binding reads them (src/fewbit.ts builds them from FewbitOptions). */
export interface FewbitNativeOptions {
  lo?: number; hi?: number; weight?: string; edges?: ArrayLike<number>; counts?: ArrayLike<number>;
  grid?: number; polish?: boolean; fold?: boolean; p0?: number; p1?: number;
}

/** Few-bit backward (native/binding/fewbit.cc → native/train/fewbit*.cc). */
export interface FewbitBinding {
  fewbitFunctions(): { name: string; exact: boolean }[];
  fewbitTable(fn: string, bits: number, opts: FewbitNativeOptions): {
    fn: string; bits: number; lo: number; hi: number; weight: 'uniform' | 'normal' | 'histogram'; exact: boolean; fold: boolean;
    grid: number; borders: Float64Array; steps: number[]; levels: Float64Array; error: number;
  };
  fewbitObjective(fn: string, borders: ArrayLike<number>, levels: ArrayLike<number>, opts: FewbitNativeOptions): number;
  fewbitFitLevels(fn: string, borders: ArrayLike<number>, opts: FewbitNativeOptions): { levels: Float64Array; error: number };
  fewbitForward(fn: string, x: Float32Array, bits: number, opts: FewbitNativeOptions, withY: boolean): { y: Float32Array; codes: Uint8Array };
  fewbitBackward(fn: string, codes: Uint8Array, gradOut: Float32Array, bits: number, opts: FewbitNativeOptions, gradIn?: Float32Array): Float32Array;
}

/** trainBackward's arguments: the op, its inputs (null where the rule reads only sizes), their sizes,
 *  its output (or null), dL/dy, its few-bit codes (or null), which input gradients are needed, where to
 *  write dx (act/softmax; may be dy itself) and a per-row auxiliary (layernorm from its output). */
export type TrainBackwardArgs = [op: object, inputs: (Float32Array | null)[], sizes: number[], y: Float32Array | null,
  dy: Float32Array, codes: Uint8Array | null, need: boolean[], into?: Float32Array | null, aux?: Float32Array | null];

/** Training ops, losses and the optimizer (native/binding/train.cc → native/train/). */
export interface TrainBinding {
  trainForward(op: object, inputs: (Float32Array | null)[], out?: Float32Array | null): { y: Float32Array; codes?: Uint8Array };
  trainForwardAsync(op: object, inputs: (Float32Array | null)[], out?: Float32Array | null): Promise<{ y: Float32Array; codes?: Uint8Array }>;
  trainBackward(...args: TrainBackwardArgs): (Float32Array | null)[];
  trainBackwardAsync(...args: TrainBackwardArgs): Promise<(Float32Array | null)[]>;
  /** What the op's backward rule reads for the gradients asked for (need: one flag per input);
   *  fromOutput: a LayerNorm run backward from its output, β and 1/σ per row. */
  trainReads(op: object, need: boolean[], fromOutput?: boolean): { inputs: boolean[]; output: boolean; codes: boolean; aux: boolean };
  /** 1/σ per row of a layernorm's input, as its backward rule computes it (memory-sharing LayerNorm). */
  trainLayerNormRstd(op: object, x: Float32Array): Float32Array;
  trainLoss(kind: 'ce' | 'kl', logits: Float32Array, target: Int32Array | Float32Array, classes: number, param: number): { loss: number; grad: Float32Array };
  trainAdamw(p: Float32Array, g: Float32Array, m: Float32Array, v: Float32Array, step: number,
    o: { lr: number; beta1?: number; beta2?: number; eps?: number; weightDecay?: number }): void;
  trainLr(step: number, totalSteps: number, warmup: number, lr: number, minLr: number): number;
  trainSumSquares(g: Float32Array): number;
  trainScale(g: Float32Array, k: number): void;
  trainSetThreads(n: number): void;
}

/** The functions the addon exports. Binding files add theirs; keep this in step with native/binding/. */
export interface NativeBinding extends KernelTestBinding, FewbitBinding, TrainBinding {
  cpuFeatures(): CpuFeatures;
  activeIsa(): IsaName;
  setIsa(isa: IsaOption): void;
  opNames(): string[];
  /** Validates and loads a plan; throws an Error naming the op index, op and ONNX node on bad input. */
  createPlan?(desc: PlanDescJS, options: { threads: number; profile?: boolean; sparseA?: boolean; adaptThreads?: boolean; rowRegions?: boolean }): NativePlan;
  /** Why `isa` cannot be forced on this CPU / build; '' when setIsa(isa) works. */
  isaUnavailableReason(isa: string): string;
  // Benchmarks (native/binding/bench.cc → native/bench/): data, timing loops and peaks live in the core.
  measurePeaks(): PeakLoop[];
  peakInt8(isa?: string): PeakLoop;
  peakF32(isa?: string): PeakLoop;
  qMeasureClockGHz(): number;
  qBenchGemm(M: number, K: number, N: number, o?: { threads?: number; reps?: number; out?: 's32' | 'u8'; path?: 0 | 1 | 2; isa?: string; spawn?: boolean }):
    BenchTiming & { gops: number; maddubsSafe: boolean };
  /** Mean seconds per call of a one-op M×K·K×N linear plan (bench/gemm-f32.js); threads 0 = all cores. */
  benchGemmF32(M: number, K: number, N: number, iters: number, threads: number): number;
  qBenchSoftmax(rows: number, D: number, reps: number, isa?: string): BenchTiming;
  qBenchLayerNorm(rows: number, D: number, reps: number, isa?: string): BenchTiming;
  qBenchAdd(n: number, reps: number, isa?: string, type?: 's8' | 's16'): BenchTiming;
  /** Sparse-A GEMM vs dense on generated ReLU-like codes (native/bench/bench.cc), interleaved runs. */
  qBenchSparseGemm(M: number, K: number, N: number, density: number,
    o?: { reps?: number; aMax?: number; channels?: boolean; isa?: string; seed?: number }):
    { dense: BenchTiming; sparse: BenchTiming; auto: BenchTiming; density: number; autoSparse: boolean; breakEven: number };
}

/** An installed package's prebuilt addon (scripts/prebuild.js, scripts/install.js), if any. */
function prebuiltAddon(): string | undefined {
  try {
    const dirOf = createRequire(import.meta.url)(path.join(packageRoot, 'scripts', 'prebuild-dir.cjs')) as (root: string) => string;
    return path.join(dirOf(packageRoot), 'swinq.node');
  } catch { return undefined; }
}

function load(): NativeBinding {
  const require = createRequire(import.meta.url);
  const candidates = [
    process.env.SWINQ_ADDON,
    path.join(packageRoot, 'build', 'Release', 'swinq.node'),
    path.join(packageRoot, 'build', 'Debug', 'swinq.node'),
    prebuiltAddon(),
  ].filter((p): p is string => !!p);
  const errors: string[] = [];
  for (const p of candidates) {
    try {
      return require(p) as NativeBinding;
    } catch (e) {
      errors.push(`  ${p}: ${(e as Error).message.split('\n')[0]}`);
    }
  }
  throw new Error(`swinq: could not load the native addon. Build it with \`npm run build:native\`.\n${errors.join('\n')}`);
}

export const native: NativeBinding = load();
