#!/usr/bin/env node
// Integer kernel benchmarks: u8×s8 GEMM GOPS on Swin-T and micro-Swin shapes (1 and 2 threads) as
// a fraction of the kernel set's int8 peak measured in this run (a register-only loop of its
// instruction sequence, native/bench/peak.cc) and of a measured clock (32 MAC/cycle), the same shapes in
// onnxruntime-node (one-node QLinearMatMul / MatMulInteger graphs built with onnx-proto in this
// run, with and without session.x64quantprecision=1), integer softmax / LayerNorm throughput and
// their share of a Swin-T stage-1 block. Timings: min and median over --runs (shared machine:
// read the min, the median is the noise).
// Usage: node bench/kernels.js [--runs 7] [--threads 1,2] [--isa scalar|avx2] [--quick] [--no-ort] [--json]
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const require = createRequire(import.meta.url);
const native = require(process.env.SWINQ_ADDON ?? path.join(root, 'build', 'Release', 'swinq.node'));

/** One-node ORT graph: QLinearMatMul (u8 out) or MatMulInteger (s32 out), B an int8 initializer. */
export function buildQGemmModel(kind, M, K, N, seed = 1) {
  const onnxProto = require('onnx-proto');
  const { onnx } = onnxProto.default ?? onnxProto;
  const w = new Int8Array(K * N);
  let s = seed >>> 0;
  for (let i = 0; i < w.length; i++) { s = (s * 1664525 + 1013904223) >>> 0; w[i] = (s >>> 25) - 64; }
  const T = onnx.TensorProto.DataType;
  const t = (name, dataType, dims, raw) => onnx.TensorProto.create({ name, dataType, dims, rawData: raw });
  const f32 = (v) => new Uint8Array(Float32Array.of(v).buffer);
  const inits = [t('B', T.INT8, [K, N], new Uint8Array(w.buffer))];
  let node, outType;
  if (kind === 'qlinear') {
    inits.push(t('a_scale', T.FLOAT, [], f32(0.02)), t('a_zp', T.UINT8, [], Uint8Array.of(3)),
      t('b_scale', T.FLOAT, [], f32(0.01)), t('b_zp', T.INT8, [], Uint8Array.of(0)),
      t('y_scale', T.FLOAT, [], f32(0.5)), t('y_zp', T.UINT8, [], Uint8Array.of(128)));
    node = { opType: 'QLinearMatMul', input: ['A', 'a_scale', 'a_zp', 'B', 'b_scale', 'b_zp', 'y_scale', 'y_zp'], output: ['Y'] };
    outType = T.UINT8;
  } else {
    inits.push(t('a_zp', T.UINT8, [], Uint8Array.of(3)));
    node = { opType: 'MatMulInteger', input: ['A', 'B', 'a_zp'], output: ['Y'] };
    outType = T.INT32;
  }
  const vi = (name, elemType, dims) => ({ name, type: { tensorType: { elemType, shape: { dim: dims.map((d) => ({ dimValue: d })) } } } });
  const model = onnx.ModelProto.create({
    irVersion: 8, producerName: 'swinq-bench', opsetImport: [{ domain: '', version: 13 }],
    graph: { name: 'g', node: [{ name: 'n0', ...node }], initializer: inits, input: [vi('A', T.UINT8, [M, K])], output: [vi('Y', outType, [M, N])] },
  });
  return onnx.ModelProto.encode(model).finish();
}

function stats(ms) {
  const s = [...ms].sort((a, b) => a - b);
  return { minMs: s[0], medianMs: s[Math.floor(s.length / 2)] };
}

