#!/usr/bin/env node
// Few-bit backward benchmark: bytes kept for backward, encode/decode throughput (scalar and AVX2)
// vs a plain fp32 save, solver time and convergence in the grid, and J of our tables vs the
// reference repo's shipped tables (parsed from ../shared/reference/few-bit-backward.md).
// Min and median of several runs (the machine is shared). Markdown on stdout; --json for JSON.
//
//   node bench/fewbit.js [--n ELEMENTS] [--runs K] [--json]
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);
const addon = process.env.SWINQ_ADDON ?? path.join(root, 'build', 'Release', 'swinq.node');
if (!fs.existsSync(addon)) {
  console.error(`bench/fewbit.js: ${addon} not found; run \`npm run build:native\` first`);
  process.exit(1);
}
const b = require(addon);

const args = process.argv.slice(2);
const opt = (name, def) => {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) : def;
};
const N = opt('--n', 1 << 22);
const RUNS = opt('--runs', 9);
const JSON_OUT = args.includes('--json');

function stats(fn) {
  fn(); // warm-up
  const t = [];
  for (let r = 0; r < RUNS; r++) {
    const t0 = process.hrtime.bigint();
    fn();
    t.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  t.sort((a, c) => a - c);
  return { min: t[0], median: t[t.length >> 1] };
}
const gbps = (bytes, ms) => bytes / (ms * 1e6);

// Inputs ~ N(0, 1.5²): a typical pre-activation.
const x = new Float32Array(N);
const g = new Float32Array(N);
let s = 12345;
const u = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) + 0.5) / 4294967296;
for (let i = 0; i < N; i++) {
  x[i] = 1.5 * Math.sqrt(-2 * Math.log(u())) * Math.cos(2 * Math.PI * u());
  g[i] = u() - 0.5;
}
const gi = new Float32Array(N);
const saved = new Float32Array(N);

const result = { n: N, runs: RUNS, isa: b.activeIsa(), bytes: [], throughput: [], solver: [], reference: [], normal: [] };

// 1. Bytes kept for backward per activation element (and for one Swin-T stage-1 MLP GELU input, 56·56·1536).
const swinT = 56 * 56 * 1536;
result.bytes.push({ kept: 'fp32 input', bytesPerElement: 4, swinTStage1MlpMiB: (swinT * 4) / 2 ** 20, ratio: 1 });
for (const bits of [1, 2, 3, 4]) {
  result.bytes.push({ kept: `${bits}-bit codes`, bytesPerElement: bits / 8, swinTStage1MlpMiB: Math.ceil((swinT * bits) / 8) / 2 ** 20, ratio: bits / 32 });
}

// 2. Throughput, GB/s of fp32 activations (4N bytes) processed.
const isas = b.cpuFeatures().avx2 ? ['scalar', 'avx2'] : ['scalar'];
const before = b.activeIsa();
{
  const t = stats(() => saved.set(x));
  result.throughput.push({ op: 'fp32 save (copy x)', isa: '-', bits: '-', gbpsMedian: gbps(4 * N, t.median), gbpsBest: gbps(4 * N, t.min) });
}
for (const isa of isas) {
  b.setIsa(isa);
  for (const bits of [1, 2, 3, 4]) {
    b.fewbitTable('gelu', bits, {});
    const te = stats(() => b.fewbitForward('gelu', x, bits, {}, false));
    const codes = b.fewbitForward('gelu', x, bits, {}, false).codes;
    const td = stats(() => b.fewbitBackward('gelu', codes, g, bits, {}, gi));
    result.throughput.push({ op: 'encode (codes only)', isa, bits, gbpsMedian: gbps(4 * N, te.median), gbpsBest: gbps(4 * N, te.min) });
    result.throughput.push({ op: 'decode × gradOut', isa, bits, gbpsMedian: gbps(4 * N, td.median), gbpsBest: gbps(4 * N, td.min) });
  }
}
b.setIsa(before);
{
  const t = stats(() => b.fewbitForward('gelu', x, 3, {}, true));
  result.throughput.push({ op: 'forward y=gelu(x) (double libm) + 3-bit codes', isa: b.activeIsa(), bits: 3, gbpsMedian: gbps(4 * N, t.median), gbpsBest: gbps(4 * N, t.min) });
}

// 3. Solver: time of a fresh solve and J against the grid (gelu and silu at 4 bits, uniform on [-100, 100]).
for (const fn of ['gelu', 'silu']) {
  for (const grid of [1024, 2048, 4096, 8192]) {
    for (const polish of [false, true]) {
      const t0 = process.hrtime.bigint();
      const t = b.fewbitTable(fn, 4, { grid, polish });
      const ms = Number(process.hrtime.bigint() - t0) / 1e6;
      result.solver.push({ fn, bits: 4, grid, polish, ms, error: t.error });
    }
  }
}

