// swinq bench-kernels: the u8×s8 GEMM (M=3136, K=96, N=384, one thread) against the peak of the
// active kernel set measured in the same run (a register-only loop of its int8 sequence), the fp32
// GEMM on the same shape against the measured FMA peak, and onnxruntime's QLinearMatMul on the same
// shape (a one-node graph built with onnx-proto). Times are the min over --runs (shared machine).
import type { Command } from 'commander';
import { createRequire } from 'node:module';
import { CliError, emit, intOption, log, withCommon } from './common.js';
import { loadOnnxruntime } from '../engine.js';
import { native, type IsaOption } from '../native.js';

const M = 3136, K = 96, N = 384;
/** 5 significant digits: the scalar kernel set's GOPS are < 1, so fixed decimals would lose the ratio. */
const sig = (x: number) => +x.toPrecision(5);

interface Options { threads: number; runs: number; json?: boolean; ort?: boolean; isa?: string }

/** One-node QLinearMatMul graph: A u8 [M,K] input, B an int8 [K,N] initializer, u8 output. */
export function qlinearMatMulModel(m: number, k: number, n: number): Uint8Array {
  const require = createRequire(import.meta.url);
  const proto = require('onnx-proto');
  const { onnx } = proto.default ?? proto;
  const T = onnx.TensorProto.DataType;
  const w = new Int8Array(k * n);
  let s = 1;
  for (let i = 0; i < w.length; i++) { s = (Math.imul(s, 1664525) + 1013904223) >>> 0; w[i] = (s >>> 25) - 64; }
  const t = (name: string, dataType: number, dims: number[], raw: Uint8Array) => onnx.TensorProto.create({ name, dataType, dims, rawData: raw });
  const f32 = (v: number) => new Uint8Array(Float32Array.of(v).buffer);
  const vi = (name: string, elemType: number, dims: number[]) =>
    ({ name, type: { tensorType: { elemType, shape: { dim: dims.map((d) => ({ dimValue: d })) } } } });
  const model = onnx.ModelProto.create({
    irVersion: 8, producerName: 'swinq-bench-kernels', opsetImport: [{ domain: '', version: 13 }],
    graph: {
      name: 'qgemm',
      node: [{ name: 'qmm', opType: 'QLinearMatMul', input: ['A', 'a_scale', 'a_zp', 'B', 'b_scale', 'b_zp', 'y_scale', 'y_zp'], output: ['Y'] }],
      initializer: [
        t('B', T.INT8, [k, n], new Uint8Array(w.buffer)), t('a_scale', T.FLOAT, [], f32(0.02)), t('a_zp', T.UINT8, [], Uint8Array.of(3)),
        t('b_scale', T.FLOAT, [], f32(0.01)), t('b_zp', T.INT8, [], Uint8Array.of(0)), t('y_scale', T.FLOAT, [], f32(0.5)),
        t('y_zp', T.UINT8, [], Uint8Array.of(128)),
      ],
      input: [vi('A', T.UINT8, [m, k])],
      output: [vi('Y', T.UINT8, [m, n])],
    },
  });
  return onnx.ModelProto.encode(model).finish();
}

/** Min ms of one QLinearMatMul run in onnxruntime-node. */
export async function ortQLinearMatMulMs(m: number, k: number, n: number, threads: number, runs: number): Promise<number> {
  const ort = await loadOnnxruntime('for the QLinearMatMul comparison');
  const sess = await ort.InferenceSession.create(qlinearMatMulModel(m, k, n),
    { intraOpNumThreads: threads, interOpNumThreads: 1, graphOptimizationLevel: 'all', executionMode: 'sequential' });
  const a = new Uint8Array(m * k).map((_, i) => (i * 37) & 255);
  const feeds = { A: new ort.Tensor('uint8', a, [m, k]) };
  await sess.run(feeds);
  let best = Infinity;
  for (let r = 0; r < runs; r++) {
    const t0 = performance.now();
    await sess.run(feeds);
    best = Math.min(best, performance.now() - t0);
  }
  await sess.release?.();
  return best;
}