/** min/median ms of one ORT session.run of a one-node int8 GEMM graph. */
export async function benchOrtGemm(kind, M, K, N, { threads = 1, runs = 7, precision = false } = {}) {
  const ort = require('onnxruntime-node');
  const opts = { intraOpNumThreads: threads, interOpNumThreads: 1, graphOptimizationLevel: 'all', executionMode: 'sequential' };
  if (precision) opts.extra = { session: { x64quantprecision: '1' } };
  const sess = await ort.InferenceSession.create(buildQGemmModel(kind, M, K, N), opts);
  const a = new Uint8Array(M * K);
  for (let i = 0; i < a.length; i++) a[i] = (i * 37) & 255;
  const feeds = { A: new ort.Tensor('uint8', a, [M, K]) };
  const flop = 2 * M * K * N;
  const inner = Math.max(1, Math.min(200, Math.round(2e7 / flop)));  // batch tiny GEMMs so timer noise stays small
  await sess.run(feeds);
  const ms = [];
  for (let r = 0; r < runs; r++) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < inner; i++) await sess.run(feeds);
    ms.push(Number(process.hrtime.bigint() - t0) / 1e6 / inner);
  }
  await sess.release?.();
  return stats(ms);
}

/** swinq u8s8 GEMM min/median ms (timing loop in C++). out: 's32' or 'u8' (fused bias + requantize). */
export function benchSwinqGemm(M, K, N, { threads = 1, runs = 7, out = 's32', path: p = 0 } = {}) {
  return native.qBenchGemm(M, K, N, { threads, reps: runs, out, path: p });
}

const gops = (M, K, N, ms) => (2 * M * K * N) / (ms * 1e6);

