#!/usr/bin/env node
// Small-K u8×s8 GEMMs (K = 48…96, the micro-Swin and Swin-T stage-1/2 linears): GOPS with int32
// output and with the requantizing u8 epilogue, as a fraction of the int8 peak measured in this run
// (native/bench/peak.cc), 1 thread. Rounds alternate s32 / u8 (and, with --base, the two addons)
// so a busy machine shifts them alike; min and median over the rounds, each round the min of
// --reps calls timed in C++.
//   node bench/int-gemm-epilogue.js [--rounds 7] [--reps 30] [--base path/to/other/swinq.node] [--json]
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const require = createRequire(import.meta.url);
const args = process.argv.slice(2);
const opt = (name, dflt) => { const i = args.indexOf(`--${name}`); return i >= 0 ? args[i + 1] : dflt; };
const rounds = Number(opt('rounds', '7'));
const reps = Number(opt('reps', '30'));
const json = args.includes('--json');
const addons = [['new', process.env.SWINQ_ADDON ?? path.join(root, 'build', 'Release', 'swinq.node')]];
if (opt('base')) addons.unshift(['base', path.resolve(opt('base'))]);
const mods = addons.map(([name, p]) => [name, require(p)]);

const shapes = [
  ['micro qkv', 196, 48, 144], ['micro fc1', 196, 48, 192], ['micro s2 qkv', 49, 96, 288], ['micro s2 fc1', 49, 96, 384],
  ['swin-t s1 qkv', 3136, 96, 288], ['swin-t s1 fc1', 3136, 96, 384], ['swin-t s2 qkv', 784, 192, 576],
];
const native = mods[mods.length - 1][1];
const peak = native.peakInt8(native.activeIsa());
const gops = (M, K, N, ms) => (2 * M * K * N) / (ms * 1e6);
const stat = (v) => { const s = [...v].sort((a, b) => a - b); return { min: s[0], median: s[Math.floor(s.length / 2)] }; };
if (!json) console.log(`${native.activeIsa()}: int8 peak ${peak.gops.toFixed(1)} GOPS/core (${peak.sequence}); ${rounds} rounds × min of ${reps} calls`);
const rows = [];
for (const [label, M, K, N] of shapes) {
  const t = {};
  for (let r = 0; r < rounds; r++) {
    for (const [name, mod] of mods) {
      for (const out of ['s32', 'u8']) {
        const key = `${name} ${out}`;
        (t[key] ??= []).push(mod.qBenchGemm(M, K, N, { threads: 1, reps, out }).minMs);
      }
    }
  }
  const row = { label, M, K, N };
  for (const [key, ms] of Object.entries(t)) {
    const s = stat(ms);
    // fraction of peak: best (min time) and typical (median time) round
    row[key] = { peak_fraction: +(gops(M, K, N, s.min) / peak.gops).toFixed(3), median_fraction: +(gops(M, K, N, s.median) / peak.gops).toFixed(3) };
  }
  rows.push(row);
  if (!json) {
    console.log(`${label.padEnd(14)} ${M}x${K}x${N}: ` + Object.entries(row).filter(([k]) => k.includes(' '))
      .map(([k, v]) => `${k} ${v.peak_fraction} (median ${v.median_fraction})`).join(', '));
  }
}
if (json) console.log(JSON.stringify({ peak_gops: peak.gops, rounds, reps, rows }));