async function benchKernels(opts: Options): Promise<void> {
  if (opts.isa) {
    const why = native.isaUnavailableReason(opts.isa);
    if (why) throw new CliError(`--isa: ${why}`);
    native.setIsa(opts.isa as IsaOption);
  }
  const isa = native.activeIsa();
  const ops = 2 * M * K * N;
  // every register-only loop this build knows; the ones the CPU lacks are listed, not run
  const peaks = native.measurePeaks();
  for (const p of peaks)
    log(p.available ? `peak ${p.name} (${p.sequence}): ${p.gops.toFixed(1)} GOPS, 1 core` : `peak ${p.name}: skipped (${p.reason})`);
  const peakOf = (name: string) => {
    const p = peaks.find((q) => q.name === name);
    if (!p || !p.available || !(p.gops > 0)) throw new Error(`bench-kernels: the ${name} peak loop did not run`);
    return p.gops;
  };
  // the loops of the set's own GEMM instructions (avxvnni has no fp32 kernels of its own: AVX2's)
  const int8Loop = `int8_${isa}`, f32Loop = isa === 'scalar' ? 'f32_scalar' : isa === 'avx512vnni' ? 'f32_avx512' : 'f32_avx2';
  const peakGops = peakOf(int8Loop), peakGflops = peakOf(f32Loop);
  const gemm = (threads: number) => native.qBenchGemm(M, K, N, { threads, reps: opts.runs, out: 's32', isa });
  const gops = ops / (gemm(1).minMs * 1e6);
  log(`u8s8 GEMM ${M}x${K}x${N}, 1 thread, ${isa}: ${gops.toFixed(1)} GOPS (${((gops / peakGops) * 100).toFixed(0)}% of the measured ${peakGops.toFixed(0)})`);
  let best = Infinity;
  for (let r = 0; r < opts.runs; r++) best = Math.min(best, native.benchGemmF32(M, K, N, isa === 'scalar' ? 1 : 3, 1));
  const f32 = ops / best / 1e9;
  log(`fp32 GEMM same shape, 1 thread: ${f32.toFixed(1)} GFLOPS (${((f32 / peakGflops) * 100).toFixed(0)}% of the measured ${peakGflops.toFixed(0)})`);
  const ortMs = opts.ort === false ? NaN : await ortQLinearMatMulMs(M, K, N, 1, opts.runs);
  const ortGops = ops / (ortMs * 1e6);
  if (opts.ort !== false) log(`onnxruntime QLinearMatMul same shape, 1 thread: ${ortGops.toFixed(1)} GOPS`);
  const features = native.cpuFeatures();
  const result: Record<string, unknown> = {
    isa,
    cpu_features: features,
    peak_gops: sig(peakGops),
    peak_loops: { int8: int8Loop, f32: f32Loop },
    gemm_u8s8_gops: sig(gops),
    gemm_u8s8_peak_fraction: sig(gops / peakGops),
    peak_gflops: sig(peakGflops),
    gemm_f32_gflops: sig(f32),
    gemm_f32_peak_fraction: sig(f32 / peakGflops),
    onnxruntime_qlinearmatmul_gops: Number.isFinite(ortGops) ? sig(ortGops) : null,
    shape: [M, K, N],
    peaks: Object.fromEntries(peaks.filter((p) => p.available).map((p) => [p.name, sig(p.gops)])),
    peaks_skipped: Object.fromEntries(peaks.filter((p) => !p.available).map((p) => [p.name, p.reason ?? 'not available'])),
  };
  if (opts.threads > 1) {
    const gt = ops / (gemm(opts.threads).minMs * 1e6);
    result.threads = opts.threads;
    result.gemm_u8s8_gops_threads = sig(gt);
    if (opts.ort !== false) result.onnxruntime_qlinearmatmul_gops_threads = sig(ops / (await ortQLinearMatMulMs(M, K, N, opts.threads, opts.runs) * 1e6));
    log(`u8s8 GEMM, ${opts.threads} threads: ${gt.toFixed(1)} GOPS`);
  }
  emit(opts.json, result);
}

export function register(program: Command): void {
  withCommon(
    program
      .command('bench-kernels')
      .description('int8 / fp32 GEMM against the measured peak of the kernel set, and onnxruntime QLinearMatMul (M=3136, K=96, N=384)')
      .option('--runs <n>', 'timed runs; the minimum is reported', intOption('runs'), 9)
      .option('--isa <isa>', 'kernel set: auto, scalar, avx2, avxvnni or avx512vnni (a set the CPU lacks is an error)')
      .option('--no-ort', 'skip the onnxruntime comparison'),
  ).action(benchKernels);
}
