#!/usr/bin/env node
// fp32 GEMM throughput of the plan executor's linear op (packed B, fused epilogue) on Swin-T and
// micro-Swin shapes, 1 and 2 threads. Each point: min and median GFLOPS over several runs
// (the machine is shared: trust the min-time / max-GFLOPS column, read the median as noise), and
// the fraction of the kernel set's fp32 peak measured in the same run (register-only FMA loop).
// Usage: node bench/gemm-f32.js [--runs 7] [--isa scalar|avx2] [--json]
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const require = createRequire(import.meta.url);
const native = require(process.env.SWINQ_ADDON ?? path.join(root, 'build', 'Release', 'swinq.node'));

const args = process.argv.slice(2);
const opt = (name, dflt) => { const i = args.indexOf(`--${name}`); return i >= 0 ? args[i + 1] : dflt; };
const runs = Number(opt('runs', '7'));
const isa = opt('isa', 'auto');
const json = args.includes('--json');
native.setIsa(isa);
const peak = native.peakF32(native.activeIsa());
if (!json) console.log(`fp32 peak (${peak.sequence}, 1 core, measured): ${peak.gops.toFixed(1)} GFLOPS`);

// [label, M, K, N]: Swin-T stage-1 MLP/QKV at batch 1 (3136 tokens), stage 3, and micro-Swin-like.
const shapes = [
  ['swin-t s1 fc1', 3136, 96, 384],
  ['swin-t s1 fc2', 3136, 384, 96],
  ['swin-t s1 qkv', 3136, 96, 288],
  ['swin-t s3 fc1', 196, 384, 1536],
  ['swin-t s3 fc2', 196, 1536, 384],
  ['micro qkv', 196, 32, 96],
  ['micro fc1', 196, 32, 128],
  ['micro s2 fc2', 49, 256, 64],
];
const results = [];
for (const [label, M, K, N] of shapes) {
  for (const threads of [1, 2]) {
    const flop = 2 * M * K * N;
    const iters = Math.max(1, Math.round(2e8 / flop));  // ~0.1 s of work per run at 2 GFLOPS... fewer when fast
    const secs = [];
    for (let r = 0; r < runs; ++r) secs.push(native.benchGemmF32(M, K, N, iters, threads));
    secs.sort((a, b) => a - b);
    const best = flop / secs[0] / 1e9, median = flop / secs[Math.floor(secs.length / 2)] / 1e9;
    results.push({ label, M, K, N, threads, isa: native.activeIsa(), gflops_best: +best.toFixed(1), gflops_median: +median.toFixed(1),
      peak_fraction: +(best / (peak.gops * threads)).toFixed(3) });
    if (!json) {
      console.log(`${label.padEnd(14)} M=${String(M).padStart(4)} K=${String(K).padStart(4)} N=${String(N).padStart(4)} ` +
        `threads=${threads} ${native.activeIsa()}: best ${best.toFixed(1)} GFLOPS (${(100 * best / (peak.gops * threads)).toFixed(0)}% of peak), median ${median.toFixed(1)}`);
    }
  }
}
if (json) process.stdout.write(JSON.stringify({ isa: native.activeIsa(), peak_gflops: +peak.gops.toFixed(2), gemm_f32: results }) + '\n');