// 4. Our tables vs the reference repo's shipped tables, same objective (w ≡ 1 on [-100, 100]).
const refDoc = path.resolve(root, '..', 'shared', 'reference', 'few-bit-backward.md');
if (fs.existsSync(refDoc)) {
  const text = fs.readFileSync(refDoc, 'utf8');
  const app = text.slice(text.indexOf('## Appendix A'));
  const re = /- `([a-z]+)(\d\d)` borders: \[([^\]]+)\]\s*\n\s*levels: \[([^\]]+)\]/g;
  for (const m of app.matchAll(re)) {
    const fn = m[1], bits = Number(m[2]);
    if (fn === 'elu') continue; // identical to celu (alpha = 1)
    const borders = m[3].split(',').map(Number).slice(1, -1), levels = m[4].split(',').map(Number);
    const refJ = b.fewbitObjective(fn, borders, levels, {});
    const ours = b.fewbitTable(fn, bits, {}).error;
    result.reference.push({ fn, bits, reference: refJ, ours, refOverOurs: refJ / ours });
  }
} else {
  console.error(`bench/fewbit.js: ${refDoc} missing; skipping the reference comparison`);
}
for (const fn of ['gelu', 'silu', 'mish', 'tanh', 'sigmoid', 'softsign', 'hardswish']) {
  const row = { fn };
  for (const bits of [1, 2, 3, 4]) row[`b${bits}`] = b.fewbitTable(fn, bits, { weight: 'normal' }).error;
  result.normal.push(row);
  if (['tanh', 'sigmoid', 'softsign'].includes(fn)) {
    const f = { fn: `${fn} (fold: codes of abs x)` };
    for (const bits of [1, 2, 3, 4]) f[`b${bits}`] = b.fewbitTable(fn, bits, { weight: 'normal', fold: true }).error;
    result.normal.push(f);
  }
}

// Approx-BP (Yang et al., ICML 2024) ReGELU2 / ReSiLU2: f' replaced by a fixed 2-bit step function,
// q(x) = Σ_i a_i [x > c_i]. Constants from github.com/yyyyychen/LowMemoryBP, lomem/csrc/activation_cuda.cu
// (ReGELU2_a/_c, ReSiLU2_a/_c). J of their table, of their borders with the optimal levels, and of our
// DP-optimal 2-bit table, with the same quadrature and weight.
const APPROX_BP = {
  gelu: { c: [-3.1858810036855245, -0.001178821281161997, 3.190832613414926], a: [-0.04922261145617846, 1.0979632065417297, -0.048740595085551286] },
  silu: { c: [-6.3050461001646445, -0.0008684942046214787, 6.325815242089708], a: [-0.04060357190528599, 1.080925428529668, -0.040321856624382146] },
};
result.approxbp = [];
for (const [fn, { c, a }] of Object.entries(APPROX_BP)) {
  const levels = [0, a[0], a[0] + a[1], a[0] + a[1] + a[2]];
  for (const [weight, lo, hi] of [['uniform', -100, 100], ['normal', -10, 10]]) {
    const o = { weight, lo, hi };
    const theirs = b.fewbitObjective(fn, c, levels, o);
    const refit = b.fewbitFitLevels(fn, c, o).error;
    const t = b.fewbitTable(fn, 2, o);
    result.approxbp.push({ fn, weight, domain: [lo, hi], borders: c, levels, J: theirs, J_refit: refit, J_ours: t.error, ours_borders: Array.from(t.borders), ours_levels: Array.from(t.levels), ratio: theirs / t.error });
  }
}

if (JSON_OUT) {
  process.stdout.write(JSON.stringify(result) + '\n');
} else {
  const f = (v, d = 3) => (typeof v === 'number' ? (Math.abs(v) < 1e-3 && v !== 0 ? v.toExponential(d) : v.toFixed(d)) : String(v));
  const out = [];
  out.push(`few-bit backward, N = ${N} elements, ${RUNS} runs (median / best), active ISA ${result.isa}`, '');
  out.push('| kept for backward | bytes/element | Swin-T stage-1 MLP GELU input (MiB) | vs fp32 |', '|---|---|---|---|');
  for (const r of result.bytes) out.push(`| ${r.kept} | ${r.bytesPerElement} | ${f(r.swinTStage1MlpMiB, 2)} | ${f(r.ratio, 4)} |`);
  out.push('', '| op | isa | bits | GB/s median | GB/s best |', '|---|---|---|---|---|');
  for (const r of result.throughput) out.push(`| ${r.op} | ${r.isa} | ${r.bits} | ${f(r.gbpsMedian, 2)} | ${f(r.gbpsBest, 2)} |`);
  out.push('', '| fn | bits | grid | polish | solve ms | J |', '|---|---|---|---|---|---|');
  for (const r of result.solver) out.push(`| ${r.fn} | ${r.bits} | ${r.grid} | ${r.polish} | ${f(r.ms, 1)} | ${r.error.toPrecision(10)} |`);
  if (result.reference.length) {
    out.push('', '| fn | bits | J shipped fewbit table | J ours | shipped / ours |', '|---|---|---|---|---|');
    for (const r of result.reference) out.push(`| ${r.fn} | ${r.bits} | ${r.reference.toPrecision(6)} | ${r.ours.toPrecision(6)} | ${r.refOverOurs.toFixed(3)} |`);
  }
  out.push('', '| fn (normal weight, [-10, 10]) | J 1 bit | J 2 bits | J 3 bits | J 4 bits |', '|---|---|---|---|---|');
  for (const r of result.normal) out.push(`| ${r.fn} | ${r.b1.toPrecision(4)} | ${r.b2.toPrecision(4)} | ${r.b3.toPrecision(4)} | ${r.b4.toPrecision(4)} |`);
  out.push('', '| 2-bit table | weight | J Approx-BP (published) | J their borders, optimal levels | J ours (DP) | published / ours |', '|---|---|---|---|---|---|');
  for (const r of result.approxbp) out.push(`| ${r.fn === 'gelu' ? 'ReGELU2' : 'ReSiLU2'} vs ${r.fn} 2-bit | ${r.weight} [${r.domain.join(', ')}] | ${r.J.toPrecision(4)} | ${r.J_refit.toPrecision(4)} | ${r.J_ours.toPrecision(4)} | ${r.ratio.toFixed(2)} |`);
  process.stdout.write(out.join('\n') + '\n');
}