async function main() {
  const args = process.argv.slice(2);
  const opt = (name, dflt) => { const i = args.indexOf(`--${name}`); return i >= 0 ? args[i + 1] : dflt; };
  const runs = Number(opt('runs', '7'));
  const threadList = opt('threads', '1,2').split(',').map(Number);
  const json = args.includes('--json');
  const quick = args.includes('--quick');
  const noOrt = args.includes('--no-ort');
  const log = (s) => { if (!json) console.log(s); };

  native.setIsa(opt('isa', 'auto'));
  const isa = native.activeIsa();
  const peak = native.peakInt8(isa);
  const ghz = native.qMeasureClockGHz();
  log(`${isa}: int8 peak ${peak.gops.toFixed(1)} GOPS/core measured (${peak.sequence}); clock ≈ ${ghz.toFixed(2)} GHz ` +
    `(dependent-add chain), 32 MAC/cycle = ${(64 * ghz).toFixed(0)} GOPS/core at that clock`);
  const shapes = [
    ['swin-t s1 fc1', 3136, 96, 384], ['swin-t s1 qkv', 3136, 96, 288], ['swin-t s1 fc2', 3136, 384, 96],
    ['swin-t s2 fc1', 784, 192, 768], ['swin-t s3 fc1', 196, 384, 1536], ['swin-t s4 fc1', 49, 768, 3072],
    ['micro qkv', 196, 48, 144], ['micro fc1', 196, 48, 192], ['micro fc2', 196, 192, 48], ['micro s2 fc1', 49, 96, 384],
    ['gemv 768x3072', 1, 768, 3072], ['gemv 192x48', 1, 192, 48],
  ].filter((s) => !quick || s[1] === 3136 || s[1] === 196);
  const rows = [];
  for (const [label, M, K, N] of shapes) {
    for (const threads of threadList) {
      const s32 = benchSwinqGemm(M, K, N, { threads, runs, out: 's32' });
      const u8 = benchSwinqGemm(M, K, N, { threads, runs, out: 'u8' });
      const exact = benchSwinqGemm(M, K, N, { threads, runs, out: 's32', path: 2 });
      const row = {
        label, M, K, N, threads,
        swinq_s32_gops: +gops(M, K, N, s32.minMs).toFixed(1),
        swinq_s32_gops_median: +gops(M, K, N, s32.medianMs).toFixed(1),
        swinq_u8_requant_gops: +gops(M, K, N, u8.minMs).toFixed(1),
        swinq_exact_int16_gops: +gops(M, K, N, exact.minMs).toFixed(1),
      };
      row.peak_fraction = +(row.swinq_s32_gops / (peak.gops * threads)).toFixed(3);
      row.clock_fraction = +(row.swinq_s32_gops / (64 * ghz * threads)).toFixed(3);
      if (!noOrt) {
        const q = await benchOrtGemm('qlinear', M, K, N, { threads, runs });
        const qp = await benchOrtGemm('qlinear', M, K, N, { threads, runs, precision: true });
        const mi = await benchOrtGemm('matmulinteger', M, K, N, { threads, runs });
        row.ort_qlinearmatmul_gops = +gops(M, K, N, q.minMs).toFixed(1);
        row.ort_qlinearmatmul_precision_gops = +gops(M, K, N, qp.minMs).toFixed(1);
        row.ort_matmulinteger_gops = +gops(M, K, N, mi.minMs).toFixed(1);
        row.speedup_vs_ort_qlinear = +(row.swinq_u8_requant_gops / row.ort_qlinearmatmul_gops).toFixed(2);
      }
      rows.push(row);
      log(`${label.padEnd(15)} ${M}x${K}x${N} t=${threads}: swinq s32 ${row.swinq_s32_gops} (median ${row.swinq_s32_gops_median}) ` +
        `u8+requant ${row.swinq_u8_requant_gops} exact-int16 ${row.swinq_exact_int16_gops} GOPS; ` +
        `${(row.peak_fraction * 100).toFixed(0)}% of peak, ${(row.clock_fraction * 100).toFixed(0)}% of clock peak` +
        (noOrt ? '' : `; ORT QLinearMatMul ${row.ort_qlinearmatmul_gops} (precision=1: ${row.ort_qlinearmatmul_precision_gops}), ` +
          `MatMulInteger ${row.ort_matmulinteger_gops}; swinq/ORT ${row.speedup_vs_ort_qlinear}×`));
    }
  }

  // Softmax and LayerNorm vs a Swin-T stage-1 block (3136 tokens, C = 96, 3 heads, 64 windows of 49).
  const sm = native.qBenchSoftmax(64 * 3 * 49, 49, runs);
  const ln = native.qBenchLayerNorm(3136, 96, runs);
  const add = native.qBenchAdd(3136 * 96, runs);
  const g = (M, K, N) => benchSwinqGemm(M, K, N, { threads: 1, runs, out: 'u8' }).minMs;
  const gemmMs = g(3136, 96, 288) + g(3136, 96, 96) + g(3136, 96, 384) + g(3136, 384, 96) +
    192 * (g(49, 32, 49) + g(49, 49, 32));
  const blockMs = gemmMs + sm.minMs + 2 * ln.minMs + 2 * add.minMs;
  const norm = {
    softmax_ms: +sm.minMs.toFixed(3), softmax_melem_per_s: +((64 * 3 * 49 * 49) / sm.minMs / 1e3).toFixed(1),
    layernorm_ms: +ln.minMs.toFixed(3), layernorm_melem_per_s: +((3136 * 96) / ln.minMs / 1e3).toFixed(1),
    residual_add_ms: +add.minMs.toFixed(3),
    block_gemm_ms: +gemmMs.toFixed(3), block_total_ms: +blockMs.toFixed(3),
    softmax_layernorm_fraction: +((sm.minMs + 2 * ln.minMs) / blockMs).toFixed(3),
  };
  log(`softmax 9408x49: ${norm.softmax_ms} ms (${norm.softmax_melem_per_s} Melem/s); layernorm 3136x96: ${norm.layernorm_ms} ms ` +
    `(${norm.layernorm_melem_per_s} Melem/s); int16 residual add 3136x96: ${norm.residual_add_ms} ms`);
  log(`Swin-T stage-1 block (1 thread): GEMMs ${norm.block_gemm_ms} ms, total ${norm.block_total_ms} ms; softmax + 2 LN = ` +
    `${(norm.softmax_layernorm_fraction * 100).toFixed(1)}%`);
  if (json) process.stdout.write(JSON.stringify({ isa, peak_gops: +peak.gops.toFixed(2), clock_ghz: +ghz.toFixed(3), gemm: rows, norm }) + '\n');
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((e) => { console.error(e); process.exit(1); });
}
